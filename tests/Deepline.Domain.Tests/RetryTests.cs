using System.Collections.Immutable;
using Xunit;

namespace Deepline.Domain.Tests;

/// <summary>Attempts, retry policies, fencing of stale attempts, lost workers and poison: the run's side of retrying.</summary>
public class RetryTests
{
    private static readonly DetectorThresholds Node = new(900, 3600, 60);

    private static SubmissionPolicy Policy(int maxAttempts = 3, double initial = 1, double coefficient = 2, double max = 60, int poisonAfter = 3) =>
        SubmissionPolicy.Default with { Retry = new RetrySettings(new RetryPolicy(maxAttempts, initial, coefficient, max), poisonAfter) };

    private static RunHarness Run(string dag, SubmissionPolicy policy, string script = "") => RunHarness.Submitted(dag, script, policy);

    private static ReportTaskEvent Report(RunHarness h, string task, TaskEventKind kind, int? attempt, string worker = "w1", string? errorType = null) =>
        new(h.RunId, task, kind, worker, null, kind == TaskEventKind.TASK_FAILED ? "boom" : null) { Attempt = attempt, ErrorType = errorType };

    [Fact]
    public void A_failed_attempt_with_attempts_left_is_queued_again_behind_its_backoff_and_released_when_due()
    {
        var h = Run("a b<a", Policy(initial: 2, coefficient: 3));
        h.Run("start:a");
        h.Advance();

        var d = h.Send(Report(h, "a", TaskEventKind.TASK_FAILED, 1));

        var failed = Assert.IsType<TaskAttemptFailed>(Assert.Single(d.Persist));
        Assert.Equal((1, AttemptCauses.Failed, "boom"), (failed.Attempt, failed.Cause, failed.Error));
        Assert.Equal(h.Now.AddSeconds(2), failed.RetryAt);
        Assert.Equal(RunStatus.RUNNING, h.S.Status);
        h.AssertTasks("a=QUEUED b=PENDING");
        Assert.False(h.S.Tasks["a"].Ready);
        var reply = Assert.IsType<TaskEventAccepted>(d.Reply);
        Assert.Equal(h.Now.AddSeconds(2), reply.RetryAt);

        // Not startable during the backoff, not released before it is over.
        Assert.Equal(RejectionKind.Conflict, Assert.IsType<CommandRejected>(h.Send(Report(h, "a", TaskEventKind.TASK_STARTED, 2)).Reply).Kind);
        h.Advance(1);
        Assert.Empty(h.Send(new ReleaseRetries(h.RunId)).Persist);
        h.Advance(1);
        Assert.IsType<TaskRetryReleased>(Assert.Single(h.Send(new ReleaseRetries(h.RunId)).Persist));
        Assert.True(h.S.Tasks["a"].Ready);

        // The second attempt waits 2 * 3 s after it fails.
        h.Accept(h.Send(Report(h, "a", TaskEventKind.TASK_STARTED, 2)));
        Assert.Equal(2, h.S.Tasks["a"].Attempts);
        var second = Assert.IsType<TaskAttemptFailed>(Assert.Single(h.Send(Report(h, "a", TaskEventKind.TASK_FAILED, 2)).Persist));
        Assert.Equal(h.Now.AddSeconds(6), second.RetryAt);
    }

    [Fact]
    public void The_run_fails_only_when_the_last_attempt_fails()
    {
        var h = Run("a b<a", Policy(maxAttempts: 2, initial: 0));
        h.Run("start:a fail:a");
        h.AssertTasks("a=QUEUED b=PENDING");
        Assert.True(h.S.Tasks["a"].Ready); // no backoff: dispatched at once

        h.Run("start:a fail:a");

        var last = Assert.IsType<TaskFailed>(h.Journal[^1]);
        Assert.Equal(2, last.Attempt);
        h.AssertTasks("a=FAILED b=SKIPPED");
        Assert.Equal(RunStatus.FAILED, h.S.Status);
    }

    [Fact]
    public void A_retried_task_that_succeeds_releases_its_dependents()
    {
        var h = Run("a b<a", Policy(initial: 0));
        h.Run("start:a fail:a start:a ok:a");

        h.AssertTasks("a=SUCCEEDED b=QUEUED");
        Assert.Equal(2, h.S.Tasks["a"].Attempts);
    }

