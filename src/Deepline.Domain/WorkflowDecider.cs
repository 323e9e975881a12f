using System.Collections.Immutable;

namespace Deepline.Domain;

/// <summary>
/// What a command does to a run: the events to journal, the events to apply without journalling
/// (heartbeats), and the reply. <see cref="Reply"/> is null for internal commands nobody waits on.
/// </summary>
public sealed record Decision(ImmutableArray<IRunEvent> Persist, ImmutableArray<IRunEvent> Transient, IDeeplineMessage? Reply)
{
    /// <summary>
    /// The state once <see cref="Persist"/> is applied, where the decider computed it anyway (for its reply): the actor
    /// takes it instead of applying the same events a second time. Null: the actor applies them.
    /// </summary>
    public WorkflowState? After { get; init; }

    public static Decision Answer(IDeeplineMessage reply) => new([], [], reply);
    public static Decision Nothing { get; } = new([], [], null);
}

/// <summary>
/// Several commands decided in order, each on the state the ones before it left: their events, to be journalled in one
/// write, each command's reply (sent once that write is durable) and the state after all of them.
/// </summary>
public sealed record Decisions(ImmutableArray<IRunEvent> Persist, ImmutableArray<IDeeplineMessage?> Replies, WorkflowState? After);

/// <summary>All of a run's decisions, as pure functions of its state, the command and the time.</summary>
public static class WorkflowDecider
{
    /// <summary>
    /// <see cref="Decide"/> for each command in turn, the next one deciding on the state the last one's events (transient
    /// ones included) leave: what deciding them one write at a time would give, in one write.
    /// </summary>
    public static Decisions DecideAll(WorkflowState? state, IReadOnlyList<IRunCommand> commands, DateTimeOffset now, SubmissionPolicy policy)
    {
        var persist = ImmutableArray.CreateBuilder<IRunEvent>();
        var replies = ImmutableArray.CreateBuilder<IDeeplineMessage?>(commands.Count);
        foreach (var command in commands)
        {
            var d = Decide(state, command, now, policy);
            foreach (var t in d.Transient) state = state?.Apply(t);
            if (!d.Persist.IsEmpty)
                state = d.Transient.IsEmpty && d.After is not null
                    ? d.After
                    : d.Persist.Aggregate(state, (s, e) => e is RunSubmitted r ? WorkflowState.Create(r) : s!.Apply(e));
            persist.AddRange(d.Persist);
            replies.Add(d.Reply);
        }
        return new Decisions(persist.ToImmutable(), replies.MoveToImmutable(), state);
    }

    public static Decision Decide(WorkflowState? state, IRunCommand command, DateTimeOffset now, SubmissionPolicy policy)
    {
        if (command is SubmitRun submit) return Submit(state, submit, now, policy);
        if (state is null || (command is IClientScoped { ClientScope: { } scope } && scope != state.ClientId))
            return command is IUnansweredRunCommand
                ? Decision.Nothing
                : Decision.Answer(new CommandRejected(RejectionKind.NotFound, $"run '{command.RunId}' not found", "run_id"));

        return command switch
        {
            GetRun => Decision.Answer(new RunReply(state)),
            CancelRun c => Cancel(state, c, now),
            // The seed's "force complete cancellation": a CANCELLING run is finalised now; a RUNNING one is cancelled and
            // completed in one step (forced: running tasks are not waited for). A finished run has nothing to complete.
            FinaliseCancel f => state.Status switch
            {
                RunStatus.CANCELLING => Emit(state, new RunCancelFinalised(f.By, now), s => new RunReply(s)),
                RunStatus.RUNNING => Emit(state, new RunCancelRequested(FinaliseCancel.Reason, f.By, true, now), s => new RunReply(s)),
                _ => Decision.Answer(Conflict($"run '{state.RunId}' is {state.Status}: there is no cancellation to complete")),
            },
            CancelTimeoutElapsed => state.Status == RunStatus.CANCELLING
                ? new Decision([new RunCancelFinalised(CancellationOutcomes.CancelTimeoutFinaliser, now)], [], null)
                : Decision.Nothing,
            ReportTaskEvent r => TaskEvent(state, r, now, policy),
            LeaseTask l => Lease(state, l, now),
            RetryRun r => Rerun(state, r, now),
            ExpireLeases x => ExpireLeases(state, x.Thresholds.For(state.Deadlock), now, policy.Retry),
            RequeueInterrupted i => Interrupted(state, i, now, policy.Retry),
            ReleaseRetries => new Decision([.. state.OrderedTasks
                .Where(t => t is { State: TaskState.QUEUED, RetryAt: { } due } && due <= now)
                .Select(t => (IRunEvent)new TaskRetryReleased(t.TaskId, now))], [], null),
            ResourcesGranted g => new Decision([.. g.TaskIds.Where(id => state.Tasks.TryGetValue(id, out var t) && t is { State: TaskState.QUEUED, NeedsResources: true, Granted: false })
                .Distinct().Select(id => (IRunEvent)new TaskResourcesGranted(id, now))], [], null),
            _ => Decision.Answer(new CommandRejected(RejectionKind.BadRequest, $"unsupported command {command.GetType().Name}")),
        };
    }

