using System.Diagnostics;
using System.Net;
using System.Text.Json.Nodes;
using Deepline.Actors.Tests;
using RedisServer = Deepline.Cancellation.Tests.RedisServer;
using Deepline.Node.Tests.Http;
using Deepline.Tests.Shared;
using Deepline.Worker.Sdk;
using Xunit.Abstractions;

namespace Deepline.Node.Tests.Cluster;

/// <summary>
/// Three node processes on one PostgreSQL store. A node is killed with SIGKILL (the oldest, which hosts the monitor's
/// singletons and a share of the runs): the survivors serve every run, every cancel reaches its end, the monitor
/// comes back without re-alerting or forgetting its incidents, an external worker on Redis gets every cancel, and
/// nothing accepted is lost. Real processes, real store, real Redis and webhook receiver; the numbers go to the test output.
/// </summary>
[Trait("Category", "Cluster")]
public sealed class FailoverTests(ITestOutputHelper output) : IAsyncLifetime
{
    private const int Runs = 24;
    private readonly string _dir = Directory.CreateTempSubdirectory("deepline-failover-").FullName;
    private PostgresServer _postgres = null!;
    private RedisServer _redis = null!;
    private AlertReceiver _alerts = null!;
    private NodeProcess[] _nodes = [];

    public async Task InitializeAsync()
    {
        _postgres = await PostgresServer.StartAsync();
        _redis = await RedisServer.StartAsync();
        _alerts = new AlertReceiver();
        var store = await _postgres.CreateDatabaseAsync("cluster");
        var ports = Enumerable.Range(0, 3).Select(_ => (Http: Loopback.FreePort(), Remoting: Loopback.FreePort())).ToArray();
        var seeds = string.Join(",", ports.Select(p => $"akka.tcp://deepline@127.0.0.1:{p.Remoting}"));
        var environment = new Dictionary<string, string>
        {
            ["DEEPLINE_STORE_PROVIDER"] = "postgresql",
            ["DEEPLINE_STORE_CONNECTION"] = store,
            ["DEEPLINE_REMOTING_SEED_NODES"] = seeds,
            ["DEEPLINE_REMOTING_DOWN_UNREACHABLE_AFTER"] = "3",
            ["DEEPLINE_DEADLOCK_CANCEL_TIMEOUT"] = "5",
            ["DEEPLINE_DEADLOCK_CHECK_INTERVAL"] = "5",
            ["DEEPLINE_WORKERS_SLOTS"] = "16",
            ["DEEPLINE_REDIS"] = _redis.Connection,
            ["DEEPLINE_DEADLOCK_WEBHOOK"] = _alerts.Url.ToString(),
            ["DEEPLINE_DEADLOCK_ALERT_FORMAT"] = "generic",
            // Runs whose long task lived on a killed node keep RUNNING here (no_heartbeat is not what these tests are about);
            // stuck runs carry their own short pending_stale_s.
            ["DEEPLINE_DEADLOCK_HEARTBEAT_TIMEOUT"] = "600",
            ["DEEPLINE_LIMITS_RUN_THRESHOLD_MIN"] = "1",
            // Each node logs under its own data directory (its working directory): the warnings go to the test's output.
            ["DEEPLINE_LOGGING_DIR"] = "logs",
        };
        _nodes = [.. ports.Select((p, i) => new NodeProcess($"node{i + 1}", p.Http, p.Remoting, Path.Combine(_dir, $"node{i + 1}"), environment))];
        // The first seed forms the cluster; the others join it.
        _nodes[0].Start();
        await _nodes[0].AwaitHealthyAsync(TimeSpan.FromSeconds(60));
        _nodes[1].Start();
        _nodes[2].Start();
        await Task.WhenAll(_nodes[1].AwaitHealthyAsync(TimeSpan.FromSeconds(60)), _nodes[2].AwaitHealthyAsync(TimeSpan.FromSeconds(60)));
        await Eventually.Until(async () => await UpMembers(_nodes[0]) == 3 && await UpMembers(_nodes[2]) == 3, TimeSpan.FromSeconds(30), "three members up");
    }

