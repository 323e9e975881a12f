namespace Deepline.Node.Http;

// Wire shapes of the resource endpoints (issue 12) and the resource part of the dry-run scan.

/// <summary>A holder (a run id, or worker/&lt;worker_id&gt; for an external worker's claim) and what it waits for itself.</summary>
public sealed record ResourceHolderResponse(string RunId, int Count, IReadOnlyList<string> WaitsFor);

public sealed record ResourceWaiterResponse(string RunId, int Count, DateTimeOffset Since);

/// <summary>A named resource: its capacity, how much is held, and by whom (waiters in arrival order).</summary>
public sealed record ResourceResponse(
    string Name, int Capacity, bool Declared, int Used, int HolderCount, int WaiterCount,
    IReadOnlyList<ResourceHolderResponse> Holders, IReadOnlyList<ResourceWaiterResponse> Waiters)
{
    /// <summary>Held, and every holder waits for something itself: the waiters wait as long as the holders do.</summary>
    public bool HoldersAllWait => Holders.Count > 0 && Holders.Count == HolderCount && Holders.All(h => h.WaitsFor.Count > 0);
}

/// <summary>GET /resources: a page of resources by name, without their holder and waiter lists.</summary>
public sealed record ResourceListResponse(int Total, IReadOnlyList<ResourceResponse> Resources);

/// <summary>One run of a cycle: what it holds and what it waits for.</summary>
public sealed record CycleStepResponse(string RunId, string Holds, string WaitsFor);

public sealed record ResourceCycleResponse(IReadOnlyList<CycleStepResponse> Runs, string Explanation, string Victim);

/// <summary>Deadlocks between runs over resources now, each with the victim the policy would cancel.</summary>
public sealed record ResourceDeadlocksResponse(string VictimPolicy, IReadOnlyList<ResourceCycleResponse> Cycles, IReadOnlyList<string> VictimsLeaving);

/// <summary>One resource a run waits for: who holds it, what they wait for, and the same as one sentence.</summary>
public sealed record ResourceWaitResponse(
    string Resource, int Capacity, int Used, int Needs, int HolderCount, IReadOnlyList<ResourceHolderResponse> Holders, bool HoldersAllWait, string Explanation);

public sealed record ResourceClaimRequest(int? Count);

/// <summary>
/// An external worker's claim on a resource: state granted | waiting | refused | none; explanation says who holds it
/// (waiting) or the cycle (refused); lease_expires_at is when all the worker's claims are released unless it renews
/// them (null when it has none).
/// </summary>
public sealed record ResourceClaimResponse(string WorkerId, string Resource, int Count, string State, string? Explanation, DateTimeOffset? LeaseExpiresAt);

/// <summary>PUT /claims/{worker_id}/lease: the worker's renewed lease, over <c>claims</c> resources held or waited for.</summary>
public sealed record ClaimLeaseResponse(string WorkerId, int Claims, double LeaseS, DateTimeOffset LeaseExpiresAt);

/// <summary>One waiter of a resource and why it waits (who holds it, what they wait for).</summary>
public sealed record WaitLineResponse(string Waiter, string Resource, string Explanation);

/// <summary>
/// GET /deadlock/wait-for-graph: the resources waited for now (on open deadlocks first) with holders and waiters, each
/// wait explained, and the open resource deadlocks (victim chosen, not yet gone).
/// </summary>
public sealed record WaitForGraphResponse(
    int WaitedResources, IReadOnlyList<ResourceResponse> Resources, IReadOnlyList<WaitLineResponse> Waits, IReadOnlyList<ResourceCycleResponse> OpenDeadlocks);
