using Akka.Actor;
using Akka.Event;
using Akka.Persistence;
using Deepline.Actors.Index;
using Deepline.Domain;

namespace Deepline.Actors.Operations;

/// <summary>
/// Bulk cancels (a cluster singleton): each operation walks the runs its filter matches, a page at a time in
/// (created_at, run_id) order from the run index, cancels each run as one <see cref="CancelRun"/> with the operation's
/// reason and caller, and journals the page's counts and its cursor before it takes the next page. A failover resumes
/// every operation at its cursor; the page that was under way is cancelled again, which the runs answer with the
/// record they already have (counted as skipped), so no run is cancelled twice. Operations run one at a time, at
/// most its rate of runs a second (orchestrator.limits.bulk_cancel_rate), so live traffic keeps its latency.
/// </summary>
public sealed class BulkCancels : UntypedPersistentActor, IWithTimers
{
    public const int PageSize = 200;
    public const int DefaultRunsPerSecond = 1000;
    private const int InFlight = 16;
    private const int TriesPerRun = 3;
    private static readonly TimeSpan AskTimeout = TimeSpan.FromSeconds(10);
    private const string RetryTimer = "retry";

    private readonly IActorRef _runs;
    private readonly RunIndexStore _index;
    private readonly int _runsPerSecond;
    private readonly ILoggingAdapter _log = Context.GetLogger();
    private BulkOperations _state = BulkOperations.Empty;
    private string? _working;

    public BulkCancels(IActorRef runs, RunIndexStore index, int runsPerSecond)
    {
        _runs = runs;
        _index = index;
        _runsPerSecond = runsPerSecond;
    }

    public static Props Props(IActorRef runs, RunIndexStore index, int runsPerSecond = DefaultRunsPerSecond) =>
        Akka.Actor.Props.Create(() => new BulkCancels(runs, index, runsPerSecond));

    public override string PersistenceId => "bulk-operations";

    public ITimerScheduler Timers { get; set; } = null!;

    protected override void OnRecover(object message)
    {
        switch (message)
        {
            case SnapshotOffer { Snapshot: BulkOperations s }:
                _state = s;
                break;
            case IDeeplineMessage e and not BulkOperations:
                _state = _state.Apply(e);
                break;
            case RecoveryCompleted:
                Kick();
                break;
        }
    }

    protected override void OnCommand(object message)
    {
        switch (message)
        {
            case StartBulkCancel start:
                var id = "op-" + Guid.NewGuid().ToString("N")[..16];
                var replyTo = Sender;
                Persist(new BulkCancelStarted(id, start.Filter, start.Reason, start.By, start.ClientScope, start.Matched, DateTimeOffset.UtcNow), e =>
                {
                    Apply(e);
                    _log.Info("Bulk cancel {0} started by {1}: {2} matching runs", id, start.By, start.Matched);
                    replyTo.Tell(new BulkCancelAccepted(_state.ById[id]));
                    Kick();
                });
                break;
            case GetBulkOperation get:
                Sender.Tell(new BulkOperationReply(_state.ById.GetValueOrDefault(get.OperationId)));
                break;
            case PageRead read:
                OnPage(read);
                break;
            case PageDone done:
                Persist(new BulkCancelProgressed(done.OperationId, done.Cursor, done.Cancelled, done.Skipped, done.Failed, DateTimeOffset.UtcNow), e =>
                {
                    Apply(e);
                    _working = null;
                    Kick();
                });
                break;
            case PageFailed failed:
                _log.Warning("Bulk cancel {0}: the run index could not be read ({1}); trying again in 2 s", failed.OperationId, failed.Cause.Message);
                _working = null;
                Timers.StartSingleTimer(RetryTimer, Retry.Instance, TimeSpan.FromSeconds(2));
                break;
            case Retry:
                Kick();
                break;
            case SaveSnapshotSuccess ok:
                // As the monitor does: the snapshot holds everything, so older events and snapshots go.
                DeleteMessages(ok.Metadata.SequenceNr);
                DeleteSnapshots(new SnapshotSelectionCriteria(ok.Metadata.SequenceNr - 1));
                break;
            case SaveSnapshotFailure or DeleteMessagesSuccess or DeleteMessagesFailure or DeleteSnapshotsSuccess or DeleteSnapshotsFailure:
                break;
            default:
                Unhandled(message);
                break;
        }
    }

