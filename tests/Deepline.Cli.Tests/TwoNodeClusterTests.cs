using System.Net;
using System.Text;
using Deepline.Tests.Shared;

namespace Deepline.Cli.Tests;

/// <summary>
/// Two nodes in one process, joined by seed address, each on its own loopback HTTP and remoting port. They share one
/// PostgreSQL store: sharding's persistent coordinator and remembered entities must be readable by whichever node owns
/// them next, so a cluster needs one journal.
/// </summary>
public sealed class TwoNodeClusterTests : IAsyncLifetime
{
    private readonly string _dataDir = Directory.CreateTempSubdirectory("deepline-cli-cluster-").FullName;
    private Deepline.Tests.Shared.TestStore _store = null!;
    private TestNode _first = null!;
    private TestNode _second = null!;

    public async Task InitializeAsync()
    {
        _store = await Deepline.Tests.Shared.TestStore.CreateAsync(postgreSql: true);
        _first = await TestNode.Start(Path.Combine(_dataDir, "first"), store: _store.Config);
        // The second node's seed is down: it stays outside any cluster until `cluster join` sends it to the first.
        _second = await TestNode.Start(Path.Combine(_dataDir, "second"), seeds: [$"akka.tcp://deepline@127.0.0.1:{Loopback.FreePort()}"], joined: false,
            store: _store.Config);
    }

    public async Task DisposeAsync()
    {
        await _second.DisposeAsync();
        await _first.DisposeAsync();
        await _store.DisposeAsync();
        try { Directory.Delete(_dataDir, true); } catch (IOException) { }
    }

    [Fact]
    public async Task Join_show_sharding_and_leave_across_two_nodes()
    {
        Assert.Contains("Count: 0 nodes", (await Cli.Run(_second.Url, "cluster", "show")).Ok().Out);
        var join = (await Cli.Run(_second.Url, "cluster", "join", _first.RemotingAddress, "--admin-key", TestNode.AdminKey)).Ok();
        Assert.StartsWith($"join {_first.RemotingAddress}: join requested", join.Out);

        // Both nodes must see both members Up (gossip converges on each node in its own time).
        static int UpAndReachable(CliResult r) => r.Out.Split('\n').Count(l => l.Contains("| up") && l.Contains("| reachable"));
        await Eventually.Until(async () => UpAndReachable(await Cli.Run(_first.Url, "cluster", "show")) == 2
            && UpAndReachable(await Cli.Run(_second.Url, "cluster", "show")) == 2, TimeSpan.FromSeconds(20), "both nodes up on both nodes");

        var show = (await Cli.Run(_second.Url, "cluster", "show")).Ok();
        Assert.Contains(_first.RemotingAddress, show.Out);
        Assert.Contains(_second.RemotingAddress, show.Out);
        Assert.Contains("Count: 2 nodes", show.Out);
        Assert.Equal(2, (await Cli.Run(_first.Url, "cluster", "show", "--json")).Ok().Json["count"]!.GetValue<int>());

        // Both regions registered with the coordinator before the first run, so that shards go to both.
        await Eventually.Until(async () => (await Cli.Run(_first.Url, "cluster", "sharding", "regions")).Out.Contains("Count: 2 regions"),
            TimeSpan.FromSeconds(20), "two workflow regions");
        // Enough runs that both regions host some (shards are spread over the two nodes).
        for (var i = 0; i < 20; i++)
        {
            var node = i % 2 == 0 ? _first : _second;
            var response = await node.Client.PostAsync("/runs", new StringContent(
                $$"""{"run_id":"two-{{i}}","tasks":[{"task_id":"t","type":"noop"}]}""", Encoding.UTF8, "application/json"));
            Assert.Equal(HttpStatusCode.Created, response.StatusCode);
        }

        var regions = (await Cli.Run(_first.Url, "cluster", "sharding", "regions")).Ok();
        Assert.Contains("Count: 2 regions", regions.Out);
        Assert.Contains(_second.RemotingAddress, regions.Out);

        var shardStats = (await Cli.Run(_first.Url, "cluster", "sharding", "shard-stats", "-r", "workflow", "--json")).Ok().Json;
        Assert.Equal(20, shardStats["entity_count"]!.GetValue<int>());
        var nodes = shardStats["shards"]!.AsArray().Select(s => s!["node"]!.GetValue<string>()).Distinct().Order().ToList();
        Assert.Equal(new[] { _first.RemotingAddress, _second.RemotingAddress }.Order(), nodes);

        var local1 = (await Cli.Run(_first.Url, "cluster", "sharding", "region-stats", "-r", "workflow", "--json")).Ok().Json;
        var local2 = (await Cli.Run(_second.Url, "cluster", "sharding", "region-stats", "-r", "workflow", "--json")).Ok().Json;
        Assert.Equal(20, local1["entity_count"]!.GetValue<int>() + local2["entity_count"]!.GetValue<int>());

        // --wait follows the member until the cluster no longer lists it: when it returns, the member is gone.
        var leave = (await Cli.Run(_first.Url, "cluster", "leave", _second.RemotingAddress, "--admin-key", TestNode.AdminKey,
            "--wait", "--wait-timeout", "60")).Ok();
        Assert.StartsWith($"leave {_second.RemotingAddress}: the member is leaving", leave.Out);
        Assert.Matches($@"\n{System.Text.RegularExpressions.Regex.Escape(_second.RemotingAddress)}: removed from the cluster after [\d.]+ s", leave.Out);
        Assert.Contains("Count: 1 node", (await Cli.Run(_first.Url, "cluster", "show")).Ok().Out);
        // Its shards came over to the first node (remembered entities restart there).
        await Eventually.Until(async () =>
            (await Cli.Run(_first.Url, "cluster", "sharding", "shard-stats", "-r", "workflow", "--json")).Json["shards"]!.AsArray()
                .All(s => s!["node"]!.GetValue<string>() == _first.RemotingAddress),
            TimeSpan.FromSeconds(20), "every shard on the first node");
    }
}
