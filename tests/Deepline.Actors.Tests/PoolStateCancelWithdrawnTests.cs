using Deepline.Actors.Workers;

namespace Deepline.Actors.Tests;

/// <summary>
/// A cancel announced to the pools while its journal write is under way, whose write then failed: the pools forget it,
/// so the run's later tasks are not dropped.
/// </summary>
public sealed class PoolStateCancelWithdrawnTests
{
    private static ExecuteTask Task(string run, string id) => new(run, id, "noop", "default", null);

    [Fact]
    public void After_a_withdrawn_cancel_the_runs_next_task_is_offered_again()
    {
        var (cancelled, _) = PoolState.Empty(4).RunCancelled("r");
        Assert.Same(cancelled, cancelled.Offer(Task("r", "b")));

        var withdrawn = cancelled.CancelWithdrawn("r");

        Assert.DoesNotContain("r", withdrawn.CancelledRuns);
        var offered = withdrawn.Offer(Task("r", "b"));
        Assert.NotSame(withdrawn, offered);
        Assert.Single(offered.TakeClaims().ToClaim);
    }

    [Fact]
    public void Withdrawing_a_cancel_the_pool_never_heard_changes_nothing_and_other_cancels_stay()
    {
        var (cancelled, _) = PoolState.Empty(4).RunCancelled("other");
        Assert.Same(cancelled, cancelled.CancelWithdrawn("r"));
        Assert.Contains("other", cancelled.CancelWithdrawn("r").CancelledRuns);
    }
}
