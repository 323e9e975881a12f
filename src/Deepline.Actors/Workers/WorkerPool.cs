using System.Text.Json;
using Akka.Actor;
using Akka.Cluster.Tools.PublishSubscribe;
using Akka.Event;
using Deepline.Actors.Tracing;
using Deepline.Domain;

namespace Deepline.Actors.Workers;

/// <summary>The shared cancel set beyond this cluster (Redis <c>cancelled_runs</c>), asked before a task starts.</summary>
public interface ICancelledRunsLookup
{
    /// <summary>The run's cancellation as the shared set records it; null when the run is not in the set.</summary>
    Task<ExternalCancel?> FindCancelAsync(string runId);
}

/// <summary>A cancel known only to the shared set: its reason and author, as whoever wrote it recorded them.</summary>
public sealed record ExternalCancel(string Reason, string CancelledBy)
{
    /// <summary>Recorded when the run id is in the set without its hash (added by hand, or the hash was pruned).</summary>
    public const string UnrecordedReason = "cancelled elsewhere: found in Redis cancelled_runs";

    public const string UnknownAuthor = "redis";

    /// <summary>
    /// Whatever else writes to Redis is outside this node's checks: the values are cut to the HTTP API's limits
    /// and stripped of control characters before they reach the journal or a log line.
    /// </summary>
    public static ExternalCancel From(string? reason, string? cancelledBy)
    {
        var r = string.IsNullOrWhiteSpace(reason) ? UnrecordedReason : Deepline.Domain.Identifiers.StripControl(reason);
        if (r.Length > MaxReasonLength) r = r[..MaxReasonLength];
        var by = cancelledBy is not null && Deepline.Domain.Identifiers.IsValid(cancelledBy) ? cancelledBy : UnknownAuthor;
        return new ExternalCancel(r, by);
    }

    /// <summary>The same limit as <c>PUT /runs/{id}/cancel</c>'s reason.</summary>
    public const int MaxReasonLength = 1000;
}

/// <param name="CancelGrace">How long a handler whose token fired may take to return before the pool abandons it; null: 10 s.</param>
public sealed record WorkerPoolSettings(
    string Name, int Slots, TimeSpan HeartbeatInterval, TimeSpan ReportTimeout, int ReportAttempts = 5, TimeSpan? CancelGrace = null)
{
    public static readonly TimeSpan DefaultCancelGrace = TimeSpan.FromSeconds(10);

    public TimeSpan EffectiveCancelGrace => CancelGrace ?? DefaultCancelGrace;

    /// <summary>How long a task waits for the shared cancel set before it starts without its answer.</summary>
    public TimeSpan PreStartCheckTimeout { get; init; } = TimeSpan.FromSeconds(1);

    /// <summary>This node's incarnation (<see cref="Workers.Incarnation"/>), sent with each claim; null outside a cluster.</summary>
    public string? Incarnation { get; init; }
}

/// <summary>
/// An in-cluster worker pool: at most <c>Slots</c> tasks at a time, each claimed from its run before it starts
/// (so a cancelled run never gets a task started), each with its own CancellationToken that fires when the run's
/// cancel notice arrives, heartbeating while it runs, and reporting how it ended. An outcome is retried until the
/// run answers (a lost TASK_SUCCEEDED would leave its run waiting for the lease, then run the task again); a claim is
/// given up after <c>ReportAttempts</c>. A handler that does not return within
/// the cancel grace period after its token fired is abandoned: its slot is freed and TASK_CANCELLED (forced) reported,
/// so a handler that ignores its token cannot hold a slot, or its run, forever.
/// </summary>
public sealed class WorkerPool : ReceiveActor, IWithTimers
{
    private const string HeartbeatTimer = "heartbeat";
    private const string ReportSweepTimer = "report-sweep";

