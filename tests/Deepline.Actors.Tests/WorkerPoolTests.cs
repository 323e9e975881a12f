using System.Collections.Immutable;
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

    private (IActorRef Pool, Akka.TestKit.TestProbe Runs) StartPool(int slots, TimeSpan? cancelGrace = null, ITaskHandler? extra = null,
        TimeSpan? reportTimeout = null, int reportAttempts = 5)
    {
        var runs = CreateTestProbe();
        var registry = new TaskHandlerRegistry([.. TaskHandlerRegistry.BuiltIns, _counting, .. (extra is null ? Array.Empty<ITaskHandler>() : [extra])]);
        var pool = Sys.ActorOf(WorkerPool.Props(
            new WorkerPoolSettings("default", slots, TimeSpan.FromMilliseconds(200), reportTimeout ?? TimeSpan.FromSeconds(3), reportAttempts, cancelGrace),
            runs, registry, "w-test"));
        return (pool, runs);
    }

    private static ExecuteTask Exec(string run, string task, string type) => new(run, task, type, "default", null);

    /// <summary>The id of the last report taken from the probe: the pool matches answers to reports by it.</summary>
    private long _lastReport;

    private ReportTaskEvent Taken(PoolReport report)
    {
        _lastReport = report.Id;
        return report.Report;
    }

    private ReportTaskEvent ExpectReport(Akka.TestKit.TestProbe runs, TaskEventKind kind) =>
        Taken(runs.FishForMessage<PoolReport>(r => r.Report.Event == kind, TimeSpan.FromSeconds(5)));

    private ReportTaskEvent NextReport(Akka.TestKit.TestProbe runs, TimeSpan? within = null) => Taken(runs.ExpectMsg<PoolReport>(within));

    private IReadOnlyList<ReportTaskEvent> ReportsWithin(Akka.TestKit.TestProbe runs, TimeSpan window) =>
        runs.ReceiveWhile(window, o => ((PoolReport)o).Report);

    /// <summary>The run's answer to the last report taken, sent as a run sends it.</summary>
    private void Answer(Akka.TestKit.TestProbe runs, IDeeplineMessage answer) => runs.Reply(PoolReportAnswer.For(_lastReport, answer));

    [Fact]
    public void A_pool_claims_no_more_tasks_than_it_has_slots()
    {
        var (pool, runs) = StartPool(slots: 1);
        pool.Tell(Exec("r1", "a", "hang"));
        pool.Tell(Exec("r1", "b", "hang"));

        var claim = NextReport(runs);
        Assert.Equal((TaskEventKind.TASK_STARTED, "a", "w-test"), (claim.Event, claim.TaskId, claim.WorkerId));
        Answer(runs, new TaskEventAccepted("r1", "a", TaskState.RUNNING, RunStatus.RUNNING));

        // While "a" holds the only slot, "b" is never claimed: only heartbeats for "a" arrive. The first heartbeat is
        // awaited with a deadline (a loaded machine may take a while), then a window is watched for a claim of "b".
        var first = NextReport(runs, TimeSpan.FromSeconds(10));
        var seen = ReportsWithin(runs, TimeSpan.FromMilliseconds(700)).Prepend(first).ToList();
        Assert.All(seen, r => Assert.Equal((TaskEventKind.TASK_HEARTBEAT, "a"), (r.Event, r.TaskId)));
    }

    [Fact]
    public void A_refused_claim_never_starts_the_handler_and_frees_the_slot()
    {
        var (pool, runs) = StartPool(slots: 1);
        pool.Tell(Exec("cancelled-run", "a", "count"));
        pool.Tell(Exec("r2", "b", "count"));

        var first = NextReport(runs);
        Assert.Equal("a", first.TaskId);
        Answer(runs, new CommandRejected(RejectionKind.Conflict, "TASK_STARTED ignored: task 'a' is already CANCELLED"));

        var second = ExpectReport(runs, TaskEventKind.TASK_STARTED);
        Assert.Equal("b", second.TaskId);
        Answer(runs, new TaskEventAccepted("r2", "b", TaskState.RUNNING, RunStatus.RUNNING));
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
        Answer(runs, new TaskEventAccepted("r3", "h", TaskState.RUNNING, RunStatus.RUNNING));
        ExpectReport(runs, TaskEventKind.TASK_HEARTBEAT);

        pool.Tell(new RunCancelledNotice("r3", "stop", "api", DateTimeOffset.UtcNow));

        var cancelled = ExpectReport(runs, TaskEventKind.TASK_CANCELLED);
        Assert.Equal("h", cancelled.TaskId);
        // Tasks of a cancelled run that arrive later are never claimed.
        pool.Tell(Exec("r3", "late", "noop"));
        Assert.All(ReportsWithin(runs, TimeSpan.FromMilliseconds(500)),
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
        Answer(runs, new TaskEventAccepted("r4", "s", TaskState.RUNNING, RunStatus.RUNNING));
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
        Answer(runs, new TaskEventAccepted("r5", "next", TaskState.RUNNING, RunStatus.RUNNING));
        Assert.Equal("next", ExpectReport(runs, TaskEventKind.TASK_SUCCEEDED).TaskId);

        // When the abandoned handler finally returns, its success is not reported: the task was already settled.
        stubborn.Release();
        Assert.All(ReportsWithin(runs, TimeSpan.FromMilliseconds(600)),
            r => Assert.False(r.TaskId == "s" && r.Event == TaskEventKind.TASK_SUCCEEDED, "abandoned task reported a success"));
    }

    [Fact]
    public void A_refused_heartbeat_cancels_the_token_and_starts_the_grace_period_too()
    {
        var stubborn = new StubbornHandler();
        var (pool, runs) = StartPool(slots: 1, TimeSpan.FromMilliseconds(300), stubborn);
        pool.Tell(Exec("r6", "s", "stubborn"));
        ExpectReport(runs, TaskEventKind.TASK_STARTED);
        Answer(runs, new TaskEventAccepted("r6", "s", TaskState.RUNNING, RunStatus.RUNNING));

        ExpectReport(runs, TaskEventKind.TASK_HEARTBEAT);
        Answer(runs, new CommandRejected(RejectionKind.Conflict, "TASK_HEARTBEAT ignored: task 's' is already CANCELLED"));

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
        Answer(runs, new TaskEventAccepted("r7", "h", TaskState.RUNNING, RunStatus.RUNNING));
        ExpectReport(runs, TaskEventKind.TASK_HEARTBEAT);

        pool.Tell(new RunCancelledNotice("r7", "stop", "api", DateTimeOffset.UtcNow));

        var cancelled = ExpectReport(runs, TaskEventKind.TASK_CANCELLED);
        Assert.DoesNotContain("forced", cancelled.Error);
        Assert.Contains("cancellation reached the worker", cancelled.Error);
    }

    [Fact]
    public void A_run_cancelled_while_its_claim_is_in_flight_gets_the_task_acknowledged_without_starting_it()
    {
        var (pool, runs) = StartPool(slots: 1);
        pool.Tell(Exec("r8", "c", "count"));
        ExpectReport(runs, TaskEventKind.TASK_STARTED);
        var (claimSender, claim) = (runs.LastSender, _lastReport);

        pool.Tell(new RunCancelledNotice("r8", "stop", "api", DateTimeOffset.UtcNow));
        claimSender.Tell(PoolReportAnswer.For(claim, new TaskEventAccepted("r8", "c", TaskState.RUNNING, RunStatus.CANCELLING)));

        var cancelled = ExpectReport(runs, TaskEventKind.TASK_CANCELLED);
        Assert.Equal("c", cancelled.TaskId);
        Assert.Empty(_counting.Ran);
    }

    [Fact]
    public void A_report_without_an_answer_is_sent_again_and_the_late_answer_to_the_first_starts_nothing()
    {
        var (pool, runs) = StartPool(slots: 1, reportTimeout: TimeSpan.FromMilliseconds(300));
        pool.Tell(Exec("r9", "a", "count"));
        ExpectReport(runs, TaskEventKind.TASK_STARTED);
        var first = _lastReport;

        var again = ExpectReport(runs, TaskEventKind.TASK_STARTED);
        Assert.Equal("a", again.TaskId);
        Assert.NotEqual(first, _lastReport);
        runs.Reply(PoolReportAnswer.For(first, new TaskEventAccepted("r9", "a", TaskState.RUNNING, RunStatus.RUNNING)));
        Answer(runs, new TaskEventAccepted("r9", "a", TaskState.RUNNING, RunStatus.RUNNING));

        Assert.Equal("a", ExpectReport(runs, TaskEventKind.TASK_SUCCEEDED).TaskId);
        Assert.Equal(["r9/a"], _counting.Ran);
    }

    [Fact]
    public void An_outcome_is_sent_until_its_run_answers_however_many_tries_that_takes()
    {
        // Measured in a rolling restart: a shard's hand-over outlasted the tries a claim gets; an outcome given up then
        // left its run RUNNING until the attempt's lease, and the finished task ran again.
        var (pool, runs) = StartPool(slots: 1, reportTimeout: TimeSpan.FromMilliseconds(100), reportAttempts: 2);
        pool.Tell(Exec("r11", "a", "count"));
        ExpectReport(runs, TaskEventKind.TASK_STARTED);
        Answer(runs, new TaskEventAccepted("r11", "a", TaskState.RUNNING, RunStatus.RUNNING));

        // Twice the tries a claim gets go unanswered; the outcome keeps coming.
        for (var i = 0; i < 4; i++) Assert.Equal("a", ExpectReport(runs, TaskEventKind.TASK_SUCCEEDED).TaskId);
        Answer(runs, new TaskEventAccepted("r11", "a", TaskState.SUCCEEDED, RunStatus.SUCCEEDED));
        runs.ExpectNoMsg(TimeSpan.FromSeconds(2)); // longer than the next retry would wait (1.6 s)
        Assert.Equal(["r11/a"], _counting.Ran);
    }

    [Fact]
    public void An_unanswered_claim_is_given_up_after_its_tries_and_frees_the_slot()
    {
        var (pool, runs) = StartPool(slots: 1, reportTimeout: TimeSpan.FromMilliseconds(100), reportAttempts: 2);
        pool.Tell(Exec("r12", "a", "count"));
        pool.Tell(Exec("r12", "b", "count"));
        Assert.Equal("a", ExpectReport(runs, TaskEventKind.TASK_STARTED).TaskId);
        Assert.Equal("a", ExpectReport(runs, TaskEventKind.TASK_STARTED).TaskId);

        // Given up, "a" never starts here, and its slot goes to "b".
        Assert.Equal("b", ExpectReport(runs, TaskEventKind.TASK_STARTED).TaskId);
        Answer(runs, new TaskEventAccepted("r12", "b", TaskState.RUNNING, RunStatus.RUNNING));
        Assert.Equal("b", ExpectReport(runs, TaskEventKind.TASK_SUCCEEDED).TaskId);
        Assert.Equal(["r12/b"], _counting.Ran);
    }

    [Fact]
    public void Later_reports_go_straight_to_the_run_that_answered_and_a_retry_goes_through_the_region_again()
    {
        var (pool, region) = StartPool(slots: 1, reportTimeout: TimeSpan.FromMilliseconds(300));
        var run = CreateTestProbe();
        pool.Tell(Exec("r10", "a", "count"));
        ExpectReport(region, TaskEventKind.TASK_STARTED);
        run.Send(pool, PoolReportAnswer.For(_lastReport, new TaskEventAccepted("r10", "a", TaskState.RUNNING, RunStatus.RUNNING)));

        // The run entity answered: the task's success goes to it, past the shard region.
        Assert.Equal("a", Taken(run.FishForMessage<PoolReport>(r => r.Report.Event == TaskEventKind.TASK_SUCCEEDED, TimeSpan.FromSeconds(5))).TaskId);
        // Unanswered (the entity may have stopped or moved): the retry goes through the region, which finds the run.
        Assert.Equal("a", ExpectReport(region, TaskEventKind.TASK_SUCCEEDED).TaskId);
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

    [Fact]
    public void Reports_to_a_run_wait_while_one_is_unanswered_then_go_together_in_order()
    {
        var (pool, runs) = StartPool(slots: 3);
        pool.Tell(Exec("rb", "x", "count"));
        pool.Tell(Exec("rb", "y", "count"));
        pool.Tell(Exec("rb", "z", "count"));

        // The first claim goes alone; the others wait for its answer.
        var first = runs.ExpectMsg<PoolReport>(TimeSpan.FromSeconds(5));
        runs.ExpectNoMsg(TimeSpan.FromMilliseconds(300));
        pool.Tell(PoolReportAnswer.For(first.Id, new TaskEventAccepted("rb", first.Report.TaskId, TaskState.RUNNING, RunStatus.RUNNING)), runs.Ref);

        // Answered: the two waiting claims come in one message, in the order they were made.
        var together = runs.FishForMessage<PoolReports>(_ => true, TimeSpan.FromSeconds(5));
        Assert.Equal("rb", together.RunId);
        Assert.All(together.Reports, r => Assert.Equal(TaskEventKind.TASK_STARTED, r.Report.Event));
        Assert.Equal(new[] { "x", "y", "z" }.Except([first.Report.TaskId]), together.Reports.Select(r => r.Report.TaskId));

        // Every task then succeeds, its report answered whether it came alone or with others.
        foreach (var r in together.Reports)
            pool.Tell(PoolReportAnswer.For(r.Id, new TaskEventAccepted("rb", r.Report.TaskId, TaskState.RUNNING, RunStatus.RUNNING)), runs.Ref);
        var successes = new HashSet<string>();
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(10);
        while (successes.Count < 3)
        {
            var m = runs.ReceiveOne(deadline - DateTime.UtcNow) ?? throw new TimeoutException($"successes seen: {string.Join(", ", successes)}");
            foreach (var r in m switch { PoolReport one => [one], PoolReports many => many.Reports, _ => ImmutableArray<PoolReport>.Empty })
            {
                if (r.Report.Event == TaskEventKind.TASK_SUCCEEDED) successes.Add(r.Report.TaskId);
                pool.Tell(PoolReportAnswer.For(r.Id, new TaskEventAccepted("rb", r.Report.TaskId, TaskState.RUNNING, RunStatus.RUNNING)), runs.Ref);
            }
        }
    }
}
