using Xunit;

namespace Deepline.Domain.Tests;

public class WorkflowTransitionTests
{
    private const string Chains = "a b<a c<b d<c x y<x";

    [Theory]
    [InlineData(Dag.Diamond, "", "a=QUEUED b=PENDING c=PENDING d=PENDING", RunStatus.RUNNING)]
    [InlineData("a b c<a,b", "", "a=QUEUED b=QUEUED c=PENDING", RunStatus.RUNNING)]
    [InlineData(Dag.Diamond, "start:a", "a=RUNNING b=PENDING c=PENDING d=PENDING", RunStatus.RUNNING)]
    // success releases a dependent only once every one of its dependencies has succeeded
    [InlineData(Dag.Diamond, "start:a ok:a", "a=SUCCEEDED b=QUEUED c=QUEUED d=PENDING", RunStatus.RUNNING)]
    [InlineData(Dag.Diamond, "start:a ok:a start:b ok:b", "b=SUCCEEDED c=QUEUED d=PENDING", RunStatus.RUNNING)]
    [InlineData(Dag.Diamond, "start:a ok:a start:b start:c ok:c", "b=RUNNING c=SUCCEEDED d=PENDING", RunStatus.RUNNING)]
    [InlineData(Dag.Diamond, "start:a ok:a start:b ok:b start:c ok:c", "c=SUCCEEDED d=QUEUED", RunStatus.RUNNING)]
    [InlineData(Dag.Diamond, "start:a ok:a start:b ok:b start:c ok:c start:d ok:d",
        "a=SUCCEEDED b=SUCCEEDED c=SUCCEEDED d=SUCCEEDED", RunStatus.SUCCEEDED)]
    [InlineData("a b c<a,b", "start:a ok:a", "b=QUEUED c=PENDING", RunStatus.RUNNING)]
    // failure skips every transitive dependent; independent branches keep running; the run ends FAILED
    [InlineData(Chains, "start:a fail:a", "a=FAILED b=SKIPPED c=SKIPPED d=SKIPPED x=QUEUED y=PENDING", RunStatus.RUNNING)]
    [InlineData(Chains, "start:x start:a fail:a ok:x", "d=SKIPPED x=SUCCEEDED y=QUEUED", RunStatus.RUNNING)]
    [InlineData(Chains, "start:a fail:a start:x ok:x start:y ok:y", "a=FAILED d=SKIPPED x=SUCCEEDED y=SUCCEEDED", RunStatus.FAILED)]
    [InlineData(Dag.Diamond, "start:a ok:a start:b start:c fail:b", "b=FAILED c=RUNNING d=SKIPPED", RunStatus.RUNNING)]
    [InlineData(Dag.Diamond, "start:a ok:a start:b start:c fail:b ok:c", "b=FAILED c=SUCCEEDED d=SKIPPED", RunStatus.FAILED)]
    [InlineData(Dag.Diamond, "start:a ok:a start:b start:c ok:c fail:b", "b=FAILED c=SUCCEEDED d=SKIPPED", RunStatus.FAILED)]
    [InlineData("a b<a c<a,b", "start:a fail:a", "b=SKIPPED c=SKIPPED", RunStatus.FAILED)]
    [InlineData("a", "start:a fail:a", "a=FAILED", RunStatus.FAILED)]
    // a worker that stops a task on its own (no run cancel) does not let its dependents run
    [InlineData("a b<a", "start:a ack:a", "a=CANCELLED b=SKIPPED", RunStatus.FAILED)]
    public void Task_events_move_tasks_and_the_run(string dag, string script, string expectedTasks, RunStatus expectedRun)
    {
        var h = RunHarness.Submitted(dag, script);

        h.AssertTasks(expectedTasks);
        Assert.Equal(expectedRun, h.S.Status);
        Assert.Equal(Dag.Recount(h.S), h.S.Counts);
    }

    [Fact]
    public void Submit_journals_the_run_and_replies_with_it()
    {
        var h = new RunHarness();
        h.Advance(5);

        var d = h.Send(new SubmitRun(Dag.Spec(Dag.Diamond + " e")));

        var submitted = Assert.IsType<RunSubmitted>(Assert.Single(d.Persist));
        Assert.Equal(h.Now, submitted.At);
        var reply = Assert.IsType<RunReply>(d.Reply);
        Assert.Equal(Dag.Render(h.S), Dag.Render(reply.State));
        Assert.Equal(RunStatus.RUNNING, h.S.Status);
        Assert.Equal(h.Now, h.S.CreatedAt);
        Assert.Equal(new TaskCounts(3, 2, 0, 0, 0, 0, 0), h.S.Counts);
        Assert.Equal(["a", "b", "c", "d", "e"], h.S.OrderedTasks.Select(t => t.TaskId));
        Assert.All(h.S.Tasks.Values, t => Assert.Equal(0, t.Attempts));
    }