    private readonly WorkerPoolSettings _settings;
    private readonly IActorRef _runs;
    private readonly TaskHandlerRegistry _handlers;
    private readonly string _workerId;
    private readonly ICancelledRunsLookup? _cancelledElsewhere;
    private readonly ILoggingAdapter _log = Context.GetLogger();
    private readonly Dictionary<TaskKey, Execution> _executions = new();
    private long _nextExecution;
    /// <summary>Reports told to runs and not answered yet, by id; swept for time-outs.</summary>
    private readonly Dictionary<long, Outstanding> _outstanding = new();
    /// <summary>
    /// The run entity that answered a task's first report: later reports of the task go to it straight, not through the
    /// shard region (two hops fewer). A retry goes through the region again, in case the entity moved or stopped.
    /// </summary>
    private readonly Dictionary<TaskKey, IActorRef> _runOf = new();
    /// <summary>
    /// Runs with first reports on their way, and the reports that wait for them: they go together once every report
    /// in flight to the run is answered or timed out, so that a run journals them in one write.
    /// </summary>
    private readonly Dictionary<string, Gate> _gates = new(StringComparer.Ordinal);
    private long _nextReport;
    private PoolState _state;
    /// <summary>The attempt each task known here was dispatched as: every report of it names that attempt (fencing).</summary>
    private readonly Dictionary<TaskKey, int> _attemptOf = new();
    /// <summary>Tasks whose outcome is reported and not answered yet (told, waiting behind a gate or for a retry).</summary>
    private readonly HashSet<TaskKey> _outcomesUnanswered = new();

    public WorkerPool(WorkerPoolSettings settings, IActorRef runs, TaskHandlerRegistry handlers, string workerId, ICancelledRunsLookup? cancelledElsewhere)
    {
        _cancelledElsewhere = cancelledElsewhere;
        _settings = settings;
        _runs = runs;
        _handlers = handlers;
        _workerId = workerId;
        _state = PoolState.Empty(settings.Slots);

        Receive<ExecuteTask>(t =>
        {
            var before = _state;
            _state = _state.Offer(t);
            if (!ReferenceEquals(before, _state) && t.Attempt > 0) _attemptOf[new TaskKey(t.RunId, t.TaskId)] = t.Attempt;
            Pump();
        });
        Receive<RunCancelledNotice>(n => OnRunCancelled(n.RunId));
        Receive<RunCancelWithdrawn>(w => _state = _state.CancelWithdrawn(w.RunId));
        Receive<SubscribeAck>(_ => { });
        Receive<Report>(Send);
        Receive<PoolReportAnswer>(OnReportAnswer);
        Receive<ReportSweep>(_ => SweepReports());
        Receive<HandlerFinished>(OnFinished);
        Receive<GraceExpired>(g => OnGraceExpired(g.Key));
        Receive<PreStartChecked>(OnChecked);
        Receive<ElsewhereCancelRecorded>(OnElsewhereCancelRecorded);
        Receive<Heartbeat>(_ =>
        {
            foreach (var key in _state.Running.Keys)
                Send(new Report(key, TaskEventKind.TASK_HEARTBEAT, null, null, 1));
        });
        Receive<GetPoolStatus>(_ => Sender.Tell(new PoolStatus(_settings.Name, _settings.Slots, _state.Busy, _state.WaitingCount)));
    }

    public static Props Props(WorkerPoolSettings settings, IActorRef runs, TaskHandlerRegistry handlers, string workerId,
        ICancelledRunsLookup? cancelledElsewhere = null) =>
        Akka.Actor.Props.Create(() => new WorkerPool(settings, runs, handlers, workerId, cancelledElsewhere));

    public ITimerScheduler Timers { get; set; } = null!;

    protected override void PreStart()
    {
        var mediator = DistributedPubSub.Get(Context.System).Mediator;
        mediator.Tell(new Put(Self));
        mediator.Tell(new Subscribe(Topics.Cancellations, Self));
        Timers.StartPeriodicTimer(HeartbeatTimer, Heartbeat.Instance, _settings.HeartbeatInterval);
    }

    protected override void PostStop()
    {
        foreach (var execution in _executions.Values) execution.Cts.Cancel();
        if (_outcomesUnanswered.Count > 0)
            _log.Warning("Pool stopped with {0} task outcome(s) its runs have not acknowledged; those attempts count as interrupted once this node has left",
                _outcomesUnanswered.Count);
    }

    /// <summary>200 ms, doubling, at most 5 s: quick through a shard's hand-over, gentle through a long outage.</summary>
    internal static TimeSpan RetryDelay(int attempt) => TimeSpan.FromMilliseconds(Math.Min(5000, 200 * Math.Pow(2, Math.Min(attempt - 1, 5))));

