using Akka.Actor;
using Deepline.Domain;
using static Deepline.Actors.Tests.Specs;

namespace Deepline.Actors.Tests;

public sealed class CancellationTests : IDisposable
{
    private readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    [Fact]
    public async Task Cancel_is_two_phase_until_the_running_worker_acknowledges()
    {
        var gate = new GateHandler();
        await using var node = await TestNode.StartAsync(_dir.Path, [gate]);
        await node.Ask<RunReply>(new SubmitRun(Run("two-phase",
            Task("running", "gate"), Task("waiting", "noop", "running"), Task("later", "noop", "waiting"))));
        // In the handler, not only RUNNING in the journal: a cancel that reaches the pool between its claim and the
        // handler's start stops the task before it starts ("not started"), which is another test.
        await Await.Until(() => gate.Started.Contains("two-phase/running"), TimeSpan.FromSeconds(10), "handler running");

        var reply = await node.Ask<CancelReply>(new CancelRun("two-phase", "user requested cancellation", "api", Force: false));

        Assert.False(reply.AlreadyRequested);
        Assert.Equal(RunStatus.CANCELLING, reply.State.Status);
        Assert.Equal(2, reply.State.Cancel!.CancelledTasks);
        var done = await node.AwaitRun("two-phase", s => s.Status == RunStatus.CANCELLED, "worker acknowledges");
        Assert.False(done.Cancel!.Forced);
        Assert.Equal("workers", done.Cancel.FinalisedBy);
        Assert.Equal(TaskState.CANCELLED, done.Tasks["running"].State);
        Assert.Contains("cancellation reached the worker", done.Tasks["running"].Error);
    }

    [Fact]
    public async Task A_cancel_reaches_the_running_handler_while_its_journal_write_waits_and_the_answer_waits_for_the_write()
    {
        var gate = new GateHandler();
        await using var node = await TestNode.StartAsync(_dir.Path, [gate]);
        await node.Ask<RunReply>(new SubmitRun(Run("early", Task("g", "gate"))));
        await Await.Until(() => gate.Started.Contains("early/g"), TimeSpan.FromSeconds(10), "handler running");

        // Another connection holds SQLite's write lock: the journal's commit of the cancel waits for it (busy timeout).
        await using var blocker = new Microsoft.Data.Sqlite.SqliteConnection(Deepline.Actors.Hosting.SqliteStore.Prepare(_dir.Path).ConnectionString);
        await blocker.OpenAsync();
        await using (var begin = blocker.CreateCommand())
        {
            begin.CommandText = "BEGIN IMMEDIATE;";
            await begin.ExecuteNonQueryAsync();
        }
        var answer = node.Ask<CancelReply>(new CancelRun("early", "stop", "api", Force: false));

        await Await.Until(() => gate.Cancelled.Contains("early/g"), TimeSpan.FromSeconds(5), "the handler's token fired while the write waits");
        Assert.False(answer.IsCompleted, "the cancel was answered before its journal write was durable");

        await using (var rollback = blocker.CreateCommand())
        {
            rollback.CommandText = "ROLLBACK;";
            await rollback.ExecuteNonQueryAsync();
        }
        var reply = await answer;
        Assert.Equal(RunStatus.CANCELLING, reply.State.Status);
        var done = await node.AwaitRun("early", s => s.Status == RunStatus.CANCELLED, "the worker's acknowledgement is journalled after the cancel");
        Assert.False(done.Cancel!.Forced);
        Assert.Equal(TaskState.CANCELLED, done.Tasks["g"].State);
    }