    [Fact]
    public void Task_started_records_the_worker_the_attempt_and_the_time()
    {
        var h = RunHarness.Submitted("a b<a");
        h.Advance(7);

        var d = h.Send(new ReportTaskEvent(h.RunId, "a", TaskEventKind.TASK_STARTED, "w-7", null, null));

        Assert.Equal(new TaskStarted("a", "w-7", h.Now) { Attempt = 1 }, Assert.Single(d.Persist));
        Assert.Equal(new TaskEventAccepted(h.RunId, "a", TaskState.RUNNING, RunStatus.RUNNING) { Attempt = 1 }, d.Reply);
        var a = h.S.Tasks["a"];
        Assert.Equal(TaskState.RUNNING, a.State);
        Assert.Equal("w-7", a.WorkerId);
        Assert.Equal(1, a.Attempts);
        Assert.Equal(h.Now, a.UpdatedAt);
        Assert.Equal(h.Now, a.LastHeartbeatAt);
        Assert.Equal(h.Now, h.S.UpdatedAt);
        Assert.Equal(TaskState.PENDING, h["b"]);
    }

    [Fact]
    public void A_repeated_start_by_the_same_worker_changes_nothing()
    {
        var h = RunHarness.Submitted("a", "start:a@w1");
        var before = Dag.Render(h.S);
        h.Advance();

        var d = h.Send(h.Parse("start:a@w1"));

        DecisionAssert.NoEvents(d);
        Assert.Equal(new TaskEventAccepted(h.RunId, "a", TaskState.RUNNING, RunStatus.RUNNING) { Attempt = 1 }, d.Reply);
        Assert.Equal(before, Dag.Render(h.S));
        Assert.Equal(1, h.S.Tasks["a"].Attempts);
    }

    [Fact]
    public void Success_and_failure_keep_the_result_and_the_error()
    {
        var h = RunHarness.Submitted("a b", "start:a start:b");

        h.Accept(h.Send(new ReportTaskEvent(h.RunId, "a", TaskEventKind.TASK_SUCCEEDED, "w1", RunHarness.Json("""{"rows":3}"""), null)));
        h.Accept(h.Send(new ReportTaskEvent(h.RunId, "b", TaskEventKind.TASK_FAILED, "w1", null, "disk full")));

        Assert.Equal("""{"rows":3}""", h.S.Tasks["a"].Result?.GetRawText());
        Assert.Equal("disk full", h.S.Tasks["b"].Error);
        Assert.Equal(RunStatus.FAILED, h.S.Status);
    }

    [Fact]
    public void A_failure_without_an_error_message_still_says_it_failed()
    {
        var h = RunHarness.Submitted("a", "start:a");

        h.Accept(h.Send(new ReportTaskEvent(h.RunId, "a", TaskEventKind.TASK_FAILED, "w1", null, null)));

        Assert.False(string.IsNullOrEmpty(h.S.Tasks["a"].Error));
    }

    [Fact]
    public void Heartbeat_is_transient_and_moves_last_heartbeat()
    {
        var h = RunHarness.Submitted("a", "start:a@w1");
        var journalled = h.Journal.Count;
        h.Advance(30);

        var d = h.Send(h.Parse("hb:a@w1"));

        Assert.Empty(d.Persist);
        Assert.Equal(new TaskHeartbeat("a", h.Now), Assert.Single(d.Transient));
        Assert.Equal(journalled, h.Journal.Count);
        Assert.Equal(h.Now, h.S.Tasks["a"].LastHeartbeatAt);
        Assert.Equal(new TaskEventAccepted(h.RunId, "a", TaskState.RUNNING, RunStatus.RUNNING) { Attempt = 1 }, d.Reply);
        Assert.Equal(TaskState.RUNNING, h["a"]);
    }

    // ---- rejections ---------------------------------------------------------------------------------------

