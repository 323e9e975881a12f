using Xunit;

namespace Deepline.Domain.Tests;

public class CancellationTests
{
    /// <summary>a RUNNING on w1, b PENDING (waits on a), c QUEUED.</summary>
    private const string Dag3 = "a b<a c";
    private const string OneRunning = "start:a@w1";

    private static CancelRun Cancel(string runId, bool force = false, string by = "alice") => new(runId, "user asked", by, force);

    [Fact]
    public void Cancel_cancels_waiting_tasks_and_waits_for_the_running_one()
    {
        var h = RunHarness.Submitted(Dag3, OneRunning);
        h.Advance(10);

        var d = h.Send(Cancel(h.RunId));

        Assert.Equal(new RunCancelRequested("user asked", "alice", false, h.Now), Assert.Single(d.Persist));
        var reply = Assert.IsType<CancelReply>(d.Reply);
        Assert.False(reply.AlreadyRequested);
        Assert.Equal(RunStatus.CANCELLING, reply.State.Status);
        Assert.Equal(RunStatus.CANCELLING, h.S.Status);
        h.AssertTasks("a=RUNNING b=CANCELLED c=CANCELLED");
        var cancel = h.S.Cancel!;
        Assert.Equal(2, cancel.CancelledTasks);
        Assert.Equal(h.Now, cancel.CancelledAt);
        Assert.Equal("user asked", cancel.Reason);
        Assert.Equal("alice", cancel.CancelledBy);
        Assert.False(cancel.Forced);
        Assert.Null(cancel.FinalisedAt);
        Assert.Equal(Dag.Recount(h.S), h.S.Counts);
    }

    [Theory]
    [InlineData("ack:a", TaskState.CANCELLED)] // the worker acknowledges
    [InlineData("ok:a", TaskState.SUCCEEDED)] // ... or finishes first
    [InlineData("fail:a", TaskState.FAILED)]
    public void The_last_running_task_ending_closes_the_cancel_unforced(string step, TaskState taskState)
    {
        var h = RunHarness.Submitted(Dag3, OneRunning + " cancel");
        h.Advance(3);

        var d = h.Send(h.Parse(step));

        Assert.Single(d.Persist);
        Assert.Equal(new TaskEventAccepted(h.RunId, "a", taskState, RunStatus.CANCELLED) { Attempt = 1 }, d.Reply);
        Assert.Equal(RunStatus.CANCELLED, h.S.Status);
        Assert.Equal(taskState, h["a"]);
        h.AssertTasks("b=CANCELLED c=CANCELLED"); // a success during CANCELLING releases nothing
        var cancel = h.S.Cancel!;
        Assert.False(cancel.Forced);
        Assert.Equal(h.Now, cancel.FinalisedAt);
        Assert.Equal("workers", cancel.FinalisedBy);
        Assert.Equal(2, cancel.CancelledTasks);
    }

    [Fact]
    public void The_run_stays_cancelling_until_every_running_task_has_ended()
    {
        var h = RunHarness.Submitted("a b c", "start:a@w1 start:b@w2 cancel");
        Assert.Equal(1, h.S.Cancel!.CancelledTasks);

        h.Run("ack:a");
        Assert.Equal(RunStatus.CANCELLING, h.S.Status);

        h.Run("ok:b");
        Assert.Equal(RunStatus.CANCELLED, h.S.Status);
        Assert.False(h.S.Cancel!.Forced);
    }

    [Fact]
    public void Force_cancel_finalises_at_once_without_waiting_for_workers()
    {
        var h = RunHarness.Submitted(Dag3, OneRunning);
        h.Advance(10);

        var d = h.Send(Cancel(h.RunId, force: true));

        Assert.Equal(new RunCancelRequested("user asked", "alice", true, h.Now), Assert.Single(d.Persist));
        var reply = Assert.IsType<CancelReply>(d.Reply);
        Assert.False(reply.AlreadyRequested);
        Assert.Equal(RunStatus.CANCELLED, reply.State.Status);
        Assert.Equal(RunStatus.CANCELLED, h.S.Status);
        h.AssertTasks("a=CANCELLED b=CANCELLED c=CANCELLED");
        Assert.True(h.S.Cancel!.Forced);
        Assert.Equal(h.Now, h.S.Cancel.FinalisedAt);
        Assert.Equal("alice", h.S.Cancel.FinalisedBy);
        Assert.Equal(Dag.Recount(h.S), h.S.Counts);
    }

