using System.Collections.Immutable;
using System.Diagnostics;
using Akka.Actor;
using Akka.Event;
using Akka.Hosting;
using Akka.Persistence;
using Deepline.Actors.Alerting;
using Deepline.Actors.Index;
using Deepline.Actors.Queues;
using Deepline.Actors.Resources;
using Deepline.Domain;

namespace Deepline.Actors.Monitoring;

/// <summary>
/// The deadlock monitor (a cluster singleton). Suspicions come from runs' own timers and from a scan of the run
/// index every check_interval_s; each is confirmed against the run's current state before anything happens.
/// A confirmed run becomes one incident, journalled before it is acted on: alerted once, cancelled once (when
/// cancel_on_deadlock), counted once, even across a failover, whose successor finishes what was left undone.
/// </summary>
public sealed class DeadlockSupervisor : UntypedPersistentActor, IWithTimers
{
    public const string AutoCancelReason = "auto-cancel: deadlock detected";
    private const string ScanTimer = "scan";
    private static readonly TimeSpan AskTimeout = TimeSpan.FromSeconds(10);
    private static readonly TimeSpan ExplainTimeout = TimeSpan.FromSeconds(2);

    private readonly MonitorSettings _settings;
    private readonly IActorRef _runs;
    private readonly RunIndexStore _index;
    private readonly WebhookSender? _webhook;
    private readonly ILoggingAdapter _log = Context.GetLogger();
    private readonly HashSet<string> _confirming = [];
    // Resource-deadlock incidents being written: the coordinator reports a victim again until it hears it was taken,
    // which it hears only once the incident is journalled, so a report in between must open (alert, cancel) nothing.
    private readonly HashSet<string> _opening = [];
    private readonly HashSet<string> _settling = [];
    private readonly HashSet<string> _resending = [];
    private readonly HashSet<string> _resolving = [];
    // A receiver that keeps incidents open until told (PagerDuty) is told when ours close; a chat message needs no end.
    private readonly bool _resolvesAlerts;
    private IActorRef? _alerter;
    private SupervisorState _state = SupervisorState.Empty;
    private bool _scanning;

    public DeadlockSupervisor(MonitorSettings settings, IActorRef runs, RunIndexStore index, WebhookSender? webhook)
    {
        _settings = settings;
        _runs = runs;
        _index = index;
        _webhook = webhook;
        _resolvesAlerts = webhook is not null && AlertPayloads.Resolve(webhook.Settings.Format, webhook.Settings.Url) == AlertFormat.pagerduty;
    }

    public static Props Props(MonitorSettings settings, IActorRef runs, RunIndexStore index, WebhookSender? webhook) =>
        Akka.Actor.Props.Create(() => new DeadlockSupervisor(settings, runs, index, webhook));

    public override string PersistenceId => "deadlock-supervisor";

    public ITimerScheduler Timers { get; set; } = null!;

    protected override void PreStart()
    {
        if (_webhook is not null) _alerter = Context.ActorOf(Alerter.Props(_webhook), "alerter");
        base.PreStart();
    }

    protected override void OnRecover(object message)
    {
        switch (message)
        {
            case SnapshotOffer { Snapshot: SupervisorState s }:
                _state = s;
                break;
            case IDeeplineMessage e:
                _state = _state.Apply(e);
                break;
            case RecoveryCompleted:
                Timers.StartPeriodicTimer(ScanTimer, ScanTick.Instance, TimeSpan.FromMilliseconds(200), _settings.CheckInterval);
                foreach (var incident in _state.Unfinished(_settings.CancelOnDeadlock, _alerter is not null))
                {
                    if (_alerter is not null && !incident.Alerted)
                        _alerter.Tell(new AlertRequest(incident.Detection, incident.DetectedAt, _settings.CancelOnDeadlock));
                    if (_settings.CancelOnDeadlock && incident.AutoCancel && !incident.Cancelled) Cancel(incident.Detection);
                }
                break;
        }
    }