    [Fact]
    public void A_non_retryable_error_type_fails_the_task_at_once()
    {
        var policy = Policy();
        var spec = Dag.Spec([Dag.Task("a") with { Retry = new RetryPolicy(5, 1, 2, 10) { NonRetryableErrors = ["ValueError"] } }]);
        var h = RunHarness.Submitted(spec, policy);
        h.Run("start:a");

        var retried = h.Send(Report(h, "a", TaskEventKind.TASK_FAILED, 1, errorType: "TimeoutError"));
        Assert.IsType<TaskAttemptFailed>(Assert.Single(retried.Persist));
        h.Advance(5);
        h.Send(new ReleaseRetries(h.RunId));
        h.Accept(h.Send(Report(h, "a", TaskEventKind.TASK_STARTED, 2)));

        var failed = Assert.IsType<TaskFailed>(Assert.Single(h.Send(Report(h, "a", TaskEventKind.TASK_FAILED, 2, errorType: "ValueError")).Persist));
        Assert.Equal("ValueError", failed.ErrorType);
        Assert.Equal(RunStatus.FAILED, h.S.Status);
    }

    [Fact]
    public void A_report_from_an_earlier_attempt_is_refused_naming_the_current_one_and_journalled_as_ignored()
    {
        var h = Run("a", Policy(initial: 0));
        h.Run("start:a@w1");
        h.Send(Report(h, "a", TaskEventKind.TASK_FAILED, 1));
        h.Accept(h.Send(Report(h, "a", TaskEventKind.TASK_STARTED, 2, worker: "w2")));

        var stale = h.Send(Report(h, "a", TaskEventKind.TASK_SUCCEEDED, 1, worker: "w2"));

        var rejected = Assert.IsType<CommandRejected>(stale.Reply);
        Assert.Equal((RejectionKind.Conflict, 2), (rejected.Kind, rejected.CurrentAttempt));
        var ignored = Assert.IsType<TaskEventIgnored>(Assert.Single(stale.Persist));
        Assert.Equal(1, ignored.Attempt);
        Assert.Equal(TaskState.RUNNING, h["a"]);
        // The current attempt still completes.
        h.Accept(h.Send(Report(h, "a", TaskEventKind.TASK_SUCCEEDED, 2, worker: "w2")));
        Assert.Equal(RunStatus.SUCCEEDED, h.S.Status);
    }

    [Fact]
    public void A_paused_worker_waking_after_its_lease_ran_out_cannot_complete_the_task()
    {
        var h = Run("a", Policy(initial: 0));
        h.Run("start:a@w1");
        h.Advance(61);

        var expired = h.Send(new ExpireLeases(h.RunId, Node));

        var lost = Assert.IsType<TaskAttemptFailed>(Assert.Single(expired.Persist));
        Assert.Equal(AttemptCauses.LeaseExpired, lost.Cause);
        Assert.Contains("w1", lost.Error);
        Assert.Equal(TaskState.QUEUED, h["a"]);

        // w1 wakes and reports its result for attempt 1: refused, whether or not it names the attempt.
        var named = h.Send(Report(h, "a", TaskEventKind.TASK_SUCCEEDED, 1));
        Assert.Equal(1, Assert.IsType<CommandRejected>(named.Reply).CurrentAttempt);
        Assert.Equal(RejectionKind.Conflict, Assert.IsType<CommandRejected>(h.Send(Report(h, "a", TaskEventKind.TASK_SUCCEEDED, null)).Reply).Kind);
        Assert.Equal(TaskState.QUEUED, h["a"]);
        // Its heartbeat tells it to stop.
        Assert.IsType<CommandRejected>(h.Send(Report(h, "a", TaskEventKind.TASK_HEARTBEAT, 1)).Reply);
    }

    [Fact]
    public void Leases_are_renewed_by_heartbeats_and_only_silent_tasks_expire()
    {
        var h = Run("a b", Policy());
        h.Run("start:a@w1 start:b@w2");
        h.Advance(50);
        h.Send(Report(h, "a", TaskEventKind.TASK_HEARTBEAT, 1));
        h.Advance(15);

        var expired = h.Send(new ExpireLeases(h.RunId, Node));

        Assert.Equal("b", Assert.IsType<TaskAttemptFailed>(Assert.Single(expired.Persist)).TaskId);
        h.AssertTasks("a=RUNNING b=QUEUED");
    }