    [Theory]
    [InlineData("a b<a", "", false, 2)]
    [InlineData("a b<a", "", true, 2)]
    [InlineData("a b<a", "start:a ok:a", false, 1)]
    [InlineData("a b<a", "start:a ok:a", true, 1)]
    [InlineData("a b c<a", "start:a ok:a start:b ok:b", false, 1)]
    public void Cancel_with_no_running_task_is_cancelled_directly_and_not_forced(string dag, string setup, bool force, int cancelledTasks)
    {
        var h = RunHarness.Submitted(dag, setup);
        var succeeded = h.S.Counts.Succeeded;
        h.Advance();

        var d = h.Send(Cancel(h.RunId, force));

        Assert.IsType<RunCancelRequested>(Assert.Single(d.Persist));
        Assert.False(Assert.IsType<CancelReply>(d.Reply).AlreadyRequested);
        Assert.Equal(RunStatus.CANCELLED, h.S.Status);
        Assert.False(h.S.Cancel!.Forced);
        Assert.Equal(cancelledTasks, h.S.Cancel.CancelledTasks);
        Assert.Equal(cancelledTasks, h.S.Counts.Cancelled);
        Assert.Equal(succeeded, h.S.Counts.Succeeded);
        Assert.Equal(h.Now, h.S.Cancel.FinalisedAt);
    }

    [Fact]
    public void Cancel_timeout_finalises_a_cancelling_run_as_forced()
    {
        var h = RunHarness.Submitted(Dag3, OneRunning + " cancel");
        h.Advance(30);

        var d = h.Send(new CancelTimeoutElapsed(h.RunId));

        Assert.Equal(new RunCancelFinalised("cancel_timeout", h.Now), Assert.Single(d.Persist));
        Assert.Null(d.Reply);
        Assert.Equal(RunStatus.CANCELLED, h.S.Status);
        Assert.Equal(TaskState.CANCELLED, h["a"]);
        Assert.True(h.S.Cancel!.Forced);
        Assert.Equal("cancel_timeout", h.S.Cancel.FinalisedBy);
        Assert.Equal(h.Now, h.S.Cancel.FinalisedAt);
    }

    [Theory]
    [InlineData("")] // RUNNING
    [InlineData("start:a ok:a start:b ok:b start:c ok:c")] // SUCCEEDED
    [InlineData("start:a fail:a start:c ok:c")] // FAILED
    [InlineData("start:a cancel!")] // CANCELLED by force
    [InlineData("start:a cancel ack:a")] // CANCELLED by the workers
    [InlineData("start:a cancel timeout")] // already timed out once
    public void Cancel_timeout_outside_cancelling_does_nothing(string setup)
    {
        var h = RunHarness.Submitted(Dag3, setup);
        var before = Dag.Render(h.S);
        h.Advance(30);

        var d = h.Send(new CancelTimeoutElapsed(h.RunId));

        DecisionAssert.NoEvents(d);
        Assert.Null(d.Reply);
        Assert.Equal(before, Dag.Render(h.S));
    }

    [Theory]
    [InlineData(OneRunning + " cancel", false)] // CANCELLING, repeated without force
    [InlineData(OneRunning + " cancel!", false)] // CANCELLED
    [InlineData(OneRunning + " cancel!", true)]
    [InlineData(OneRunning + " cancel ack:a", false)]
    [InlineData(OneRunning + " cancel ack:a", true)]
    [InlineData("cancel", true)] // cancelled with nothing running
    public void A_repeated_cancel_is_idempotent(string setup, bool force)
    {
        var h = RunHarness.Submitted(Dag3, setup);
        var before = Dag.Render(h.S);
        var cancelledAt = h.S.Cancel!.CancelledAt;
        h.Advance(60);

        var d = h.Send(Cancel(h.RunId, force, by: "bob"));

        DecisionAssert.NoEvents(d);
        var reply = Assert.IsType<CancelReply>(d.Reply);
        Assert.True(reply.AlreadyRequested);
        Assert.Equal(cancelledAt, reply.State.Cancel!.CancelledAt);
        Assert.Equal("alice", reply.State.Cancel.CancelledBy);
        Assert.Equal(before, Dag.Render(h.S));
    }