    [Fact]
    public async Task A_pool_that_missed_the_cancel_notice_stops_the_task_on_its_next_heartbeat()
    {
        // The pool no longer hears the cancel topic, as when a notice is lost: the heartbeat's answer still carries the
        // run's cancel (the journal's record), so the task stops within a heartbeat interval, not at cancel_timeout_s.
        await using var node = await TestNode.StartAsync(_dir.Path);
        await node.Ask<RunReply>(new SubmitRun(Run("deaf", Task("running", "hang"))));
        await node.AwaitRun("deaf", s => s.Tasks["running"].State == TaskState.RUNNING, "task running");
        var pool = await node.System.ActorSelection("/user/" + Deepline.Actors.Workers.Topics.PoolActorName("default"))
            .ResolveOne(TimeSpan.FromSeconds(5));
        var mediator = Akka.Cluster.Tools.PublishSubscribe.DistributedPubSub.Get(node.System).Mediator;
        await mediator.Ask<Akka.Cluster.Tools.PublishSubscribe.UnsubscribeAck>(
            new Akka.Cluster.Tools.PublishSubscribe.Unsubscribe(Deepline.Actors.Workers.Topics.Cancellations, pool), TimeSpan.FromSeconds(5));

        await node.Ask<CancelReply>(new CancelRun("deaf", "user requested cancellation", "api", Force: false));

        // TestNode's heartbeat interval is 300 ms and its cancel_timeout_s 30 s.
        var done = await node.AwaitRun("deaf", s => s.Status == RunStatus.CANCELLED, "worker acknowledges", TimeSpan.FromSeconds(10));
        Assert.False(done.Cancel!.Forced);
        Assert.Equal(TaskState.CANCELLED, done.Tasks["running"].State);
        Assert.Contains("cancellation reached the worker", done.Tasks["running"].Error);
    }

    [Fact]
    public async Task Force_finalises_at_once_and_the_worker_is_still_stopped()
    {
        await using var node = await TestNode.StartAsync(_dir.Path, slots: 1);
        await node.Ask<RunReply>(new SubmitRun(Run("forced", Task("h", "hang"))));
        await node.AwaitRun("forced", s => s.Counts.Running == 1, "task running");

        var reply = await node.Ask<CancelReply>(new CancelRun("forced", "stop now", "ops", Force: true));

        Assert.Equal(RunStatus.CANCELLED, reply.State.Status);
        Assert.True(reply.State.Cancel!.Forced);
        // The slot comes back once the hang handler saw its token: a new run's task can start on it.
        await node.Ask<RunReply>(new SubmitRun(Run("next", Task("n"))));
        await node.AwaitRun("next", s => s.Status == RunStatus.SUCCEEDED, "the freed slot runs the next task");
    }

    [Fact]
    public async Task A_worker_that_ignores_the_cancel_is_finalised_by_the_timeout_and_its_late_success_is_ignored()
    {
        var stubborn = new StubbornHandler();
        await using var node = await TestNode.StartAsync(_dir.Path, [stubborn], cancelTimeout: TimeSpan.FromSeconds(1));
        await node.Ask<RunReply>(new SubmitRun(Run("stuck", Task("s", "stubborn"))));
        await Await.Until(() => stubborn.Started.Contains("s"), TimeSpan.FromSeconds(10), "handler running");

        var reply = await node.Ask<CancelReply>(new CancelRun("stuck", "deadline", "api", Force: false));
        Assert.Equal(RunStatus.CANCELLING, reply.State.Status);

        var done = await node.AwaitRun("stuck", s => s.Status == RunStatus.CANCELLED, "cancel_timeout_s finalises", TimeSpan.FromSeconds(10));
        Assert.True(done.Cancel!.Forced);
        Assert.Equal("cancel_timeout", done.Cancel.FinalisedBy);

        stubborn.Release();
        var after = await node.AwaitRun("stuck", s => s.Ignored.Count == 1, "late success recorded as ignored");
        Assert.Equal(TaskEventKind.TASK_SUCCEEDED, after.Ignored[0].Event);
        Assert.Equal(TaskState.CANCELLED, after.Tasks["s"].State);
        Assert.Equal(RunStatus.CANCELLED, after.Status);
    }

    [Fact]
    public async Task Repeating_a_cancel_returns_the_same_record_and_finished_runs_refuse_it()
    {
        await using var node = await TestNode.StartAsync(_dir.Path);
        await node.Ask<RunReply>(new SubmitRun(Run("once", Task("h", "hang"))));
        var first = await node.Ask<CancelReply>(new CancelRun("once", "first", "api", false));
        var second = await node.Ask<CancelReply>(new CancelRun("once", "second", "someone-else", false));

        Assert.True(second.AlreadyRequested);
        Assert.Equal(first.State.Cancel!.CancelledAt, second.State.Cancel!.CancelledAt);
        Assert.Equal("first", second.State.Cancel.Reason);

        await node.Ask<RunReply>(new SubmitRun(Run("finished", Task("n"))));
        await node.AwaitRun("finished", s => s.Status == RunStatus.SUCCEEDED, "run succeeds");
        var refused = await node.Ask<CommandRejected>(new CancelRun("finished", "too late", "api", false));
        Assert.Equal(RejectionKind.Conflict, refused.Kind);
    }
}
