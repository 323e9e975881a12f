using Akka.Actor;
using Deepline.Actors.Workers;
using Deepline.Domain;
using static Deepline.Actors.Tests.Specs;

namespace Deepline.Actors.Tests;

public sealed class WorkflowLifecycleTests : IDisposable
{
    private readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    [Fact]
    public async Task Diamond_runs_every_task_in_dependency_order_and_succeeds()
    {
        await using var node = await TestNode.StartAsync(_dir.Path);
        var reply = await node.Ask<RunReply>(new SubmitRun(Run("diamond",
            Task("a"), Task("b", "noop", "a"), Task("c", "noop", "a"), Task("d", "noop", "b", "c"))));
        Assert.Equal(RunStatus.RUNNING, reply.State.Status);

        var done = await node.AwaitRun("diamond", s => s.Status.IsTerminal(), "run finishes");

        Assert.Equal(RunStatus.SUCCEEDED, done.Status);
        Assert.All(done.Tasks.Values, t => Assert.Equal(TaskState.SUCCEEDED, t.State));
        Assert.All(done.Tasks.Values, t => Assert.Equal(1, t.Attempts));
        Assert.True(done.Tasks["d"].UpdatedAt >= done.Tasks["b"].UpdatedAt);
        Assert.True(done.Tasks["d"].UpdatedAt >= done.Tasks["c"].UpdatedAt);
        Assert.StartsWith("default@127.0.0.1:", done.Tasks["a"].WorkerId);
    }

    [Fact]
    public async Task A_failed_task_skips_its_dependents_and_fails_the_run()
    {
        await using var node = await TestNode.StartAsync(_dir.Path);
        await node.Ask<RunReply>(new SubmitRun(Run("failing",
            Task("a", "fail"), Task("b", "noop", "a"), Task("c", "noop", "b"), Task("other"))));

        var done = await node.AwaitRun("failing", s => s.Status.IsTerminal(), "run finishes");

        Assert.Equal(RunStatus.FAILED, done.Status);
        Assert.Equal(TaskState.FAILED, done.Tasks["a"].State);
        // An operator reads the handler's message; its exception type is kept beside it, for retry policies.
        Assert.Equal(("task a failed as asked", "InvalidOperationException"), (done.Tasks["a"].Error, done.Tasks["a"].ErrorType));
        Assert.Equal(TaskState.SKIPPED, done.Tasks["b"].State);
        Assert.Equal(TaskState.SKIPPED, done.Tasks["c"].State);
        Assert.Equal(TaskState.SUCCEEDED, done.Tasks["other"].State);
    }

    [Fact]
    public async Task Tasks_beyond_the_free_slots_stay_queued_so_starvation_is_visible()
    {
        await using var node = await TestNode.StartAsync(_dir.Path, slots: 1);
        await node.Ask<RunReply>(new SubmitRun(Run("starved", Task("x", "hang"), Task("y", "hang"))));

        var s = await node.AwaitRun("starved", s => s.Counts.Running == 1, "one task running");

        Assert.Equal(1, s.Counts.Queued);
        // The pool holds the second task in its queue behind the busy slot instead of starting it.
        var pool = await node.System.ActorSelection("/user/" + Deepline.Actors.Workers.Topics.PoolActorName("default"))
            .ResolveOne(TimeSpan.FromSeconds(5));
        PoolStatus status = null!;
        await Await.Until(async () => (status = await pool.Ask<PoolStatus>(GetPoolStatus.Instance, TimeSpan.FromSeconds(5))).Waiting == 1,
            TimeSpan.FromSeconds(5), () => $"pool status {status}");
        Assert.Equal((1, 1), (status.Busy, status.Slots));
        Assert.Equal(1, (await node.Run("starved")).Counts.Queued);
    }

    [Fact]
    public async Task Finished_runs_leave_memory_after_passivate_after_and_come_back_from_the_journal()
    {
        await using var node = await TestNode.StartAsync(_dir.Path, passivateAfter: TimeSpan.FromMilliseconds(500));
        await node.Ask<RunReply>(new SubmitRun(Run("done", Task("a"))));
        await node.Ask<RunReply>(new SubmitRun(Run("open", Task("h", "hang"))));
        var finished = await node.AwaitRun("done", s => s.Status == RunStatus.SUCCEEDED, "run succeeds");

        async Task<IReadOnlySet<string>> Live()
        {
            var state = await node.Region.Ask<Akka.Cluster.Sharding.CurrentShardRegionState>(
                Akka.Cluster.Sharding.GetShardRegionState.Instance, TimeSpan.FromSeconds(5));
            return state.Shards.SelectMany(sh => sh.EntityIds).ToHashSet();
        }
        await Await.Until(async () => !(await Live()).Contains("done"), TimeSpan.FromSeconds(10), () => "finished run passivated");

        Assert.Contains("open", await Live());
        var back = await node.Run("done");
        Assert.Equal((finished.Status, finished.UpdatedAt), (back.Status, back.UpdatedAt));
    }

    [Fact]
    public async Task Unknown_runs_are_not_found_and_duplicates_conflict()
    {
        await using var node = await TestNode.StartAsync(_dir.Path);
        var missing = await node.Ask<CommandRejected>(new GetRun("nope"));
        Assert.Equal(RejectionKind.NotFound, missing.Kind);

        await node.Ask<RunReply>(new SubmitRun(Run("dup", Task("a", "hang"))));
        var again = await node.Ask<CommandRejected>(new SubmitRun(Run("dup", Task("a"))));
        Assert.Equal(RejectionKind.Conflict, again.Kind);
    }
}
