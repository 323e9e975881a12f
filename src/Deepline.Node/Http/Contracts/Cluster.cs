namespace Deepline.Node.Http;

// Wire shapes of the management endpoints behind the deepline CLI (cluster, sharding, actor tree).

public sealed record AddressRequest(string? Address);

public sealed record MemberInfo(string Address, IReadOnlyList<string> Roles, string Status, bool Reachable, bool Leader, bool Self);

public sealed record MembersResponse(string Self, string? Leader, IReadOnlyList<MemberInfo> Members, int Count, IReadOnlyList<string> Unreachable);

public sealed record ClusterStatusResponse(string Address, string Status, IReadOnlyList<string> Roles, string? Leader, bool IsLeader, int Members, int Unreachable);

public sealed record LeaderResponse(string Leader);

public sealed record MemberActionResponse(string Address, string Action, string Message);

public sealed record DownUnreachableResponse(IReadOnlyList<string> Downed, int Count);

public sealed record RegionSummary(string Node, int Shards, int Entities, IReadOnlyList<string> FailedShards);

public sealed record ShardTypeRegions(string TypeName, IReadOnlyList<RegionSummary> Regions);

public sealed record RegionsResponse(IReadOnlyList<ShardTypeRegions> Types);

public sealed record ShardCount(string ShardId, int Entities);

public sealed record RegionStatsResponse(string TypeName, string Node, IReadOnlyList<ShardCount> Shards, int ShardCount, int EntityCount, IReadOnlyList<string> FailedShards);

public sealed record NodeShardCount(string Node, string ShardId, int Entities);

public sealed record FailedShard(string Node, string ShardId);

public sealed record ShardStatsResponse(string TypeName, IReadOnlyList<NodeShardCount> Shards, int ShardCount, int EntityCount, IReadOnlyList<FailedShard> FailedShards);

/// <summary><see cref="Truncated"/>: some children exist but are not listed (depth or node budget reached).</summary>
public sealed record ActorNode(string Name, string Path, IReadOnlyList<ActorNode> Children, bool Truncated, int ChildCount = 0);

public sealed record HierarchyResponse(string Node, int Depth, int Actors, bool Truncated, ActorNode Root);
