using Akka.Actor;
using Akka.Event;
using Deepline.Actors.Index;
using Deepline.Domain;

namespace Deepline.Actors.Retention;

/// <summary>
/// Removes finished runs whose retention is over (a cluster singleton, beside the run index's projection): every
/// <see cref="Every"/> it takes up to <see cref="Batch"/> due runs from the index, longest finished first, asks each
/// run to delete its own history (<see cref="ExpireRun"/>: the run decides on its own state, so a run re-opened or
/// reported on meanwhile is kept), then removes what the journal only marked deleted and the index rows. It keeps no
/// state of its own: what is deleted is its progress, so a crash or a failover loses nothing and repeats nothing
/// harmful (a run already removed answers that there is nothing left). A full batch is followed by the next at once.
/// With an archive, a batch's histories are on disk before any of its runs is asked (a failed write removes nothing);
/// with Redis, the removed runs' entries in the cancel set go too.
/// </summary>
public sealed class RetentionSweeper : ReceiveActor, IWithTimers
{
    // Every second rather than every 5 s in batches five times as large: each removal wakes its run, and a burst of
    // them on two cores raised live cancels' p99 (the retention soak, docs/benchmarks-retention.md).
    public static readonly TimeSpan Every = TimeSpan.FromSeconds(1);
    public const int Batch = 500;
    private const int InFlight = 4;
    private static readonly TimeSpan AskTimeout = TimeSpan.FromSeconds(10);
    private const string SweepTimer = "sweep";

    /// <summary>The cap is looked at every tenth sweep (a COUNT over the finished runs), or at once while over it.</summary>
    private const int CapEvery = 10;

    private readonly ILoggingAdapter _log = Context.GetLogger();
    private bool _sweeping;
    private int _sweeps;
    private bool _overCap;

    public RetentionSweeper(RetentionPolicy policy, IActorRef runs, RunIndexStore index, RunArchive? archive, Cancellation.RedisCancelStore? redis)
    {
        Receive<Sweep>(_ =>
        {
            if (_sweeping) return;
            _sweeping = true;
            var overCap = _overCap;
            var checkCap = policy.MaxFinishedRuns > 0 && (overCap || _sweeps++ % CapEvery == 0);
            SweepOnce(policy, runs, index, archive, redis, checkCap).PipeTo(Self, success: r => r, failure: e => new Swept(0, 0, e.Message, false, overCap));
        });
        Receive<Swept>(s =>
        {
            _sweeping = false;
            _overCap = s.OverCap;
            if (s.Error is not null) _log.Warning("Retention sweep failed ({0}); trying again in {1} s", s.Error, Every.TotalSeconds);
            else if (s.Removed > 0 || s.Kept > 0) _log.Info("Retention removed {0} finished run(s); {1} kept (changed since they were due)", s.Removed, s.Kept);
            if (s.Full) Self.Tell(Sweep.Instance);
        });
    }

    public ITimerScheduler Timers { get; set; } = null!;

    public static Props Props(RetentionPolicy policy, IActorRef runs, RunIndexStore index, RunArchive? archive = null,
        Cancellation.RedisCancelStore? redis = null) =>
        Akka.Actor.Props.Create(() => new RetentionSweeper(policy, runs, index, archive, redis));

    protected override void PreStart() => Timers.StartPeriodicTimer(SweepTimer, Sweep.Instance, Every);

    private static async Task<Swept> SweepOnce(RetentionPolicy policy, IActorRef runs, RunIndexStore index, RunArchive? archive,
        Cancellation.RedisCancelStore? redis, bool checkCap)
    {
        var now = DateTimeOffset.UtcNow;
        var due = (await index.DueForRetentionAsync(policy, now, Batch)).ToList();
        var cutoffs = due.Select(_ => (DateTimeOffset?)null).ToList();
        var overCap = false;
        if (checkCap && due.Count < Batch)
        {
            var (over, finishedBefore) = await index.OverCapAsync(policy.MaxFinishedRuns, Batch - due.Count);
            var known = due.Select(d => d.RunId).ToHashSet(StringComparer.Ordinal);
            foreach (var run in over.Where(o => !known.Contains(o.RunId)))
            {
                due.Add(run);
                cutoffs.Add(finishedBefore);
            }
            overCap = over.Count > 0;
        }
        if (due.Count == 0) return new Swept(0, 0, null, false, false);
        if (archive is not null) await archive.WriteAsync(due, now);
        var expired = new bool[due.Count];
        using var gate = new SemaphoreSlim(InFlight);
        await Task.WhenAll(due.Select(async (run, i) =>
        {
            await gate.WaitAsync();
            try
            {
                expired[i] = await runs.Ask<IDeeplineMessage>(new ExpireRun(run.RunId, policy) { FinishedBefore = cutoffs[i] }, AskTimeout) is RunExpired;
            }
            catch (Exception e) when (e is AskTimeoutException or TaskCanceledException)
            {
                // Asked again at the next sweep.
            }
            finally
            {
                gate.Release();
            }
        }));
        var removed = due.Where((_, i) => expired[i]).ToList();
        await index.RemoveExpiredAsync(removed);
        // Redis down: the entries still go with orchestrator.redis.retention_s.
        if (redis is not null) await redis.ForgetAsync([.. removed.Select(r => r.RunId)]);
        return new Swept(removed.Count, due.Count - removed.Count, null, due.Count == Batch && removed.Count > 0, overCap);
    }

    private sealed record Sweep
    {
        public static Sweep Instance { get; } = new();
    }

    private sealed record Swept(int Removed, int Kept, string? Error, bool Full, bool OverCap);
}