    [Fact]
    public void A_task_whose_worker_is_lost_on_poison_after_attempts_in_a_row_fails_as_poison()
    {
        var h = Run("a", Policy(maxAttempts: 10, initial: 0, poisonAfter: 3));
        for (var i = 1; i <= 2; i++)
        {
            h.Run("start:a");
            h.Advance(61);
            Assert.IsType<TaskAttemptFailed>(Assert.Single(h.Send(new ExpireLeases(h.RunId, Node)).Persist));
        }
        h.Run("start:a");
        h.Advance(61);

        var poison = Assert.IsType<TaskFailed>(Assert.Single(h.Send(new ExpireLeases(h.RunId, Node)).Persist));

        Assert.StartsWith("poison:", poison.Error);
        Assert.Equal(RunStatus.FAILED, h.S.Status);
    }

    [Fact]
    public void A_failure_reported_by_a_worker_resets_the_lost_in_a_row_count()
    {
        var h = Run("a", Policy(maxAttempts: 10, initial: 0, poisonAfter: 2));
        h.Run("start:a");
        h.Advance(61);
        h.Send(new ExpireLeases(h.RunId, Node));
        h.Run("start:a fail:a start:a");
        h.Advance(61);

        Assert.IsType<TaskAttemptFailed>(Assert.Single(h.Send(new ExpireLeases(h.RunId, Node)).Persist));
    }

    [Fact]
    public void A_silent_task_with_attempts_left_is_not_stuck_but_one_without_is_no_heartbeat()
    {
        var thresholds = Node with { Retry = Policy(maxAttempts: 2).Retry };
        var h = Run("a", Policy(maxAttempts: 2, initial: 0));
        h.Run("start:a");
        h.Advance(61);

        Assert.Null(StuckDetector.Evaluate(h.S, thresholds, h.Now));
        h.Send(new ExpireLeases(h.RunId, Node));
        h.Run("start:a");
        h.Advance(61);

        Assert.Empty(h.Send(new ExpireLeases(h.RunId, Node)).Persist);
        Assert.Equal(StuckReason.no_heartbeat, StuckDetector.Evaluate(h.S, thresholds, h.Now)?.Reason);
    }

    [Fact]
    public void A_task_waiting_for_its_backoff_is_not_stale_pending()
    {
        var thresholds = new DetectorThresholds(60, 3600, 60) { Retry = Policy(initial: 600).Retry };
        var h = Run("a", Policy(initial: 600));
        h.Run("start:a fail:a");
        h.Advance(300);

        Assert.Null(StuckDetector.Evaluate(h.S, thresholds, h.Now));
        Assert.Equal(h.S.Tasks["a"].RetryAt!.Value.AddSeconds(60), StuckDetector.NextDeadline(h.S, thresholds));
        h.Advance(361);
        Assert.Equal(StuckReason.stale_pending, StuckDetector.Evaluate(h.S, thresholds, h.Now)?.Reason);
    }

    [Fact]
    public void Attempts_on_a_node_that_is_gone_are_retried_at_once_and_others_are_left_running()
    {
        var h = Run("a b c", Policy(initial: 30));
        foreach (var (task, node) in new[] { ("a", "n1#1"), ("b", "n2#2"), ("c", "n1#1") })
        {
            h.Advance();
            h.Accept(h.Send(Report(h, task, TaskEventKind.TASK_STARTED, 1) with { Incarnation = node }));
        }

        var d = h.Send(new RequeueInterrupted(h.RunId, ["n1#1"]));

        Assert.Equal(["a", "c"], d.Persist.Cast<TaskAttemptFailed>().Select(e => e.TaskId));
        Assert.All(d.Persist.Cast<TaskAttemptFailed>(), e => Assert.Null(e.RetryAt)); // no backoff for an interruption
        h.AssertTasks("a=QUEUED b=RUNNING c=QUEUED");
        Assert.True(h.S.Tasks["a"].Ready);
    }

    [Fact]
    public void An_interrupted_task_without_attempts_left_fails_with_the_reason_instead_of_waiting_for_a_detector()
    {
        var h = Run("a", Policy(maxAttempts: 1));
        h.Accept(h.Send(Report(h, "a", TaskEventKind.TASK_STARTED, 1) with { Incarnation = "n1#1" }));

        var failed = Assert.IsType<TaskFailed>(Assert.Single(h.Send(new RequeueInterrupted(h.RunId, ["n1#1"])).Persist));

        Assert.StartsWith("interrupted:", failed.Error);
        Assert.Equal(RunStatus.FAILED, h.S.Status);
    }

