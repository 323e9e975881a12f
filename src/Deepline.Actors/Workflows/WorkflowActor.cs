using System.Collections.Immutable;
using System.Diagnostics;
using Akka.Actor;
using Akka.Cluster.Sharding;
using Akka.Cluster.Tools.PublishSubscribe;
using Akka.Event;
using Akka.Hosting;
using Deepline.Actors.Monitoring;
using Deepline.Actors.Queues;
using Deepline.Actors.Resources;
using Akka.Persistence;
using Deepline.Actors.Serialization;
using Deepline.Actors.Tracing;
using Deepline.Actors.Workers;
using Deepline.Domain;
using Deepline.Domain.Resources;

namespace Deepline.Actors.Workflows;

/// <summary>
/// One run, event-sourced. Decisions come from <see cref="WorkflowDecider"/>; this actor only journals the
/// events it is given, applies them, replies once they are durable, and turns state changes into effects
/// (dispatching ready tasks, broadcasting the cancel, arming the cancel deadline, passivating when done).
/// </summary>
public sealed class WorkflowActor : UntypedPersistentActor, IWithTimers
{
    private const string CancelTimeoutTimer = "cancel-timeout";
    private const string DeadlockTimer = "deadlock-check";
    private const string ResourceSyncTimer = "resource-sync";
    private const string RetryTimer = "retry";
    private const string RedispatchTimer = "redispatch";
    private const string InterruptionTimer = "interruption-check";
    /// <summary>How often, and how many times, attempts on a member this node cannot yet call present or gone are looked at again.</summary>
    private static readonly TimeSpan InterruptionRecheck = TimeSpan.FromSeconds(2);
    private const int InterruptionRechecks = 30;

    private readonly string _runId;
    private readonly WorkflowSettings _settings;
    private readonly IActorRef _mediator;
    private readonly CancellationCounters _counters = CancellationCounters.For(Context.System);
    private readonly NodeMeter _meter = NodeMeter.For(Context.System);
    private WorkflowState? _state;
    private long _eventsSinceSnapshot;
    /// <summary>When the deadlock timer is due; null while none is armed. Never later than the run's next deadline.</summary>
    private DateTimeOffset? _armed;
    private PendingWrite? _writing;
    private UnreadableHistory? _unreadable;
    private ResourceSync? _resourceSync;
    private long _resourceSyncId;
    private bool _resourceSyncAcked = true;
    private int _interruptionChecks;
    /// <summary>Who asked for this run's removal by retention, while its journal is being deleted.</summary>
    private IActorRef? _expiring;

    /// <param name="Notice">The cancel announced while this write is under way, to be confirmed once it is durable.</param>
    /// <param name="Correlation">The id of the pool's report being answered (<see cref="PoolReport"/>); null for any other sender.</param>
    /// <param name="Batch">A pool's reports decided together (<see cref="PoolReports"/>): each one's id and reply.</param>
    private sealed record PendingWrite(IActorRef ReplyTo, IDeeplineMessage? Reply, Activity? Span = null, RunCancelledNotice? Notice = null, long? Correlation = null,
        IReadOnlyList<(long Id, IDeeplineMessage? Reply)>? Batch = null);

    /// <summary>The trace the run was submitted in (tracing only): parent of later spans that bring no context of their own.</summary>
    private ActivityContext _trace;

    private sealed record UnreadableHistory(long SequenceNr, string Error);

    public WorkflowActor(string runId, WorkflowSettings settings)
    {
        _runId = runId;
        PersistenceId = PersistenceIdPrefix + runId;
        _settings = settings;
        _mediator = DistributedPubSub.Get(Context.System).Mediator;
    }

    /// <summary>Built by a producer, not from an expression: Akka creates expression props by reflection, once per run.</summary>
    public static Props Props(string runId, WorkflowSettings settings) => Akka.Actor.Props.CreateBy(new Producer(runId, settings));

    private sealed class Producer(string runId, WorkflowSettings settings) : IIndirectActorProducer
    {
        public Type ActorType => typeof(WorkflowActor);

        public ActorBase Produce() => new WorkflowActor(runId, settings);

        public void Release(ActorBase actor) { }
    }

    /// <summary>Persistence ids are this prefix and the run id; read sides take the run id back from it.</summary>
    public const string PersistenceIdPrefix = "run-";