    private static Decision Submit(WorkflowState? state, SubmitRun submit, DateTimeOffset now, SubmissionPolicy policy)
    {
        if (state is not null)
            return Decision.Answer(Conflict($"run '{state.RunId}' already exists"));
        if (DagValidator.Validate(submit.Spec, policy) is { } error)
            return Decision.Answer(new CommandRejected(error.Kind, error.Message, error.Field, error.Cycle));
        var e = new RunSubmitted(submit.Spec, now);
        var created = WorkflowState.Create(e);
        return new Decision([e], [], new RunReply(created)) { After = created };
    }

    private static Decision Cancel(WorkflowState state, CancelRun c, DateTimeOffset now) => state.Status switch
    {
        RunStatus.SUCCEEDED or RunStatus.FAILED =>
            Decision.Answer(Conflict($"run '{state.RunId}' already finished as {state.Status}; nothing to cancel")),
        RunStatus.CANCELLED => Decision.Answer(new CancelReply(state, AlreadyRequested: true)),
        // A repeated cancel changes nothing, except that force escalates a cancel still waiting for workers.
        RunStatus.CANCELLING when c.Force => Emit(state, new RunCancelFinalised(c.CancelledBy, now), s => new CancelReply(s, true)),
        RunStatus.CANCELLING => Decision.Answer(new CancelReply(state, AlreadyRequested: true)),
        _ => Emit(state, new RunCancelRequested(c.Reason, c.CancelledBy, c.Force, now) { DeadlockReason = c.DeadlockReason }, s => new CancelReply(s, false)),
    };

