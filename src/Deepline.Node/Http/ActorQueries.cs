using Akka.Actor;
using Akka.Hosting;

namespace Deepline.Node.Http;

/// <summary>Questions endpoints put to the node's own actors, where "no answer" is something to report, not a 500.</summary>
public static class ActorQueries
{
    /// <summary>The actor's answer, or null when it is not registered yet, not reachable, or silent for <paramref name="timeout"/>.</summary>
    public static async Task<TReply?> AskOrNullAsync<TActor, TReply>(IRequiredActor<TActor> actor, object message, TimeSpan timeout, CancellationToken ct)
        where TReply : class
    {
        try
        {
            var target = await actor.GetAsync(ct);
            return await target.Ask<TReply>(message, timeout, ct);
        }
        catch (Exception ex) when (ex is AskTimeoutException or TaskCanceledException or InvalidOperationException)
        {
            return null;
        }
    }
}
