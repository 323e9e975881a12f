using Deepline.Actors.Workers;

namespace Deepline.Actors.Tests;

/// <summary>The pure decision after the pre-start check against the shared cancel set (Redis).</summary>
public sealed class PoolStatePreStartCheckTests
{
    private static ExecuteTask Task(string run, string id) => new(run, id, "noop", "default", null);

    private static PoolState Running(params ExecuteTask[] tasks)
    {
        var state = PoolState.Empty(4);
        foreach (var t in tasks) state = state.Offer(t);
        (state, _) = state.TakeClaims();
        foreach (var t in tasks) (state, _) = state.Claimed(new TaskKey(t.RunId, t.TaskId));
        return state;
    }

    [Fact]
    public void A_run_unknown_to_the_set_starts()
    {
        var (state, start, abort) = Running(Task("r", "a")).Checked(new TaskKey("r", "a"), cancelledElsewhere: false);
        Assert.True(start);
        Assert.Empty(abort);
        Assert.Equal(1, state.Busy);
    }

    [Fact]
    public void A_run_cancelled_elsewhere_does_not_start_frees_the_slot_and_aborts_its_other_running_tasks()
    {
        var (state, start, abort) = Running(Task("r", "a"), Task("r", "b"), Task("other", "c")).Checked(new TaskKey("r", "a"), cancelledElsewhere: true);
        Assert.False(start);
        Assert.Equal([new TaskKey("r", "b")], abort);
        Assert.Contains("r", state.CancelledRuns);
        Assert.Equal(2, state.Busy);

        // Later tasks of the run are refused on the local set, without asking Redis again.
        Assert.Same(state, state.Offer(Task("r", "d")));
    }

    [Fact]
    public void A_run_cancelled_here_while_the_check_was_in_flight_does_not_start()
    {
        var (cancelled, _) = Running(Task("r", "a")).RunCancelled("r");
        var (state, start, _) = cancelled.Checked(new TaskKey("r", "a"), cancelledElsewhere: false);
        Assert.False(start);
        Assert.Equal(0, state.Busy);
    }
}
