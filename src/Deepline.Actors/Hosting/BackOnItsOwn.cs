using Akka.Actor;
using Akka.Pattern;

namespace Deepline.Actors.Hosting;

/// <summary>
/// A persistent singleton stops itself when a journal write or its recovery fails (Akka.Persistence's rule: its state may
/// be ahead of or behind the journal), and the cluster singleton manager starts it again only on a hand-over, never while
/// its node lives: after one PostgreSQL restart the deadlock monitor stayed stopped until the node was restarted by hand.
/// Under a backoff supervisor it comes back by itself (0.2 s, doubling to 2 s while the store is still down, so it scans
/// again within seconds of the database accepting connections); exceptions still restart it at once as before. Messages
/// that arrive while it is stopped go to dead letters, so their asks time out as they would against a stopped singleton.
/// </summary>
public static class BackOnItsOwn
{
    public static readonly TimeSpan FirstBackoff = TimeSpan.FromMilliseconds(200);
    public static readonly TimeSpan MaxBackoff = TimeSpan.FromSeconds(2);

    public static Props Props(Props child, string name) =>
        BackoffSupervisor.Props(Backoff.OnStop(child, name, FirstBackoff, MaxBackoff, randomFactor: 0.2, maxNrOfRetries: -1));
}
