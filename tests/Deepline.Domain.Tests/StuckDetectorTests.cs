using System.Collections.Immutable;

namespace Deepline.Domain.Tests;

public sealed class StuckDetectorTests
{
    private static readonly DateTimeOffset T0 = new(2026, 1, 15, 10, 0, 0, TimeSpan.Zero);
    private static readonly DetectorThresholds Node = new(PendingStaleS: 900, WorkflowStaleS: 3600, HeartbeatTimeoutS: 60);

    private static WorkflowState Submit(string dag, DeadlockOverrides? overrides = null) =>
        WorkflowState.Create(new RunSubmitted(Dag.Spec(dag) with { Deadlock = overrides }, T0));

    [Fact]
    public void A_run_waiting_for_a_worker_is_stale_pending_exactly_at_the_threshold()
    {
        var s = Submit("a b<a");

        Assert.Null(StuckDetector.Evaluate(s, Node, T0.AddSeconds(899)));
        var d = StuckDetector.Evaluate(s, Node, T0.AddSeconds(900));

        Assert.NotNull(d);
        Assert.Equal(StuckReason.stale_pending, d.Reason);
        Assert.Equal(T0.AddSeconds(900), d.StuckSince);
        Assert.Equal(["a", "b"], d.StuckTasks.ToArray());
        Assert.Contains("1 QUEUED waiting for a worker slot (1 in pool 'default'), 1 PENDING", d.Explanation);
        Assert.Equal(T0.AddSeconds(900), StuckDetector.NextDeadline(s, Node));
    }

    [Fact]
    public void A_running_task_without_heartbeat_is_no_heartbeat_and_heartbeats_move_the_deadline()
    {
        var s = Submit("a").Apply(new TaskStarted("a", "w-1", T0.AddSeconds(5)));
        Assert.Equal(T0.AddSeconds(65), StuckDetector.NextDeadline(s, Node));

        var beating = s.Apply(new TaskHeartbeat("a", T0.AddSeconds(50)));
        Assert.Null(StuckDetector.Evaluate(beating, Node, T0.AddSeconds(100)));
        Assert.Equal(T0.AddSeconds(110), StuckDetector.NextDeadline(beating, Node));

        var d = StuckDetector.Evaluate(beating, Node, T0.AddSeconds(110));
        Assert.Equal(StuckReason.no_heartbeat, d!.Reason);
        Assert.Contains("a on w-1", d.Explanation);
    }

    [Fact]
    public void A_run_that_keeps_progressing_is_only_stopped_by_run_timeout()
    {
        var s = Submit("a").Apply(new TaskStarted("a", "w", T0));
        for (var t = 30; t < 3600; t += 30) s = s.Apply(new TaskHeartbeat("a", T0.AddSeconds(t)));

        Assert.Null(StuckDetector.Evaluate(s, Node, T0.AddSeconds(3599)));
        Assert.Equal(StuckReason.run_timeout, StuckDetector.Evaluate(s, Node, T0.AddSeconds(3600))!.Reason);
    }

    [Fact]
    public void Per_run_overrides_win_over_the_nodes_thresholds()
    {
        var s = Submit("a", new DeadlockOverrides(PendingStaleS: 30, null, null));

        Assert.Equal(StuckReason.stale_pending, StuckDetector.Evaluate(s, Node, T0.AddSeconds(30))!.Reason);
        Assert.Equal(T0.AddSeconds(30), StuckDetector.NextDeadline(s, Node));
    }

    [Fact]
    public void Nothing_runnable_and_nothing_running_is_reported_at_once_with_the_blocking_dependency()
    {
        // Unreachable through validated submissions; a journal written by an older version could hold it.
        var s = Submit("a b<a");
        s = s with
        {
            Tasks = s.Tasks.SetItem("a", s.Tasks["a"] with { State = TaskState.FAILED }),
            Counts = s.Counts with { Queued = 0, Failed = 1 },
        };

        var d = StuckDetector.Evaluate(s, Node, T0);

        Assert.Equal(StuckReason.no_runnable_task, d!.Reason);
        Assert.Contains("b waits on a (FAILED)", d.Explanation);
    }

    [Theory]
    [InlineData(RunStatus.SUCCEEDED)]
    [InlineData(RunStatus.CANCELLING)]
    [InlineData(RunStatus.CANCELLED)]
    public void Runs_not_running_are_never_flagged(RunStatus status)
    {
        var s = Submit("a") with { Status = status };

        Assert.Null(StuckDetector.Evaluate(s, Node, T0.AddDays(10)));
        Assert.Null(StuckDetector.NextDeadline(s, Node));
    }

    [Fact]
    public void Invalid_overrides_are_refused_at_submission()
    {
        var spec = Dag.Spec("a") with { Deadlock = new DeadlockOverrides(null, 0, null) };

        var error = DagValidator.Validate(spec, Dag.Policy());

        Assert.Equal("deadlock.workflow_stale_s", error!.Field);
    }
}
