using Deepline.Node.Configuration;
using Deepline.Tests.Shared;

namespace Deepline.Cli.Tests;

/// <summary>One cluster, one store: a node started on a database of its own never becomes a member of a cluster on another.</summary>
public sealed class ForeignStoreTests : IAsyncLifetime
{
    private readonly string _dataDir = Directory.CreateTempSubdirectory("deepline-cli-foreign-").FullName;
    private PostgresServer _server = null!;
    private TestNode _member = null!;

    public async Task InitializeAsync()
    {
        _server = await PostgresServer.StartAsync();
        var store = new StoreConfig(StoreConfig.PostgreSql, await _server.CreateDatabaseAsync("cluster"));
        _member = await TestNode.Start(Path.Combine(_dataDir, "member"), store: store);
    }

    public async Task DisposeAsync()
    {
        await _member.DisposeAsync();
        await _server.DisposeAsync();
        try { Directory.Delete(_dataDir, true); } catch (IOException) { }
    }

    [Fact]
    public async Task A_node_on_another_store_leaves_at_once_and_the_cluster_keeps_its_runs()
    {
        for (var i = 0; i < 10; i++)
            (await Cli.Run(_member.Url, "runs", "submit", Write($$"""{"run_id":"kept-{{i}}","tasks":[{"task_id":"t","type":"hang"}]}"""))).Ok();

        var other = new StoreConfig(StoreConfig.PostgreSql, await _server.CreateDatabaseAsync("elsewhere"));
        await using var intruder = await TestNode.Start(Path.Combine(_dataDir, "intruder"), seeds: [_member.RemotingAddress], joined: false, store: other);

        // Either side may act first: the intruder leaves on its own, or the member downs it while it is still Joining.
        await intruder.ActorSystemTerminated.WaitAsync(TimeSpan.FromSeconds(30));
        await Eventually.Until(async () => (await Cli.Run(_member.Url, "cluster", "show", "--json")).Ok().Json["count"]!.GetValue<int>() == 1,
            TimeSpan.FromSeconds(30), "the cluster is the member alone again");
        // Every accepted run still answers from the member: no shard moved to the intruder's store.
        for (var i = 0; i < 10; i++)
            Assert.Equal("RUNNING", (await Cli.Run(_member.Url, "runs", "status", $"kept-{i}", "--json")).Ok().Json["status"]!.GetValue<string>());
    }

    private string Write(string json)
    {
        var path = Path.Combine(_dataDir, Guid.NewGuid().ToString("N") + ".json");
        File.WriteAllText(path, json);
        return path;
    }
}
