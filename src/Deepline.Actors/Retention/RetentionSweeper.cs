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
/// </summary>
public sealed class RetentionSweeper : ReceiveActor, IWithTimers
{
    public static readonly TimeSpan Every = TimeSpan.FromSeconds(5);
    public const int Batch = 200;
    private const int InFlight = 8;
    private static readonly TimeSpan AskTimeout = TimeSpan.FromSeconds(10);
    private const string SweepTimer = "sweep";

    private readonly ILoggingAdapter _log = Context.GetLogger();
    private bool _sweeping;

    public RetentionSweeper(RetentionPolicy policy, IActorRef runs, RunIndexStore index)
    {
        Receive<Sweep>(_ =>
        {
            if (_sweeping) return;
            _sweeping = true;
            SweepOnce(policy, runs, index).PipeTo(Self, success: r => r, failure: e => new Swept(0, 0, e.Message, false));
        });
        Receive<Swept>(s =>
        {
            _sweeping = false;
            if (s.Error is not null) _log.Warning("Retention sweep failed ({0}); trying again in {1} s", s.Error, Every.TotalSeconds);
            else if (s.Removed > 0 || s.Kept > 0) _log.Info("Retention removed {0} finished run(s); {1} kept (changed since they were due)", s.Removed, s.Kept);
            if (s.Full) Self.Tell(Sweep.Instance);
        });
    }

    public ITimerScheduler Timers { get; set; } = null!;

    public static Props Props(RetentionPolicy policy, IActorRef runs, RunIndexStore index) =>
        Akka.Actor.Props.Create(() => new RetentionSweeper(policy, runs, index));

    protected override void PreStart() => Timers.StartPeriodicTimer(SweepTimer, Sweep.Instance, Every);

    private static async Task<Swept> SweepOnce(RetentionPolicy policy, IActorRef runs, RunIndexStore index)
    {
        var due = await index.DueForRetentionAsync(policy, DateTimeOffset.UtcNow, Batch);
        if (due.Count == 0) return new Swept(0, 0, null, false);
        var expired = new bool[due.Count];
        using var gate = new SemaphoreSlim(InFlight);
        await Task.WhenAll(due.Select(async (run, i) =>
        {
            await gate.WaitAsync();
            try
            {
                expired[i] = await runs.Ask<IDeeplineMessage>(new ExpireRun(run.RunId, policy), AskTimeout) is RunExpired;
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
        return new Swept(removed.Count, due.Count - removed.Count, null, due.Count == Batch && removed.Count > 0);
    }

    private sealed record Sweep
    {
        public static Sweep Instance { get; } = new();
    }

    private sealed record Swept(int Removed, int Kept, string? Error, bool Full);
}