    public override string PersistenceId { get; }

    public ITimerScheduler Timers { get; set; } = null!;


    protected override void OnRecover(object message)
    {
        switch (message)
        {
            case SnapshotOffer { Snapshot: UnreadablePayload p } offer:
                _unreadable ??= new UnreadableHistory(offer.Metadata.SequenceNr, "snapshot: " + p.Error);
                break;
            case UnreadablePayload p:
                _unreadable ??= new UnreadableHistory(LastSequenceNr, p.Error);
                break;
            case not RecoveryCompleted when _unreadable is not null:
                // Events after an unreadable one would be applied to a state missing it: a wrong run is worse than none.
                break;
            case SnapshotOffer { Snapshot: WorkflowState s }:
                _state = s;
                break;
            case RunSubmitted e:
                _state = WorkflowState.Create(e);
                _eventsSinceSnapshot++;
                break;
            case IRunEvent e when _state is not null:
                _state = _state.Apply(e);
                _eventsSinceSnapshot++;
                break;
            case RecoveryCompleted when _unreadable is { } u:
                Log.Error("Run {0}: history unreadable at sequence nr {1} ({2}); answering every request with that until the store is repaired",
                    _runId, u.SequenceNr, u.Error);
                Context.System.EventStream.Publish(new RunHistoryUnreadable(_runId, u.SequenceNr, u.Error, DateTimeOffset.UtcNow));
                Context.SetReceiveTimeout(_settings.PassivateAfter);
                break;
            case RecoveryCompleted:
                if (_state is not null) AfterRecovery(_state);
                break;
        }
    }

    protected override void OnCommand(object message)
    {
        // A run being removed by retention takes nothing else until its journal is gone: afterwards there is no run.
        if (_expiring is not null && message is not (DeleteMessagesSuccess or DeleteMessagesFailure))
        {
            Stash.Stash();
            return;
        }
        switch (message)
        {
            case ExpireRun expire:
                Expire(expire);
                break;
            case DeleteMessagesSuccess when _expiring is { } done:
                DeleteSnapshots(new SnapshotSelectionCriteria(long.MaxValue));
                Log.Info("Run {0} ({1}) removed by retention", _runId, _state?.Status);
                done.Tell(new RunExpired(_runId));
                _expiring = null;
                _state = null;
                Timers.CancelAll();
                Stash.UnstashAll();
                Context.Parent.Tell(new Passivate(PoisonPill.Instance));
                break;
            case DeleteMessagesFailure failed when _expiring is { } asked:
                asked.Tell(new RunKept(_runId, $"its journal could not be deleted: {failed.Cause.Message}"));
                _expiring = null;
                Stash.UnstashAll();
                break;
            case PoolReport report when _unreadable is { } u:
                Answer(Sender, PoolReportAnswer.For(report.Id, Unreadable(u)));
                break;
            case PoolReport report:
                Handle(report.Report, report.Id);
                break;
            case PoolReports batch when _unreadable is { } u:
                foreach (var r in batch.Reports) Answer(Sender, PoolReportAnswer.For(r.Id, Unreadable(u)));
                break;
            case PoolReports batch:
                HandleReports(batch.Reports);
                break;
            case IRunCommand command when _unreadable is { } u:
                var rejected = Unreadable(u);
                if (command is not IUnansweredRunCommand) Answer(Sender, rejected);
                break;
            case ResourcesGranted granted:
                if (granted.SyncId != 0 && granted.SyncId == _resourceSyncId) _resourceSyncAcked = true;
                Handle(granted);
                StopResyncWhenSettled();
                break;
            case IRunCommand command:
                Handle(command);
                break;
            case RedispatchQueued when _unreadable is null:
                Redispatch();
                break;
            case ResyncResources when _state is not null && _unreadable is null:
                SyncResources(_state, force: true);
                break;
            case ForgetSender:
                break;
            case RecheckInterruptions when _state is { Status: RunStatus.RUNNING } && _unreadable is null:
                CheckInterruptions(_state);
                break;
            case RecheckInterruptions:
                break;
            case DeadlockCheck:
                // The timer is spent: whatever CheckStuck finds, the next deadline is armed anew.
                _armed = null;
                // A silent task with an attempt left is the run's to retry, not a detector's: its lease ends first.
                if (_state is not null && _settings.Detectors is { } node && Handle(new ExpireLeases(_runId, node))) break;
                CheckStuck();
                break;
            case ReceiveTimeout:
                Context.Parent.Tell(new Passivate(PoisonPill.Instance));
                break;
            case SaveSnapshotSuccess ok:
                DeleteSnapshots(new SnapshotSelectionCriteria(ok.Metadata.SequenceNr - 1));
                break;
            case SaveSnapshotFailure failed:
                Log.Warning(failed.Cause, "Snapshot of run {0} failed; the journal still holds every event", _runId);
                break;
            case DeleteSnapshotsSuccess or DeleteSnapshotsFailure:
                break;
            default:
                Unhandled(message);
                break;
        }
    }