    public async Task DisposeAsync()
    {
        foreach (var node in _nodes) await node.DisposeAsync();
        await _postgres.DisposeAsync();
        await _redis.DisposeAsync();
        _alerts.Dispose();
        WriteNodeWarnings();
        try { Directory.Delete(_dir, true); } catch (IOException) { }
    }

    /// <summary>A failure here is a race across processes: the nodes' warnings and errors say which one.</summary>
    private void WriteNodeWarnings()
    {
        foreach (var node in _nodes)
        {
            var log = Path.Combine(_dir, node.Name, "logs", Deepline.Node.Logging.FileLogging.OrchestratorFile);
            if (!File.Exists(log)) continue;
            var lines = File.ReadLines(log).Where(l => l.Contains(" WARN ") || l.Contains(" ERROR ")).TakeLast(100).ToList();
            output.WriteLine($"--- {node.Name}: last {lines.Count} warning/error lines of {log}");
            foreach (var line in lines) output.WriteLine(line.Length > 400 ? line[..400] : line);
        }
    }

    [Fact]
    public async Task Killing_the_oldest_node_loses_no_run_and_no_cancel()
    {
        // Every run: a long in-cluster task (on whichever node's pool) and a task for an external pool (stays QUEUED).
        for (var i = 0; i < Runs; i++)
        {
            var node = _nodes[i % 3];
            var created = await node.Client.PostJson("/runs", $$"""
                {"run_id":"fo-{{i}}","tasks":[{"task_id":"h","type":"hang"},{"task_id":"x","type":"x","pool":"external"}]}
                """);
            Assert.Equal(HttpStatusCode.Created, created.StatusCode);
        }
        await Eventually.Until(async () =>
        {
            foreach (var i in Enumerable.Range(0, Runs))
                if ((await _nodes[1].Client.GetRun($"fo-{i}")).TaskState("h") != "RUNNING") return false;
            return true;
        }, TimeSpan.FromSeconds(30), "every long task running");

        // An external worker holds every run's cancel token through the Redis contract, as a worker in another process would.
        await using var worker = await CancellationSignals.ConnectAsync(_redis.Connection);
        var tokens = Enumerable.Range(0, Runs).ToDictionary(i => $"fo-{i}", i => worker.TokenFor($"fo-{i}"));

        // Stuck runs found, alerted and auto-cancelled by the monitor on the node about to die (the oldest hosts the singleton).
        string[] stuckBefore = ["dl-0", "dl-1", "dl-2"];
        foreach (var run in stuckBefore) await SubmitStuck(_nodes[1], run);
        foreach (var run in stuckBefore) await _nodes[1].Client.AwaitRun(run, r => r.Str("status") == "CANCELLED", $"{run} auto-cancelled");
        await Eventually.Until(() => Task.FromResult(stuckBefore.All(r => AlertsFor(r) == 1)), TimeSpan.FromSeconds(30), "one alert per stuck run");
        var detectedBefore = (await Monitor(_nodes[1]))["deadlocks_detected"]!.GetValue<long>();
        Assert.True(detectedBefore >= stuckBefore.Length, $"deadlocks_detected {detectedBefore} before the kill");

        var before = Enumerable.Range(0, 6).Select(i => $"fo-{i}").ToList();
        foreach (var run in before) Assert.Equal(HttpStatusCode.OK, (await _nodes[1].Client.PutJson($"/runs/{run}/cancel", """{"reason":"before"}""")).StatusCode);

        var killed = Stopwatch.StartNew();
        await _nodes[0].KillAsync();

        // During the failover: a cancel is acknowledged (journalled) once the run's shard answers again.
        var during = Enumerable.Range(6, 6).Select(i => $"fo-{i}").ToList();
        foreach (var run in during) await Acknowledged(_nodes[1], run, "during");
        var cancelsDuring = killed.Elapsed;

        await Eventually.Until(async () => await Members(_nodes[1]) == 2, TimeSpan.FromSeconds(60), "the killed node removed");
        var removed = killed.Elapsed;

        var served = new Dictionary<string, JsonObject>();
        await Eventually.Until(async () =>
        {
            foreach (var i in Enumerable.Range(0, Runs).Where(i => !served.ContainsKey($"fo-{i}")))
            {
                var response = await _nodes[2].Client.GetAsync($"/runs/fo-{i}");
                if (response.StatusCode != HttpStatusCode.OK) return false;
                served[$"fo-{i}"] = await response.ReadObject();
            }
            return true;
        }, TimeSpan.FromSeconds(60), "every run served by the survivors");
        var allServed = killed.Elapsed;

        var after = Enumerable.Range(12, 6).Select(i => $"fo-{i}").ToList();
        foreach (var run in after) await Acknowledged(_nodes[2], run, "after");

        // Every cancel ends CANCELLED: acknowledged by a surviving worker, or forced after cancel_timeout_s when the task's worker died.
        foreach (var run in before.Concat(during).Concat(after))
        {
            var final = await _nodes[2].Client.AwaitRun(run, r => r.Str("status") == "CANCELLED", $"{run} cancelled");
            Assert.Equal("CANCELLED", final.TaskState("x"));
        }
        // The rest are alive: their queued task waits for its pool again, nothing was lost.
        foreach (var i in Enumerable.Range(18, Runs - 18))
        {
            var run = await _nodes[1].Client.GetRun($"fo-{i}");
            Assert.Equal("RUNNING", run.Str("status"));
            Assert.Equal("QUEUED", run.TaskState("x"));
        }

        await Eventually.Until(async () =>
        {
            var health = await (await _nodes[1].Client.GetAsync("/health")).ReadObject();
            return health["deadlock_monitor"]!["running"]!.GetValue<bool>();
        }, TimeSpan.FromSeconds(60), "the monitor back on a survivor");
        var monitorBack = killed.Elapsed;

        // The monitor that came back kept its incidents and counters (nothing re-alerted, nothing forgotten) and still finds new ones.
        await SubmitStuck(_nodes[2], "dl-after");
        await _nodes[1].Client.AwaitRun("dl-after", r => r.Str("status") == "CANCELLED", "dl-after auto-cancelled by the new monitor");
        await Eventually.Until(() => Task.FromResult(AlertsFor("dl-after") == 1), TimeSpan.FromSeconds(30), "dl-after alerted");
        var monitor = await Monitor(_nodes[2]);
        Assert.True(monitor["deadlocks_detected"]!.GetValue<long>() >= detectedBefore + 1, monitor.ToJsonString());
        var alerted = _alerts.Received.Select(a => a["details"]!["run_id"]!.GetValue<string>()).ToList();
        Assert.All(alerted.GroupBy(r => r), g => Assert.True(g.Count() == 1, $"{g.Key} alerted {g.Count()} times"));

        // The external worker saw every cancel issued before, during and after the kill, and no other.
        await Eventually.Until(() => Task.FromResult(before.Concat(during).Concat(after).All(r => tokens[r].IsCancellationRequested)),
            TimeSpan.FromSeconds(30), "every cancel reached the Redis worker");
        Assert.All(Enumerable.Range(18, Runs - 18), i => Assert.False(tokens[$"fo-{i}"].IsCancellationRequested, $"fo-{i} was never cancelled"));
        // The Redis copy is written after the journal: awaited, not read once.
        foreach (var r in stuckBefore.Append("dl-after"))
            await Eventually.Until(() => worker.IsCancelledAsync(r), TimeSpan.FromSeconds(30), $"{r}'s auto-cancel in Redis");

        var fresh = await _nodes[2].Client.PostJson("/runs", """{"run_id":"fo-after","tasks":[{"task_id":"a","type":"noop"}]}""");
        Assert.Equal(HttpStatusCode.Created, fresh.StatusCode);
        await _nodes[1].Client.AwaitRun("fo-after", r => r.Str("status") == "SUCCEEDED", "a new run completes");

        output.WriteLine($"failover after SIGKILL of the oldest of 3 nodes: cancels during failover acknowledged by {cancelsDuring.TotalSeconds:0.0} s, " +
                         $"node removed (SBR) {removed.TotalSeconds:0.0} s, every run served {allServed.TotalSeconds:0.0} s, monitor back {monitorBack.TotalSeconds:0.0} s");
    }

