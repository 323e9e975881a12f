namespace Deepline.Node.Http;

/// <summary>
/// Cluster management behind the <c>deepline</c> CLI (pbm's ground): membership, leave/down/join, sharding queries
/// sent to the real shard region of this node, and the actor hierarchy. Reads need the operator role (they list
/// live run ids); everything that changes the cluster needs admin.
/// </summary>
public static partial class ManagementEndpoints
{
    public static IEndpointRouteBuilder MapManagementEndpoints(this IEndpointRouteBuilder app)
    {
        // Reads: role operator or admin. Changes (leave, down, join): role admin.
        MapClusterEndpoints(app);
        MapShardingEndpoints(app);
        MapActorTreeEndpoints(app);
        return app;
    }
}
