using System.Collections.Concurrent;
using System.Diagnostics;
using System.Text.Json;
using Akka.Actor;
using Akka.Cluster;
using Akka.Configuration;
using Deepline.Actors.Serialization;
using Deepline.Actors.Workers;
using Deepline.Domain;

namespace Deepline.Actors.Tests;

/// <summary>The pool's claim protocol, with a TestProbe standing in for the runs' shard region.</summary>
public sealed class WorkerPoolTests : Akka.TestKit.Xunit2.TestKit
{
    private static readonly Config ClusterConfig = ConfigurationFactory.ParseString($$"""
        akka.actor.provider = cluster
        akka.remote.dot-netty.tcp { hostname = 127.0.0.1, port = 0 }
        akka.loglevel = WARNING
        akka.actor.serializers.deepline = "{{typeof(DeeplineSerializer).AssemblyQualifiedName}}"
        akka.actor.serialization-bindings { "{{typeof(IDeeplineMessage).AssemblyQualifiedName}}" = deepline }
        """);

    private readonly CountingHandler _counting = new();

    public WorkerPoolTests() : base(ClusterConfig)
    {
        Cluster.Get(Sys).Join(Cluster.Get(Sys).SelfAddress);
    }

    private (IActorRef Pool, Akka.TestKit.TestProbe Runs) StartPool(int slots, TimeSpan? cancelGrace = null, ITaskHandler? extra = null)
    {
        var runs = CreateTestProbe();
        var registry = new TaskHandlerRegistry([.. TaskHandlerRegistry.BuiltIns, _counting, .. (extra is null ? Array.Empty<ITaskHandler>() : [extra])]);
        var pool = Sys.ActorOf(WorkerPool.Props(
            new WorkerPoolSettings("default", slots, TimeSpan.FromMilliseconds(200), TimeSpan.FromSeconds(3), CancelGrace: cancelGrace),
            runs, registry, "w-test"));
        return (pool, runs);
    }

    private static ExecuteTask Exec(string run, string task, string type) => new(run, task, type, "default", null);

    private ReportTaskEvent ExpectReport(Akka.TestKit.TestProbe runs, TaskEventKind kind) =>
        runs.FishForMessage<ReportTaskEvent>(r => r.Event == kind, TimeSpan.FromSeconds(5));

    [Fact]
    public void A_pool_claims_no_more_tasks_than_it_has_slots()
    {
        var (pool, runs) = StartPool(slots: 1);
        pool.Tell(Exec("r1", "a", "hang"));
        pool.Tell(Exec("r1", "b", "hang"));

        var claim = runs.ExpectMsg<ReportTaskEvent>();
        Assert.Equal((TaskEventKind.TASK_STARTED, "a", "w-test"), (claim.Event, claim.TaskId, claim.WorkerId));
        runs.Reply(new TaskEventAccepted("r1", "a", TaskState.RUNNING, RunStatus.RUNNING));

        // While "a" holds the only slot, "b" is never claimed: only heartbeats for "a" arrive. The first heartbeat is
        // awaited with a deadline (a loaded machine may take a while), then a window is watched for a claim of "b".
        var first = runs.ExpectMsg<ReportTaskEvent>(TimeSpan.FromSeconds(10));
        var seen = runs.ReceiveWhile(TimeSpan.FromMilliseconds(700), o => (ReportTaskEvent)o).Prepend(first).ToList();
        Assert.All(seen, r => Assert.Equal((TaskEventKind.TASK_HEARTBEAT, "a"), (r.Event, r.TaskId)));
    }

    [Fact]
    public void A_refused_claim_never_starts_the_handler_and_frees_the_slot()
    {
        var (pool, runs) = StartPool(slots: 1);
        pool.Tell(Exec("cancelled-run", "a", "count"));
        pool.Tell(Exec("r2", "b", "count"));

        var first = runs.ExpectMsg<ReportTaskEvent>();
        Assert.Equal("a", first.TaskId);
        runs.Reply(new CommandRejected(RejectionKind.Conflict, "TASK_STARTED ignored: task 'a' is already CANCELLED"));

        var second = ExpectReport(runs, TaskEventKind.TASK_STARTED);
        Assert.Equal("b", second.TaskId);
        runs.Reply(new TaskEventAccepted("r2", "b", TaskState.RUNNING, RunStatus.RUNNING));
        var done = ExpectReport(runs, TaskEventKind.TASK_SUCCEEDED);

        Assert.Equal("b", done.TaskId);
        Assert.Equal(["r2/b"], _counting.Ran);
    }

    [Fact]
    public void The_cancel_notice_fires_the_running_tasks_token_and_the_pool_reports_it()
    {
        var (pool, runs) = StartPool(slots: 2);
        pool.Tell(Exec("r3", "h", "hang"));
        ExpectReport(runs, TaskEventKind.TASK_STARTED);
        runs.Reply(new TaskEventAccepted("r3", "h", TaskState.RUNNING, RunStatus.RUNNING));
        ExpectReport(runs, TaskEventKind.TASK_HEARTBEAT);

        pool.Tell(new RunCancelledNotice("r3", "stop", "api", DateTimeOffset.UtcNow));

        var cancelled = ExpectReport(runs, TaskEventKind.TASK_CANCELLED);
        Assert.Equal("h", cancelled.TaskId);
        // Tasks of a cancelled run that arrive later are never claimed.
        pool.Tell(Exec("r3", "late", "noop"));
        Assert.All(runs.ReceiveWhile(TimeSpan.FromMilliseconds(500), o => (ReportTaskEvent)o),
            r => Assert.NotEqual(TaskEventKind.TASK_STARTED, r.Event));
    }

