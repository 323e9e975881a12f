using Akka.Actor;
using Akka.Cluster;
using Deepline.Node.Security;

namespace Deepline.Node.Http;

// Membership and its changes: show, status, leader, leave, down, join.
public static partial class ManagementEndpoints
{
    private static void MapClusterEndpoints(IEndpointRouteBuilder app)
    {
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

    /// <summary>pbm prints statuses in lower case ("up", "leaving"); so do we, so that habits and scripts carry over.</summary>
    private static string Status(MemberStatus status) => status.ToString().ToLowerInvariant();
}