    private void Apply(IDeeplineMessage e)
    {
        _state = _state.Apply(e);
        if (LastSequenceNr % 200 == 0) SaveSnapshot(_state);
    }

    /// <summary>Takes the next page of the oldest running operation, unless a page is under way.</summary>
    private void Kick()
    {
        if (_working is not null || _state.NextRunning is not { } op) return;
        _working = op.OperationId;
        _index.OpenMatchesAsync(op, op.Cursor, Math.Clamp(_runsPerSecond, 1, PageSize))
            .PipeTo(Self, success: page => new PageRead(op.OperationId, page), failure: e => new PageFailed(op.OperationId, e));
    }

    private void OnPage(PageRead read)
    {
        if (!_state.ById.TryGetValue(read.OperationId, out var op)) return;
        if (read.Page.Count == 0)
        {
            Persist(new BulkCancelFinished(op.OperationId, DateTimeOffset.UtcNow), e =>
            {
                Apply(e);
                var done = _state.ById.GetValueOrDefault(op.OperationId);
                _log.Info("Bulk cancel {0} done: {1} cancelled, {2} skipped, {3} failed of {4} matched", op.OperationId,
                    done?.Cancelled, done?.Skipped, done?.Failed, op.Matched);
                _working = null;
                Kick();
            });
            return;
        }
        CancelPage(_runs, op, read.Page, _runsPerSecond).PipeTo(Self);
    }

    /// <summary>Off the actor: the page's cancels, a few in flight at a time, each tried up to three times, paced.</summary>
    private static async Task<PageDone> CancelPage(IActorRef runs, BulkOperation op, IReadOnlyList<OperationCursor> page, int runsPerSecond)
    {
        var started = System.Diagnostics.Stopwatch.StartNew();
        var outcomes = new BulkCancelOutcome[page.Count];
        using var gate = new SemaphoreSlim(InFlight);
        await Task.WhenAll(page.Select(async (run, i) =>
        {
            await gate.WaitAsync();
            try
            {
                for (var attempt = 1; attempt <= TriesPerRun; attempt++)
                {
                    IDeeplineMessage? reply;
                    try
                    {
                        reply = await runs.Ask<IDeeplineMessage>(new CancelRun(run.RunId, op.Reason, op.By, Force: false) { ClientScope = op.ClientScope }, AskTimeout);
                    }
                    catch (Exception e) when (e is AskTimeoutException or TaskCanceledException)
                    {
                        reply = null;
                    }
                    outcomes[i] = BulkCancelRules.Outcome(reply, op);
                    if (outcomes[i] != BulkCancelOutcome.Failed) break;
                    await Task.Delay(TimeSpan.FromMilliseconds(200 * attempt));
                }
            }
            finally
            {
                gate.Release();
            }
        }));
        // Paced: a page of N runs takes at least N / rate seconds.
        var least = TimeSpan.FromSeconds((double)page.Count / runsPerSecond);
        if (started.Elapsed < least) await Task.Delay(least - started.Elapsed);
        return new PageDone(op.OperationId, page[^1], outcomes.Count(o => o == BulkCancelOutcome.Cancelled),
            outcomes.Count(o => o == BulkCancelOutcome.Skipped), outcomes.Count(o => o == BulkCancelOutcome.Failed));
    }

    private sealed record PageRead(string OperationId, IReadOnlyList<OperationCursor> Page);

    private sealed record PageFailed(string OperationId, Exception Cause);

    private sealed record PageDone(string OperationId, OperationCursor Cursor, int Cancelled, int Skipped, int Failed);

    private sealed record Retry
    {
        public static Retry Instance { get; } = new();
    }
}
