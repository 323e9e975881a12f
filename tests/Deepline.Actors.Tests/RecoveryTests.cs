using Akka.Actor;
using Deepline.Actors.Workflows;
using Deepline.Domain;
using static Deepline.Actors.Tests.Specs;

namespace Deepline.Actors.Tests;

public sealed class RecoveryTests : IDisposable
{
    private readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    [Fact]
    public async Task A_restarted_entity_recovers_the_same_state_from_journal_and_snapshots()
    {
        await using var node = await TestNode.StartAsync(_dir.Path, snapshotEvery: 2);
        var settings = node.Settings;
        // Outside the region, so the test decides when the entity dies; same persistence id as the shard's would use.
        var first = node.System.ActorOf(WorkflowActor.Props("solo", settings));
        // Tasks for an external pool, so no in-cluster worker talks to the region's own "solo" entity meanwhile.
        var external = Run("solo", Task("a", "hang"), Task("b", "noop", "a"));
        external = external with { Tasks = [.. external.Tasks.Select(t => t with { Pool = "external" })] };
        await first.Ask<RunReply>(new SubmitRun(external), TimeSpan.FromSeconds(10));
        await first.Ask<TaskEventAccepted>(new ReportTaskEvent("solo", "a", TaskEventKind.TASK_STARTED, "w-1", null, null), TimeSpan.FromSeconds(10));
        await first.Ask<CancelReply>(new CancelRun("solo", "recover me", "api", false), TimeSpan.FromSeconds(10));
        var before = (await first.Ask<RunReply>(new GetRun("solo"), TimeSpan.FromSeconds(10))).State;
        await first.GracefulStop(TimeSpan.FromSeconds(5));

        var second = node.System.ActorOf(WorkflowActor.Props("solo", settings));
        var after = (await second.Ask<RunReply>(new GetRun("solo"), TimeSpan.FromSeconds(10))).State;

        AssertSameRun(before, after);
        Assert.Equal(RunStatus.CANCELLING, after.Status);
        await second.GracefulStop(TimeSpan.FromSeconds(5));
    }

    [Fact]
    public async Task After_a_whole_node_restart_every_run_is_back_and_open_runs_resume_on_their_own()
    {
        WorkflowState finished, cancelled, open;
        await using (var node = await TestNode.StartAsync(_dir.Path, slots: 1, retry: ThreeAttempts))
        {
            await node.Ask<RunReply>(new SubmitRun(Run("finished", Task("a"), Task("b", "noop", "a"))));
            finished = await node.AwaitRun("finished", s => s.Status == RunStatus.SUCCEEDED, "run succeeds");
            await node.Ask<RunReply>(new SubmitRun(Run("was-cancelled", Task("x", "hang"))));
            await node.AwaitRun("was-cancelled", s => s.Counts.Running == 1, "hang running");
            await node.Ask<CancelReply>(new CancelRun("was-cancelled", "before restart", "api", Force: true));
            cancelled = await node.AwaitRun("was-cancelled", s => s.Status == RunStatus.CANCELLED, "was-cancelled");
            // One slot, two tasks: "first" runs, "second" waits QUEUED when the node goes down.
            await node.Ask<RunReply>(new SubmitRun(Run("open", Task("first", "hang"), Task("second", "noop"))));
            open = await node.AwaitRun("open", s => s.Counts.Running == 1 && s.Counts.Queued == 1, "one running, one queued");
        }

        await using var restarted = await TestNode.StartAsync(_dir.Path, slots: 1, retry: ThreeAttempts);

        AssertSameRun(finished, await restarted.Run("finished"));
        AssertSameRun(cancelled, await restarted.Run("was-cancelled"));
        // Nobody asks about "open": its entity is remembered, recovers, re-offers its queued task, and the task runs; the
        // task that was running died with the node, so it runs again as its second attempt (not left RUNNING on a dead worker).
        var resumed = await restarted.AwaitRun("open", s => s.Tasks["second"].State == TaskState.SUCCEEDED && s.Tasks["first"] is { State: TaskState.RUNNING, Attempts: 2 },
            "queued task of an open run runs after restart and the interrupted one runs again");
        Assert.Equal(open.CreatedAt, resumed.CreatedAt);
        Assert.StartsWith("interrupted:", resumed.Tasks["first"].Error);
    }

    private static void AssertSameRun(WorkflowState expected, WorkflowState actual)
    {
        Assert.Equal(TestNode.Describe(expected), TestNode.Describe(actual));
        Assert.Equal(expected.Status, actual.Status);
        Assert.Equal(expected.Counts, actual.Counts);
        Assert.Equal(expected.Cancel, actual.Cancel);
        Assert.Equal(expected.CreatedAt, actual.CreatedAt);
        Assert.Equal(expected.UpdatedAt, actual.UpdatedAt);
        foreach (var (id, t) in expected.Tasks)
        {
            var a = actual.Tasks[id];
            Assert.Equal((t.State, t.Attempts, t.WorkerId, t.UpdatedAt, t.Error), (a.State, a.Attempts, a.WorkerId, a.UpdatedAt, a.Error));
        }
    }
}
