using Deepline.Actors.Alerting;
using Akka.Actor;
using Deepline.Actors.Monitoring;
using Deepline.Actors.Resources;
using Deepline.Domain;
using Deepline.Domain.Resources;
using static Deepline.Actors.Tests.Specs;

namespace Deepline.Actors.Tests;

public sealed class ResourceDeadlockTests : IDisposable
{
    private readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    private static TaskSpec Needs(TaskSpec task, string resource, string? holdUntil = null) =>
        task with { Resources = [new ResourceRequest(resource, 1)], HoldUntil = holdUntil };

    /// <summary>first holds <paramref name="held"/> (through a gate task) until second, which needs <paramref name="wanted"/>, ends.</summary>
    private static RunSpec Crossing(string runId, string held, string wanted) => Run(runId,
        Needs(Task("first", "gate"), held, holdUntil: "second"),
        Needs(Task("second", "noop", "first"), wanted));

    private static async Task<ResourceView> Resource(TestNode node, string name)
    {
        var coordinator = await Akka.Hosting.ActorRegistry.For(node.System).GetAsync<ResourceCoordinator>();
        return await coordinator.Ask<ResourceView>(new GetResource(name, 100), TimeSpan.FromSeconds(10));
    }

    [Fact]
    public async Task Two_runs_crossing_two_resources_deadlock_and_exactly_one_is_cancelled_naming_the_cycle_while_the_other_completes()
    {
        var gate = new GateHandler();
        await using var node = await TestNode.StartAsync(_dir.Path, handlers: [gate],
            monitor: new MonitorSettings(new DetectorThresholds(3600, 3600, 3600), TimeSpan.FromSeconds(1), true, false));
        await node.Ask<RunReply>(new SubmitRun(Crossing("A", "warehouse-db", "gpu")));
        await Await.Until(() => gate.Started.Contains("A/first"), TimeSpan.FromSeconds(10), "A holds warehouse-db");
        await node.Ask<RunReply>(new SubmitRun(Crossing("B", "gpu", "warehouse-db")));
        await Await.Until(() => gate.Started.Contains("B/first"), TimeSpan.FromSeconds(10), "B holds gpu");

        gate.Open();

        var b = await node.AwaitRun("B", s => s.Status.IsTerminal(), "the youngest run is the victim");
        var a = await node.AwaitRun("A", s => s.Status.IsTerminal(), "the survivor completes");
        Assert.Equal((RunStatus.SUCCEEDED, RunStatus.CANCELLED), (a.Status, b.Status));
        Assert.Equal("resource_deadlock", b.Cancel!.DeadlockReason);
        Assert.Contains("run A holds warehouse-db, waits for gpu", b.Cancel.Reason);
        Assert.Contains("run B holds gpu, waits for warehouse-db", b.Cancel.Reason);
        // Alerted and counted once, as one incident.
        await Await.Until(async () => (await node.MonitorStatus()).Stats.WorkflowsCancelled == 1, TimeSpan.FromSeconds(10), () => "incident cancelled");
        var stats = (await node.MonitorStatus()).Stats;
        Assert.Equal((1L, 1L), (stats.DeadlocksDetected, stats.ByReason.GetValueOrDefault(StuckReason.resource_deadlock)));
        // Both ended: nothing is held any more.
        await Await.Until(async () => (await Resource(node, "warehouse-db")).Used == 0 && (await Resource(node, "gpu")).Used == 0,
            TimeSpan.FromSeconds(10), () => "everything released");
    }

    [Fact]
    public async Task A_victim_reported_again_while_its_incident_is_being_written_is_alerted_once()
    {
        // The coordinator reports a victim again (its 2 s tick, a recovery, an early report racing its own write) until
        // the supervisor says it took it, which it says once the incident is journalled: a report in that window must
        // not alert (nor cancel, nor log) the same incident a second time.
        using var receiver = new AlertReceiver();
        var webhook = new WebhookSettings(receiver.Url, AlertFormat.slack, null, TimeSpan.FromSeconds(2), 2, TimeSpan.FromMilliseconds(100));
        await using var node = await TestNode.StartAsync(_dir.Path, webhook: webhook,
            // Checks an hour apart: no follow-up closes the incidents of these runs (unknown to the node) meanwhile.
            monitor: new MonitorSettings(new DetectorThresholds(3600, 3600, 3600), TimeSpan.FromHours(1), false, true));
        var at = DateTimeOffset.UtcNow;
        Detection Found(string runId) => new(runId, "wf", StuckReason.resource_deadlock, at, at, [], $"resource deadlock: run {runId} holds a, waits for b");
        int AlertsFor(string runId) => receiver.Received.Count(a => a["text"]!.GetValue<string>().EndsWith("Workflow " + runId, StringComparison.Ordinal));

        node.Supervisor!.Tell(new ResourceDeadlockFound(Found("twice")));
        node.Supervisor.Tell(new ResourceDeadlockFound(Found("twice")));
        // Alerts are asked for in the order incidents are written: once later's and then last's arrived, a second alert of
        // "twice" would have been asked for (and sent) long before.
        node.Supervisor.Tell(new ResourceDeadlockFound(Found("later")));
        await Await.Until(() => AlertsFor("later") == 1, TimeSpan.FromSeconds(10), "later alerted");
        node.Supervisor.Tell(new ResourceDeadlockFound(Found("last")));
        await Await.Until(() => AlertsFor("last") == 1, TimeSpan.FromSeconds(10), "last alerted");

        Assert.Equal(1, AlertsFor("twice"));
    }

