using Akka.Actor;

namespace Deepline.Actors.Hosting;

/// <summary>The node's one <see cref="PauseFence"/>, ticked by a thread of its own, shared by the journal and the snapshot store.</summary>
public sealed class PauseFences : IExtension
{
    private volatile bool _stopped;

    private PauseFences(ExtendedActorSystem system)
    {
        var config = system.Settings.Config;
        var stableAfter = config.GetTimeSpan("akka.cluster.split-brain-resolver.stable-after", TimeSpan.FromSeconds(20), false);
        var acceptablePause = config.GetTimeSpan("akka.cluster.failure-detector.acceptable-heartbeat-pause", TimeSpan.FromSeconds(3), false);
        Fence = PauseFence.For(stableAfter, acceptablePause);
        // A thread of its own: a late pool thread would say the pool was busy, not that the process stood still.
        new Thread(() =>
        {
            while (!_stopped)
            {
                Fence.Tick();
                Thread.Sleep(100);
            }
        }) { IsBackground = true, Name = "deepline-pause-fence" }.Start();
        system.RegisterOnTermination(() => _stopped = true);
    }

    public PauseFence Fence { get; }

    public static PauseFence For(ActorSystem system) => system.WithExtension<PauseFences, Provider>().Fence;

    public sealed class Provider : ExtensionIdProvider<PauseFences>
    {
        public override PauseFences CreateExtension(ExtendedActorSystem system) => new(system);
    }
}

/// <summary>
/// Keeps a node that was paused (SIGSTOP, a VM or container freeze, a starved host) from writing to the shared journal
/// once it runs again. A pause as long as the split-brain resolver's stable-after may have got the node downed and its
/// runs recovered on other nodes; a write it then commits lands behind their backs: measured, a run's RunSubmitted
/// committed 30 s late by a thawed node while the run's remembered entity had already recovered empty elsewhere, so the
/// run stayed RUNNING in the index and answered 404, forever. So: after a pause of <see cref="Limit"/> no write is taken
/// for <see cref="FenceFor"/> (by then a downed node has shut down), and a write waits no longer than
/// <see cref="QueueLimit"/> from being queued to its COMMIT (else it is failed, its caller hears a timeout): a node
/// starved rather than stopped ticks now and then, yet may have been downed. PostgreSQL's
/// idle_in_transaction_session_timeout covers a pause between the last check and the COMMIT itself.
/// </summary>
/// <param name="limit">The longest pause after which a write may still be committed (see <see cref="For"/>).</param>
/// <param name="now">Monotonic milliseconds (tests pass their own clock).</param>
/// <param name="queueLimit">The longest wait of a queued write; null: <paramref name="limit"/>.</param>
public sealed class PauseFence(TimeSpan limit, Func<long> now, TimeSpan? queueLimit = null)
{
    private long _lastTick = now();
    private long _fencedUntil;

    public TimeSpan Limit { get; } = limit;

    public TimeSpan QueueLimit { get; } = queueLimit ?? limit;

    /// <summary>How long writes stay fenced after a pause: the resolver's stable-after and a margin for the shutdown.</summary>
    public TimeSpan FenceFor { get; } = limit * 2 + TimeSpan.FromSeconds(10);

    /// <summary>
    /// A node is downed no sooner than the failure detector's acceptable pause plus the resolver's stable-after after it
    /// stopped answering (measured with stable-after 3 s: removed 9-11 s after a SIGSTOP). A whole-process pause is
    /// fenced at stable-after. A queued write gets that minimum less the half of stable-after PostgreSQL lets a
    /// transaction idle (see GroupCommitJournal), so its check and its COMMIT together stay within it; with a short
    /// stable-after that is still longer than stable-after itself, which refused writes a busy database had merely
    /// delayed (a rolling restart on a loaded machine).
    /// </summary>
    public static PauseFence For(TimeSpan stableAfter, TimeSpan acceptablePause)
    {
        var limit = TimeSpan.FromMilliseconds(Math.Max(1000, stableAfter.TotalMilliseconds));
        return new(limit, () => Environment.TickCount64, limit / 2 + acceptablePause);
    }

    /// <summary>Called often (every 100 ms) by a thread of its own: a late tick means the process did not run.</summary>
    public void Tick()
    {
        var t = now();
        Observe(t);
        Volatile.Write(ref _lastTick, t);
    }

    /// <summary>Null when a write queued at <paramref name="queuedAt"/> may be committed now; else why not.</summary>
    public string? Refusal(long queuedAt)
    {
        var t = now();
        Observe(t);
        if (t < Volatile.Read(ref _fencedUntil))
            return $"the node was paused for {Limit.TotalSeconds:0.#} s or more and may have been downed meanwhile; no journal write until {FenceFor.TotalSeconds:0} s after it ran again";
        if (t - queuedAt > QueueLimit.TotalMilliseconds)
            return $"the write waited {(t - queuedAt) / 1000.0:0.0} s, longer than {QueueLimit.TotalSeconds:0.#} s: the node may have been downed meanwhile, so it is not written";
        return null;
    }

    /// <summary>The watchdog's last tick this long ago means the whole process stood still: fence from now.</summary>
    private void Observe(long t)
    {
        if (t - Volatile.Read(ref _lastTick) <= Limit.TotalMilliseconds) return;
        var until = t + (long)FenceFor.TotalMilliseconds;
        if (until > Volatile.Read(ref _fencedUntil)) Volatile.Write(ref _fencedUntil, until);
    }
}
