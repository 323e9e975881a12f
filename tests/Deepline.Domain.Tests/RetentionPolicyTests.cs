using Deepline.Domain;

namespace Deepline.Domain.Tests;

public sealed class RetentionPolicyTests
{
    private static readonly DateTimeOffset Finished = new(2026, 12, 1, 12, 0, 0, TimeSpan.Zero);

    [Theory]
    [InlineData(RunStatus.SUCCEEDED, 60, true)]
    [InlineData(RunStatus.SUCCEEDED, 59, false)]
    [InlineData(RunStatus.FAILED, 3600, false)]      // failed runs are kept forever here
    [InlineData(RunStatus.CANCELLED, 120, true)]
    [InlineData(RunStatus.CANCELLED, 119, false)]
    [InlineData(RunStatus.RUNNING, 1_000_000, false)]   // an open run is never due, however old
    [InlineData(RunStatus.CANCELLING, 1_000_000, false)]
    public void A_run_is_due_once_its_states_limit_has_passed_since_it_finished(RunStatus status, int secondsLater, bool due)
    {
        var policy = new RetentionPolicy(SucceededS: 60, FailedS: 0, CancelledS: 120);
        var run = WorkflowState.Create(new RunSubmitted(Dag.Spec("a"), Finished.AddHours(-1))) with { Status = status, UpdatedAt = Finished };
        Assert.Equal(due, policy.IsDue(run, Finished.AddSeconds(secondsLater)));
    }

    [Fact]
    public void Zero_everywhere_keeps_everything()
    {
        Assert.True(RetentionPolicy.Forever.KeepsEverything);
        Assert.Null(RetentionPolicy.Forever.LimitFor(RunStatus.SUCCEEDED));
        Assert.False(new RetentionPolicy(0, 1, 0).KeepsEverything);
    }

    [Theory]
    [InlineData(RunStatus.SUCCEEDED, 0, true)]       // finished at the cutoff: over the cap
    [InlineData(RunStatus.FAILED, -1, true)]
    [InlineData(RunStatus.CANCELLED, 1, false)]      // finished after the last run the cap removes
    [InlineData(RunStatus.RUNNING, -60, false)]      // open runs are never over the cap
    public void Over_the_cap_a_finished_run_is_due_if_it_finished_by_the_cutoff(RunStatus status, int finishedSecondsAfterCutoff, bool due)
    {
        var policy = RetentionPolicy.Forever with { MaxFinishedRuns = 10 };
        var run = WorkflowState.Create(new RunSubmitted(Dag.Spec("a"), Finished.AddHours(-1))) with { Status = status, UpdatedAt = Finished.AddSeconds(finishedSecondsAfterCutoff) };
        Assert.Equal(due, policy.IsDue(run, Finished.AddDays(1), finishedBefore: Finished));
        Assert.False(policy.IsDue(run, Finished.AddDays(365)));  // no age limit: only the cap removes
        Assert.False(policy.KeepsEverything);
    }

    [Fact]
    public void The_caps_cutoff_holds_to_the_millisecond_the_index_keeps()
    {
        var policy = RetentionPolicy.Forever with { MaxFinishedRuns = 10 };
        var run = WorkflowState.Create(new RunSubmitted(Dag.Spec("a"), Finished.AddHours(-1))) with { Status = RunStatus.SUCCEEDED, UpdatedAt = Finished.AddTicks(9_999) };
        Assert.True(policy.IsDue(run, Finished, finishedBefore: Finished));   // 0.9999 ms later: the same millisecond in the index
        Assert.False(policy.IsDue(run with { UpdatedAt = Finished.AddMilliseconds(1) }, Finished, finishedBefore: Finished));
    }
}