    private void Pump()
    {
        var (state, claims) = _state.TakeClaims();
        _state = state;
        foreach (var t in claims)
            Send(new Report(new TaskKey(t.RunId, t.TaskId), TaskEventKind.TASK_STARTED, null, null, 1));
    }

    private void Send(Report r)
    {
        if (r.Event is not (TaskEventKind.TASK_STARTED or TaskEventKind.TASK_HEARTBEAT)) _outcomesUnanswered.Add(r.Key);
        // A retry goes at once, through the region, and so does a heartbeat (the run answers it without a write, and
        // nothing should wait behind one the run may never answer); other reports wait behind the run's in flight.
        if (r.Attempt > 1 || r.Event == TaskEventKind.TASK_HEARTBEAT)
        {
            Tell([r], gated: false);
            return;
        }
        if (_gates.TryGetValue(r.Key.RunId, out var gate))
        {
            gate.Waiting.Add(r);
            return;
        }
        Tell([r], gated: true);
    }

    private void Tell(List<Report> reports, bool gated)
    {
        var now = System.Diagnostics.Stopwatch.GetTimestamp();
        var told = new List<PoolReport>(reports.Count);
        IActorRef? entity = null;
        foreach (var r in reports)
        {
            var id = ++_nextReport;
            _outstanding[id] = new Outstanding(r, now, gated);
            told.Add(new PoolReport(new ReportTaskEvent(r.Key.RunId, r.Key.TaskId, r.Event, _workerId, r.Result, r.Error)
            {
                Attempt = _attemptOf.TryGetValue(r.Key, out var attempt) ? attempt : null,
                Incarnation = r.Event == TaskEventKind.TASK_STARTED ? _settings.Incarnation : null,
                ErrorType = r.ErrorType,
            }, id));
            if (r.Attempt == 1 && entity is null && _runOf.TryGetValue(r.Key, out var run)) entity = run;
        }
        if (gated) HoldReports(reports[0].Key.RunId, reports.Count);
        var to = entity ?? _runs;
        to.Tell(told.Count == 1 ? told[0] : new PoolReports(reports[0].Key.RunId, [.. told]));
        if (!Timers.IsTimerActive(ReportSweepTimer))
            Timers.StartPeriodicTimer(ReportSweepTimer, ReportSweep.Instance, SweepInterval(_settings.ReportTimeout));
    }

    /// <summary>
    /// <paramref name="count"/> things the run must receive before this pool's next reports to it are on their way (its
    /// reports, or the cancel the pool asked for): the next reports wait until each is answered or timed out.
    /// </summary>
    private void HoldReports(string runId, int count = 1)
    {
        if (!_gates.TryGetValue(runId, out var gate)) _gates[runId] = gate = new Gate();
        gate.InFlight += count;
    }

    /// <summary>A gated report was answered or timed out: once none of the run's is in flight, the waiting ones go together.</summary>
    private void Ungate(string runId)
    {
        if (!_gates.TryGetValue(runId, out var gate) || --gate.InFlight > 0) return;
        if (gate.Waiting.Count == 0)
        {
            _gates.Remove(runId);
            return;
        }
        var waiting = gate.Waiting;
        gate.Waiting = [];
        Tell(waiting, gated: true);
    }

    private sealed class Gate
    {
        public int InFlight;
        public List<Report> Waiting = [];
    }

    /// <summary>A report is timed out between one and one and a quarter of the report timeout after it was sent.</summary>
    private static TimeSpan SweepInterval(TimeSpan timeout) => timeout / 4 > TimeSpan.FromMilliseconds(10) ? timeout / 4 : TimeSpan.FromMilliseconds(10);