    /// <summary>
    /// Retention: a finished run older than its state's limit deletes its own journal and snapshots, so that a re-run
    /// or a late report (serialised with this in the run's mailbox) can never find half a run. The sweeper then removes
    /// its index row and the rows the journal only marked deleted.
    /// </summary>
    private void Expire(ExpireRun expire)
    {
        if (_unreadable is not null)
            Sender.Tell(new RunKept(_runId, "its history cannot be read; repair the store first"));
        else if (_state is null)
            Sender.Tell(new RunExpired(_runId)); // nothing is left of it (removed before, or never submitted)
        else if (!expire.Policy.IsDue(_state, DateTimeOffset.UtcNow, expire.FinishedBefore))
            Sender.Tell(new RunKept(_runId, $"{_state.Status} since {_state.UpdatedAt:O}: not due"));
        else if (_writing is not null)
            Sender.Tell(new RunKept(_runId, "a write is under way"));
        else
        {
            _expiring = Sender;
            DeleteMessages(LastSequenceNr);
        }
    }

    private CommandRejected Unreadable(UnreadableHistory u)
    {
        // Again on every request: /health's watch may have started after this run recovered.
        Context.System.EventStream.Publish(new RunHistoryUnreadable(_runId, u.SequenceNr, u.Error, DateTimeOffset.UtcNow));
        return new CommandRejected(RejectionKind.HistoryUnreadable,
            $"the history of run '{_runId}' cannot be read (event {u.SequenceNr}: {u.Error}); retrying will not help, the store must be repaired");
    }

    /// <param name="correlation">Set when a pool told the command (<see cref="PoolReport"/>): the answer carries it back.</param>
    /// <returns>Whether the command's events are being journalled (false: it changed nothing durable).</returns>
    private bool Handle(IRunCommand command, long? correlation = null)
    {
        var before = _state;
        var span = RunTracing.StartDecide(command, ref _trace);
        var decision = WorkflowDecider.Decide(_state, command, DateTimeOffset.UtcNow, _settings.Policy);
        foreach (var t in decision.Transient) _state = _state?.Apply(t);
        RedispatchAfterStale(_state, command, decision.Reply);

        if (decision.Persist.IsEmpty)
        {
            // A backoff timer that fired early (the wall clock stepped back) releases nothing: it is armed again.
            if (command is ReleaseRetries && _state is not null) ArmRetry(_state);
            if (decision.Reply is { } reply) Answer(Sender, Correlate(RunTracing.Stamp(reply, span)!, correlation));
            RunTracing.End(span);
            if (_state is null) Context.Parent.Tell(new Passivate(PoisonPill.Instance));
            return false;
        }

        // A cancel reaches the pools while its write is under way, not after it: the write's fsync (p99 several ms on
        // a virtual disk) is then off the path from the request to the workers' tokens. Stopping work early is safe:
        // the caller's answer still waits for the journal, the pools' reports of the stopped tasks queue behind this
        // write in the mailbox, and if the write fails the tasks were stopped as asked and are journalled as cancelled
        // by their workers. The durable copies (Redis's set, the log line) still follow the journal.
        RunCancelledNotice? notice = null;
        if (_state is { Cancel: null })
        {
            foreach (var e in decision.Persist)
                if (e is RunCancelRequested requested)
                    notice = new RunCancelledNotice(_runId, requested.Reason, requested.CancelledBy, requested.At) { ClientId = _state.ClientId, TraceParent = span?.Id };
        }
        if (notice is not null)
        {
            _mediator.Tell(new Publish(Topics.Cancellations, notice));
            // This node's Redis mirror: announced on the channel now, written to the set once journalled.
            Context.System.EventStream.Publish(notice);
        }

        // The reply is sent from the persist handler of the last event and nowhere else: a rejected or failed write
        // never runs it (a deferred handler would), so nothing is ever acknowledged that the journal does not hold.
        _writing = new PendingWrite(Sender, decision.Reply, span, notice, correlation);
        var remaining = decision.Persist.Length;
        // The decider applied the events already to build its reply; its state is taken rather than computed twice.
        var after = decision.Transient.IsEmpty ? decision.After : null;
        PersistAll(decision.Persist, e =>
        {
            _eventsSinceSnapshot++;
            if (--remaining == 0 && after is not null) _state = after;
            else _state = e is RunSubmitted s ? WorkflowState.Create(s) : _state!.Apply(e);
            if (remaining > 0) return;
            if (_writing?.Reply is { } reply) Answer(_writing.ReplyTo, Correlate(RunTracing.Stamp(reply, _writing.Span)!, _writing.Correlation));
            using var traced = RunTracing.Enter(_writing?.Span);
            var announced = _writing?.Notice;
            _writing = null;
            AfterChange(before, _state!, decision.Persist, announced);
        });
        return true;
    }

