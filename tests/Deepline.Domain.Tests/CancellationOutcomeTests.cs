using Xunit;

namespace Deepline.Domain.Tests;

/// <summary>What the cancellation metrics count, decided from two states: causes of cancelled tasks, outcomes of cancels.</summary>
public class CancellationOutcomeTests
{
    /// <summary>a RUNNING on w1, b PENDING (waits on a), c QUEUED.</summary>
    private const string Dag3 = "a b<a c";

    private static (int, TaskCancelCause, CancelOutcome?) Step(RunHarness h, IRunCommand command)
    {
        var before = h.S;
        h.Send(command);
        var (count, cause) = CancellationOutcomes.TasksCancelled(before, h.S);
        return (count, cause, CancellationOutcomes.RunCancelled(before, h.S));
    }

    [Fact]
    public void A_user_cancel_acknowledged_by_the_worker_is_completed()
    {
        var h = RunHarness.Submitted(Dag3, "start:a@w1");
        Assert.Equal((2, TaskCancelCause.user, (CancelOutcome?)null), Step(h, new CancelRun(h.RunId, "stop", "alice", false)));
        Assert.Equal((1, TaskCancelCause.user, CancelOutcome.completed), Step(h, h.Parse("ack:a")));
    }

    [Fact]
    public void An_auto_cancel_counts_as_deadlock_and_a_cancel_the_deadline_closes_as_timed_out()
    {
        var h = RunHarness.Submitted(Dag3, "start:a@w1");
        var auto = new CancelRun(h.RunId, "auto-cancel: deadlock detected", "system", false) { DeadlockReason = "stale_pending" };
        Assert.Equal((2, TaskCancelCause.deadlock, (CancelOutcome?)null), Step(h, auto));
        Assert.Equal((1, TaskCancelCause.deadlock, CancelOutcome.timed_out), Step(h, new CancelTimeoutElapsed(h.RunId)));
    }

    [Fact]
    public void An_admin_force_complete_is_forced_while_a_force_with_nothing_running_is_completed()
    {
        var h = RunHarness.Submitted(Dag3, "start:a@w1");
        Assert.Equal((3, TaskCancelCause.admin, CancelOutcome.forced), Step(h, new FinaliseCancel(h.RunId, "root")));

        var idle = RunHarness.Submitted(Dag3);
        Assert.Equal((3, TaskCancelCause.user, CancelOutcome.completed), Step(idle, new CancelRun(idle.RunId, "stop", "alice", true)));
    }
}