    private void OnReportAnswer(PoolReportAnswer a)
    {
        // An answer after its report timed out (and was retried) is dropped, as an ask's late answer would be.
        if (!_outstanding.Remove(a.Id, out var sent)) return;
        if (sent.Gated) Ungate(sent.Report.Key.RunId);
        // The task goes on (a claim or a heartbeat accepted): its next reports go to the entity that answered.
        if (a.Answer is TaskEventAccepted && sent.Report.Event is (TaskEventKind.TASK_STARTED or TaskEventKind.TASK_HEARTBEAT) && !Sender.IsNobody())
            _runOf[sent.Report.Key] = Sender;
        else
            _runOf.Remove(sent.Report.Key);
        // An outcome answered (or a claim refused) ends what this pool reports about the attempt.
        if (sent.Report.Event is not TaskEventKind.TASK_HEARTBEAT && (a.Answer is CommandRejected || sent.Report.Event is not TaskEventKind.TASK_STARTED)
            && !_state.Known.Contains(sent.Report.Key))
            _attemptOf.Remove(sent.Report.Key);
        OnAnswer(sent.Report, a.Answer, null);
    }

    private void SweepReports()
    {
        if (_outstanding.Count == 0)
        {
            Timers.Cancel(ReportSweepTimer);
            return;
        }
        var now = System.Diagnostics.Stopwatch.GetTimestamp();
        var timeout = _settings.ReportTimeout;
        List<long>? expired = null;
        foreach (var (id, sent) in _outstanding)
            if (System.Diagnostics.Stopwatch.GetElapsedTime(sent.SentAt, now) >= timeout)
                (expired ??= []).Add(id);
        if (expired is null) return;
        foreach (var id in expired)
        {
            if (!_outstanding.Remove(id, out var sent)) continue;
            if (sent.Gated) Ungate(sent.Report.Key.RunId);
            OnAnswer(sent.Report, null, $"no answer within {timeout.TotalSeconds:0.###} s");
        }
    }

    private void OnAnswer(Report report, IDeeplineMessage? answer, string? error)
    {
        if (answer is null)
        {
            // The entity that answered before may have moved or stopped: the next heartbeat goes through the region.
            if (report.Event == TaskEventKind.TASK_HEARTBEAT)
            {
                _runOf.Remove(report.Key);
                return;
            }
            // A claim not answered is given up: its task has not started here (if the run took the claim, the attempt's
            // lease ends it). An outcome is the only record of work already done: given up, its run would wait for the
            // lease and run the task again. So an outcome is sent until the run answers, for as long as this node lives.
            if (report.Attempt < _settings.ReportAttempts || report.Event != TaskEventKind.TASK_STARTED)
            {
                if (report.Attempt <= _settings.ReportAttempts || report.Attempt % 10 == 0)
                    _log.Warning("No answer to {0} for {1} (attempt {2}): {3}; retrying", report.Event, report.Key, report.Attempt, error);
                Timers.StartSingleTimer(("retry", report.Key, report.Event), report with { Attempt = report.Attempt + 1 }, RetryDelay(report.Attempt));
                return;
            }
            _log.Error("Giving up claiming {0} after {1} attempts", report.Key, report.Attempt);
            _runOf.Remove(report.Key);
            _attemptOf.Remove(report.Key);
            Release(_state.ClaimDropped(report.Key));
            return;
        }
        if (report.Event is not (TaskEventKind.TASK_STARTED or TaskEventKind.TASK_HEARTBEAT)) _outcomesUnanswered.Remove(report.Key);

        switch (report.Event, answer)
        {
            case (TaskEventKind.TASK_STARTED, TaskEventAccepted { State: TaskState.RUNNING }):
                var wasClaiming = _state.Claiming.ContainsKey(report.Key);
                var (state, start) = _state.Claimed(report.Key);
                _state = state;
                if (start is null)
                {
                    // The run accepted the claim, but its cancel reached this pool first: acknowledge it at once, so the
                    // run does not wait for its cancel deadline on a task that never started.
                    if (wasClaiming)
                        Send(new Report(report.Key, TaskEventKind.TASK_CANCELLED, null, NotStarted(false), 1));
                    else
                        _runOf.Remove(report.Key); // no report of this task follows
                    Pump();
                }
                else if (_cancelledElsewhere is null) Start(start);
                else CheckElsewhere(start);
                break;
            case (TaskEventKind.TASK_STARTED, _):
                // Refused: the run was cancelled or the task is no longer ours to run. Nothing was started.
                _log.Info("Not starting {0}: {1}", report.Key, (answer as CommandRejected)?.Message);
                Release(_state.ClaimDropped(report.Key));
                break;
            case (TaskEventKind.TASK_HEARTBEAT, TaskEventAccepted { RunStatus: RunStatus.CANCELLING or RunStatus.CANCELLED } cancelling)
                when _executions.TryGetValue(report.Key, out var running) && running.StopRequestedAt is null:
                // The run is being cancelled and its task still runs here: the cancel notice never reached this pool (a
                // pub/sub message lost, a pool that started after it). The journal's cancel record is the truth; the
                // heartbeat's answer carries it, so a lost notice costs one heartbeat interval, never the cancel.
                _log.Warning("Run {run_id} is {status} but its task {task_id} was still running on worker {worker_id}: the cancel notice " +
                    "did not reach this pool; cancelling the task now", report.Key.RunId, cancelling.RunStatus.ToString(),
                    report.Key.TaskId, _workerId);
                OnRunCancelled(report.Key.RunId);
                break;
            case (TaskEventKind.TASK_HEARTBEAT, CommandRejected rejected):
                // The run says the task is over (cancelled, finalised): stop working on it.
                _log.Info("Aborting {0}: {1}", report.Key, rejected.Message);
                Abort(report.Key);
                break;
        }
    }