    [Fact]
    public void A_lease_starts_the_next_attempt_and_carries_params_and_the_results_of_dependencies()
    {
        var spec = Dag.Spec([Dag.Task("a"), Dag.Task("b", "a") with { Params = RunHarness.Json("""{"n":1}"""), Pool = "gpu" }]);
        var h = RunHarness.Submitted(spec, Policy());
        h.Run("start:a");
        h.Accept(h.Send(new ReportTaskEvent(h.RunId, "a", TaskEventKind.TASK_SUCCEEDED, "w1", RunHarness.Json("""{"rows":7}"""), null)));

        var d = h.Send(new LeaseTask(h.RunId, "b", "w9") { Pools = ["gpu"] });

        var leased = Assert.IsType<TaskLeased>(d.Reply);
        Assert.Equal((1, "gpu", """{"n":1}"""), (leased.Attempt, leased.Pool, leased.Params!.Value.GetRawText()));
        Assert.Equal("""{"rows":7}""", leased.Inputs["a"]!.Value.GetRawText());
        Assert.Equal((TaskState.RUNNING, "w9"), (h["b"], h.S.Tasks["b"].WorkerId));
        // A second lease of the same task (a poll on another node raced it) is refused.
        Assert.Equal(RejectionKind.Conflict, Assert.IsType<CommandRejected>(h.Send(new LeaseTask(h.RunId, "b", "w8")).Reply).Kind);
        // Another pool's key may not lease it.
        Assert.Equal(RejectionKind.Forbidden, Assert.IsType<CommandRejected>(h.Send(new LeaseTask(h.RunId, "a", "w8") { Pools = ["cpu"] }).Reply).Kind);
    }

    [Theory]
    [InlineData(0, 1, 1, 0, "max_attempts")]
    [InlineData(101, 1, 1, 0, "max_attempts")]
    [InlineData(3, -1, 1, 0, "initial_interval_s")]
    [InlineData(3, 1, 0.5, 0, "backoff_coefficient")]
    [InlineData(3, 10, 2, 5, "max_interval_s")]
    [InlineData(3, 1, 1, 1e9, "max_interval_s")]
    public void An_absurd_retry_policy_is_refused_at_submission_naming_the_field(int max, double initial, double coefficient, double maxInterval, string named)
    {
        var spec = Dag.Spec([Dag.Task("a") with { Retry = new RetryPolicy(max, initial, coefficient, maxInterval) }]);

        var r = DecisionAssert.Rejected(new RunHarness(Policy()).Send(new SubmitRun(spec)), RejectionKind.Invalid);

        Assert.Equal("tasks[0].retry", r.Field);
        Assert.Contains(named, r.Message);
    }

    [Fact]
    public void Backoff_grows_by_the_coefficient_up_to_the_maximum()
    {
        var p = new RetryPolicy(10, 1, 2, 10);

        Assert.Equal([1, 2, 4, 8, 10, 10], Enumerable.Range(1, 6).Select(n => p.DelayAfter(n).TotalSeconds));
        Assert.Equal(TimeSpan.FromSeconds(10), new RetryPolicy(100, 1, 100, 10).DelayAfter(99)); // no overflow
    }

    [Fact]
    public void Re_running_a_failed_run_opens_its_failed_and_skipped_tasks_with_a_fresh_retry_budget()
    {
        var h = Run("a b<a c", Policy(maxAttempts: 1));
        h.Run("start:a fail:a start:c ok:c");
        Assert.Equal(RunStatus.FAILED, h.S.Status);

        var d = h.Send(new RetryRun(h.RunId, "alice"));

        var rerun = Assert.IsType<RunRetried>(Assert.Single(d.Persist));
        Assert.Equal("alice", rerun.By);
        Assert.Equal(new[] { "a", "b" }, rerun.TaskIds.ToArray());
        Assert.Equal(RunStatus.RUNNING, h.S.Status);
        h.AssertTasks("a=QUEUED b=PENDING c=SUCCEEDED");
        Assert.Equal(Dag.Recount(h.S), h.S.Counts);
        // Attempt 2 runs although max_attempts is 1: the budget counts from the re-run.
        h.Run("start:a");
        Assert.Equal(2, h.S.Tasks["a"].Attempts);
        h.Run("ok:a start:b ok:b");
        Assert.Equal(RunStatus.SUCCEEDED, h.S.Status);
    }