    private static Decision TaskEvent(WorkflowState state, ReportTaskEvent r, DateTimeOffset now, SubmissionPolicy policy)
    {
        var retry = policy.Retry;
        if (!state.Tasks.TryGetValue(r.TaskId, out var task))
            return Decision.Answer(new CommandRejected(RejectionKind.NotFound, $"task '{r.TaskId}' not found in run '{state.RunId}'", "task_id"));
        if (r.Pools is { } pools && !pools.Contains(task.Pool))
            return Decision.Answer(new CommandRejected(RejectionKind.Forbidden,
                $"task '{r.TaskId}' is in pool '{task.Pool}', which this worker's key does not serve", "task_id"));
        // Without a worker id an event could complete a task another worker holds.
        if (string.IsNullOrWhiteSpace(r.WorkerId))
            return Decision.Answer(new CommandRejected(RejectionKind.BadRequest, "worker_id is required on every task event", "worker_id"));
        // Over HTTP nobody reports for an in-cluster pool (its worker ids are shown in GET /runs and easy to forge), nor
        // for an attempt another key leased.
        if (r.Caller is not null && policy.InClusterPools.ContainsKey(task.Pool))
            return Decision.Answer(new CommandRejected(RejectionKind.Forbidden,
                $"task '{r.TaskId}' runs in the in-cluster pool '{task.Pool}': only that pool reports on it", "task_id"));
        if (r.Caller is { } caller && task is { State: TaskState.RUNNING, Holder: { } holder } && holder != caller)
            return Decision.Answer(new CommandRejected(RejectionKind.Forbidden,
                $"task '{r.TaskId}' is leased to another worker key; only the key that holds the attempt reports on it", "task_id"));

        // Checked before anything else: a value the journal could not hold must never reach it.
        if (JsonLimits.Check(r.Result, "result") is { } tooDeep)
            return Decision.Answer(new CommandRejected(RejectionKind.Invalid, tooDeep, "result"));

        if (task.State.IsTerminal())
        {
            if (r.Event == TaskEventKind.TASK_HEARTBEAT)
                return Decision.Answer(Conflict($"task '{r.TaskId}' is {task.State}; stop working on it"));
            return Ignore(state, r, $"task is already {task.State}",
                Conflict($"{r.Event} ignored: task '{r.TaskId}' of run '{state.RunId}' is already {task.State}"), now);
        }

        // Fencing: a worker that was paused past its lease, or whose node was given up for gone, holds an attempt the run
        // has moved on from. Its outcome must not count: the next attempt may be running elsewhere.
        if (r.Attempt is { } named && StaleAttempt(task, r.Event, named))
        {
            var stale = new CommandRejected(RejectionKind.Conflict,
                $"attempt {named} of task '{r.TaskId}' is over: the current attempt is {task.Attempts} ({task.State}); stop working on it",
                "attempt") { CurrentAttempt = task.Attempts };
            return r.Event == TaskEventKind.TASK_HEARTBEAT
                ? Decision.Answer(stale)
                : Ignore(state, r, $"attempt {named} is not the current attempt {task.Attempts}", stale, now);
        }

        if (r.WorkerId is { } w && task.WorkerId is { } owner && task.State == TaskState.RUNNING && w != owner)
            return Decision.Answer(Conflict($"task '{r.TaskId}' is held by worker '{owner}', not '{w}'"));

        return (r.Event, task.State) switch
        {
            (TaskEventKind.TASK_STARTED, TaskState.QUEUED) when task.RetryAt is { } due =>
                Decision.Answer(Conflict($"task '{r.TaskId}' waits for the backoff of its attempt {task.Attempts + 1} until {due:O}")),
            (TaskEventKind.TASK_STARTED, TaskState.QUEUED) when !task.Ready =>
                Decision.Answer(Conflict($"task '{r.TaskId}' is QUEUED waiting for resources ({string.Join(", ", task.WaitingFor)}); it may start once they are granted")),
            (TaskEventKind.TASK_STARTED, TaskState.QUEUED) => Accept(state, r,
                new TaskStarted(r.TaskId, r.WorkerId ?? "unknown", now) { Attempt = task.Attempts + 1, Incarnation = r.Incarnation, Holder = r.Caller }),
            (TaskEventKind.TASK_STARTED, TaskState.RUNNING) => Decision.Answer(Accepted(state, r.TaskId)),
            (TaskEventKind.TASK_STARTED, _) =>
                Decision.Answer(Conflict($"task '{r.TaskId}' is PENDING: its dependencies have not all succeeded")),
            (TaskEventKind.TASK_HEARTBEAT, TaskState.RUNNING) =>
                new Decision([], [new TaskHeartbeat(r.TaskId, now)], Accepted(state, r.TaskId)),
            (TaskEventKind.TASK_SUCCEEDED, TaskState.RUNNING) => Accept(state, r, new TaskSucceeded(r.TaskId, r.Result, now) { Attempt = task.Attempts }),
            // A run being cancelled retries nothing: the failure ends the task (and lets the cancel complete).
            (TaskEventKind.TASK_FAILED, TaskState.RUNNING) when state.Status != RunStatus.RUNNING =>
                Accept(state, r, new TaskFailed(r.TaskId, r.Error ?? "failed", now) { Attempt = task.Attempts, ErrorType = r.ErrorType }),
            (TaskEventKind.TASK_FAILED, TaskState.RUNNING) =>
                Accept(state, r, AttemptEnded(task, AttemptCauses.Failed, r.Error ?? "failed", r.ErrorType, now, retry)),
            (TaskEventKind.TASK_CANCELLED, TaskState.RUNNING) => Accept(state, r, new TaskCancelled(r.TaskId, r.Error, now)),
            _ => Decision.Answer(Conflict($"{r.Event} is not possible for task '{r.TaskId}' in state {task.State}")),
        };
    }