    [Fact]
    public void Force_on_a_cancelling_run_escalates_it()
    {
        var h = RunHarness.Submitted(Dag3, OneRunning + " cancel");
        var cancelledAt = h.S.Cancel!.CancelledAt;
        h.Advance(5);

        var d = h.Send(Cancel(h.RunId, force: true, by: "bob"));

        Assert.Equal(new RunCancelFinalised("bob", h.Now), Assert.Single(d.Persist));
        var reply = Assert.IsType<CancelReply>(d.Reply);
        Assert.True(reply.AlreadyRequested);
        Assert.Equal(RunStatus.CANCELLED, h.S.Status);
        Assert.Equal(TaskState.CANCELLED, h["a"]);
        Assert.True(h.S.Cancel!.Forced);
        Assert.Equal(cancelledAt, h.S.Cancel.CancelledAt);
        Assert.Equal("bob", h.S.Cancel.FinalisedBy);
    }

    [Theory]
    [InlineData("start:a ok:a start:b ok:b start:c ok:c", false)] // SUCCEEDED
    [InlineData("start:a ok:a start:b ok:b start:c ok:c", true)]
    [InlineData("start:a fail:a start:c ok:c", false)] // FAILED
    [InlineData("start:a fail:a start:c ok:c", true)]
    public void Cancel_of_a_finished_run_is_a_conflict(string setup, bool force)
    {
        var h = RunHarness.Submitted(Dag3, setup);
        var before = Dag.Render(h.S);

        DecisionAssert.Rejected(h.Send(Cancel(h.RunId, force)), RejectionKind.Conflict);

        Assert.Equal(before, Dag.Render(h.S));
        Assert.Null(h.S.Cancel);
    }

    [Theory]
    [InlineData("start:a ok:a start:b ok:b start:c ok:c")] // SUCCEEDED
    [InlineData("start:a fail:a start:c ok:c")] // FAILED
    [InlineData("start:a cancel!")] // CANCELLED
    [InlineData("cancel")] // CANCELLED with nothing running
    public void Finalise_cancel_outside_cancelling_is_a_conflict(string setup)
    {
        var h = RunHarness.Submitted(Dag3, setup);
        var before = Dag.Render(h.S);

        DecisionAssert.Rejected(h.Send(new FinaliseCancel(h.RunId, "admin")), RejectionKind.Conflict);

        Assert.Equal(before, Dag.Render(h.S));
    }

    [Fact]
    public void Finalise_cancel_closes_a_cancelling_run_as_forced()
    {
        var h = RunHarness.Submitted(Dag3, OneRunning + " cancel");
        h.Advance(5);

        var d = h.Send(new FinaliseCancel(h.RunId, "admin"));

        Assert.Equal(new RunCancelFinalised("admin", h.Now), Assert.Single(d.Persist));
        Assert.IsType<RunReply>(d.Reply);
        Assert.Equal(RunStatus.CANCELLED, h.S.Status);
        Assert.True(h.S.Cancel!.Forced);
        Assert.Equal("admin", h.S.Cancel.FinalisedBy);
        Assert.Equal(TaskState.CANCELLED, h["a"]);
    }

    [Theory]
    [InlineData("")] // nothing running yet
    [InlineData("start:a")] // a task running
    public void Finalise_cancel_of_a_running_run_cancels_and_completes_it_in_one_step(string setup)
    {
        var h = RunHarness.Submitted(Dag3, setup);

        var d = h.Send(new FinaliseCancel(h.RunId, "admin"));

        Assert.Equal(new RunCancelRequested(FinaliseCancel.Reason, "admin", true, h.Now), Assert.Single(d.Persist));
        Assert.IsType<RunReply>(d.Reply);
        Assert.Equal(RunStatus.CANCELLED, h.S.Status);
        // Forced means running tasks were not waited for; with none running the cancel simply completed.
        Assert.Equal(setup.Contains("start"), h.S.Cancel!.Forced);
        Assert.Equal("admin", h.S.Cancel.FinalisedBy);
        Assert.All(h.S.Tasks.Values, t => Assert.True(t.State.IsTerminal()));
    }
}