    [Theory]
    [InlineData("start:a", "RUNNING")]
    [InlineData("start:a ok:a", "SUCCEEDED")]
    [InlineData("cancel", "CANCELLED")]
    public void Only_a_failed_run_is_re_run(string script, string status)
    {
        var h = Run("a", Policy(maxAttempts: 1), script);

        var r = DecisionAssert.Rejected(h.Send(new RetryRun(h.RunId, "alice")), RejectionKind.Conflict);

        Assert.Contains(status, r.Message);
    }

    [Fact]
    public void A_failure_while_the_run_is_being_cancelled_is_not_retried_and_lets_the_cancel_complete()
    {
        var h = Run("a", Policy(maxAttempts: 5, initial: 0));
        h.Run("start:a cancel");
        Assert.Equal(RunStatus.CANCELLING, h.S.Status);

        var d = h.Send(Report(h, "a", TaskEventKind.TASK_FAILED, 1));

        Assert.IsType<TaskFailed>(Assert.Single(d.Persist));
        Assert.Equal(RunStatus.CANCELLED, h.S.Status);
        Assert.Equal(0, h.S.Counts.Open);
    }

    [Fact]
    public void A_pool_of_the_node_gets_its_own_number_of_attempts_and_a_tasks_own_policy_wins()
    {
        var retry = new RetrySettings(new RetryPolicy(3, 1, 2, 60), 3) { PoolMaxAttempts = ImmutableDictionary<string, int>.Empty.Add("gpu", 5) };
        TaskRecord Task(string pool, RetryPolicy? own = null) =>
            new("t", "x", pool, null, [], TaskState.QUEUED, 0, T0, null, null, null, null) { Retry = own };

        Assert.Equal(5, retry.For(Task("gpu")).MaxAttempts);
        Assert.Equal(1, retry.For(Task("gpu")).InitialIntervalS);
        Assert.Equal(3, retry.For(Task("cpu")).MaxAttempts);
        Assert.Equal(2, retry.For(Task("gpu", new RetryPolicy(2, 0, 1, 0))).MaxAttempts);
    }

    private static readonly DateTimeOffset T0 = RunHarness.T0;

    [Fact]
    public void Over_HTTP_nobody_reports_for_an_in_cluster_pool_nor_for_an_attempt_another_key_leased()
    {
        var policy = Policy() with
        {
            InClusterPools = ImmutableDictionary<string, ImmutableHashSet<string>>.Empty.Add(TaskSpec.DefaultPool, ["noop"]),
        };
        var spec = Dag.Spec([Dag.Task("inside"), Dag.Task("outside") with { Pool = "ext" }]);
        var h = RunHarness.Submitted(spec, policy);
        h.Accept(h.Send(Report(h, "inside", TaskEventKind.TASK_STARTED, 1, worker: "default@node")));
        h.Accept(h.Send(new LeaseTask(h.RunId, "outside", "w1") { Caller = "key-a" }));

        var forged = h.Send(Report(h, "inside", TaskEventKind.TASK_SUCCEEDED, 1, worker: "default@node") with { Caller = "key-b" });
        var stolen = h.Send(Report(h, "outside", TaskEventKind.TASK_SUCCEEDED, 1, worker: "w1") with { Caller = "key-b" });

        Assert.Equal(RejectionKind.Forbidden, DecisionAssert.Rejected(forged, RejectionKind.Forbidden).Kind);
        Assert.Equal(RejectionKind.Forbidden, DecisionAssert.Rejected(stolen, RejectionKind.Forbidden).Kind);
        // The holders themselves: the pool (no caller) and the leasing key.
        h.Accept(h.Send(Report(h, "inside", TaskEventKind.TASK_SUCCEEDED, 1, worker: "default@node")));
        h.Accept(h.Send(Report(h, "outside", TaskEventKind.TASK_SUCCEEDED, 1, worker: "w1") with { Caller = "key-a" }));
        Assert.Equal(RunStatus.SUCCEEDED, h.S.Status);
    }
}