    /// <summary>
    /// A pool's reports that waited for its previous one to this run: decided in order, each on the state the ones before
    /// it leave, journalled in one write and answered once that write is durable (a rejection too: it may rest on the
    /// events before it). Nothing else runs in between, as when they came one at a time.
    /// </summary>
    private void HandleReports(ImmutableArray<PoolReport> reports)
    {
        var before = _state;
        var replyTo = Sender;
        var decided = WorkflowDecider.DecideAll(_state, [.. reports.Select(r => (IRunCommand)r.Report)], DateTimeOffset.UtcNow, _settings.Policy);
        var answers = reports.Select((r, i) => (r.Id, decided.Replies[i])).ToList();
        for (var i = 0; i < reports.Length; i++) RedispatchAfterStale(decided.After, reports[i].Report, decided.Replies[i]);
        if (decided.Persist.IsEmpty)
        {
            _state = decided.After;
            AnswerAll(replyTo, answers);
            if (_state is null) Context.Parent.Tell(new Passivate(PoisonPill.Instance));
            return;
        }
        _writing = new PendingWrite(replyTo, null, Batch: answers);
        var remaining = decided.Persist.Length;
        PersistAll(decided.Persist, _ =>
        {
            _eventsSinceSnapshot++;
            if (--remaining > 0) return;
            _state = decided.After;
            _writing = null;
            AnswerAll(replyTo, answers);
            AfterChange(before, _state!, decided.Persist, null);
        });
    }

    private void AnswerAll(IActorRef to, IEnumerable<(long Id, IDeeplineMessage? Reply)> answers)
    {
        foreach (var (id, reply) in answers)
            if (reply is not null) Answer(to, PoolReportAnswer.For(id, reply));
    }

    protected override void OnPersistRejected(Exception cause, object @event, long sequenceNr)
    {
        Log.Error(cause, "Run {0}: the journal refused event {1} ({2}); nothing was applied or acknowledged", _runId, sequenceNr, @event.GetType().Name);
        NotStored($"the journal refused the write ({cause.GetType().Name}: {cause.Message}); nothing was stored");
    }

    protected override void OnPersistFailure(Exception cause, object @event, long sequenceNr)
    {
        // The outcome of a failed write is unknown, so the answer must not be a success, nor promise anything. The store
        // failed, not the request: a 503 (a 500 told load balancers and clients the request itself was at fault).
        NotStored($"the journal write failed ({cause.GetType().Name}); it may not have been stored: read the run before repeating the request",
            RejectionKind.StoreUnavailable);
        base.OnPersistFailure(cause, @event, sequenceNr);
    }