    [Fact]
    public async Task A_frozen_node_is_downed_its_runs_move_and_it_does_not_come_back_to_act_on_them()
    {
        for (var i = 0; i < 12; i++)
            Assert.Equal(HttpStatusCode.Created, (await _nodes[i % 3].Client.PostJson("/runs", $$"""
                {"run_id":"fz-{{i}}","tasks":[{"task_id":"x","type":"x","pool":"external"},{"task_id":"after","type":"noop","depends_on":["x"]}]}
                """)).StatusCode);

        // SIGSTOP stands in for a partition: the node neither answers nor knows time passed.
        var frozen = _nodes[2];
        var clock = Stopwatch.StartNew();
        frozen.Freeze();
        await Eventually.Until(async () => await Members(_nodes[0]) == 2, TimeSpan.FromSeconds(60), "the frozen node downed and removed");
        var downed = clock.Elapsed;

        // The survivors serve and drive every run, including those whose shards lived on the frozen node.
        for (var i = 0; i < 12; i++)
        {
            await Eventually.Until(async () => (await _nodes[1].Client.GetAsync($"/runs/fz-{i}")).StatusCode == HttpStatusCode.OK,
                TimeSpan.FromSeconds(30), $"fz-{i} served");
            Assert.Equal(HttpStatusCode.OK, (await _nodes[1].Client.PostJson($"/runs/fz-{i}/tasks/x/events", """{"event":"TASK_STARTED","worker_id":"ext-1"}""")).StatusCode);
        }

        // Thawed, it learns it was removed and stops, instead of acting on runs it no longer owns.
        frozen.Thaw();
        await Eventually.Until(() => Task.FromResult(frozen.HasExited), TimeSpan.FromSeconds(60), "the thawed node stops");
        var stopped = clock.Elapsed;
        for (var i = 0; i < 12; i++)
        {
            Assert.Equal(HttpStatusCode.OK, (await _nodes[0].Client.PostJson($"/runs/fz-{i}/tasks/x/events", """{"event":"TASK_SUCCEEDED","worker_id":"ext-1"}""")).StatusCode);
            var run = await _nodes[0].Client.AwaitRun($"fz-{i}", r => r.Str("status") == "SUCCEEDED", $"fz-{i} completes on the survivors");
            Assert.Equal("ext-1", run["tasks"]!.AsArray().Single(t => t!["task_id"]!.GetValue<string>() == "x")!["worker_id"]!.GetValue<string>());
        }
        Assert.Equal(2, await Members(_nodes[1]));
        output.WriteLine($"frozen node (SIGSTOP): downed and removed after {downed.TotalSeconds:0.0} s; after SIGCONT it stopped by {stopped.TotalSeconds:0.0} s");
    }