    /// <summary>
    /// A run cancelled on another cluster is known only to the shared set. The task holds its slot meanwhile; an
    /// unreachable Redis does not stop work (the in-cluster topic still protects this cluster's own cancels).
    /// </summary>
    private void CheckElsewhere(ExecuteTask task)
    {
        _cancelledElsewhere!.FindCancelAsync(task.RunId).WaitAsync(_settings.PreStartCheckTimeout)
            .PipeTo(Self, success: c => new PreStartChecked(task, c, null), failure: e => new PreStartChecked(task, null, e));
    }

    private void OnChecked(PreStartChecked c)
    {
        var key = new TaskKey(c.Task.RunId, c.Task.TaskId);
        if (!_state.Running.ContainsKey(key)) return;
        // Debug: during a Redis outage this would be one line per task; the broadcaster reports the outage once.
        if (c.Error is not null) _log.Debug("Cancel set not reachable before starting {0} ({1}); starting on the in-cluster check alone", key, c.Error.Message);
        var (state, start, abort) = _state.Checked(key, c.Cancel is not null);
        _state = state;
        foreach (var k in abort) Abort(k);
        if (start)
        {
            Start(c.Task);
            return;
        }
        if (c.Cancel is { } elsewhere)
        {
            // Only Redis knows this cancel: the run must be cancelled here too, with the record Redis holds, before the
            // task reports TASK_CANCELLED; a task cancelled under a RUNNING run would fail the run instead.
            _log.Info("Not starting {run_id}/{task_id}: its run is in Redis cancelled_runs; cancelling it here (by {cancelled_by})",
                key.RunId, key.TaskId, elsewhere.CancelledBy);
            // The pool now counts the run as cancelled, so a task of it whose claim is answered next reports
            // TASK_CANCELLED at once: that report waits for this cancel's answer, or it could reach the run first.
            HoldReports(key.RunId);
            _runs.Ask<IDeeplineMessage>(new CancelRun(key.RunId, elsewhere.Reason, elsewhere.CancelledBy, Force: false), _settings.ReportTimeout)
                .PipeTo(Self, success: answer => new ElsewhereCancelRecorded(key, answer, null),
                    failure: ex => new ElsewhereCancelRecorded(key, null, ex));
        }
        else
        {
            _log.Info("Not starting {run_id}/{task_id}: its run is cancelled", key.RunId, key.TaskId);
            Send(new Report(key, TaskEventKind.TASK_CANCELLED, null, NotStarted(false), 1));
        }
        Pump();
    }

    private void OnElsewhereCancelRecorded(ElsewhereCancelRecorded r)
    {
        Ungate(r.Key.RunId);
        if (r.Answer is not CancelReply)
            _log.Warning("Run {0} is in Redis cancelled_runs but could not be cancelled here ({1}); its task {2} is reported cancelled anyway",
                r.Key.RunId, r.Error?.Message ?? (r.Answer as CommandRejected)?.Message ?? "no answer", r.Key.TaskId);
        Send(new Report(r.Key, TaskEventKind.TASK_CANCELLED, null, NotStarted(true), 1));
    }