    [Fact]
    public void A_handler_that_ignores_its_token_is_abandoned_after_the_grace_period_and_reported_as_forced()
    {
        var stubborn = new StubbornHandler();
        var grace = TimeSpan.FromMilliseconds(400);
        var (pool, runs) = StartPool(slots: 1, grace, stubborn);
        pool.Tell(Exec("r4", "s", "stubborn"));
        pool.Tell(Exec("r5", "next", "count"));
        Assert.Equal("s", ExpectReport(runs, TaskEventKind.TASK_STARTED).TaskId);
        runs.Reply(new TaskEventAccepted("r4", "s", TaskState.RUNNING, RunStatus.RUNNING));
        AwaitCondition(() => stubborn.Started.Contains("s"), TimeSpan.FromSeconds(5));

        var cancelledAt = Stopwatch.StartNew();
        pool.Tell(new RunCancelledNotice("r4", "stop", "api", DateTimeOffset.UtcNow));

        var forced = ExpectReport(runs, TaskEventKind.TASK_CANCELLED);
        Assert.True(cancelledAt.Elapsed >= grace, $"reported after {cancelledAt.Elapsed}, before the grace period ended");
        Assert.Equal("s", forced.TaskId);
        Assert.Contains("forced", forced.Error);
        Assert.Contains("cancel_grace_s = 0.4 s", forced.Error);

        // The abandoned handler no longer holds the only slot: the next task is claimed and runs.
        var next = ExpectReport(runs, TaskEventKind.TASK_STARTED);
        Assert.Equal("next", next.TaskId);
        runs.Reply(new TaskEventAccepted("r5", "next", TaskState.RUNNING, RunStatus.RUNNING));
        Assert.Equal("next", ExpectReport(runs, TaskEventKind.TASK_SUCCEEDED).TaskId);

        // When the abandoned handler finally returns, its success is not reported: the task was already settled.
        stubborn.Release();
        Assert.All(runs.ReceiveWhile(TimeSpan.FromMilliseconds(600), o => (ReportTaskEvent)o),
            r => Assert.False(r.TaskId == "s" && r.Event == TaskEventKind.TASK_SUCCEEDED, "abandoned task reported a success"));
    }

    [Fact]
    public void A_refused_heartbeat_cancels_the_token_and_starts_the_grace_period_too()
    {
        var stubborn = new StubbornHandler();
        var (pool, runs) = StartPool(slots: 1, TimeSpan.FromMilliseconds(300), stubborn);
        pool.Tell(Exec("r6", "s", "stubborn"));
        ExpectReport(runs, TaskEventKind.TASK_STARTED);
        runs.Reply(new TaskEventAccepted("r6", "s", TaskState.RUNNING, RunStatus.RUNNING));

        ExpectReport(runs, TaskEventKind.TASK_HEARTBEAT);
        runs.Reply(new CommandRejected(RejectionKind.Conflict, "TASK_HEARTBEAT ignored: task 's' is already CANCELLED"));

        var forced = ExpectReport(runs, TaskEventKind.TASK_CANCELLED);
        Assert.Contains("forced", forced.Error);
        stubborn.Release();
    }

    [Fact]
    public void A_handler_that_honours_its_token_within_the_grace_is_reported_as_a_normal_cancel()
    {
        var (pool, runs) = StartPool(slots: 1, TimeSpan.FromSeconds(5));
        pool.Tell(Exec("r7", "h", "hang"));
        ExpectReport(runs, TaskEventKind.TASK_STARTED);
        runs.Reply(new TaskEventAccepted("r7", "h", TaskState.RUNNING, RunStatus.RUNNING));
        ExpectReport(runs, TaskEventKind.TASK_HEARTBEAT);

        pool.Tell(new RunCancelledNotice("r7", "stop", "api", DateTimeOffset.UtcNow));

        var cancelled = runs.FishForMessage<ReportTaskEvent>(r => r.Event == TaskEventKind.TASK_CANCELLED, TimeSpan.FromSeconds(2));
        Assert.DoesNotContain("forced", cancelled.Error);
        Assert.Contains("cancellation reached the worker", cancelled.Error);
    }

    [Fact]
    public void A_run_cancelled_while_its_claim_is_in_flight_gets_the_task_acknowledged_without_starting_it()
    {
        var (pool, runs) = StartPool(slots: 1);
        pool.Tell(Exec("r8", "c", "count"));
        ExpectReport(runs, TaskEventKind.TASK_STARTED);
        var claimSender = runs.LastSender;

        pool.Tell(new RunCancelledNotice("r8", "stop", "api", DateTimeOffset.UtcNow));
        claimSender.Tell(new TaskEventAccepted("r8", "c", TaskState.RUNNING, RunStatus.CANCELLING));

        var cancelled = ExpectReport(runs, TaskEventKind.TASK_CANCELLED);
        Assert.Equal("c", cancelled.TaskId);
        Assert.Empty(_counting.Ran);
    }

    private sealed class CountingHandler : ITaskHandler
    {
        private readonly ConcurrentQueue<string> _ran = new();

        public string Type => "count";

        public IReadOnlyList<string> Ran => [.. _ran];

        public Task<JsonElement?> ExecuteAsync(TaskContext context, CancellationToken cancellationToken)
        {
            _ran.Enqueue($"{context.RunId}/{context.TaskId}");
            return Task.FromResult<JsonElement?>(null);
        }
    }
}
