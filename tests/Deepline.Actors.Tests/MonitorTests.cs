using Akka.Actor;
using Deepline.Actors.Alerting;
using Deepline.Actors.Monitoring;
using Deepline.Domain;
using static Deepline.Actors.Tests.Specs;

namespace Deepline.Actors.Tests;

public sealed class MonitorTests : IDisposable
{
    private readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    private static MonitorSettings Monitor(int pendingStale = 3600, int heartbeat = 3600, int workflowStale = 3600, bool cancel = true, int checkInterval = 1) =>
        new(new DetectorThresholds(pendingStale, workflowStale, heartbeat), TimeSpan.FromSeconds(checkInterval), cancel, false);

    private static TaskSpec External(string id, string pool = "external") => new(id, "python", pool, null, []);

    [Fact]
    public async Task A_run_waiting_on_an_unserved_pool_is_flagged_stale_pending_at_its_threshold_and_cancelled_once()
    {
        await using var node = await TestNode.StartAsync(_dir.Path, monitor: Monitor(pendingStale: 2));
        var submitted = (await node.Ask<RunReply>(new SubmitRun(Run("starving", External("t", "nobody-serves-this"))))).State;

        var cancelled = await node.AwaitRun("starving", s => s.Status == RunStatus.CANCELLED, "auto-cancel", TimeSpan.FromSeconds(10));

        // The seed's reason exactly, so an operator's filter on it matches; the detector in its own field.
        Assert.Equal("auto-cancel: deadlock detected", cancelled.Cancel!.Reason);
        Assert.Equal("stale_pending", cancelled.Cancel.DeadlockReason);
        Assert.Equal("system", cancelled.Cancel.CancelledBy);
        var latency = cancelled.Cancel.CancelledAt - submitted.UpdatedAt;
        Assert.InRange(latency, TimeSpan.FromSeconds(2), TimeSpan.FromSeconds(4));
        // Later scans see the run as an existing incident: counted once.
        await Await.Until(async () => (await node.MonitorStatus()).LastScan > cancelled.Cancel.CancelledAt.AddSeconds(1.5),
            TimeSpan.FromSeconds(10), () => "two more scans");
        var stats = (await node.MonitorStatus()).Stats;
        Assert.Equal((1L, 1L), (stats.DeadlocksDetected, stats.WorkflowsCancelled));
        Assert.Equal(1L, stats.ByReason[StuckReason.stale_pending]);
    }

    [Fact]
    public async Task A_worker_that_stops_heartbeating_gets_its_run_cancelled_and_alerted_once()
    {
        using var receiver = new AlertReceiver();
        var webhook = new WebhookSettings(receiver.Url, AlertFormat.slack, null, TimeSpan.FromSeconds(2), 2, TimeSpan.FromMilliseconds(100));
        await using var node = await TestNode.StartAsync(_dir.Path, monitor: Monitor(heartbeat: 2) with { AlertWebhookConfigured = true }, webhook: webhook);
        await node.Ask<RunReply>(new SubmitRun(Run("silent", External("gpu-job"))));
        await node.Ask<TaskEventAccepted>(new ReportTaskEvent("silent", "gpu-job", TaskEventKind.TASK_STARTED, "gpu-worker-3", null, null));

        var run = await node.AwaitRun("silent", s => s.Cancel is not null, "auto-cancel", TimeSpan.FromSeconds(10));
        await Await.Until(() => receiver.Received.Count >= 1, TimeSpan.FromSeconds(10), "alert received");

        Assert.Equal("auto-cancel: deadlock detected", run.Cancel!.Reason);
        Assert.Equal("no_heartbeat", run.Cancel.DeadlockReason);
        var alert = Assert.Single(receiver.Received);
        Assert.Equal("\U0001F534 Deadlock Alert: Workflow silent", alert["text"]!.GetValue<string>());
        var fields = alert["attachments"]![0]!["fields"]!.AsArray().ToDictionary(f => f!["title"]!.GetValue<string>(), f => f!["value"]!.GetValue<string>());
        Assert.Equal(["Auto-Cancel", "Deadlock Reason", "Last Update", "Stuck Tasks", "Workflow ID", "Workflow Name"], fields.Keys.Order());
        Assert.Equal("no_heartbeat", fields["Deadlock Reason"]);
        Assert.Equal("silent", fields["Workflow ID"]);
        Assert.Equal("1", fields["Stuck Tasks"]);
        Assert.Equal("true", fields["Auto-Cancel"]);
        await Await.Until(async () => (await node.MonitorStatus()).Stats.AlertsSent == 1, TimeSpan.FromSeconds(5), () => "alert counted");
        var stats = (await node.MonitorStatus()).Stats;
        Assert.Equal(1L, stats.DeadlocksDetected);
        // The seed's alert response time: detection to delivered notification, a real (non-zero) HTTP round trip here.
        Assert.InRange(stats.AvgAlertResponseTimeS, double.Epsilon, 10);
    }