    protected override void OnRecoveryFailure(Exception reason, object? message = null)
    {
        if (Deepline.Actors.Hosting.StoreFailure.IsUnavailable(reason))
        {
            // The store could not be asked (down, restarting, breaker open, full): nothing says the history is damaged.
            Log.Warning("Run {0}: recovery failed, the store is unavailable ({1}); the run starts again on its next message", _runId, reason.GetType().Name);
            base.OnRecoveryFailure(reason, message);
            return;
        }
        Log.Error(reason, "Run {0}: recovery failed; the run's history cannot be read", _runId);
        Context.System.EventStream.Publish(new RunHistoryUnreadable(_runId, LastSequenceNr + 1, $"{reason.GetType().Name}: {reason.Message}", DateTimeOffset.UtcNow));
        base.OnRecoveryFailure(reason, message);
    }

    private void NotStored(string detail, RejectionKind kind = RejectionKind.NotStored)
    {
        if (_writing is not { } w) return;
        _writing = null;
        if (w.Reply is not null) Answer(w.ReplyTo, Correlate(new CommandRejected(kind, $"run '{_runId}': {detail}"), w.Correlation));
        if (w.Batch is not null)
            AnswerAll(w.ReplyTo, w.Batch.Select(b => (b.Id, (IDeeplineMessage?)new CommandRejected(kind, $"run '{_runId}': {detail}"))));
        // The pools heard of a cancel the journal may not hold: they forget it, or they would drop the run's later tasks.
        if (w.Notice is not null) _mediator.Tell(new Publish(Topics.Cancellations, new RunCancelWithdrawn(_runId)));
        RunTracing.End(w.Span, "not stored");
    }

    private void AfterChange(WorkflowState? before, WorkflowState after, ImmutableArray<IRunEvent> events, RunCancelledNotice? announced)
    {
        if (before?.Status != after.Status) _meter.RunEntered(after.Status);
        var (cancelled, cause) = CancellationOutcomes.TasksCancelled(before, after);
        _counters.TasksCancelled(cause, cancelled);
        if (CancellationOutcomes.RunCancelled(before, after) is { } outcome)
        {
            _counters.RunCancelled(outcome);
            // Event times, not the clock here: a replayed or late-persisted change still measures what the run saw.
            _meter.RunCancelPropagated(outcome, after.UpdatedAt - after.Cancel!.CancelledAt);
        }

        // Only a submission (any task) or a success (its dependents) makes tasks QUEUED: a success looks at the tasks
        // that waited for it, not at the whole run, so a 10,000-task run pays per event what a 5-task run pays.
        // A grant makes its task ready too. A task is dispatched when it becomes ready, never while it waits for resources.
        // A retry makes its own task ready again (at once, or when its backoff is released).
        var candidates = events.Any(e => e is RunSubmitted)
            ? after.TaskOrder.AsEnumerable()
            : events.OfType<TaskSucceeded>().SelectMany(s => after.Dependents.TryGetValue(s.TaskId, out var ds) ? ds : [])
                .Concat(events.OfType<TaskResourcesGranted>().Select(g => g.TaskId))
                .Concat(events.OfType<TaskAttemptFailed>().Select(a => a.TaskId))
                .Concat(events.OfType<TaskRetryReleased>().Select(r => r.TaskId))
                .Concat(events.OfType<RunRetried>().SelectMany(r => r.TaskIds)).Distinct();
        foreach (var id in candidates)
        {
            var task = after.Tasks[id];
            if (task.Ready && before?.Tasks[id].Ready != true)
                Dispatch(task);
        }
        if (after.UsesResources) SyncResources(after, force: false);
        if (events.Any(e => e is TaskAttemptFailed or TaskRetryReleased)) ArmRetry(after);

        if (after.Cancel is { } cancel && before?.Cancel is null)
        {
            // The seed's line; an auto-cancel adds its detector, so that one line per cancel says everything.
            if (cancel.DeadlockReason is { } detector)
                Log.Warning("Workflow {run_id} cancelled: {reason} (deadlock_reason: {deadlock_reason})", after.RunId, cancel.Reason, detector);
            else
                Log.Warning("Workflow {run_id} cancelled: {reason}", after.RunId, cancel.Reason);
            // Announced to the pools when it was decided (Handle, which announces every cancel it persists); the Redis
            // mirror's fast path writes the set now.
            if (announced is not null) Context.System.EventStream.Publish(new RunCancelJournalled(announced));
        }

        if (after.Status != before?.Status) OnStatus(after);
        ArmDeadlockCheck(after);

        // A snapshot costs in proportion to the run's tasks: taken at most once per as many events as the run has tasks,
        // so a 10,000-task run does not serialise its whole state every snapshot_every events.
        if (_eventsSinceSnapshot >= Math.Max(_settings.SnapshotEvery, after.Tasks.Count))
        {
            SaveSnapshot(after);
            _eventsSinceSnapshot = 0;
        }
    }