    [Fact]
    public async Task Under_lowest_priority_the_older_run_with_the_lower_priority_is_the_victim_without_a_monitor()
    {
        var gate = new GateHandler();
        await using var node = await TestNode.StartAsync(_dir.Path, handlers: [gate],
            resources: new ResourceSettings(1, VictimPolicy.lowest_priority));
        await node.Ask<RunReply>(new SubmitRun(Crossing("low", "warehouse-db", "gpu") with { Priority = -1 }));
        await Await.Until(() => gate.Started.Contains("low/first"), TimeSpan.FromSeconds(10), "low holds warehouse-db");
        await node.Ask<RunReply>(new SubmitRun(Crossing("high", "gpu", "warehouse-db") with { Priority = 10 }));
        await Await.Until(() => gate.Started.Contains("high/first"), TimeSpan.FromSeconds(10), "high holds gpu");

        gate.Open();

        var low = await node.AwaitRun("low", s => s.Status.IsTerminal(), "the lower priority is the victim");
        var high = await node.AwaitRun("high", s => s.Status.IsTerminal(), "the higher priority completes");
        Assert.Equal((RunStatus.CANCELLED, RunStatus.SUCCEEDED), (low.Status, high.Status));
        Assert.Equal("resource_deadlock", low.Cancel!.DeadlockReason);
        Assert.StartsWith("auto-cancel: resource deadlock: ", low.Cancel.Reason);
    }

    [Fact]
    public async Task A_run_stale_behind_a_resource_is_explained_by_who_holds_it_and_what_that_holder_waits_for()
    {
        var gate = new GateHandler();
        await using var node = await TestNode.StartAsync(_dir.Path, handlers: [gate],
            monitor: new MonitorSettings(new DetectorThresholds(1, 3600, 3600), TimeSpan.FromSeconds(1), false, false));
        // C holds warehouse-db while its task runs; H keeps gpu and waits for warehouse-db; W waits for gpu.
        await node.Ask<RunReply>(new SubmitRun(Run("C", Needs(Task("hold", "gate"), "warehouse-db"))));
        await Await.Until(() => gate.Started.Contains("C/hold"), TimeSpan.FromSeconds(10), "C holds warehouse-db");
        await node.Ask<RunReply>(new SubmitRun(Run("H", Needs(Task("first"), "gpu", holdUntil: "second"), Needs(Task("second", "noop", "first"), "warehouse-db"))));
        await node.AwaitRun("H", s => s.Tasks["second"].WaitingFor.Length == 1, "H waits for warehouse-db, keeping gpu");
        await node.Ask<RunReply>(new SubmitRun(Run("W", Needs(Task("t"), "gpu"))));

        IncidentView? incident = null;
        await Await.Until(async () => (incident = (await node.Supervisor!.Ask<IncidentList>(new GetIncidents(50), TimeSpan.FromSeconds(10)))
            .Newest.FirstOrDefault(i => i.Detection.RunId == "W")) is not null, TimeSpan.FromSeconds(20), () => "W flagged stale_pending");
        Assert.Equal(StuckReason.stale_pending, incident!.Detection.Reason);
        Assert.Contains("run W waits for gpu (capacity 1, 1 used): held by run H, which waits for warehouse-db; every holder waits itself",
            incident.Detection.Explanation);
        gate.Open();
    }

    [Fact]
    public async Task Grants_survive_a_node_restart_without_a_double_grant_and_a_cancelled_holder_lets_the_waiter_proceed()
    {
        var gate = new GateHandler();
        await using (var first = await TestNode.StartAsync(_dir.Path, handlers: [gate], retry: ThreeAttempts))
        {
            await first.Ask<RunReply>(new SubmitRun(Run("holder", Needs(Task("t", "gate"), "warehouse-db"))));
            await Await.Until(() => gate.Started.Contains("holder/t"), TimeSpan.FromSeconds(10), "holder runs with the grant");
        }

        // The holder's task died with the node: it runs again as its next attempt, keeping the grant.
        await using var node = await TestNode.StartAsync(_dir.Path, handlers: [new GateHandler()], retry: ThreeAttempts);
        await node.Ask<RunReply>(new SubmitRun(Run("waiter", Needs(Task("t"), "warehouse-db"))));

        // The grant came back from the journal: the waiter waits, visibly, and holds no worker slot.
        var db = await Resource(node, "warehouse-db");
        await Await.Until(async () => (db = await Resource(node, "warehouse-db")).WaiterCount == 1, TimeSpan.FromSeconds(10), () => $"waiter queued: {db}");
        Assert.Equal(["holder"], db.Holders.Select(h => h.RunId));
        Assert.Equal(1, db.Used);
        var waiting = await node.Run("waiter");
        Assert.Equal(TaskState.QUEUED, waiting.Tasks["t"].State);
        Assert.Equal(["warehouse-db"], waiting.Tasks["t"].WaitingFor.ToArray());

        await node.Ask<CancelReply>(new CancelRun("holder", "operator gave up", "tests", Force: true));

        var done = await node.AwaitRun("waiter", s => s.Status.IsTerminal(), "the waiter gets the released grant and runs");
        Assert.Equal(RunStatus.SUCCEEDED, done.Status);
    }