    [Fact]
    public async Task Slow_but_healthy_runs_are_never_flagged()
    {
        // heartbeat_timeout 2 s: in-cluster pools heartbeat every 300 ms here, so a 3 s task is healthy throughout;
        // a chain that makes progress never goes pending_stale_s (1 s) without a transition.
        await using var node = await TestNode.StartAsync(_dir.Path, monitor: Monitor(pendingStale: 1, heartbeat: 2));
        var longTask = new TaskSpec("long", "delay", TaskSpec.DefaultPool, System.Text.Json.JsonSerializer.SerializeToElement(new { ms = 3000 }), []);
        var step = System.Text.Json.JsonSerializer.SerializeToElement(new { ms = 400 });
        await node.Ask<RunReply>(new SubmitRun(Run("slow", longTask)));
        await node.Ask<RunReply>(new SubmitRun(Run("chain",
            new TaskSpec("s1", "delay", "default", step, []), new TaskSpec("s2", "delay", "default", step, ["s1"]),
            new TaskSpec("s3", "delay", "default", step, ["s2"]), new TaskSpec("s4", "delay", "default", step, ["s3"]))));

        Assert.Equal(RunStatus.SUCCEEDED, (await node.AwaitRun("slow", s => s.Status.IsTerminal(), "long task ends", TimeSpan.FromSeconds(15))).Status);
        Assert.Equal(RunStatus.SUCCEEDED, (await node.AwaitRun("chain", s => s.Status.IsTerminal(), "chain ends", TimeSpan.FromSeconds(15))).Status);
        Assert.Equal(0L, (await node.MonitorStatus()).Stats.DeadlocksDetected);
    }

    [Fact]
    public async Task The_index_scan_catches_a_stuck_run_that_never_reported_itself()
    {
        // Runs arm no timers here: only the supervisor's scan of the run index can find them.
        await using var node = await TestNode.StartAsync(_dir.Path, monitor: Monitor(workflowStale: 2), runTimers: false);
        await node.Ask<RunReply>(new SubmitRun(Run("old", External("t"))));
        await node.Ask<TaskEventAccepted>(new ReportTaskEvent("old", "t", TaskEventKind.TASK_STARTED, "w", null, null));

        var run = await node.AwaitRun("old", s => s.Cancel is not null, "scan finds the run", TimeSpan.FromSeconds(10));

        Assert.Equal("auto-cancel: deadlock detected", run.Cancel!.Reason);
        Assert.Equal("run_timeout", run.Cancel.DeadlockReason);
        var stats = (await node.MonitorStatus()).Stats;
        Assert.Equal(1L, stats.ByReason[StuckReason.run_timeout]);
        Assert.True(stats.AvgDetectionTimeS <= 3, $"scan detection took {stats.AvgDetectionTimeS} s beyond the threshold");
    }

    [Fact]
    public async Task A_manual_scan_shows_what_a_lower_threshold_would_flag_and_changes_nothing()
    {
        await using var node = await TestNode.StartAsync(_dir.Path, monitor: Monitor(pendingStale: 3600));
        await node.Ask<RunReply>(new SubmitRun(Run("waiting", External("t"))));
        await node.Ask<RunReply>(new SubmitRun(Run("busy", Task("h", "hang"))));
        await node.AwaitRun("busy", s => s.Counts.Running == 1, "busy runs");
        await Await.Until(async () => (await node.MonitorStatus()).ProjectionLag == 0, TimeSpan.FromSeconds(10), () => "index caught up");

        await Await.Until(async () =>
        {
            var r = await node.Supervisor!.Ask<ManualScanResult>(new ManualScan(PendingStaleS: 1, null, null), TimeSpan.FromSeconds(10));
            return r.Flagged.Any(d => d.RunId == "waiting" && d.Reason == StuckReason.stale_pending) && r.Flagged.All(d => d.RunId != "busy");
        }, TimeSpan.FromSeconds(10), () => "what-if scan flags the waiting run only");

        Assert.Null((await node.Run("waiting")).Cancel);
        Assert.Equal(0L, (await node.MonitorStatus()).Stats.DeadlocksDetected);
    }

