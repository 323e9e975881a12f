using System.Collections.Concurrent;
using System.Net;
using System.Text.Json;
using System.Text.Json.Nodes;
using Deepline.Node.Tests.Http;
using Deepline.Tests.Shared;
using Deepline.Worker.Sdk;
using Xunit.Abstractions;

namespace Deepline.Node.Tests.Cluster;

/// <summary>
/// External workers (the .NET SDK's worker host, one per node) drain a pool across three node processes on one
/// PostgreSQL store while one node is SIGKILLed: every task ends SUCCEEDED exactly once from its run's view, the tasks
/// whose worker lost its node are retried as later attempts, and no result of a superseded attempt is accepted.
/// </summary>
[Trait("Category", "Cluster")]
public sealed class DrainUnderFailoverTests(ITestOutputHelper output) : IAsyncLifetime
{
    private const int Runs = 24;
    private const int TasksPerRun = 8;
    private readonly string _dir = Directory.CreateTempSubdirectory("deepline-drain-").FullName;
    private PostgresServer _postgres = null!;
    private NodeProcess[] _nodes = [];

    public async Task InitializeAsync()
    {
        _postgres = await PostgresServer.StartAsync();
        var store = await _postgres.CreateDatabaseAsync("drain");
        var ports = Enumerable.Range(0, 3).Select(_ => (Http: Loopback.FreePort(), Remoting: Loopback.FreePort())).ToArray();
        var environment = new Dictionary<string, string>
        {
            ["DEEPLINE_STORE_PROVIDER"] = "postgresql",
            ["DEEPLINE_STORE_CONNECTION"] = store,
            ["DEEPLINE_REMOTING_SEED_NODES"] = string.Join(",", ports.Select(p => $"akka.tcp://deepline@127.0.0.1:{p.Remoting}")),
            ["DEEPLINE_REMOTING_DOWN_UNREACHABLE_AFTER"] = "3",
            // The lease: a task whose worker went silent is retried 4 s after its last heartbeat.
            ["DEEPLINE_DEADLOCK_HEARTBEAT_TIMEOUT"] = "4",
            ["DEEPLINE_RETRY_INITIAL_INTERVAL"] = "0",
            ["DEEPLINE_RETRY_MAX_ATTEMPTS"] = "5",
        };
        _nodes = [.. ports.Select((p, i) => new NodeProcess($"node{i + 1}", p.Http, p.Remoting, Path.Combine(_dir, $"node{i + 1}"), environment))];
        _nodes[0].Start();
        await _nodes[0].AwaitHealthyAsync(TimeSpan.FromSeconds(60));
        _nodes[1].Start();
        _nodes[2].Start();
        await Task.WhenAll(_nodes[1].AwaitHealthyAsync(TimeSpan.FromSeconds(60)), _nodes[2].AwaitHealthyAsync(TimeSpan.FromSeconds(60)));
        await Eventually.Until(async () => (await (await _nodes[0].Client.GetAsync("/cluster/members")).ReadObject())["count"]!.GetValue<int>() == 3,
            TimeSpan.FromSeconds(30), "three members up");
    }

    public async Task DisposeAsync()
    {
        foreach (var node in _nodes) await node.DisposeAsync();
        await _postgres.DisposeAsync();
        try { Directory.Delete(_dir, true); } catch (IOException) { }
    }

    [Fact]
    public async Task Workers_drain_a_pool_across_the_cluster_while_a_node_is_killed_and_every_task_completes_once()
    {
        var executions = new ConcurrentBag<(string Task, int Attempt, int Worker)>();
        var workers = _nodes.Select((n, i) =>
        {
            var options = new DeeplineWorkerOptions
            {
                Node = n.Client.BaseAddress!, Pool = "drain", WorkerId = $"sdk-{i + 1}", Concurrency = 4, PollWait = TimeSpan.FromSeconds(2),
            };
            options.Handlers["work"] = async (task, ct) =>
            {
                executions.Add(($"{task.RunId}/{task.TaskId}", task.Attempt, i + 1));
                await Task.Delay(150, ct);
                return JsonSerializer.SerializeToElement(new { attempt = task.Attempt, worker = i + 1 });
            };
            return new DeeplineWorker(options);
        }).ToArray();
        foreach (var w in workers) await w.StartAsync(CancellationToken.None);
        try
        {
            var tasks = string.Join(",", Enumerable.Range(0, TasksPerRun).Select(t => $$"""{"task_id":"t{{t}}","type":"work","pool":"drain"}"""));
            for (var i = 0; i < Runs; i++)
                Assert.Equal(HttpStatusCode.Created, (await _nodes[i % 3].Client.PostJson("/runs", $$"""{"run_id":"drain-{{i}}","tasks":[{{tasks}}]}""")).StatusCode);

            // Kill a node while its worker and its runs are mid-flight.
            await Eventually.Until(() => executions.Count >= Runs * TasksPerRun / 4, TimeSpan.FromSeconds(60), "a quarter of the tasks executed");
            await _nodes[2].KillAsync();

            var survivor = _nodes[0].Client;
            var runs = new Dictionary<string, JsonObject>();
            await Eventually.Until(async () =>
            {
                foreach (var i in Enumerable.Range(0, Runs).Where(i => !runs.ContainsKey($"drain-{i}")))
                {
                    var response = await survivor.GetAsync($"/runs/drain-{i}");
                    if (response.StatusCode != HttpStatusCode.OK) return false;
                    var run = await response.ReadObject();
                    if (run.Str("status") == "RUNNING") return false;
                    runs[$"drain-{i}"] = run;
                }
                return true;
            }, TimeSpan.FromSeconds(120), "every run finished on the survivors");

            var retried = 0;
            foreach (var (id, run) in runs)
            {
                Assert.Equal("SUCCEEDED", run.Str("status"));
                foreach (var t in run["tasks"]!.AsArray())
                {
                    Assert.Equal("SUCCEEDED", t!["state"]!.GetValue<string>());
                    var attempts = t["attempts"]!.GetValue<int>();
                    // The accepted result is the current attempt's (a superseded attempt's never counts), and that attempt really ran.
                    Assert.Equal(attempts, t["result"]!["attempt"]!.GetValue<int>());
                    Assert.Contains(executions, e => e.Task == $"{id}/{t["task_id"]}" && e.Attempt == attempts);
                    if (attempts > 1) retried++;
                }
            }
            var total = Runs * TasksPerRun;
            output.WriteLine($"{total} tasks, {executions.Count} executions, {retried} tasks retried after the kill; " +
                $"worker counts: {string.Join(", ", workers.Select((w, i) => $"sdk-{i + 1} succeeded {w.Counts.Succeeded} lost {w.Counts.Lost}"))}");
            Assert.True(executions.Count >= total);
        }
        finally
        {
            foreach (var w in workers)
            {
                using var stop = new CancellationTokenSource(TimeSpan.FromSeconds(10));
                try { await w.StopAsync(stop.Token); } catch (OperationCanceledException) { }
                w.Dispose();
            }
        }
    }
}
