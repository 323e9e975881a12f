using Akka.Actor;
using Akka.Cluster;
using Akka.Cluster.Sharding;
using Deepline.Node.Security;

namespace Deepline.Node.Http;

// Sharding queries, sent to the real shard region of this node.
public static partial class ManagementEndpoints
{
    private static readonly TimeSpan ShardingTimeout = TimeSpan.FromSeconds(5);

    private static void MapShardingEndpoints(IEndpointRouteBuilder app)
    {
        app.MapGet("/cluster/sharding/regions", (ActorSystem system, CancellationToken ct) => AnsweredInTime(async () =>
        {
            var sharding = ClusterSharding.Get(system);
            var types = new List<ShardTypeRegions>();
            foreach (var typeName in sharding.ShardTypeNames.Order(StringComparer.Ordinal))
            {
                var region = sharding.ShardRegion(typeName);
                var current = await region.Ask<CurrentRegions>(GetCurrentRegions.Instance, ShardingTimeout, ct);
                var stats = await region.Ask<ClusterShardingStats>(new GetClusterShardingStats(ShardingTimeout), ShardingTimeout * 2, ct);
                var regions = current.Regions
                    .OrderBy(a => a.ToString(), StringComparer.Ordinal)
                    .Select(a => stats.Regions.TryGetValue(a, out var s)
                        ? new RegionSummary(a.ToString(), s.Stats.Count, s.Stats.Values.Sum(), [.. s.Failed.Order(StringComparer.Ordinal)])
                        : new RegionSummary(a.ToString(), 0, 0, []))
                    .ToList();
                types.Add(new ShardTypeRegions(typeName, regions));
            }
            return TypedResults.Ok(new RegionsResponse(types));
        })).RequireAuthorization(Policies.Operate)
            .Documented("sharding", "Shard regions of every shard type", 503).Produces<RegionsResponse>(200);

        app.MapGet("/cluster/sharding/{typeName}/region-stats", (string typeName, ActorSystem system, CancellationToken ct) => AnsweredInTime(async () =>
        {
            var (region, missing) = Region(system, typeName);
            if (missing is not null) return missing;
            var stats = await region!.Ask<ShardRegionStats>(GetShardRegionStats.Instance, ShardingTimeout, ct);
            var shards = stats.Stats.OrderBy(kv => kv.Key, StringComparer.Ordinal).Select(kv => new ShardCount(kv.Key, kv.Value)).ToList();
            return TypedResults.Ok(new RegionStatsResponse(typeName, Cluster.Get(system).SelfAddress.ToString(), shards,
                shards.Count, shards.Sum(s => s.Entities), [.. stats.Failed.Order(StringComparer.Ordinal)]));
        })).RequireAuthorization(Policies.Operate)
            .Documented("sharding", "Shards and entities of this node's region of a type", 404, 503).Produces<RegionStatsResponse>(200);

        app.MapGet("/cluster/sharding/{typeName}/shard-stats", (string typeName, ActorSystem system, CancellationToken ct) => AnsweredInTime(async () =>
        {
            var (region, missing) = Region(system, typeName);
            if (missing is not null) return missing;
            var stats = await region!.Ask<ClusterShardingStats>(new GetClusterShardingStats(ShardingTimeout), ShardingTimeout * 2, ct);
            var shards = stats.Regions
                .SelectMany(r => r.Value.Stats.Select(kv => new NodeShardCount(r.Key.ToString(), kv.Key, kv.Value)))
                .OrderBy(s => s.Node, StringComparer.Ordinal).ThenBy(s => s.ShardId, StringComparer.Ordinal)
                .ToList();
            var failed = stats.Regions
                .SelectMany(r => r.Value.Failed.Select(f => new FailedShard(r.Key.ToString(), f)))
                .ToList();
            return TypedResults.Ok(new ShardStatsResponse(typeName, shards, shards.Count, shards.Sum(s => s.Entities), failed));
        })).RequireAuthorization(Policies.Operate)
            .Documented("sharding", "Shards and entities of a type across the cluster", 404, 503).Produces<ShardStatsResponse>(200);
    }

    /// <summary>A region that does not answer (coordinator moving, node leaving) is a 503 to retry, not a 500.</summary>
    private static async Task<IResult> AnsweredInTime(Func<Task<IResult>> query)
    {
        try
        {
            return await query();
        }
        catch (AskTimeoutException)
        {
            return Problems.Unavailable($"the shard region did not answer within {ShardingTimeout.TotalSeconds:0} s; try again");
        }
    }

    private static (IActorRef? Region, IResult? Missing) Region(ActorSystem system, string typeName)
    {
        var sharding = ClusterSharding.Get(system);
        if (!sharding.ShardTypeNames.Contains(typeName))
            return (null, Problems.Of(404, "Not found",
                $"no shard region of type \"{typeName}\" on this node (known: {string.Join(", ", sharding.ShardTypeNames.Order(StringComparer.Ordinal))})",
                "type"));
        return (sharding.ShardRegion(typeName), null);
    }
}