    [Fact]
    public async Task Without_auto_cancel_an_incident_closes_when_its_run_recovers_and_counts_as_a_false_positive()
    {
        // cancel_on_deadlock false: the run is only flagged. It is waiting on an external pool that comes late.
        var monitor = Monitor(pendingStale: 1, cancel: false);
        await using (var node = await TestNode.StartAsync(_dir.Path, monitor: monitor))
        {
            await node.Ask<RunReply>(new SubmitRun(Run("late-worker", External("t"))));
            await Await.Until(async () => (await node.MonitorStatus()).OpenIncidents == 1, TimeSpan.FromSeconds(10), () => "incident opened");

            // The worker shows up: the run is healthy again, the incident closes, and it was a false positive.
            await node.Ask<TaskEventAccepted>(new ReportTaskEvent("late-worker", "t", TaskEventKind.TASK_STARTED, "w", null, null));
            await Await.Until(async () => (await node.MonitorStatus()).OpenIncidents == 0, TimeSpan.FromSeconds(10), () => "incident closed");
            var stats = (await node.MonitorStatus()).Stats;
            Assert.Equal(1L, stats.ClosedByOutcome[IncidentOutcome.recovered]);
            Assert.Equal(1L, stats.FalsePositives);

            // A second run stays stuck while auto-cancel is off: its incident stays open.
            await node.Ask<RunReply>(new SubmitRun(Run("left-alone", External("t", "nobody-serves-this"))));
            await Await.Until(async () => (await node.MonitorStatus()).OpenIncidents == 1, TimeSpan.FromSeconds(10), () => "second incident opened");
        }

        // Auto-cancel turned back on later: an incident opened while it was off is not cancelled behind the operator's back.
        var since = DateTimeOffset.UtcNow;
        await using var restarted = await TestNode.StartAsync(_dir.Path, monitor: monitor with { CancelOnDeadlock = true });
        await Await.Until(async () => (await restarted.MonitorStatus()).LastScan is { } t && t > since.AddSeconds(2.5),
            TimeSpan.FromSeconds(15), () => "two scans after the restart");
        Assert.Equal(2L, (await restarted.MonitorStatus()).Stats.DeadlocksDetected);
        Assert.Null((await restarted.Run("left-alone")).Cancel);
        Assert.Equal(0L, (await restarted.MonitorStatus()).Stats.WorkflowsCancelled);
    }

    [Fact]
    public async Task An_auto_cancelled_incident_closes_as_cancelled_once_its_run_is_CANCELLED()
    {
        await using var node = await TestNode.StartAsync(_dir.Path, monitor: Monitor(pendingStale: 1));
        await node.Ask<RunReply>(new SubmitRun(Run("settles", External("t", "nobody-serves-this"))));
        await node.AwaitRun("settles", s => s.Status == RunStatus.CANCELLED, "auto-cancel", TimeSpan.FromSeconds(10));

        await Await.Until(async () => (await node.MonitorStatus()).OpenIncidents == 0, TimeSpan.FromSeconds(10), () => "incident closed");
        var stats = (await node.MonitorStatus()).Stats;
        Assert.Equal(1L, stats.ClosedByOutcome[IncidentOutcome.cancelled]);
        Assert.Equal(0L, stats.FalsePositives);
    }

