using System.Collections.Immutable;
using Deepline.Actors.Queues;
using Deepline.Domain;

namespace Deepline.Actors.Tests;

/// <summary>The task queue's fairness and bookkeeping as pure functions, and what a stale run's explanation says about its pools.</summary>
public sealed class PoolQueueTests
{
    private static readonly DateTimeOffset T0 = new(2026, 12, 7, 12, 0, 0, TimeSpan.Zero);

    private static QueuedTask Q(string client, string run, string task) => new(run, task, "p", client, T0);

    [Fact]
    public void Clients_take_turns_and_within_a_client_its_runs_do()
    {
        var q = PoolQueue.Empty;
        for (var i = 0; i < 1000; i++) q = q.Enqueue(Q("big", "big-1", $"t{i}"));
        for (var i = 0; i < 3; i++) q = q.Enqueue(Q("big", "big-2", $"u{i}"));
        q = q.Enqueue(Q("small", "small-1", "only"));

        var (rest, taken) = q.Take(4);

        Assert.Equal(["big-1/t0", "small-1/only", "big-2/u0", "big-1/t1"], taken.Select(t => $"{t.RunId}/{t.TaskId}"));
        Assert.Equal(1000 + 3 + 1 - 4, rest.Depth);
    }

    [Fact]
    public void A_task_queued_twice_is_held_once_and_a_cancelled_runs_tasks_leave_with_their_turns()
    {
        var q = PoolQueue.Empty.Enqueue(Q("a", "r1", "x")).Enqueue(Q("a", "r1", "x")).Enqueue(Q("a", "r2", "y")).Enqueue(Q("b", "r3", "z"));
        Assert.Equal(3, q.Depth);

        q = q.RemoveRun("r1").RemoveRun("r3");

        Assert.Equal(1, q.Depth);
        Assert.Equal(["a"], q.ClientTurns);
        var (empty, taken) = q.Take(10);
        Assert.Equal("r2", Assert.Single(taken).RunId);
        Assert.Equal(0, empty.Depth);
        Assert.Empty(empty.ClientTurns);
        // The same client and run names queue again with one turn each.
        var again = empty.Enqueue(Q("a", "r1", "x2")).Enqueue(Q("b", "r3", "z2"));
        Assert.Equal(["r1", "r3"], again.Take(2).Taken.Select(t => t.RunId));
    }

    [Fact]
    public void A_stale_runs_explanation_names_its_pools_that_nobody_polls()
    {
        var run = WorkflowState.Create(new RunSubmitted(new RunSpec("r", "wf", "c",
            [new TaskSpec("a", "etl", "lonely", null, []), new TaskSpec("b", "etl", "busy", null, []), new TaskSpec("c", "etl", "other", null, ["a"])]), T0));
        var now = T0.AddSeconds(60);
        var stats = new QueueStats([
            new PoolQueueStat("lonely", 3, T0, 0, 0, null),
            new PoolQueueStat("busy", 5, T0, 0, 2, now.AddSeconds(-1)),
            new PoolQueueStat("other", 1, T0, 0, 0, null),
        ]);

        var hint = PoolHints.Unpolled(run, stats, now);

        Assert.Equal("no worker is polling pool 'lonely' (never polled, 3 queued): start workers for it (GET /pools)", hint);
        Assert.Equal("", PoolHints.Unpolled(run, new QueueStats([new PoolQueueStat("lonely", 3, T0, 1, 1, now)]), now));
    }
}
