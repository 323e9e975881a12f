using System.Net;
using Deepline.Node.Configuration;
using Deepline.Node.Tests.Http;
using Deepline.Tests.Shared;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;

namespace Deepline.Node.Tests.Cluster;

/// <summary>
/// One store, one cluster: a node pointed at a cluster's PostgreSQL database without its seed nodes forms a cluster of
/// its own, with the same store identity. The store's cluster lease tells them apart: the newcomer stops, the cluster
/// that held the store keeps serving.
/// </summary>
[Trait("Category", "Cluster")]
public sealed class SecondClusterTests : IAsyncLifetime
{
    private PostgresCluster _cluster = null!;

    public async Task InitializeAsync() => _cluster = await PostgresCluster.StartAsync("deepline-second-");

    public async Task DisposeAsync() => await _cluster.DisposeAsync();

    [Fact]
    public async Task A_second_cluster_on_the_same_database_stops_and_the_first_keeps_serving()
    {
        var (first, _) = await _cluster.StartNodeAsync("first", new RemotingConfig("127.0.0.1", 0, []));
        Assert.Equal(HttpStatusCode.Created, (await first.PostJson("/runs", """{"run_id":"before","tasks":[{"task_id":"x","type":"x","pool":"ext"}]}""")).StatusCode);
        // The first cluster's keeper holds the lease before the second cluster forms.
        await Eventually.Until(async () => await LeaseHolderAsync() is not null, TimeSpan.FromSeconds(30), "the first cluster holds the store's lease");
        var holder = await LeaseHolderAsync();

        // No seed nodes: it joins itself, a cluster of its own on the first cluster's database.
        var (_, _) = await _cluster.StartNodeAsync("second", new RemotingConfig("127.0.0.1", 0, []));
        var stopping = _cluster.App("second").Services.GetRequiredService<IHostApplicationLifetime>().ApplicationStopping;
        await Eventually.Until(() => stopping.IsCancellationRequested, TimeSpan.FromSeconds(60), "the second cluster stops");

        Assert.Equal(holder, await LeaseHolderAsync());
        Assert.Equal(HttpStatusCode.Created, (await first.PostJson("/runs", """{"run_id":"after","tasks":[{"task_id":"x","type":"x","pool":"ext"}]}""")).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await first.GetAsync("/runs/before")).StatusCode);
    }

    private async Task<string?> LeaseHolderAsync()
    {
        await using var db = new Npgsql.NpgsqlConnection(_cluster.Store.Connection);
        await db.OpenAsync();
        await using var cmd = db.CreateCommand();
        cmd.CommandText = "SELECT holder FROM deepline_store_lease WHERE id = 1 AND renewed_at > 0";
        try
        {
            return await cmd.ExecuteScalarAsync() as string;
        }
        catch (Npgsql.PostgresException e) when (e.SqlState == "42P01")
        {
            return null; // not created yet
        }
    }
}