    private void AfterRecovery(WorkflowState state)
    {
        foreach (var task in state.OrderedTasks.Where(t => t.Ready)) Dispatch(task);
        ArmRetry(state);
        if (state is { Status: RunStatus.RUNNING, Counts.Running: > 0 })
        {
            // Attempts that ran on a node that is gone (this node before its restart) are over: retried now, not at their lease's end.
            var gone = CheckInterruptions(state);
            // Heartbeats are not journalled, so the journal's last sign of a running attempt is old: measured from it, the
            // lease of a healthy worker would end at once after every recovery or shard move. It restarts now instead.
            var now = DateTimeOffset.UtcNow;
            foreach (var t in state.Tasks.Values.Where(t => t.State == TaskState.RUNNING && !(t.Incarnation is { } i && gone.Contains(i))).ToList())
                state = state.Apply(new TaskHeartbeat(t.TaskId, now));
            _state = state;
        }
        // The coordinator answers from its journal: grants made before the crash come back, releases missed are made.
        if (state.UsesResources) SyncResources(state, force: true);
        if (state.Status == RunStatus.CANCELLING && state.Cancel is { } c)
            _mediator.Tell(new Publish(Topics.Cancellations, new RunCancelledNotice(state.RunId, c.Reason, c.CancelledBy, c.CancelledAt) { ClientId = state.ClientId }));
        OnStatus(state);
        ArmDeadlockCheck(state, exact: true);
    }

    /// <summary>
    /// One timer at the earliest moment a detector could fire, so a stuck run is reported at its threshold and not
    /// up to a scan interval later; a run with nothing runnable is reported at once.
    /// </summary>
    /// <param name="exact">Walk every task for the deadline (after recovery, or when the timer fired); otherwise a bound
    /// from the armed deadline, so an event costs the same in a 10,000-task run as in a 5-task one.</param>
    private void ArmDeadlockCheck(WorkflowState state, bool exact = false)
    {
        if (_settings.Detectors is not { } thresholds) return;
        var due = exact || _armed is not { } armed
            ? StuckDetector.NextDeadline(state, thresholds)
            : StuckDetector.NextDeadlineBound(state, thresholds, armed);
        if (due is null)
        {
            if (_armed is not null) Timers.Cancel(DeadlockTimer);
            _armed = null;
        }
        else if (due != _armed)
        {
            // Re-armed only when the deadline moved: most transitions of a busy run leave it where it was.
            var delay = due.Value - DateTimeOffset.UtcNow;
            Timers.StartSingleTimer(DeadlockTimer, DeadlockCheck.Instance, delay > TimeSpan.Zero ? delay : TimeSpan.Zero);
            _armed = due;
        }
        if (state.Counts is { Running: 0, Queued: 0, Pending: > 0 }) CheckStuck();
    }

    private void CheckStuck()
    {
        if (_state is null || _settings.Detectors is not { } thresholds) return;
        if (StuckDetector.Evaluate(_state, thresholds, DateTimeOffset.UtcNow) is { } detection)
        {
            Timers.Cancel(DeadlockTimer);
            _armed = null;
            // Looked up when needed: remembered entities can start before the singleton proxy is registered.
            if (ActorRegistry.For(Context.System).TryGet<DeadlockSupervisor>(out var supervisor))
                supervisor.Tell(new RunSuspected(detection));
            // The run may stay open (cancel_on_deadlock off): leases of attempts with a retry left must still end.
            var forRun = thresholds.For(_state.Deadlock);
            var now = DateTimeOffset.UtcNow;
            DateTimeOffset? lease = null;
            foreach (var t in _state.Tasks.Values)
                if (t.State == TaskState.RUNNING && thresholds.Retry.HasAttemptLeft(t) && StuckDetector.LeaseEnd(t, forRun) is var end && end > now && (lease is null || end < lease))
                    lease = end;
            if (lease is { } due)
            {
                Timers.StartSingleTimer(DeadlockTimer, DeadlockCheck.Instance, due - now);
                _armed = due;
            }
        }
        else
        {
            // Heartbeats moved the deadline since the timer was armed.
            ArmDeadlockCheck(_state, exact: true);
        }
    }