    [Fact]
    public async Task A_rolling_restart_of_all_three_nodes_loses_nothing()
    {
        for (var i = 0; i < 12; i++)
            Assert.Equal(HttpStatusCode.Created, (await _nodes[i % 3].Client.PostJson("/runs", $$"""
                {"run_id":"rr-{{i}}","tasks":[{"task_id":"x","type":"x","pool":"external"}]}
                """)).StatusCode);
        var cancelled = new List<string>();
        var working = new List<string>();
        var clock = Stopwatch.StartNew();
        for (var n = 0; n < 3; n++)
        {
            // Work in flight when the node goes: in-cluster tasks running on any node, some on the one about to stop.
            for (var k = 0; k < 6; k++)
            {
                var id = $"rr-work-{n}-{k}";
                Assert.Equal(HttpStatusCode.Created, (await _nodes[(n + k) % 3].Client.PostJson("/runs", $$"""
                    {"run_id":"{{id}}","tasks":[{"task_id":"d","type":"delay","params":{"ms":4000} },{"task_id":"after","type":"noop","depends_on":["d"]}]}
                    """)).StatusCode);
                working.Add(id);
            }
            // SIGTERM: a graceful leave hands shards and singletons to the others before the process exits.
            await _nodes[n].StopAsync(TimeSpan.FromSeconds(60));
            var other = _nodes[(n + 1) % 3];
            await Eventually.Until(async () => await Members(other) == 2, TimeSpan.FromSeconds(60), $"{_nodes[n].Name} left");
            var run = $"rr-{n}";
            await Acknowledged(other, run, "during a rolling restart");
            cancelled.Add(run);
            _nodes[n].Start();
            await _nodes[n].AwaitHealthyAsync(TimeSpan.FromSeconds(60));
            await Eventually.Until(async () => await UpMembers(other) == 3, TimeSpan.FromSeconds(60), $"{_nodes[n].Name} back");
        }
        var restarted = clock.Elapsed;

        for (var i = 0; i < 12; i++)
        {
            var run = await _nodes[i % 3].Client.GetRun($"rr-{i}");
            Assert.Equal(cancelled.Contains($"rr-{i}") ? "CANCELLED" : "RUNNING", run.Str("status"));
        }
        // Every run that had work in flight finishes: tasks interrupted by a node's leave run again, none is reported stuck.
        var retried = 0;
        foreach (var id in working)
        {
            var run = await _nodes[0].Client.AwaitRun(id, r => r.Str("status") != "RUNNING", $"{id} finished", TimeSpan.FromSeconds(90));
            Assert.Equal("SUCCEEDED", run.Str("status"));
            if (run["tasks"]![0]!["attempts"]!.GetValue<int>() > 1) retried++;
        }
        Assert.Equal(0, (await Monitor(_nodes[0]))["workflows_cancelled"]!.GetValue<long>());
        output.WriteLine($"rolling restart (SIGTERM, start, wait Up) of 3 nodes: {restarted.TotalSeconds:0.0} s; " +
            $"{working.Count} runs with work in flight all SUCCEEDED, {retried} of their tasks re-run after an interruption, 0 auto-cancelled");
    }

