using System.Collections.Immutable;
using Akka.Actor;
using Akka.Cluster.Sharding;
using Akka.Cluster.Tools.PublishSubscribe;
using Akka.Event;
using Akka.Hosting;
using Deepline.Actors.Monitoring;
using Akka.Persistence;
using Deepline.Actors.Serialization;
using Deepline.Actors.Workers;
using Deepline.Domain;

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

    private readonly string _runId;
    private readonly WorkflowSettings _settings;
    private readonly IActorRef _mediator;
    private readonly ILoggingAdapter _log = Context.GetLogger();
    private readonly CancellationCounters _counters = CancellationCounters.For(Context.System);
    private WorkflowState? _state;
    private long _eventsSinceSnapshot;
    private PendingWrite? _writing;
    private UnreadableHistory? _unreadable;

    private sealed record PendingWrite(IActorRef ReplyTo, IDeeplineMessage? Reply);

    private sealed record UnreadableHistory(long SequenceNr, string Error);

    public WorkflowActor(string runId, WorkflowSettings settings)
    {
        _runId = runId;
        _settings = settings;
        _mediator = DistributedPubSub.Get(Context.System).Mediator;
    }

    public static Props Props(string runId, WorkflowSettings settings) =>
        Akka.Actor.Props.Create(() => new WorkflowActor(runId, settings));

    /// <summary>Persistence ids are this prefix and the run id; read sides take the run id back from it.</summary>
    public const string PersistenceIdPrefix = "run-";

    public override string PersistenceId => PersistenceIdPrefix + _runId;

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
                _log.Error("Run {0}: history unreadable at sequence nr {1} ({2}); answering every request with that until the store is repaired",
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
        switch (message)
        {
            case IRunCommand command when _unreadable is { } u:
                // Again on every request: /health's watch may have started after this run recovered.
                Context.System.EventStream.Publish(new RunHistoryUnreadable(_runId, u.SequenceNr, u.Error, DateTimeOffset.UtcNow));
                if (command is not CancelTimeoutElapsed)
                    Sender.Tell(new CommandRejected(RejectionKind.HistoryUnreadable,
                        $"the history of run '{_runId}' cannot be read (event {u.SequenceNr}: {u.Error}); retrying will not help, the store must be repaired"));
                break;
            case IRunCommand command:
                Handle(command);
                break;
            case DeadlockCheck:
                CheckStuck();
                break;
            case ReceiveTimeout:
                Context.Parent.Tell(new Passivate(PoisonPill.Instance));
                break;
            case SaveSnapshotSuccess ok:
                DeleteSnapshots(new SnapshotSelectionCriteria(ok.Metadata.SequenceNr - 1));
                break;
            case SaveSnapshotFailure failed:
                _log.Warning(failed.Cause, "Snapshot of run {0} failed; the journal still holds every event", _runId);
                break;
            case DeleteSnapshotsSuccess or DeleteSnapshotsFailure:
                break;
            default:
                Unhandled(message);
                break;
        }
    }

    private void Handle(IRunCommand command)
    {
        var before = _state;
        var decision = WorkflowDecider.Decide(_state, command, DateTimeOffset.UtcNow, _settings.Policy);
        foreach (var t in decision.Transient) _state = _state?.Apply(t);

        if (decision.Persist.IsEmpty)
        {
            if (decision.Reply is { } reply) Sender.Tell(reply);
            if (_state is null) Context.Parent.Tell(new Passivate(PoisonPill.Instance));
            return;
        }

        // The reply is sent from the persist handler of the last event and nowhere else: a rejected or failed write
        // never runs it (a deferred handler would), so nothing is ever acknowledged that the journal does not hold.
        _writing = new PendingWrite(Sender, decision.Reply);
        var remaining = decision.Persist.Length;
        PersistAll(decision.Persist, e =>
        {
            _state = e is RunSubmitted s ? WorkflowState.Create(s) : _state!.Apply(e);
            _eventsSinceSnapshot++;
            if (--remaining > 0) return;
            if (_writing?.Reply is { } reply) _writing.ReplyTo.Tell(reply);
            _writing = null;
            AfterChange(before, _state!, decision.Persist);
        });
    }

    protected override void OnPersistRejected(Exception cause, object @event, long sequenceNr)
    {
        _log.Error(cause, "Run {0}: the journal refused event {1} ({2}); nothing was applied or acknowledged", _runId, sequenceNr, @event.GetType().Name);
        NotStored($"the journal refused the write ({cause.GetType().Name}: {cause.Message}); nothing was stored");
    }

    protected override void OnPersistFailure(Exception cause, object @event, long sequenceNr)
    {
        // The outcome of a failed write is unknown, so the answer must not be a success, nor promise anything.
        NotStored($"the journal write failed ({cause.GetType().Name}); it may not have been stored: read the run before repeating the request");
        base.OnPersistFailure(cause, @event, sequenceNr);
    }

    protected override void OnRecoveryFailure(Exception reason, object? message = null)
    {
        _log.Error(reason, "Run {0}: recovery failed; the run's history cannot be read", _runId);
        Context.System.EventStream.Publish(new RunHistoryUnreadable(_runId, LastSequenceNr + 1, $"{reason.GetType().Name}: {reason.Message}", DateTimeOffset.UtcNow));
        base.OnRecoveryFailure(reason, message);
    }

    private void NotStored(string detail)
    {
        if (_writing is not { } w) return;
        _writing = null;
        if (w.Reply is not null) w.ReplyTo.Tell(new CommandRejected(RejectionKind.NotStored, $"run '{_runId}': {detail}"));
    }

    private void AfterChange(WorkflowState? before, WorkflowState after, ImmutableArray<IRunEvent> events)
    {
        var (cancelled, cause) = CancellationOutcomes.TasksCancelled(before, after);
        _counters.TasksCancelled(cause, cancelled);
        if (CancellationOutcomes.RunCancelled(before, after) is { } outcome) _counters.RunCancelled(outcome);

        // Only a submission (any task) or a success (its dependents) makes tasks QUEUED: a success looks at the tasks
        // that waited for it, not at the whole run, so a 10,000-task run pays per event what a 5-task run pays.
        var candidates = events.Any(e => e is RunSubmitted)
            ? after.TaskOrder.AsEnumerable()
            : events.OfType<TaskSucceeded>().SelectMany(s => after.Dependents.TryGetValue(s.TaskId, out var ds) ? ds : []).Distinct();
        foreach (var id in candidates)
        {
            var task = after.Tasks[id];
            if (task.State == TaskState.QUEUED && before?.Tasks[id].State != TaskState.QUEUED)
                Dispatch(task);
        }

        if (after.Cancel is { } cancel && before?.Cancel is null)
        {
            // The seed's line; an auto-cancel adds its detector, so that one line per cancel says everything.
            if (cancel.DeadlockReason is { } detector)
                _log.Warning("Workflow {run_id} cancelled: {reason} (deadlock_reason: {deadlock_reason})", after.RunId, cancel.Reason, detector);
            else
                _log.Warning("Workflow {run_id} cancelled: {reason}", after.RunId, cancel.Reason);
            var notice = new RunCancelledNotice(after.RunId, cancel.Reason, cancel.CancelledBy, cancel.CancelledAt) { ClientId = after.ClientId };
            _mediator.Tell(new Publish(Topics.Cancellations, notice));
            // Also on this node's event stream: the CancellationBroadcaster's fast path to Redis (no-op without Redis).
            Context.System.EventStream.Publish(notice);
        }

        if (after.Status != before?.Status) OnStatus(after);
        ArmDeadlockCheck(after);

        if (_eventsSinceSnapshot >= _settings.SnapshotEvery)
        {
            SaveSnapshot(after);
            _eventsSinceSnapshot = 0;
        }
    }

    private void AfterRecovery(WorkflowState state)
    {
        foreach (var task in state.OrderedTasks.Where(t => t.State == TaskState.QUEUED)) Dispatch(task);
        if (state.Status == RunStatus.CANCELLING && state.Cancel is { } c)
            _mediator.Tell(new Publish(Topics.Cancellations, new RunCancelledNotice(state.RunId, c.Reason, c.CancelledBy, c.CancelledAt) { ClientId = state.ClientId }));
        OnStatus(state);
        ArmDeadlockCheck(state);
    }

    /// <summary>
    /// One timer at the earliest moment a detector could fire, so a stuck run is reported at its threshold and not
    /// up to a scan interval later; a run with nothing runnable is reported at once.
    /// </summary>
    private void ArmDeadlockCheck(WorkflowState state)
    {
        if (_settings.Detectors is not { } thresholds) return;
        if (StuckDetector.NextDeadline(state, thresholds) is not { } due)
        {
            Timers.Cancel(DeadlockTimer);
            return;
        }
        var delay = due - DateTimeOffset.UtcNow;
        Timers.StartSingleTimer(DeadlockTimer, DeadlockCheck.Instance, delay > TimeSpan.Zero ? delay : TimeSpan.Zero);
        if (state.Counts is { Running: 0, Queued: 0, Pending: > 0 }) CheckStuck();
    }

    private void CheckStuck()
    {
        if (_state is null || _settings.Detectors is not { } thresholds) return;
        if (StuckDetector.Evaluate(_state, thresholds, DateTimeOffset.UtcNow) is { } detection)
        {
            Timers.Cancel(DeadlockTimer);
            // Looked up when needed: remembered entities can start before the singleton proxy is registered.
            if (ActorRegistry.For(Context.System).TryGet<DeadlockSupervisor>(out var supervisor))
                supervisor.Tell(new RunSuspected(detection));
        }
        else
        {
            // Heartbeats moved the deadline since the timer was armed.
            ArmDeadlockCheck(_state);
        }
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

    private sealed record DeadlockCheck
    {
        public static DeadlockCheck Instance { get; } = new();
    }

    private void Dispatch(TaskRecord task)
    {
        if (!_settings.IsInClusterPool(task.Pool)) return;
        _mediator.Tell(new Send(Topics.PoolPath(task.Pool),
            new ExecuteTask(_runId, task.TaskId, task.Type, task.Pool, task.Params), localAffinity: true));
    }
}