    [Theory]
    [InlineData("a", "", "ok:a", RejectionKind.Conflict)] // TASK_SUCCEEDED on a QUEUED task
    [InlineData("a", "", "fail:a", RejectionKind.Conflict)]
    [InlineData("a", "", "ack:a", RejectionKind.Conflict)]
    [InlineData("a", "", "hb:a", RejectionKind.Conflict)]
    [InlineData("a b<a", "", "start:b", RejectionKind.Conflict)] // PENDING: dependencies not done
    [InlineData("a b<a", "", "ok:b", RejectionKind.Conflict)]
    [InlineData("a", "start:a@w1", "ok:a@w2", RejectionKind.Conflict)] // another worker holds the task
    [InlineData("a", "start:a@w1", "fail:a@w2", RejectionKind.Conflict)]
    [InlineData("a", "start:a@w1", "ack:a@w2", RejectionKind.Conflict)]
    [InlineData("a", "start:a@w1", "hb:a@w2", RejectionKind.Conflict)]
    [InlineData("a", "start:a@w1", "start:a@w2", RejectionKind.Conflict)]
    [InlineData("a b", "start:a ok:a", "hb:a", RejectionKind.Conflict)] // heartbeat on a finished task: stop working
    [InlineData("a", "", "ok:nope", RejectionKind.NotFound)]
    [InlineData("a", "start:a", "hb:nope", RejectionKind.NotFound)]
    [InlineData("a", "", "start:nope", RejectionKind.NotFound)]
    public void An_impossible_task_event_is_rejected_and_changes_nothing(string dag, string setup, string step, RejectionKind kind)
    {
        var h = RunHarness.Submitted(dag, setup);
        var before = Dag.Render(h.S);
        var journalled = h.Journal.Count;
        h.Advance();

        var r = DecisionAssert.Rejected(h.Send(h.Parse(step)), kind);

        Assert.Equal(before, Dag.Render(h.S));
        Assert.Equal(journalled, h.Journal.Count);
        if (kind == RejectionKind.NotFound) Assert.Equal("task_id", r.Field);
    }

    [Fact]
    public void A_duplicate_submit_is_a_conflict_and_keeps_the_first_run()
    {
        var h = RunHarness.Submitted("a", "start:a");
        var before = Dag.Render(h.S);

        DecisionAssert.Rejected(h.Send(new SubmitRun(Dag.Spec("a"))), RejectionKind.Conflict);
        DecisionAssert.Rejected(h.Send(new SubmitRun(Dag.Spec("other tasks"))), RejectionKind.Conflict);

        Assert.Equal(before, Dag.Render(h.S));
    }

    [Theory]
    [InlineData("get")]
    [InlineData("cancel")]
    [InlineData("cancel!")]
    [InlineData("finalise")]
    [InlineData("start:a")]
    [InlineData("ok:a")]
    [InlineData("hb:a")]
    public void A_command_for_an_unknown_run_is_not_found(string step)
    {
        var h = new RunHarness();

        var r = DecisionAssert.Rejected(h.Send(h.Parse(step)), RejectionKind.NotFound);

        Assert.Equal("run_id", r.Field);
        Assert.Null(h.State);
    }

    [Fact]
    public void A_cancel_timeout_for_an_unknown_run_is_silently_dropped()
    {
        var d = WorkflowDecider.Decide(null, new CancelTimeoutElapsed("run-1"), RunHarness.T0, SubmissionPolicy.Default);

        DecisionAssert.NoEvents(d);
        Assert.Null(d.Reply);
    }

    [Fact]
    public void Get_run_replies_with_the_state_and_journals_nothing()
    {
        var h = RunHarness.Submitted(Dag.Diamond, "start:a");

        var d = h.Send(new GetRun(h.RunId));

        DecisionAssert.NoEvents(d);
        Assert.Same(h.S, Assert.IsType<RunReply>(d.Reply).State);
    }

    [Fact]
    public void A_failure_at_the_head_of_a_ten_thousand_task_chain_skips_the_rest_without_deep_recursion()
    {
        const int n = 10_000;
        var h = RunHarness.Submitted(Dag.Spec(Dag.Chain(n)), Dag.Policy(n));

        h.Run("start:t0 fail:t0");

        Assert.Equal(RunStatus.FAILED, h.S.Status);
        Assert.Equal(n - 1, h.S.Counts.Skipped);
        Assert.Equal(TaskState.SKIPPED, h[$"t{n - 1}"]);
    }
}