    [Fact]
    public async Task A_cancelled_run_releases_what_it_holds_at_once_and_the_next_waiter_proceeds()
    {
        var gate = new GateHandler();
        await using var node = await TestNode.StartAsync(_dir.Path, handlers: [gate], slots: 1);
        await node.Ask<RunReply>(new SubmitRun(Run("holder", Needs(Task("t", "gate"), "gpu"))));
        await Await.Until(() => gate.Started.Contains("holder/t"), TimeSpan.FromSeconds(10), "holder runs");
        await node.Ask<RunReply>(new SubmitRun(Run("waiter", Needs(Task("t"), "gpu"))));
        await node.AwaitRun("waiter", s => !s.Tasks["t"].WaitingFor.IsEmpty, "waiter waits for gpu");

        await node.Ask<CancelReply>(new CancelRun("holder", "not needed", "tests", Force: false));

        var holder = await node.AwaitRun("holder", s => s.Status == RunStatus.CANCELLED, "holder cancelled");
        var waiter = await node.AwaitRun("waiter", s => s.Status.IsTerminal(), "waiter runs in the freed slot with the freed grant");
        Assert.Equal(RunStatus.SUCCEEDED, waiter.Status);
        Assert.True(waiter.Tasks["t"].UpdatedAt >= holder.Cancel!.FinalisedAt);
    }
}

public sealed class ResourceBookSerializationTests
{
    [Fact]
    public void A_snapshot_of_the_book_reads_back_with_every_holder_waiter_want_and_victim()
    {
        var t0 = new DateTimeOffset(2026, 1, 1, 0, 0, 0, TimeSpan.Zero);
        var book = ResourceBook.Empty
            .Apply(new ResourceDeclared("gpu", 2, t0))
            .Apply(new ResourceWantsRecorded("A", new RunFacts(t0, 3, 1) { WorkflowName = "wf" },
                System.Collections.Immutable.ImmutableDictionary<string, System.Collections.Immutable.ImmutableArray<ResourceRequest>>.Empty
                    .Add("t", [new ResourceRequest("db", 1)]), t0))
            .Apply(new ResourceGranted("A", "gpu", 2, t0))
            .Apply(new ResourceWaiting("A", "db", 1, t0))
            .Apply(new ResourceGranted("B", "db", 1, t0))
            .Apply(new ResourceVictimChosen("A", [new CycleStep("A", "gpu", "db")], "x", t0));
        using var system = ActorSystem.Create("serialization-test");
        var serializer = new Deepline.Actors.Serialization.DeeplineSerializer((ExtendedActorSystem)system);

        var back = (ResourceBook)serializer.FromBinary(serializer.ToBinary(book), serializer.Manifest(book));

        Assert.Equal(book.Resource("gpu") with { Holders = back.Resource("gpu").Holders, Waiters = back.Resource("gpu").Waiters }, back.Resource("gpu"));
        Assert.Equal(2, back.Resource("gpu").Holders["A"]);
        Assert.Equal("A", Assert.Single(back.Resource("db").Waiters).RunId);
        Assert.Equal(["db"], back.Runs["A"].WaitsOn.ToArray());
        Assert.Equal(["t"], back.Runs["A"].Wants.Keys.ToArray());
        Assert.Equal("wf", back.Runs["A"].Facts.WorkflowName);
        Assert.Equal("x", back.Victims["A"].Explanation);
    }
}

public sealed class ResourceIncidentSettleTests
{
    [Fact]
    public void A_resource_deadlock_incident_is_not_called_recovered_while_its_run_runs()
    {
        var now = DateTimeOffset.UtcNow;
        var run = WorkflowState.Create(new RunSubmitted(Run("r", Task("t", "hang")), now));
        var thresholds = new DetectorThresholds(3600, 3600, 3600);

        Assert.Null(SupervisorState.Settle(run, thresholds, now, StuckReason.resource_deadlock));
        Assert.Equal(IncidentOutcome.recovered, SupervisorState.Settle(run, thresholds, now, StuckReason.stale_pending));
    }
}