    /// <summary>Whether a report naming attempt <paramref name="named"/> comes from an attempt the task has moved on from.</summary>
    private static bool StaleAttempt(TaskRecord task, TaskEventKind e, int named) => (e, task.State) switch
    {
        (TaskEventKind.TASK_STARTED, TaskState.QUEUED or TaskState.PENDING) => named != task.Attempts + 1,
        (_, TaskState.RUNNING) => named != task.Attempts,
        // QUEUED again after a lost or failed attempt: every attempt so far is over.
        _ => named <= task.Attempts,
    };

    /// <summary>
    /// A report that must not be applied: journalled for the audit (the first IgnoredKept; after that only counted in
    /// memory and the next snapshot, so a worker repeating a late event cannot grow the journal), answered with a conflict.
    /// </summary>
    private static Decision Ignore(WorkflowState state, ReportTaskEvent r, string reason, CommandRejected conflict, DateTimeOffset now)
    {
        var ignored = new TaskEventIgnored(r.TaskId, r.Event, reason, now) { Attempt = r.Attempt ?? 0 };
        return state.IgnoredTotal < WorkflowState.IgnoredKept
            ? new Decision([ignored], [], conflict)
            : new Decision([], [ignored], conflict);
    }

    /// <summary>
    /// How an attempt that did not succeed ends its task: queued again as the next attempt (after the policy's backoff;
    /// at once when its node is known gone), or failed for good when the error is not retryable, no attempt is left, or
    /// its worker was lost on too many attempts in a row (poison).
    /// </summary>
    private static IRunEvent AttemptEnded(TaskRecord task, string cause, string error, string? errorType, DateTimeOffset now, RetrySettings retry)
    {
        var policy = retry.For(task);
        if (cause != AttemptCauses.Failed && retry.IsPoison(task))
            return new TaskFailed(task.TaskId,
                $"poison: its worker was lost on {task.LostInARow + 1} attempts in a row (orchestrator.retry.poison_after = {retry.PoisonAfter}); last: {error}", now)
            { Attempt = task.Attempts, ErrorType = "poison" };
        if (!policy.Retries(errorType) || !retry.HasAttemptLeft(task))
            return new TaskFailed(task.TaskId, error, now) { Attempt = task.Attempts, ErrorType = errorType };
        var delay = cause == AttemptCauses.Interrupted ? TimeSpan.Zero : policy.DelayAfter(task.Attempts - task.AttemptsBefore);
        return new TaskAttemptFailed(task.TaskId, task.Attempts, cause, error, now)
        {
            ErrorType = errorType,
            RetryAt = delay > TimeSpan.Zero ? now + delay : null,
        };
    }

    /// <summary>RUNNING tasks silent past their lease with an attempt left: each attempt is over (a lost worker).</summary>
    private static Decision ExpireLeases(WorkflowState state, DetectorThresholds forRun, DateTimeOffset now, RetrySettings retry)
    {
        if (state.Status != RunStatus.RUNNING || state.Counts.Running == 0) return Decision.Nothing;
        var events = state.OrderedTasks
            .Where(t => t.State == TaskState.RUNNING && StuckDetector.LeaseEnd(t, forRun) <= now && retry.HasAttemptLeft(t))
            .Select(t => AttemptEnded(t, AttemptCauses.LeaseExpired,
                $"lease expired: no heartbeat from worker '{t.WorkerId}' for {forRun.HeartbeatTimeoutS} s (attempt {t.Attempts})", null, now, retry))
            .ToImmutableArray();
        return new Decision(events, [], null);
    }