    /// <summary>
    /// A report refused as stale comes from a worker still busy with an attempt the run has moved on from: an in-cluster pool
    /// holding the old attempt dropped the next one's dispatch as a repeat, so the task is dispatched again (pools and queues
    /// drop true repeats; the pool accepts it once the old attempt has ended).
    /// </summary>
    private void RedispatchAfterStale(WorkflowState? state, IRunCommand command, IDeeplineMessage? reply)
    {
        if (command is ReportTaskEvent r && reply is CommandRejected { CurrentAttempt: not null }
            && state is not null && state.Tasks.TryGetValue(r.TaskId, out var task) && task.Ready)
            Dispatch(task);
    }

    /// <summary>
    /// Ready tasks of external pools are offered to their queue again now and then: a queue entry can be lost (handed to a
    /// poll on a node that died before leasing it) while this run lives on, and the queue drops an entry it still holds.
    /// </summary>
    private void Redispatch()
    {
        if (_state is not { Status: RunStatus.RUNNING } s || s.Counts.Queued == 0)
        {
            Timers.Cancel(RedispatchTimer);
            return;
        }
        var any = false;
        foreach (var t in s.Tasks.Values)
        {
            if (!t.Ready || _settings.IsInClusterPool(t.Pool)) continue;
            Dispatch(t);
            any = true;
        }
        if (!any) Timers.Cancel(RedispatchTimer);
    }

    /// <summary>One timer at the end of the earliest retry backoff; a walk, but only after a retry event or a recovery.</summary>
    private void ArmRetry(WorkflowState state)
    {
        DateTimeOffset? next = null;
        if (state.Status == RunStatus.RUNNING && state.Counts.Queued > 0)
            foreach (var t in state.Tasks.Values)
                if (t is { State: TaskState.QUEUED, RetryAt: { } due } && (next is null || due < next)) next = due;
        if (next is null)
        {
            Timers.Cancel(RetryTimer);
            return;
        }
        var delay = next.Value - DateTimeOffset.UtcNow;
        Timers.StartSingleTimer(RetryTimer, new ReleaseRetries(_runId), delay > TimeSpan.Zero ? delay : TimeSpan.Zero);
    }

    /// <summary>
    /// Retries the attempts whose member is gone, and returns those members. A run that recovers after a member's
    /// removal, while this node's view has not converged, can tell neither way: the node's removal watch has already
    /// told the runs it hosted, so this run looks again every <see cref="InterruptionRecheck"/> until it can (measured:
    /// a task of a rolling restart otherwise waited for its lease).
    /// </summary>
    private ImmutableArray<string> CheckInterruptions(WorkflowState state)
    {
        var incarnations = state.Tasks.Values.Where(t => t is { State: TaskState.RUNNING, Incarnation: not null })
            .Select(t => t.Incarnation!).Distinct(StringComparer.Ordinal).ToList();
        if (incarnations.Count == 0) return [];
        var cluster = Akka.Cluster.Cluster.Get(Context.System);
        var fates = incarnations.Select(i => (Incarnation: i, Fate: Incarnation.Fate(i, cluster.SelfUniqueAddress, cluster.State, _settings.SingleNodeStore))).ToList();
        ImmutableArray<string> gone = [.. fates.Where(f => f.Fate == MemberFate.Gone).Select(f => f.Incarnation)];
        if (!gone.IsEmpty) Self.Tell(new RequeueInterrupted(_runId, gone), ActorRefs.NoSender);
        if (fates.Any(f => f.Fate == MemberFate.Unsure) && _interruptionChecks++ < InterruptionRechecks)
            Timers.StartSingleTimer(InterruptionTimer, RecheckInterruptions.Instance, InterruptionRecheck);
        return gone;
    }

    private void OnStatus(WorkflowState state)
    {
        if (state.Status == RunStatus.CANCELLING && state.Cancel is { } c)
        {
            var due = c.CancelledAt + _settings.CancelTimeout - DateTimeOffset.UtcNow;
            Timers.StartSingleTimer(CancelTimeoutTimer, new CancelTimeoutElapsed(state.RunId), due > TimeSpan.Zero ? due : TimeSpan.Zero);
        }
        else
        {
            Timers.Cancel(CancelTimeoutTimer);
        }

        // An open run stays in memory (its timers are its deadlines); a finished one leaves once idle.
        Context.SetReceiveTimeout(state.Status.IsTerminal() ? _settings.PassivateAfter : null);
    }