    private static string NotStarted(bool cancelledElsewhere) =>
        "not started: the run is cancelled" + (cancelledElsewhere ? " (found in Redis cancelled_runs)" : "");

    private void Start(ExecuteTask task)
    {
        var key = new TaskKey(task.RunId, task.TaskId);
        var span = RunTracing.Start("task execution", System.Diagnostics.ActivityKind.Consumer, task.TraceParent);
        span?.SetTag(RunTracing.RunIdTag, task.RunId).SetTag(RunTracing.TaskIdTag, task.TaskId).SetTag("deepline.task_type", task.Type);
        var execution = new Execution(++_nextExecution, new CancellationTokenSource(), System.Diagnostics.Stopwatch.GetTimestamp()) { Span = span };
        _executions[key] = execution;
        var handler = _handlers.Find(task.Type);
        var context = new TaskContext(task.RunId, task.TaskId, task.Type, task.Params) { CancelGrace = _settings.EffectiveCancelGrace };
        Execute(handler, context, execution.Cts.Token, span)
            .PipeTo(Self, success: outcome => new HandlerFinished(key, execution.Id, outcome));
    }

    private static async Task<HandlerOutcome> Execute(ITaskHandler? handler, TaskContext context, CancellationToken token, System.Diagnostics.Activity? span)
    {
        // The handler's own spans (an HTTP call it makes) nest under the task's; only its flow sees the span as current.
        if (span is not null) System.Diagnostics.Activity.Current = span;
        if (handler is null) return new HandlerOutcome(TaskEventKind.TASK_FAILED, null, $"no handler for task type '{context.Type}' on this node");
        try
        {
            var result = await Task.Run(() => handler.ExecuteAsync(context, token), CancellationToken.None);
            // The run would refuse this result (422 on the wire), leaving the task RUNNING: report why it failed instead.
            if (JsonLimits.Check(result, "result") is { } tooDeep)
                return new HandlerOutcome(TaskEventKind.TASK_FAILED, null, $"handler '{context.Type}' returned a result the run cannot store: {tooDeep}");
            return new HandlerOutcome(TaskEventKind.TASK_SUCCEEDED, result, null);
        }
        catch (OperationCanceledException) when (token.IsCancellationRequested)
        {
            return new HandlerOutcome(TaskEventKind.TASK_CANCELLED, null, "cancelled: run cancellation reached the worker");
        }
        catch (Exception ex)
        {
            // The message is what an operator reads; the type goes beside it, where retry policies match it.
            return new HandlerOutcome(TaskEventKind.TASK_FAILED, null, ex.Message) { ErrorType = ex.GetType().Name };
        }
    }

    private void OnFinished(HandlerFinished f)
    {
        if (!_executions.TryGetValue(f.Key, out var execution) || execution.Id != f.Execution)
        {
            // An abandoned handler came back after all: its TASK_CANCELLED (forced) was already reported.
            _log.Info("Handler of {0} returned {1} after it was abandoned; not reported", f.Key, f.Outcome.Event);
            return;
        }
        _executions.Remove(f.Key);
        execution.Cts.Dispose();
        execution.Span?.SetTag("deepline.outcome", f.Outcome.Event.ToString());
        RunTracing.End(execution.Span, f.Outcome.Event == TaskEventKind.TASK_FAILED ? "task failed" : null);
        if (execution.StopRequestedAt is { } stopAt)
        {
            // The seed's troubleshooting greps worker.log for "cancelled": one line per running task aborted on a cancel.
            var afterCancel = System.Diagnostics.Stopwatch.GetElapsedTime(stopAt);
            _log.Info("Task {run_id}/{task_id} aborted on worker {worker_id}: its handler returned {handler_return_ms} ms after the cancellation " +
                "(ran {handler_ran_ms} ms in all), reported {outcome}", f.Key.RunId, f.Key.TaskId, _workerId,
                Math.Round(afterCancel.TotalMilliseconds), Math.Round(System.Diagnostics.Stopwatch.GetElapsedTime(execution.StartedAt).TotalMilliseconds),
                f.Outcome.Event.ToString());
        }
        Timers.Cancel(GraceTimer(f.Key));
        _state = _state.Finished(f.Key);
        Send(new Report(f.Key, f.Outcome.Event, f.Outcome.Result, f.Outcome.Error, 1) { ErrorType = f.Outcome.ErrorType });
        Pump();
    }