    /// <summary>RUNNING tasks whose in-cluster pool ran on a member that is gone: their attempts were interrupted.</summary>
    private static Decision Interrupted(WorkflowState state, RequeueInterrupted i, DateTimeOffset now, RetrySettings retry)
    {
        if (state.Status != RunStatus.RUNNING || state.Counts.Running == 0) return Decision.Nothing;
        var events = state.OrderedTasks
            .Where(t => t is { State: TaskState.RUNNING, Incarnation: { } n } && i.GoneIncarnations.Contains(n))
            .Select(t => AttemptEnded(t, AttemptCauses.Interrupted,
                $"interrupted: worker '{t.WorkerId}' is gone (its node {t.Incarnation} restarted or left the cluster) during attempt {t.Attempts}", null, now, retry))
            .ToImmutableArray();
        return new Decision(events, [], null);
    }

    private static Decision Rerun(WorkflowState state, RetryRun r, DateTimeOffset now)
    {
        if (state.Status != RunStatus.FAILED)
            return Decision.Answer(Conflict(state.Status switch
            {
                RunStatus.RUNNING => $"run '{state.RunId}' is still RUNNING: its failed tasks are retried by their policies; re-run it once it has FAILED",
                RunStatus.SUCCEEDED => $"run '{state.RunId}' SUCCEEDED: nothing to re-run",
                // Its cancel has been copied to Redis and every pool: re-opening it would race those copies.
                _ => $"run '{state.RunId}' is {state.Status}: a cancelled run is not re-run; submit it again under a new run_id",
            }));
        var ids = state.OrderedTasks.Where(t => t.State is TaskState.FAILED or TaskState.CANCELLED or TaskState.SKIPPED).Select(t => t.TaskId).ToImmutableArray();
        return Emit(state, new RunRetried(r.By, ids, now), s => new RunReply(s));
    }

    private static Decision Lease(WorkflowState state, LeaseTask l, DateTimeOffset now)
    {
        if (!state.Tasks.TryGetValue(l.TaskId, out var task))
            return Decision.Answer(new CommandRejected(RejectionKind.NotFound, $"task '{l.TaskId}' not found in run '{state.RunId}'", "task_id"));
        if (l.Pools is { } pools && !pools.Contains(task.Pool))
            return Decision.Answer(new CommandRejected(RejectionKind.Forbidden, $"task '{l.TaskId}' is in pool '{task.Pool}', which this worker's key does not serve", "pool"));
        if (state.Status != RunStatus.RUNNING || !task.Ready)
            return Decision.Answer(Conflict($"task '{l.TaskId}' of run '{state.RunId}' is not ready to lease (task {task.State}, run {state.Status})"));
        var started = new TaskStarted(task.TaskId, l.WorkerId, now) { Attempt = task.Attempts + 1, Holder = l.Caller };
        var after = state.Apply(started);
        var inputs = ImmutableDictionary.CreateRange(StringComparer.Ordinal,
            task.DependsOn.Select(d => KeyValuePair.Create(d, after.Tasks[d].Result)));
        var reply = new TaskLeased(state.RunId, task.TaskId, task.Type, task.Pool, started.Attempt, task.Params, inputs,
            task.Resources.IsDefault ? [] : task.Resources, now, state.Deadlock?.HeartbeatTimeoutS);
        return new Decision([started], [], reply) { After = after };
    }

    private static Decision Accept(WorkflowState state, ReportTaskEvent r, IRunEvent e) =>
        Emit(state, e, s => Accepted(s, r.TaskId));

    private static TaskEventAccepted Accepted(WorkflowState s, string taskId)
    {
        var t = s.Tasks[taskId];
        return new(s.RunId, taskId, t.State, s.Status) { Attempt = t.Attempts, RetryAt = t.RetryAt };
    }

    private static Decision Emit(WorkflowState state, IRunEvent e, Func<WorkflowState, IDeeplineMessage> reply)
    {
        var after = state.Apply(e);
        return new([e], [], reply(after)) { After = after };
    }

    private static CommandRejected Conflict(string message) => new(RejectionKind.Conflict, message);
}
