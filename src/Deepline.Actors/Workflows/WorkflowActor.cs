using System.Collections.Immutable;
using Akka.Actor;
using Akka.Cluster.Sharding;
using Akka.Cluster.Tools.PublishSubscribe;
using Akka.Event;
using Akka.Hosting;
using Deepline.Actors.Monitoring;
using Akka.Persistence;
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
    private WorkflowState? _state;
    private long _eventsSinceSnapshot;

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
            case RecoveryCompleted:
                if (_state is not null) AfterRecovery(_state);
                break;
        }
    }

    protected override void OnCommand(object message)
    {
        switch (message)
        {
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

        var sender = Sender;
        PersistAll(decision.Persist, e =>
        {
            _state = e is RunSubmitted s ? WorkflowState.Create(s) : _state!.Apply(e);
            _eventsSinceSnapshot++;
        });
        DeferAsync(decision, d =>
        {
            if (d.Reply is { } reply) sender.Tell(reply);
            AfterChange(before, _state!, d.Persist);
        });
    }

    private void AfterChange(WorkflowState? before, WorkflowState after, ImmutableArray<IRunEvent> events)
    {
        // Only a submission or a success makes tasks QUEUED; every other event (most of them) skips the walk.
        if (events.Any(e => e is RunSubmitted or TaskSucceeded))
        {
            foreach (var task in after.OrderedTasks)
            {
                if (task.State == TaskState.QUEUED && before?.Tasks[task.TaskId].State != TaskState.QUEUED)
                    Dispatch(task);
            }
        }

        if (after.Cancel is { } cancel && before?.Cancel is null)
        {
            _log.Warning("Workflow {0} cancelled: {1}", after.RunId, cancel.Reason);
            var notice = new RunCancelledNotice(after.RunId, cancel.Reason, cancel.CancelledBy, cancel.CancelledAt);
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
            _mediator.Tell(new Publish(Topics.Cancellations, new RunCancelledNotice(state.RunId, c.Reason, c.CancelledBy, c.CancelledAt)));
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
