using System.Net;
using System.Text.Json.Nodes;
using Deepline.Node.Configuration;
using Deepline.Node.Tests.Http;
using Deepline.Tests.Shared;
using Microsoft.AspNetCore.Builder;

namespace Deepline.Node.Tests.Cluster;

/// <summary>
/// With <c>runs.workflow_role</c> set, runs live only on nodes holding that role; a node without it (an API or
/// worker-only node) serves every run through a proxy and its pools still execute tasks.
/// </summary>
[Trait("Category", "Cluster")]
public sealed class WorkflowRoleTests : IAsyncLifetime
{
    private PostgresCluster _cluster = null!;

    public async Task InitializeAsync() => _cluster = await PostgresCluster.StartAsync("deepline-roles-");

    public async Task DisposeAsync() => await _cluster.DisposeAsync();

    [Fact]
    public async Task Runs_submitted_anywhere_live_only_on_workflow_nodes()
    {
        var (host, hostAddress) = await Start("host", ["workflow"], []);
        var (api, apiAddress) = await Start("api", [], [hostAddress]);
        await Eventually.Until(async () => (await (await host.GetAsync("/cluster/members")).ReadObject())["count"]!.GetValue<int>() == 2,
            TimeSpan.FromSeconds(30), "both members up");

        const int runs = 8;
        for (var i = 0; i < runs; i++)
        {
            var created = await api.PostJson("/runs", $$"""{"run_id":"role-{{i}}","tasks":[{"task_id":"a","type":"noop"},{"task_id":"b","type":"noop","depends_on":["a"]}]}""");
            Assert.Equal(HttpStatusCode.Created, created.StatusCode);
        }
        for (var i = 0; i < runs; i++)
            await api.AwaitRun($"role-{i}", r => r.Str("status") == "SUCCEEDED", $"role-{i} succeeded through the proxy node");

        var regions = (await (await host.GetAsync("/cluster/sharding/regions")).ReadObject())["types"]!.AsArray()
            .Single(t => t!["type_name"]!.GetValue<string>() == "workflow")!["regions"]!.AsArray();
        var hosting = regions.Where(r => r!["entities"]!.GetValue<int>() > 0).Select(r => r!["node"]!.GetValue<string>()).ToList();
        Assert.Equal([hostAddress], hosting);
        Assert.DoesNotContain(regions, r => r!["node"]!.GetValue<string>() == apiAddress);
        Assert.Equal(runs, regions.Sum(r => r!["entities"]!.GetValue<int>()));
    }

    private Task<(HttpClient Client, string Address)> Start(string name, IReadOnlyList<string> roles, IReadOnlyList<string> seeds) =>
        _cluster.StartNodeAsync(name, new RemotingConfig("127.0.0.1", 0, seeds) { Roles = roles },
            c => c with { Runs = c.Runs with { WorkflowRole = "workflow" } });
}