    [Fact]
    public async Task An_alert_whose_retries_fail_goes_to_the_dead_letter_list_and_is_delivered_on_a_later_attempt()
    {
        // One attempt and one retry fail (500, 500), and so does the first dead-letter attempt; the next one is delivered.
        using var receiver = new AlertReceiver((500, TimeSpan.Zero), (500, TimeSpan.Zero), (500, TimeSpan.Zero), (200, TimeSpan.Zero));
        var webhook = new WebhookSettings(receiver.Url, AlertFormat.generic, null, TimeSpan.FromSeconds(2), 1, TimeSpan.FromMilliseconds(50));
        var monitor = Monitor(pendingStale: 1) with
        {
            AlertWebhookConfigured = true,
            DeadLetterBaseDelay = TimeSpan.FromMilliseconds(500),
            DeadLetterMaxDelay = TimeSpan.FromSeconds(1),
        };
        await using var node = await TestNode.StartAsync(_dir.Path, monitor: monitor, webhook: webhook);
        await node.Ask<RunReply>(new SubmitRun(Run("unheard", External("t", "nobody-serves-this"))));

        await Await.Until(async () => (await node.MonitorStatus()).DeadLetters.Any(l => l.Detection.RunId == "unheard"),
            TimeSpan.FromSeconds(10), () => "alert dead-lettered");
        Assert.Equal(1L, (await node.MonitorStatus()).Stats.AlertsFailed);

        await Await.Until(async () => (await node.MonitorStatus()).Stats.AlertsSent == 1, TimeSpan.FromSeconds(15), () => "delivered from the dead-letter list");
        var status = await node.MonitorStatus();
        Assert.Empty(status.DeadLetters);
        Assert.Equal(4, receiver.Received.Count);
        Assert.All(receiver.Received, body => Assert.Equal("unheard", body["details"]!["run_id"]!.GetValue<string>()));
    }

    [Fact]
    public void Dead_letters_back_off_doubling_up_to_the_maximum_and_expire()
    {
        var settings = Monitor() with { DeadLetterBaseDelay = TimeSpan.FromMinutes(1), DeadLetterMaxDelay = TimeSpan.FromHours(1) };
        Assert.Equal([1, 2, 4, 8, 16, 32, 60, 60], Enumerable.Range(1, 8).Select(a => settings.DeadLetterDelay(a).TotalMinutes));

        var t0 = DateTimeOffset.UnixEpoch;
        var d = new Detection("r", "wf", StuckReason.stale_pending, t0, t0, ["t"], "stuck");
        var state = SupervisorState.Empty
            .Apply(new IncidentOpened(d, t0, "timer"))
            .Apply(new IncidentAlerted("r", false, t0) { RetryAt = t0.AddMinutes(1) });
        Assert.Empty(state.DeadLettersAt(t0.AddSeconds(59), TimeSpan.FromHours(24)).Due);
        Assert.Single(state.DeadLettersAt(t0.AddMinutes(1), TimeSpan.FromHours(24)).Due);
        Assert.Single(state.DeadLettersAt(t0.AddHours(24), TimeSpan.FromHours(24)).Expired);

        var expired = state.Apply(new AlertExpired("r", t0.AddHours(24)));
        Assert.Empty(expired.DeadLetters);
        Assert.Equal(1L, expired.Stats.AlertsExpired);
    }

    [Fact]
    public async Task Incidents_survive_a_restart_and_are_neither_repeated_nor_forgotten()
    {
        using var receiver = new AlertReceiver();
        var webhook = new WebhookSettings(receiver.Url, AlertFormat.generic, null, TimeSpan.FromSeconds(2), 1, TimeSpan.FromMilliseconds(100));
        var monitor = Monitor(pendingStale: 1) with { AlertWebhookConfigured = true };
        await using (var node = await TestNode.StartAsync(_dir.Path, monitor: monitor, webhook: webhook))
        {
            await node.Ask<RunReply>(new SubmitRun(Run("stuck", External("t", "nobody"))));
            await node.AwaitRun("stuck", s => s.Status == RunStatus.CANCELLED, "auto-cancel", TimeSpan.FromSeconds(10));
            await Await.Until(async () => (await node.MonitorStatus()).Stats.AlertsSent == 1, TimeSpan.FromSeconds(10), () => "alerted");
        }

        await using var restarted = await TestNode.StartAsync(_dir.Path, monitor: monitor, webhook: webhook);
        await Await.Until(async () => (await restarted.MonitorStatus()).LastScan is { } t && t > DateTimeOffset.UtcNow.AddSeconds(-0.5),
            TimeSpan.FromSeconds(10), () => "a scan after restart");

        var stats = (await restarted.MonitorStatus()).Stats;
        Assert.Equal((1L, 1L, 1L), (stats.DeadlocksDetected, stats.WorkflowsCancelled, stats.AlertsSent));
        Assert.Single(receiver.Received);
    }