    protected override void OnCommand(object message)
    {
        switch (message)
        {
            case RunSuspected s:
                Consider(s.Detection.RunId, "timer");
                break;
            case ResourceDeadlockFound f:
                OnResourceDeadlock(f.Detection, Sender);
                break;
            case ScanTick when !_scanning:
                FollowUp();
                _scanning = true;
                var started = Stopwatch.GetTimestamp();
                _index.DueAsync(DateTimeOffset.UtcNow, _settings.ScanLimit)
                    .PipeTo(Self, success: due => new ScanDone(due, Stopwatch.GetElapsedTime(started), null),
                        failure: ex => new ScanDone([], Stopwatch.GetElapsedTime(started), ex));
                break;
            case ScanTick:
                FollowUp();
                break;
            case Settled s:
                OnSettled(s);
                break;
            case ScanDone done:
                OnScanDone(done);
                break;
            case Confirmation c:
                OnConfirmation(c);
                break;
            case Explained x:
                OnExplained(x);
                break;
            case CancelAnswer a:
                OnCancelAnswer(a);
                break;
            case RetryCancel r when _state.Incidents.TryGetValue(r.RunId, out var incident) && !incident.Cancelled:
                Cancel(incident.Detection);
                break;
            case AlertOutcome o:
                OnAlertOutcome(o);
                break;
            case GetIncidents q:
                Sender.Tell(IncidentQueries.Newest(_state, q.Limit));
                break;
            case ManualScan scan:
                RunManualScan(scan).PipeTo(Sender);
                break;
            case GetMonitorStatus:
                var state = _state;
                _index.LagAsync().ContinueWith(lag => new MonitorStatus(true, state.LastScan, state.LastScanDurationMs, state.Stats,
                    state.Incidents.Count, lag.IsCompletedSuccessfully ? lag.Result : -1)
                {
                    DeadLetters = [.. state.DeadLetters.Values.OrderBy(l => l.FirstFailedAt)],
                    PendingResolves = state.PendingResolves.Count,
                }).PipeTo(Sender);
                break;
            case SaveSnapshotSuccess ok:
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
        if (LastSequenceNr % 500 == 0) SaveSnapshot(_state);
    }

    private void OnScanDone(ScanDone done)
    {
        _scanning = false;
        var failed = done.Error is not null;
        if (failed) _log.Error(done.Error, "Deadlock scan failed");
        PersistAsync(new ScanRecorded(DateTimeOffset.UtcNow, done.Duration.TotalMilliseconds, failed), Apply);
        var fresh = done.Due.Select(d => d.RunId).Distinct().Where(id => !_state.Knows(id)).ToList();
        if (fresh.Count == 0)
        {
            if (!failed) _log.Debug("No deadlocks detected in current scan");
            return;
        }
        foreach (var runId in fresh) Consider(runId, "scan");
    }

    /// <summary>Asks the run for its current state: a suspicion is only acted on if that state confirms it.</summary>
    private void Consider(string runId, string via)
    {
        if (Known(runId) || !_confirming.Add(runId)) return;
        _runs.Ask<IDeeplineMessage>(new GetRun(runId), AskTimeout)
            .PipeTo(Self, success: reply => new Confirmation(runId, via, reply), failure: _ => new Confirmation(runId, via, null));
    }

    private void OnConfirmation(Confirmation c)
    {
        var now = DateTimeOffset.UtcNow;
        if (c.Reply is not RunReply { State: var run } || Known(c.RunId)
            || StuckDetector.Evaluate(run, _settings.Thresholds, now) is not { } detection)
        {
            _confirming.Remove(c.RunId);
            return;
        }

        // Starvation made explicit: a run stale while its tasks wait for resources names who holds them and what those
        // holders wait for. Only the coordinator knows; a silent one leaves the run's own explanation as it is.
        if (detection.Reason == StuckReason.stale_pending && run.Tasks.Values.Any(t => !t.WaitingFor.IsEmpty)
            && ActorRegistry.For(Context.System).TryGet<ResourceCoordinator>(out var coordinator))
        {
            coordinator.Ask<IDeeplineMessage>(new ExplainRunWaits(c.RunId), ExplainTimeout)
                .PipeTo(Self, success: reply => new Explained(c.Via, detection, reply), failure: _ => new Explained(c.Via, detection, null));
            return;
        }
        // A run stale with ready tasks in external pools: whether any worker polls those pools is the first question.
        if (detection.Reason == StuckReason.stale_pending && run.Tasks.Values.Any(t => t.Ready)
            && ActorRegistry.For(Context.System).TryGet<TaskQueues>(out var queues))
        {
            queues.Ask<IDeeplineMessage>(GetQueueStats.Instance, ExplainTimeout)
                .PipeTo(Self, success: reply => new Explained(c.Via, detection, reply, run), failure: _ => new Explained(c.Via, detection, null));
            return;
        }
        Open(c.Via, detection);
    }

    private void OnExplained(Explained x)
    {
        // An incident may have been opened meanwhile (a resource deadlock of the same run): one incident per run.
        if (Known(x.Detection.RunId))
        {
            _confirming.Remove(x.Detection.RunId);
            return;
        }
        var detection = x.Reply switch
        {
            RunWaitsExplained { Waits.IsEmpty: false } e =>
                x.Detection with { Explanation = $"{x.Detection.Explanation}; run {x.Detection.RunId} {string.Join("; and ", e.Waits.Select(w => w.Text))}" },
            QueueStats stats when x.Run is not null && PoolHints.Unpolled(x.Run, stats, DateTimeOffset.UtcNow) is { Length: > 0 } hint =>
                x.Detection with { Explanation = $"{x.Detection.Explanation}; {hint}" },
            _ => x.Detection,
        };
        Open(x.Via, detection);
    }

    private void Open(string via, Detection detection)
    {
        var now = DateTimeOffset.UtcNow;
        var c = (RunId: detection.RunId, Via: via);
        // PersistAsync lets many incidents share journal round-trips; the run stays in _confirming until its
        // incident is applied, so no second suspicion of it can slip in between.
        PersistAsync(new IncidentOpened(detection, now, c.Via) { AutoCancel = _settings.CancelOnDeadlock }, e =>
        {
            Apply(e);
            _confirming.Remove(c.RunId);
            _log.Info("Deadlock detected for workflow {run_id} with {stuck_tasks} stuck tasks (deadlock_reason: {deadlock_reason}, via {via}): {explanation}",
                detection.RunId, detection.StuckTasks.Length, detection.Reason.ToString(), c.Via, detection.Explanation);
            _alerter?.Tell(new AlertRequest(detection, now, _settings.CancelOnDeadlock));
            if (_settings.CancelOnDeadlock) Cancel(detection);
        });
    }

    protected override void OnPersistRejected(Exception cause, object @event, long sequenceNr)
    {
        // A refused incident is not being written any more: the coordinator's next report of its victim opens it anew.
        if (@event is IncidentOpened { Via: "resource_graph" } o) _opening.Remove(o.Detection.RunId);
        base.OnPersistRejected(cause, @event, sequenceNr);
    }

    /// <summary>An incident of the run is journalled or being written.</summary>
    private bool Known(string runId) => _state.Knows(runId) || _opening.Contains(runId);

    /// <summary>
    /// A resource deadlock needs no confirmation against the run's state: the coordinator found it in its own journalled
    /// graph and already chose this run as the one victim of its cycle. It becomes an incident like any other.
    /// </summary>
    private void OnResourceDeadlock(Detection detection, IActorRef coordinator)
    {
        if (_state.Knows(detection.RunId))
        {
            coordinator.Tell(new ResourceDeadlockTaken(detection.RunId));
            return;
        }
        // Its own write's handler tells the coordinator it was taken.
        if (!_opening.Add(detection.RunId)) return;
        var now = DateTimeOffset.UtcNow;
        // The victim is cancelled while the incident is being written, not after: the coordinator's choice is already
        // journalled, the victim's own cancel record names the whole cycle, and a repeated cancel changes nothing, so
        // a crash before this write costs one more (idempotent) cancel when the coordinator reports the victim again,
        // never a lost one. The cancel's answer is journalled after the incident (PersistAsync keeps their order).
        // The alert still waits for the incident: it is sent once per journalled incident.
        if (_settings.CancelOnDeadlock) Cancel(detection);
        PersistAsync(new IncidentOpened(detection, now, "resource_graph") { AutoCancel = _settings.CancelOnDeadlock }, e =>
        {
            Apply(e);
            _opening.Remove(detection.RunId);
            _log.Info("Deadlock detected for workflow {run_id} with {stuck_tasks} stuck tasks (deadlock_reason: {deadlock_reason}, via {via}): {explanation}",
                detection.RunId, detection.StuckTasks.Length, detection.Reason.ToString(), "resource_graph", detection.Explanation);
            _alerter?.Tell(new AlertRequest(detection, now, _settings.CancelOnDeadlock));
            coordinator.Tell(new ResourceDeadlockTaken(detection.RunId));
        });
    }

    /// <summary>
    /// The seed's exact reason, so that filters on it match; the detector goes in its own field. A resource deadlock's
    /// reason names the whole cycle instead: the victim's owner must see which other runs it lost to.
    /// </summary>
    public static CancelRun AutoCancel(Detection d) =>
        new(d.RunId, d.Reason == StuckReason.resource_deadlock ? "auto-cancel: " + d.Explanation : AutoCancelReason, "system", Force: false)
        {
            DeadlockReason = d.Reason.ToString(),
        };

    private void Cancel(Detection d) =>
        _runs.Ask<IDeeplineMessage>(AutoCancel(d), AskTimeout)
            .PipeTo(Self, success: reply => new CancelAnswer(d.RunId, reply), failure: _ => new CancelAnswer(d.RunId, null));

    private void OnCancelAnswer(CancelAnswer a)
    {
        switch (a.Reply)
        {
            case CancelReply reply:
                // The run itself logs the seed's "Workflow X cancelled: auto-cancel: deadlock detected" line.
                PersistAsync(new IncidentCancelled(a.RunId, !reply.AlreadyRequested, DateTimeOffset.UtcNow), Apply);
                break;
            case CommandRejected:
                // The run finished (or vanished) before the cancel landed: nothing left to cancel.
                PersistAsync(new IncidentCancelled(a.RunId, false, DateTimeOffset.UtcNow), Apply);
                break;
            default:
                _log.Warning("Cancel of deadlocked workflow {run_id} not confirmed yet; retrying", a.RunId);
                Timers.StartSingleTimer(("retry-cancel", a.RunId), new RetryCancel(a.RunId), TimeSpan.FromSeconds(2));
                break;
        }
    }

    /// <summary>
    /// Every scan tick: asks the runs of open incidents how they stand (an incident closes when its run recovered or
    /// finished), and sends dead-lettered alerts whose backoff is over, or gives up those past their expiry.
    /// </summary>
    private void FollowUp()
    {
        var now = DateTimeOffset.UtcNow;
        foreach (var incident in _state.Settleable().Where(i => !_settling.Contains(i.Detection.RunId))
                     .OrderBy(i => i.DetectedAt).Take(Math.Max(0, _settings.SettleLimit - _settling.Count)))
        {
            var runId = incident.Detection.RunId;
            _settling.Add(runId);
            _runs.Ask<IDeeplineMessage>(new GetRun(runId), AskTimeout)
                .PipeTo(Self, success: reply => new Settled(runId, reply), failure: _ => new Settled(runId, null));
        }

        var (due, expired) = _state.DeadLettersAt(now, _settings.DeadLetterExpiry);
        foreach (var letter in expired)
            _log.Error("Failed to send deadlock alert: gave up on the alert for workflow {run_id} after {attempts} attempts since {first_failed_at}",
                letter.Detection.RunId, letter.Attempts, letter.FirstFailedAt);
        if (expired.Count > 0) PersistAllAsync(expired.Select(l => new AlertExpired(l.Detection.RunId, now)), Apply);
        if (_alerter is null) return;
        foreach (var letter in due.Where(l => _resending.Add(l.Detection.RunId)))
            _alerter.Tell(new AlertRequest(letter.Detection, letter.DetectedAt, letter.AutoCancel));
        SendResolves(now);
    }

    /// <summary>Resolves owed whose backoff is over; those past the dead-letter expiry are given up.</summary>
    private void SendResolves(DateTimeOffset now)
    {
        var (due, expired) = _state.ResolvesAt(now, _settings.DeadLetterExpiry);
        // One in flight is not given up under its own answer: that answer decides.
        var givenUp = expired.Where(r => !_resolving.Contains(r.RunId)).ToList();
        foreach (var r in givenUp)
            _log.Error("Failed to resolve deadlock alert: gave up on the resolve for workflow {run_id} after {attempts} attempts", r.RunId, r.Attempts);
        if (givenUp.Count > 0) PersistAllAsync(givenUp.Select(r => new AlertExpired(r.RunId, now) { Resolve = true }), Apply);
        if (_alerter is null) return;
        foreach (var r in due.Where(r => _resolving.Add(r.RunId)))
            _alerter.Tell(new ResolveRequest(r.RunId));
    }

    private void OnSettled(Settled s)
    {
        _settling.Remove(s.RunId);
        if (s.Reply is not RunReply { State: var run } || !_state.Incidents.TryGetValue(s.RunId, out var incident)
            || SupervisorState.Settle(run, _settings.Thresholds, DateTimeOffset.UtcNow, incident.Detection.Reason) is not { } outcome)
            return;
        var closed = new IncidentClosed(s.RunId, outcome, DateTimeOffset.UtcNow) { Resolve = _resolvesAlerts && _state.ResolveOnClose(s.RunId) };
        PersistAsync(closed, e =>
        {
            var undelivered = _state.DeadLetters.ContainsKey(s.RunId);
            Apply(e);
            _log.Info("Incident for workflow {run_id} closed: {outcome}", s.RunId, outcome.ToString());
            if (undelivered && !_state.DeadLetters.ContainsKey(s.RunId))
                _log.Info("Alert for workflow {run_id} withdrawn: its incident closed ({outcome}) before the alert could be delivered",
                    s.RunId, outcome.ToString());
            if (closed.Resolve) SendResolves(closed.At);
        });
    }

    private void OnAlertOutcome(AlertOutcome o)
    {
        var now = DateTimeOffset.UtcNow;
        if (o.Resolve)
        {
            _resolving.Remove(o.RunId);
            var tries = (_state.PendingResolves.TryGetValue(o.RunId, out var pending) ? pending.Attempts : 0) + 1;
            PersistAsync(new AlertResolveSent(o.RunId, o.Delivered, now) { RetryAt = o.Delivered ? null : now + _settings.DeadLetterDelay(tries) }, e =>
            {
                Apply(e);
                if (o.Delivered) _log.Info("Deadlock alert for workflow {run_id} resolved at the receiver", o.RunId);
            });
            return;
        }
        _resending.Remove(o.RunId);
        if (o.Delivered)
        {
            // Delivered after its incident closed (a dead letter of a real incident, or a delivery under way at the close).
            var alerted = new IncidentAlerted(o.RunId, true, now) { Resolve = _resolvesAlerts && _state.ResolveOnDelivery(o.RunId) };
            PersistAsync(alerted, e =>
            {
                Apply(e);
                if (alerted.Resolve) SendResolves(now);
            });
            return;
        }
        var attempts = (_state.DeadLetters.TryGetValue(o.RunId, out var letter) ? letter.Attempts : 0) + 1;
        var retryAt = now + _settings.DeadLetterDelay(attempts);
        PersistAsync(new IncidentAlerted(o.RunId, false, now) { RetryAt = retryAt }, e =>
        {
            Apply(e);
            if (attempts == 1 && _state.DeadLetters.ContainsKey(o.RunId))
                _log.Warning("Alert for workflow {run_id} not delivered after its retries: kept in the dead-letter list, next attempt at {next_attempt_at}",
                    o.RunId, retryAt);
        });
    }

    private async Task<ManualScanResult> RunManualScan(ManualScan scan)
    {
        var t = _settings.Thresholds;
        // The node's retry rules stay: a silent task with an attempt left is retried, not stuck, under any thresholds.
        var whatIf = t with
        {
            PendingStaleS = scan.PendingStaleS ?? t.PendingStaleS,
            WorkflowStaleS = scan.WorkflowStaleS ?? t.WorkflowStaleS,
            HeartbeatTimeoutS = scan.HeartbeatTimeoutS ?? t.HeartbeatTimeoutS,
        };
        var now = DateTimeOffset.UtcNow;
        var candidates = await _index.DueUnderAsync(whatIf, now, scan.Limit);
        var flagged = ImmutableArray.CreateBuilder<Detection>();
        foreach (var runId in candidates)
        {
            if (await _runs.Ask<IDeeplineMessage>(new GetRun(runId), AskTimeout) is RunReply { State: var run }
                && StuckDetector.Evaluate(run, whatIf, now) is { } d)
                flagged.Add(d);
        }
        return new ManualScanResult(now, whatIf, candidates.Count, flagged.ToImmutable());
    }

    private sealed record ScanTick
    {
        public static ScanTick Instance { get; } = new();
    }

    private sealed record ScanDone(IReadOnlyList<(string RunId, StuckReason Reason)> Due, TimeSpan Duration, Exception? Error);

    private sealed record Confirmation(string RunId, string Via, IDeeplineMessage? Reply);

    private sealed record CancelAnswer(string RunId, IDeeplineMessage? Reply);

    private sealed record Explained(string Via, Detection Detection, IDeeplineMessage? Reply, WorkflowState? Run = null);

    private sealed record RetryCancel(string RunId);

    private sealed record Settled(string RunId, IDeeplineMessage? Reply);
}
