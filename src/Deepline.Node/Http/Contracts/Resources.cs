namespace Deepline.Node.Http;

// Wire shapes of the resource endpoints (issue 12) and the resource part of the dry-run scan.

public sealed record ResourceHolderResponse(string RunId, int Count);

public sealed record ResourceWaiterResponse(string RunId, int Count, DateTimeOffset Since);

/// <summary>A named resource: its capacity, how much is held, and by whom (waiters in arrival order).</summary>
public sealed record ResourceResponse(
    string Name, int Capacity, bool Declared, int Used, int HolderCount, int WaiterCount,
    IReadOnlyList<ResourceHolderResponse> Holders, IReadOnlyList<ResourceWaiterResponse> Waiters);

/// <summary>GET /resources: a page of resources by name, without their holder and waiter lists.</summary>
public sealed record ResourceListResponse(int Total, IReadOnlyList<ResourceResponse> Resources);

/// <summary>One run of a cycle: what it holds and what it waits for.</summary>
public sealed record CycleStepResponse(string RunId, string Holds, string WaitsFor);

public sealed record ResourceCycleResponse(IReadOnlyList<CycleStepResponse> Runs, string Explanation, string Victim);

/// <summary>Deadlocks between runs over resources now, each with the victim the policy would cancel.</summary>
public sealed record ResourceDeadlocksResponse(string VictimPolicy, IReadOnlyList<ResourceCycleResponse> Cycles, IReadOnlyList<string> VictimsLeaving);