    [Fact]
    public async Task An_undelivered_alert_of_an_incident_that_closed_as_a_false_positive_is_withdrawn_not_sent_late()
    {
        // The alert and its retry fail; the dead letter's next attempt is due in 6 s (room for a loaded machine). The run
        // recovers before that.
        using var receiver = new AlertReceiver((500, TimeSpan.Zero), (500, TimeSpan.Zero));
        var webhook = new WebhookSettings(receiver.Url, AlertFormat.generic, null, TimeSpan.FromSeconds(2), 1, TimeSpan.FromMilliseconds(50));
        var monitor = Monitor(pendingStale: 1, cancel: false) with { AlertWebhookConfigured = true, DeadLetterBaseDelay = TimeSpan.FromSeconds(6) };
        await using var node = await TestNode.StartAsync(_dir.Path, monitor: monitor, webhook: webhook);
        await node.Ask<RunReply>(new SubmitRun(Run("late-worker", External("t"))));
        await Await.Until(async () => (await node.MonitorStatus()).DeadLetters.Any(l => l.Detection.RunId == "late-worker"),
            TimeSpan.FromSeconds(10), () => "alert dead-lettered");
        var due = (await node.MonitorStatus()).DeadLetters.Single().NextAttemptAt;

        await node.Ask<TaskEventAccepted>(new ReportTaskEvent("late-worker", "t", TaskEventKind.TASK_STARTED, "w", null, null));
        await Await.Until(async () => (await node.MonitorStatus()).OpenIncidents == 0, TimeSpan.FromSeconds(10), () => "incident closed");
        Assert.True(DateTimeOffset.UtcNow < due, "the run recovered only after the dead letter was due: the test proves nothing");
        // Two scans past the time the dead letter was due: it would have been sent by then.
        await Await.Until(async () => (await node.MonitorStatus()).LastScan is { } t && t > due.AddSeconds(1.5),
            TimeSpan.FromSeconds(20), () => "two scans after the dead letter was due");

        var status = await node.MonitorStatus();
        Assert.Empty(status.DeadLetters);
        Assert.Equal((1L, 0L, 1L), (status.Stats.AlertsWithdrawn, status.Stats.AlertsSent, status.Stats.ClosedByOutcome[IncidentOutcome.recovered]));
        Assert.Equal(2, receiver.Received.Count);
    }

    [Fact]
    public async Task A_PagerDuty_incident_opened_by_the_node_is_resolved_when_its_incident_closes()
    {
        using var receiver = new AlertReceiver();
        var webhook = new WebhookSettings(receiver.Url, AlertFormat.pagerduty, "routing-key", TimeSpan.FromSeconds(2), 1, TimeSpan.FromMilliseconds(50));
        var monitor = Monitor(pendingStale: 1, cancel: false) with { AlertWebhookConfigured = true };
        await using var node = await TestNode.StartAsync(_dir.Path, monitor: monitor, webhook: webhook);
        await node.Ask<RunReply>(new SubmitRun(Run("paged", External("t"))));
        await Await.Until(async () => (await node.MonitorStatus()).Stats.AlertsSent == 1, TimeSpan.FromSeconds(10), () => "trigger delivered");

        await node.Ask<TaskEventAccepted>(new ReportTaskEvent("paged", "t", TaskEventKind.TASK_STARTED, "w", null, null));
        await Await.Until(() => System.Threading.Tasks.Task.FromResult(receiver.Received.Count == 2), TimeSpan.FromSeconds(10), () => "resolve delivered");
        var (trigger, resolve) = (receiver.Received.First(), receiver.Received.Last());
        Assert.Equal(("trigger", "resolve"), (trigger["event_action"]!.GetValue<string>(), resolve["event_action"]!.GetValue<string>()));
        Assert.Equal(("paged", "paged"), (trigger["dedup_key"]!.GetValue<string>(), resolve["dedup_key"]!.GetValue<string>()));
        Assert.Equal("routing-key", resolve["routing_key"]!.GetValue<string>());
        await Await.Until(async () => (await node.MonitorStatus()).PendingResolves == 0, TimeSpan.FromSeconds(10), () => "resolve recorded");
    }

