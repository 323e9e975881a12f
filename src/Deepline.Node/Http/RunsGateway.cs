using Akka.Actor;
using Akka.Hosting;
using Deepline.Actors.Hosting;
using Deepline.Domain;

namespace Deepline.Node.Http;

/// <summary>Asks the cluster on behalf of an HTTP request and turns a time-out into a 503, never a 500.</summary>
public sealed class RunsGateway(IRequiredActor<HttpBridge> bridge, TimeSpan askTimeout)
{
    public async Task<(IDeeplineMessage? Reply, IResult? Failure)> AskAsync(IRunCommand command, CancellationToken ct)
    {
        try
        {
            var actor = await bridge.GetAsync(ct);
            var reply = await actor.Ask<IDeeplineMessage>(command, askTimeout, ct);
            return reply is CommandRejected r ? (null, Problems.From(r)) : (reply, null);
        }
        catch (AskTimeoutException)
        {
            return (null, Problems.Unavailable($"run '{command.RunId}' did not answer within {askTimeout.TotalSeconds:0.#} s; the request may still be applied, retry it"));
        }
    }
}
