using System.Net;
using System.Text.Json.Nodes;
using Deepline.Node.Configuration;
using Deepline.Node.Tests.Http;
using Deepline.Tests.Shared;

namespace Deepline.Node.Tests.Cluster;

/// <summary>A task queued on one node reaches a worker polling another: the queues hand tasks over across the cluster.</summary>
[Trait("Category", "Cluster")]
public sealed class PollClusterTests : IAsyncLifetime
{
    private PostgresCluster _cluster = null!;

    public async Task InitializeAsync() => _cluster = await PostgresCluster.StartAsync("deepline-poll-");

    public async Task DisposeAsync() => await _cluster.DisposeAsync();

    [Fact]
    public async Task A_worker_polling_a_node_without_runs_gets_the_tasks_queued_where_the_runs_live()
    {
        // Runs live only on "host"; "api" holds none, so every task a poll there gets was queued on "host".
        var (host, hostAddress) = await Start("host", ["workflow"], []);
        var (api, _) = await Start("api", [], [hostAddress]);
        await Eventually.Until(async () => (await (await host.GetAsync("/cluster/members")).ReadObject())["count"]!.GetValue<int>() == 2,
            TimeSpan.FromSeconds(30), "both members up");

        // Queued before anyone polls: a poll on "api" finds it on "host" (its announcement reaches the host's queue once the
        // pub/sub registry has spread, within a few gossip rounds: polled until then).
        Assert.Equal(HttpStatusCode.Created, (await api.PostJson("/runs",
            """{"run_id":"remote-1","tasks":[{"task_id":"a","type":"etl","pool":"far","params":{"n":1} }]}""")).StatusCode);
        JsonObject? first = null;
        await Eventually.Until(async () =>
        {
            var tasks = (await (await api.PostJson("/pools/far/tasks/poll", """{"worker_id":"w-api","wait_s":2}""")).ReadObject())["tasks"]!.AsArray();
            first = tasks.Count > 0 ? tasks[0]!.AsObject() : null;
            return first is not null;
        }, TimeSpan.FromSeconds(45), "a poll on the node without runs receives the task queued on the other");
        Assert.Equal(("remote-1", 1), (first!.Str("run_id"), first!["params"]!["n"]!.GetValue<int>()));
        Assert.Equal(HttpStatusCode.OK, (await api.PostJson("/runs/remote-1/tasks/a/events",
            """{"event":"TASK_SUCCEEDED","worker_id":"w-api","attempt":1}""")).StatusCode);

        // Queued while a poll waits on the other node (or just before it: either way it must reach it well before its wait ends).
        var waiting = api.PostJson("/pools/far/tasks/poll", """{"worker_id":"w-api","wait_s":30}""");
        var watch = System.Diagnostics.Stopwatch.StartNew();
        Assert.Equal(HttpStatusCode.Created, (await host.PostJson("/runs",
            """{"run_id":"remote-2","tasks":[{"task_id":"a","type":"etl","pool":"far"}]}""")).StatusCode);
        var second = (await (await waiting).ReadObject())["tasks"]!.AsArray();
        Assert.Equal("remote-2", Assert.Single(second)!.AsObject().Str("run_id"));
        Assert.True(watch.Elapsed < TimeSpan.FromSeconds(20), $"handed over after {watch.Elapsed}");
        await api.AwaitRun("remote-1", r => r.Str("status") == "SUCCEEDED", "remote-1 succeeded");
    }

    private Task<(HttpClient Client, string Address)> Start(string name, IReadOnlyList<string> roles, IReadOnlyList<string> seeds) =>
        _cluster.StartNodeAsync(name, new RemotingConfig("127.0.0.1", 0, seeds) { Roles = roles },
            c => c with { Runs = c.Runs with { WorkflowRole = "workflow" } });
}
