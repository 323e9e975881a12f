using Akka.Actor;
using Akka.Cluster;
using Akka.Cluster.Sharding;
using Deepline.Actors.Hosting;
using Deepline.Node.Security;
using Microsoft.AspNetCore.Http.HttpResults;

namespace Deepline.Node.Http;

/// <summary>
/// Cluster management behind the <c>deepline</c> CLI (pbm's ground): membership, leave/down/join, sharding queries
/// sent to the real shard region of this node, and the actor hierarchy. Reads need the operator role (they list
/// live run ids); everything that changes the cluster needs admin.
/// </summary>
public static partial class ManagementEndpoints
{
    public const int DefaultHierarchyDepth = 3;
    public const int MaxHierarchyDepth = 10;

    /// <summary>A node with tens of thousands of live runs must not turn one request into a megabyte of JSON.</summary>
    public const int MaxHierarchyNodes = 2000;

    private static readonly TimeSpan ShardingTimeout = TimeSpan.FromSeconds(5);

    public static IEndpointRouteBuilder MapManagementEndpoints(this IEndpointRouteBuilder app)
    {
        // Reads: role operator or admin. Changes (leave, down, join): role admin.
        app.MapGet("/cluster/members", (ActorSystem system) => TypedResults.Ok(Members(Cluster.Get(system)))).RequireAuthorization(Policies.Operate)
            .Documented("cluster", "Cluster members (pbm's cluster show)").Produces<MembersResponse>();

        app.MapGet("/cluster/status", (ActorSystem system) =>
        {
            var cluster = Cluster.Get(system);
            var state = cluster.State;
            var self = cluster.SelfMember;
            return TypedResults.Ok(new ClusterStatusResponse(
                self.Address.ToString(), Status(self.Status), [.. self.Roles.Order(StringComparer.Ordinal)],
                state.Leader?.ToString(), state.Leader == self.Address, state.Members.Count, state.Unreachable.Count));
        }).RequireAuthorization(Policies.Operate)
            .Documented("cluster", "This node's membership and the leader").Produces<ClusterStatusResponse>(200);

        app.MapGet("/cluster/leader", IResult (ActorSystem system) =>
        {
            var state = Cluster.Get(system).State;
            return state.Leader is { } leader
                ? TypedResults.Ok(new LeaderResponse(leader.ToString()))
                : Problems.Of(404, "No leader", "the cluster has no leader yet (no member is Up or the cluster is not converged)");
        }).RequireAuthorization(Policies.Operate)
            .Documented("cluster", "The cluster leader", 404).Produces<LeaderResponse>(200);

        app.MapPost("/cluster/leave", (HttpRequest request, ActorSystem system, CancellationToken ct) =>
            OnMember(request, system, "leave", ct, (cluster, address) => cluster.Leave(address),
                "the member is leaving: it hands over its shards and singletons, then shuts down its actor system"))
            .RequireAuthorization(Policies.Admin)
            .Documented("cluster", "A member leaves gracefully (admin)", 400, 404, 408, 413, 415).Produces<MemberActionResponse>(202)
            .Accepts<AddressRequest>("application/json");

        app.MapPost("/cluster/down", (HttpRequest request, ActorSystem system, CancellationToken ct) =>
            OnMember(request, system, "down", ct, (cluster, address) => cluster.Down(address),
                "the member is marked down and will be removed; its shards are reallocated"))
            .RequireAuthorization(Policies.Admin)
            .Documented("cluster", "Mark a member down (admin)", 400, 404, 408, 413, 415).Produces<MemberActionResponse>(202)
            .Accepts<AddressRequest>("application/json");

        app.MapPost("/cluster/down-unreachable", (ActorSystem system) =>
        {
            var cluster = Cluster.Get(system);
            var downed = cluster.State.Unreachable.Select(m => m.Address).OrderBy(a => a.ToString(), StringComparer.Ordinal).ToList();
            foreach (var address in downed) cluster.Down(address);
            return TypedResults.Ok(new DownUnreachableResponse([.. downed.Select(a => a.ToString())], downed.Count));
        }).RequireAuthorization(Policies.Admin)
            .Documented("cluster", "Down every unreachable member (admin)").Produces<DownUnreachableResponse>(200);

        app.MapPost("/cluster/join", async (HttpRequest request, ActorSystem system, CancellationToken ct) =>
        {
            var (address, error) = await ReadAddress(request, ct);
            if (error is not null) return error;
            var cluster = Cluster.Get(system);
            var self = cluster.SelfMember;
            // Akka ignores a second Join of a node that is already in a cluster; say so instead of a silent 202.
            if (cluster.State.Members.Any(m => m.Address == self.Address) && address != self.Address)
                return Problems.Of(409, "Conflict",
                    $"this node is already a member of a cluster (status {Status(self.Status)}); an Akka node joins once: " +
                    "leave, restart it with the new seed nodes, or run join on the node that should join", "address");
            cluster.Join(address!);
            return TypedResults.Accepted((string?)null, new MemberActionResponse(address!.ToString(), "join",
                "join requested; watch cluster members for the node to become Up"));
        }).RequireAuthorization(Policies.Admin)
            .Documented("cluster", "Join this node to a cluster (admin)", 400, 408, 409, 413, 415).Produces<MemberActionResponse>(202)
            .Accepts<AddressRequest>("application/json");

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

        app.MapGet("/actors/hierarchy", IResult (ActorSystem system, int? depth) =>
        {
            var d = depth ?? DefaultHierarchyDepth;
            if (d is < 1 or > MaxHierarchyDepth)
                return Problems.BadRequest($"depth must be from 1 to {MaxHierarchyDepth}, got {d}", "depth");
            var ext = (ExtendedActorSystem)system;
            var budget = new Budget(MaxHierarchyNodes);
            ActorNode[] guardians = [.. new[] { ext.Guardian, ext.SystemGuardian }.Select(g => Walk(g, 1, d, budget)).OfType<ActorNode>()];
            var root = new ActorNode("/", "/", guardians, guardians.Length < 2, 2);
            return TypedResults.Ok(new HierarchyResponse(Cluster.Get(system).SelfAddress.ToString(), d, budget.Used, budget.Exhausted, root));
        }).RequireAuthorization(Policies.Operate)
            .Documented("actors", "This node's actor tree, bounded by depth and a node budget", 400).Produces<HierarchyResponse>(200);
        return app;
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

    private static MembersResponse Members(Cluster cluster)
    {
        var state = cluster.State;
        var unreachable = state.Unreachable.Select(m => m.Address).ToHashSet();
        var members = state.Members
            .Concat(state.Unreachable.Where(u => !state.Members.Contains(u)))
            .OrderBy(m => m.Address.ToString(), StringComparer.Ordinal)
            .Select(m => new MemberInfo(
                m.Address.ToString(), [.. m.Roles.Order(StringComparer.Ordinal)], Status(m.Status),
                !unreachable.Contains(m.Address), m.Address == state.Leader, m.Address == cluster.SelfAddress))
            .ToList();
        return new MembersResponse(cluster.SelfAddress.ToString(), state.Leader?.ToString(), members, members.Count,
            [.. unreachable.Select(a => a.ToString()).Order(StringComparer.Ordinal)]);
    }

    private static async Task<IResult> OnMember(HttpRequest request, ActorSystem system, string action, CancellationToken ct,
        Action<Cluster, Address> apply, string message)
    {
        var (address, error) = await ReadAddress(request, ct);
        if (error is not null) return error;
        var cluster = Cluster.Get(system);
        var state = cluster.State;
        if (!state.Members.Any(m => m.Address == address) && !state.Unreachable.Any(m => m.Address == address))
            return Problems.Of(404, "Not found",
                $"{address} is not a member of this cluster (members: {string.Join(", ", state.Members.Select(m => m.Address.ToString()))})", "address");
        apply(cluster, address!);
        return TypedResults.Accepted((string?)null, new MemberActionResponse(address!.ToString(), action, message));
    }

    private static async Task<(Address? Address, IResult? Error)> ReadAddress(HttpRequest request, CancellationToken ct)
    {
        var (body, error) = await HttpJson.ReadAsync<AddressRequest>(request, ct);
        if (error is not null) return (null, error);
        if (string.IsNullOrWhiteSpace(body!.Address))
            return (null, Problems.BadRequest("address is required, e.g. akka.tcp://deepline@127.0.0.1:4053", "address"));
        return TryParse(body.Address.Trim()) is { } address
            ? (address, null)
            : (null, Problems.BadRequest($"address must be exactly akka.tcp://{Deepline.Node.DeeplineNode.SystemName}@<host>:<port> (no path, query or fragment), got \"{Deepline.Domain.Identifiers.StripControl(body.Address.Trim())}\"", "address"));
    }

    /// <summary>
    /// Exactly an address: Akka's own parser also takes a whole actor path (<c>akka.tcp://sys@host:1/user/x?y#z</c>) and
    /// keeps its address part, which made "leave" of a mistyped path the node's own leave. Anything but
    /// scheme://system@host:port, for this node's system, is refused.
    /// </summary>
    private static Address? TryParse(string text)
    {
        if (!AddressRegex().IsMatch(text)) return null;
        try
        {
            var address = Address.Parse(text);
            return address.Host is { Length: > 0 } && address.Port is > 0 and <= 65535 && address.System == Deepline.Node.DeeplineNode.SystemName
                ? address
                : null;
        }
        catch (Exception ex) when (ex is UriFormatException or ArgumentException or FormatException)
        {
            return null;
        }
    }

    [System.Text.RegularExpressions.GeneratedRegex(@"^akka\.(ssl\.)?tcp://[A-Za-z0-9][A-Za-z0-9_-]*@(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._-]+):[0-9]{1,5}$")]
    private static partial System.Text.RegularExpressions.Regex AddressRegex();

    private static (IActorRef? Region, IResult? Missing) Region(ActorSystem system, string typeName)
    {
        var sharding = ClusterSharding.Get(system);
        if (!sharding.ShardTypeNames.Contains(typeName))
            return (null, Problems.Of(404, "Not found",
                $"no shard region of type \"{typeName}\" on this node (known: {string.Join(", ", sharding.ShardTypeNames.Order(StringComparer.Ordinal))})",
                "type"));
        return (sharding.ShardRegion(typeName), null);
    }

    /// <summary>pbm prints statuses in lower case ("up", "leaving"); so do we, so that habits and scripts carry over.</summary>
    private static string Status(MemberStatus status) => status.ToString().ToLowerInvariant();

    /// <summary>Counts the actors listed so far; once <c>max</c> is reached the walk stops and says so.</summary>
    private sealed class Budget(int max)
    {
        public int Used { get; private set; }

        public bool Exhausted { get; private set; }

        public bool TryTake()
        {
            if (Used >= max)
            {
                Exhausted = true;
                return false;
            }
            Used++;
            return true;
        }
    }

    /// <summary>
    /// Children come from the actor cell itself (a consistent snapshot of its child container) rather than from
    /// Identify round trips: no messages to thousands of entities, no waiting on busy mailboxes.
    /// </summary>
    private static ActorNode? Walk(IActorRef actor, int level, int maxDepth, Budget budget)
    {
        if (!budget.TryTake())
            return null;
        var path = actor.Path.ToStringWithoutAddress();
        if (actor is not ActorRefWithCell withCell)
            return new ActorNode(actor.Path.Name, path, [], false);
        var children = withCell.Children.OrderBy(c => c.Path.Name, StringComparer.Ordinal).ToList();
        var walked = new List<ActorNode>();
        if (level < maxDepth)
        {
            foreach (var child in children)
            {
                if (Walk(child, level + 1, maxDepth, budget) is not { } node) break;
                walked.Add(node);
            }
        }
        return new ActorNode(actor.Path.Name, path, walked, walked.Count < children.Count, children.Count);
    }
}