    private void OnRunCancelled(string runId)
    {
        var (state, abort) = _state.RunCancelled(runId);
        _state = state;
        // Tasks dropped while they waited for a slot report nothing: nothing else would forget their attempt.
        foreach (var key in _attemptOf.Keys.Where(k => k.RunId == runId && !_state.Known.Contains(k)).ToList()) _attemptOf.Remove(key);
        foreach (var key in abort) Abort(key);
    }

    private void Abort(TaskKey key)
    {
        if (!_executions.TryGetValue(key, out var execution)) return;
        var (state, startGrace) = _state.StopRequested(key);
        _state = state;
        if (execution.StopRequestedAt is null) _executions[key] = execution with { StopRequestedAt = System.Diagnostics.Stopwatch.GetTimestamp() };
        execution.Cts.Cancel();
        RunTracing.Mark("task cancel", execution.Span, key.RunId, key.TaskId);
        if (startGrace) Timers.StartSingleTimer(GraceTimer(key), new GraceExpired(key), _settings.EffectiveCancelGrace);
    }

    private void OnGraceExpired(TaskKey key)
    {
        var (state, abandon) = _state.GraceExpired(key);
        _state = state;
        if (!abandon) return;
        // The handler thread cannot be stopped from here; it is left to finish on its own (its token stays
        // cancelled, and its late outcome is dropped by execution id) while the slot goes to the next task.
        if (_executions.Remove(key, out var abandoned)) RunTracing.End(abandoned.Span, "abandoned after the cancel grace");
        var grace = _settings.EffectiveCancelGrace.TotalSeconds;
        _log.Warning("Task {run_id}/{task_id} abandoned on worker {worker_id}: its handler did not return within {cancel_grace_s} s of its cancellation",
            key.RunId, key.TaskId, _workerId, grace);
        Send(new Report(key, TaskEventKind.TASK_CANCELLED, null,
            $"cancelled (forced): the handler did not return within cancel_grace_s = {grace:0.###} s after its cancellation token fired; the worker abandoned it and freed its slot",
            1));
        Pump();
    }

    private static (string, TaskKey) GraceTimer(TaskKey key) => ("grace", key);

    private void Release(PoolState state)
    {
        _state = state;
        Pump();
    }

    private sealed record Report(TaskKey Key, TaskEventKind Event, JsonElement? Result, string? Error, int Attempt)
    {
        public string? ErrorType { get; init; }
    }

    /// <param name="Gated">A first report, counted in its run's <see cref="Gate"/>.</param>
    private sealed record Outstanding(Report Report, long SentAt, bool Gated);

    private sealed record ReportSweep
    {
        public static ReportSweep Instance { get; } = new();
    }

    private sealed record HandlerOutcome(TaskEventKind Event, JsonElement? Result, string? Error)
    {
        public string? ErrorType { get; init; }
    }

    private sealed record HandlerFinished(TaskKey Key, long Execution, HandlerOutcome Outcome);

    private sealed record GraceExpired(TaskKey Key);

    /// <summary>One start of a task; the id tells a late outcome of an abandoned start from the current one.</summary>
    private sealed record Execution(long Id, CancellationTokenSource Cts, long StartedAt)
    {
        /// <summary>When the pool cancelled the handler's token (Stopwatch ticks); null while it runs undisturbed.</summary>
        public long? StopRequestedAt { get; init; }

        public System.Diagnostics.Activity? Span { get; init; }
    }

    private sealed record PreStartChecked(ExecuteTask Task, ExternalCancel? Cancel, Exception? Error);

    private sealed record ElsewhereCancelRecorded(TaskKey Key, IDeeplineMessage? Answer, Exception? Error);

    private sealed record Heartbeat
    {
        public static Heartbeat Instance { get; } = new();
    }
}

public sealed record GetPoolStatus : IDeeplineMessage
{
    public static GetPoolStatus Instance { get; } = new();
}

public sealed record PoolStatus(string Pool, int Slots, int Busy, int Waiting) : IDeeplineMessage;
