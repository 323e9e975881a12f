using System.Collections.Immutable;
using Deepline.Domain;
using Deepline.Domain.Resources;

namespace Deepline.Actors.Resources;

/// <summary>What the coordinator needs from the node's configuration.</summary>
public sealed record ResourceSettings(int DefaultCapacity, VictimPolicy Victim)
{
    public static ResourceSettings Default { get; } = new(1, VictimPolicy.youngest);

    /// <summary>How often the coordinator asks the runs it holds grants for whether they still exist and are open.</summary>
    public TimeSpan SweepInterval { get; init; } = TimeSpan.FromMinutes(1);

    /// <summary>Runs asked per sweep.</summary>
    public int SweepLimit { get; init; } = 200;

    /// <summary>
    /// How long an external worker's claims (grants and waits) live after its last renewal (a repeated claim or
    /// <see cref="RenewClaimLease"/>); then they are released as if the worker had released them.
    /// </summary>
    public TimeSpan ClaimLease { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>Claims (grants and waits) the workers of one key may have at once: one key cannot fill the node's book.</summary>
    public int MaxClaimsPerKey { get; init; } = 10_000;
}

/// <summary>A run's whole wish (see <see cref="ResourceSync"/>); the coordinator answers with <see cref="ResourcesGranted"/> carrying <see cref="SyncId"/>.</summary>
public sealed record SyncRunResources(ResourceSync Sync, long SyncId) : IDeeplineMessage;

/// <summary>PUT /resources/{name}: answered with the resource's view once the capacity is journalled.</summary>
public sealed record DeclareResource(string Name, int Capacity) : IDeeplineMessage;

public sealed record GetResource(string Name, int Limit) : IDeeplineMessage;

public sealed record ListResources(int Limit, int Offset) : IDeeplineMessage;

/// <summary>Dry run: the deadlocks in the graph now, with the victim the policy would pick; nothing is cancelled.</summary>
public sealed record ScanResourceCycles(int Limit) : IDeeplineMessage;

/// <summary>A holder and what it waits for itself (empty: it can proceed), so a reader sees whether the wait can end.</summary>
public sealed record ResourceHolderView(string RunId, int Count)
{
    public ImmutableArray<string> WaitsFor { get; init; } = [];
}

/// <summary>Who holds what each resource the run waits for, and whether those holders wait themselves.</summary>
public sealed record ExplainRunWaits(string RunId) : IDeeplineMessage;

public sealed record RunWaitsExplained(string RunId, ImmutableArray<WaitExplanation> Waits) : IDeeplineMessage;

public sealed record ResourceWaiterView(string RunId, int Count, DateTimeOffset Since);

public sealed record ResourceView(
    string Name,
    int Capacity,
    bool Declared,
    int Used,
    int HolderCount,
    int WaiterCount,
    ImmutableArray<ResourceHolderView> Holders,
    ImmutableArray<ResourceWaiterView> Waiters) : IDeeplineMessage;

public sealed record ResourceList(int Total, ImmutableArray<ResourceView> Resources) : IDeeplineMessage;

public sealed record ResourceCycleView(ImmutableArray<CycleStep> Cycle, string Explanation, string Victim) : IDeeplineMessage;

public sealed record ResourceCycles(string Policy, ImmutableArray<ResourceCycleView> Cycles, ImmutableArray<string> VictimsLeaving) : IDeeplineMessage;

/// <summary>A declaration over a limit: nothing was changed.</summary>
public sealed record ResourceRefused(string Detail) : IDeeplineMessage;

/// <summary>The coordinator could not journal a change: nothing was granted, declared or released.</summary>
public sealed record ResourceNotStored(string Detail) : IDeeplineMessage;

/// <summary>To the deadlock supervisor: a resource deadlock whose victim is to be alerted on and cancelled, once.</summary>
public sealed record ResourceDeadlockFound(Detection Detection) : IDeeplineMessage;

/// <summary>The supervisor holds the incident (journalled): the coordinator need not hand it over again.</summary>
public sealed record ResourceDeadlockTaken(string RunId) : IDeeplineMessage;

/// <summary>
/// An external worker claims <see cref="Count"/> of a resource; answered with <see cref="ClaimView"/> once the grant or
/// the wait is journalled. <see cref="Owner"/> is the caller's key: another key's worker is not found, unless
/// <see cref="Admin"/>.
/// </summary>
public sealed record ClaimResource(string WorkerId, string Owner, bool Admin, string Name, int Count) : IDeeplineMessage;

/// <summary>Releases what the worker holds of the resource, or withdraws its wait; answered once journalled.</summary>
public sealed record ReleaseClaim(string WorkerId, string Owner, bool Admin, string Name) : IDeeplineMessage;

public sealed record GetClaim(string WorkerId, string Owner, bool Admin, string Name) : IDeeplineMessage;

public sealed record ClaimView(ClaimStatus Status) : IDeeplineMessage
{
    /// <summary>When the worker's claims are released unless it renews them; null when it has none.</summary>
    public DateTimeOffset? LeaseExpiresAt { get; init; }
}

/// <summary>
/// Renews the lease of every claim (grant and wait) the worker has: answered with <see cref="ClaimLeaseView"/>, or
/// <see cref="ClaimNotFound"/> when it has none under this key. Not journalled: leases live in the coordinator's memory.
/// </summary>
public sealed record RenewClaimLease(string WorkerId, string Owner, bool Admin) : IDeeplineMessage;

/// <summary>
/// The worker's lease ran out at <see cref="ExpiredAt"/> (it did not renew in time): its claims were released and its
/// waits withdrawn. Answered to a renewal instead of <see cref="ClaimNotFound"/>, so that a worker that paused longer
/// than a lease learns it holds nothing any more, until it claims again (remembered in the coordinator's memory only).
/// </summary>
public sealed record ClaimLeaseExpired(string WorkerId, DateTimeOffset ExpiredAt) : IDeeplineMessage;

/// <summary>The worker's renewed lease: <see cref="Claims"/> resources held or waited for, all released at <see cref="ExpiresAt"/> unless renewed.</summary>
public sealed record ClaimLeaseView(string WorkerId, int Claims, TimeSpan Lease, DateTimeOffset ExpiresAt) : IDeeplineMessage;

/// <summary>The key's workers have as many claims as it may have (<see cref="ResourceSettings.MaxClaimsPerKey"/>): nothing was claimed.</summary>
public sealed record ClaimQuotaReached(string Detail) : IDeeplineMessage;

/// <summary>The worker already claims the resource with another count: nothing was changed.</summary>
public sealed record ClaimConflict(string Detail) : IDeeplineMessage;

/// <summary>No such worker for this caller (it has no claims, or they were made with another key).</summary>
public sealed record ClaimNotFound(string WorkerId) : IDeeplineMessage;

/// <summary>For the dashboard: the resources runs or workers wait for now, with holders, waiters and why each waits.</summary>
public sealed record GetWaitForGraph(int Limit) : IDeeplineMessage;

public sealed record WaitLine(string Waiter, string Resource, string Explanation);

/// <summary>
/// Part of the wait-for graph: up to the limit of resources with waiters (those on open deadlocks first), each waiter's
/// explanation, and the open resource deadlocks (victims chosen and still leaving) with their cycles.
/// </summary>
public sealed record WaitForGraphView(
    int WaitedResources, ImmutableArray<ResourceView> Resources, ImmutableArray<WaitLine> Waits, ImmutableArray<ResourceCycleView> OpenDeadlocks) : IDeeplineMessage;