    [Fact]
    public async Task A_real_incidents_dead_letter_is_still_delivered_after_it_closed_and_then_resolved()
    {
        // Auto-cancelled (a real incident) while its alert waits in the dead-letter list: the alert still goes, then its resolve.
        using var receiver = new AlertReceiver((500, TimeSpan.Zero), (500, TimeSpan.Zero));
        var webhook = new WebhookSettings(receiver.Url, AlertFormat.pagerduty, "k", TimeSpan.FromSeconds(2), 1, TimeSpan.FromMilliseconds(50));
        var monitor = Monitor(pendingStale: 1) with { AlertWebhookConfigured = true, DeadLetterBaseDelay = TimeSpan.FromSeconds(6) };
        await using var node = await TestNode.StartAsync(_dir.Path, monitor: monitor, webhook: webhook);
        await node.Ask<RunReply>(new SubmitRun(Run("real", External("t", "nobody-serves-this"))));
        await Await.Until(async () => (await node.MonitorStatus()).DeadLetters.Any(), TimeSpan.FromSeconds(10), () => "alert dead-lettered");
        await Await.Until(async () => (await node.MonitorStatus()).OpenIncidents == 0, TimeSpan.FromSeconds(10), () => "incident closed as cancelled");
        Assert.Single((await node.MonitorStatus()).DeadLetters);

        await Await.Until(() => System.Threading.Tasks.Task.FromResult(receiver.Received.Count == 4), TimeSpan.FromSeconds(20), () => "late trigger and resolve delivered");
        Assert.Equal(["trigger", "trigger", "trigger", "resolve"], receiver.Received.Select(b => b["event_action"]!.GetValue<string>()));
        var status = await node.MonitorStatus();
        Assert.Equal((1L, 0L, 1L), (status.Stats.AlertsSent, status.Stats.AlertsWithdrawn, status.Stats.ClosedByOutcome[IncidentOutcome.cancelled]));
    }

    [Fact]
    public void Closing_withdraws_a_false_positives_dead_letter_keeps_a_real_ones_and_owes_a_resolve_when_told()
    {
        var t0 = DateTimeOffset.UnixEpoch;
        SupervisorState Undelivered(string run) => SupervisorState.Empty
            .Apply(new IncidentOpened(new Detection(run, "wf", StuckReason.stale_pending, t0, t0, ["t"], "stuck"), t0, "timer"))
            .Apply(new IncidentAlerted(run, false, t0) { RetryAt = t0.AddMinutes(1) });

        var recovered = Undelivered("r").Apply(new IncidentClosed("r", IncidentOutcome.recovered, t0.AddSeconds(5)));
        Assert.Empty(recovered.DeadLetters);
        Assert.Equal(1L, recovered.Stats.AlertsWithdrawn);

        var cancelled = Undelivered("r").Apply(new IncidentClosed("r", IncidentOutcome.cancelled, t0.AddSeconds(5)));
        Assert.Single(cancelled.DeadLetters);
        Assert.True(cancelled.ResolveOnDelivery("r"));
        var delivered = cancelled.Apply(new IncidentAlerted("r", true, t0.AddMinutes(1)) { Resolve = true });
        Assert.Empty(delivered.DeadLetters);
        Assert.Single(delivered.ResolvesAt(t0.AddMinutes(1), TimeSpan.FromHours(24)).Due);

        var failed = delivered.Apply(new AlertResolveSent("r", false, t0.AddMinutes(1)) { RetryAt = t0.AddMinutes(2) });
        Assert.Empty(failed.ResolvesAt(t0.AddMinutes(1.5), TimeSpan.FromHours(24)).Due);
        Assert.Equal(1, failed.PendingResolves["r"].Attempts);
        Assert.Single(failed.ResolvesAt(t0.AddMinutes(1).AddHours(24), TimeSpan.FromHours(24)).Expired);
        Assert.Empty(failed.Apply(new AlertResolveSent("r", true, t0.AddMinutes(2))).PendingResolves);
        Assert.Empty(failed.Apply(new AlertExpired("r", t0.AddHours(25)) { Resolve = true }).PendingResolves);
    }
}