    /// <summary>
    /// Sends the run's whole resource wish when it changed (or when forced: recovery, retry). The wish is complete, so
    /// repeating it is always safe; it is repeated until answered. A later grant is pushed by the coordinator, which
    /// pushes again after its own recovery and on its sweeps, and this run asks again after its recovery: no run
    /// polls while it waits, so 100,000 waiting tasks cost nothing between changes.
    /// </summary>
    private void SyncResources(WorkflowState state, bool force)
    {
        if (RunResources.Sync(state) is not { } sync) return;
        if (!force && !RunResources.Differs(_resourceSync, sync)) return;
        _resourceSync = sync;
        _resourceSyncId++;
        _resourceSyncAcked = false;
        // Looked up when needed: remembered entities can start before the singleton proxy is registered.
        if (ActorRegistry.For(Context.System).TryGet<ResourceCoordinator>(out var coordinator))
            coordinator.Tell(new SyncRunResources(sync, _resourceSyncId));
        if (!Timers.IsTimerActive(ResourceSyncTimer))
            Timers.StartPeriodicTimer(ResourceSyncTimer, ResyncResources.Instance, _settings.ResourceResync);
    }

    private void StopResyncWhenSettled()
    {
        if (_resourceSyncAcked) Timers.Cancel(ResourceSyncTimer);
    }

    /// <summary>
    /// The actor cell keeps the last message's sender until the next message arrives. When that sender is an ask's
    /// temporary ref, it holds the whole answer (a copy of the run's state) for as long as the run then sits idle:
    /// about 0.9 KiB per open run, measured with dumpheap. A message of our own with no sender takes its place.
    /// </summary>
    private void Answer(IActorRef to, object reply)
    {
        to.Tell(reply);
        if (to is not ActorRefWithCell && !to.IsNobody()) Self.Tell(ForgetSender.Instance, ActorRefs.NoSender);
    }

    private static IDeeplineMessage Correlate(IDeeplineMessage reply, long? correlation) =>
        correlation is { } id ? PoolReportAnswer.For(id, reply) : reply;

    private sealed record ForgetSender : INotInfluenceReceiveTimeout
    {
        public static ForgetSender Instance { get; } = new();
    }

    private sealed record ResyncResources : INotInfluenceReceiveTimeout
    {
        public static ResyncResources Instance { get; } = new();
    }

    private sealed record RecheckInterruptions
    {
        public static RecheckInterruptions Instance { get; } = new();
    }

    private sealed record DeadlockCheck
    {
        public static DeadlockCheck Instance { get; } = new();
    }

    private sealed record RedispatchQueued : INotInfluenceReceiveTimeout
    {
        public static RedispatchQueued Instance { get; } = new();
    }

    private void Dispatch(TaskRecord task)
    {
        if (!_settings.IsInClusterPool(task.Pool))
        {
            // External pools: this node's queue hands it to the next poll of the pool, here or on another node.
            if (ActorRegistry.For(Context.System).TryGet<TaskQueues>(out var queues))
                queues.Tell(new QueuedTask(_runId, task.TaskId, task.Pool, _state?.ClientId ?? "", DateTimeOffset.UtcNow));
            if (!Timers.IsTimerActive(RedispatchTimer))
                Timers.StartPeriodicTimer(RedispatchTimer, RedispatchQueued.Instance, _settings.RedispatchEvery);
            return;
        }
        var span = RunTracing.Start("pool dispatch", ActivityKind.Producer, null, _trace);
        span?.SetTag(RunTracing.RunIdTag, _runId).SetTag(RunTracing.TaskIdTag, task.TaskId).SetTag("deepline.pool", task.Pool);
        _mediator.Tell(new Send(Topics.PoolPath(task.Pool),
            new ExecuteTask(_runId, task.TaskId, task.Type, task.Pool, task.Params) { TraceParent = span?.Id, Attempt = task.Attempts + 1 }, localAffinity: true));
        RunTracing.End(span);
    }
}