    private int AlertsFor(string runId) => _alerts.Received.Count(a => a["details"]?["run_id"]?.GetValue<string>() == runId);

    /// <summary>A run whose only task waits for a pool nobody serves: stale_pending after its own 2 s.</summary>
    private static async Task SubmitStuck(NodeProcess node, string runId)
    {
        var created = await node.Client.PostJson("/runs", $$"""
            {"run_id":"{{runId}}","deadlock":{"pending_stale_s":2},"tasks":[{"task_id":"x","type":"x","pool":"nobody"}]}
            """);
        Assert.Equal(HttpStatusCode.Created, created.StatusCode);
    }

    private static async Task<JsonObject> Monitor(NodeProcess node) =>
        (await (await node.Client.GetAsync("/stats")).ReadObject())["deadlock_monitor"]!.AsObject();

    private static async Task Acknowledged(NodeProcess node, string runId, string reason)
    {
        await Eventually.Until(async () =>
        {
            try
            {
                var response = await node.Client.PutJson($"/runs/{runId}/cancel", $$"""{"reason":"{{reason}}"}""");
                Assert.True(response.StatusCode is HttpStatusCode.OK or HttpStatusCode.ServiceUnavailable, $"{runId}: {response.StatusCode}");
                return response.StatusCode == HttpStatusCode.OK;
            }
            catch (TaskCanceledException) { return false; }
        }, TimeSpan.FromSeconds(60), $"cancel of {runId} acknowledged");
    }

    private static async Task<int> Members(NodeProcess node) =>
        (await (await node.Client.GetAsync("/cluster/members")).ReadObject())["count"]!.GetValue<int>();

    private static async Task<int> UpMembers(NodeProcess node) =>
        (await (await node.Client.GetAsync("/cluster/members")).ReadObject())["members"]!.AsArray().Count(m => m!["status"]!.GetValue<string>() == "up");
}
