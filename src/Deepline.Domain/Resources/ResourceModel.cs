using System.Collections.Immutable;

namespace Deepline.Domain.Resources;

/// <summary>What a task needs of one named resource while it runs (and, with hold_until, after).</summary>
public sealed record ResourceRequest(string Name, int Count);

/// <summary>
/// What the victim policy knows of a run: sent with every sync, so the coordinator never asks a run mid-decision.
/// <see cref="Work"/> is the run's succeeded tasks, the work a cancel would throw away.
/// </summary>
public sealed record RunFacts(DateTimeOffset CreatedAt, int Priority, int Work)
{
    /// <summary>For the victim's incident and alert.</summary>
    public string WorkflowName { get; init; } = "";

    /// <summary>For an external worker's claims: the key that made them; only it (or an admin) may read or release them.</summary>
    public string? Owner { get; init; }

    /// <summary>
    /// The run's client: when a run's wait closes a cycle through other clients' runs, the victim is one of its own
    /// client's (see <see cref="WaitForGraph.ChooseVictim"/>). Null for external workers and for facts journalled before
    /// clients were recorded here.
    /// </summary>
    public string? ClientId { get; init; }
}

public static class ResourceLimits
{
    /// <summary>Highest capacity of a resource and highest count a task may ask for.</summary>
    public const int MaxCapacity = 1_000_000;

    /// <summary>
    /// Resources the coordinator may know (declared, held or waited for) before a new declaration is refused: every one
    /// is kept in memory, and an operator's script should not be able to fill it.
    /// </summary>
    public const int MaxKnownResources = 100_000;

    /// <summary>Distinct resources one task may declare.</summary>
    public const int MaxPerTask = 16;

    /// <summary>
    /// Tasks of one run that may name a hold_until: each is checked by a walk of the run's dependencies, so this bounds
    /// what validating one submission costs.
    /// </summary>
    public const int MaxHoldUntilPerRun = 256;

    /// <summary>A run's priority (for the lowest_priority victim policy) lies in ±this.</summary>
    public const int MaxPriority = 1_000_000;

    /// <summary>Runs named in a cancel reason; a longer cycle is summarised (the alert still counts every run).</summary>
    public const int CycleRunsNamed = 20;
}

public enum VictimPolicy { youngest, least_work, lowest_priority }

/// <summary>One named resource: its capacity (declared, or the node's default), who holds how much, who waits in FIFO order.</summary>
public sealed record ResourceState(
    string Name,
    int? DeclaredCapacity,
    int Used,
    ImmutableDictionary<string, int> Holders,
    ImmutableList<ResourceWaiter> Waiters)
{
    public static ResourceState Empty(string name) =>
        new(name, null, 0, ImmutableDictionary<string, int>.Empty.WithComparers(StringComparer.Ordinal), []);

    public int Capacity(int defaultCapacity) => DeclaredCapacity ?? defaultCapacity;

    public int Free(int defaultCapacity) => Capacity(defaultCapacity) - Used;

    /// <summary>Undeclared, unheld and unwaited: nothing to remember.</summary>
    public bool Idle => DeclaredCapacity is null && Holders.IsEmpty && Waiters.IsEmpty;
}

public sealed record ResourceWaiter(string RunId, int Count, DateTimeOffset Since);

/// <summary>
/// One run as the coordinator knows it: the tasks that want resources (task -> requests), the resources the run holds
/// and the ones it waits for. Grants are per run and resource: a later task of a run that already holds a resource
/// (hold_until) is covered by the run's grant.
/// </summary>
public sealed record ResourceRun(
    string RunId,
    RunFacts Facts,
    ImmutableDictionary<string, ImmutableArray<ResourceRequest>> Wants,
    ImmutableHashSet<string> Holds,
    ImmutableHashSet<string> WaitsOn)
{
    /// <summary>Held only for running (or dispatchable) tasks: released without the run's waits being met (see <see cref="ResourceSync.Releasing"/>).</summary>
    public ImmutableHashSet<string> Releasing { get; init; } = ImmutableHashSet<string>.Empty;

    /// <summary>An external worker's waits refused to break a deadlock: resource -> the cycle, until it claims again.</summary>
    public ImmutableDictionary<string, string> Refused { get; init; } = ImmutableDictionary<string, string>.Empty;

    public static ResourceRun New(string runId, RunFacts facts) => new(runId, facts,
        ImmutableDictionary<string, ImmutableArray<ResourceRequest>>.Empty.WithComparers(StringComparer.Ordinal),
        ImmutableHashSet<string>.Empty.WithComparer(StringComparer.Ordinal),
        ImmutableHashSet<string>.Empty.WithComparer(StringComparer.Ordinal));
}

/// <summary>One run on a deadlock cycle: the resource it holds that the previous run waits for, and the one it waits for.</summary>
public sealed record CycleStep(string RunId, string Holds, string WaitsFor);

/// <summary>A victim chosen and not yet known to be gone: it is left out of every later cycle, so one cycle costs one run.</summary>
public sealed record ResourceVictim(string RunId, ImmutableArray<CycleStep> Cycle, string Explanation, DateTimeOffset ChosenAt, bool Reported);

/// <summary>A holder of a resource someone waits for, and what that holder waits for itself (empty: it can proceed).</summary>
public sealed record HolderWait(string Holder, int Count, ImmutableArray<string> WaitsFor)
{
    /// <summary>The holding ends with a running (or dispatchable) task, whatever the holder waits for.</summary>
    public bool Releasing { get; init; }
}

/// <summary>
/// Why a run (or external worker) waits for one resource: who holds it and whether those holders wait themselves. When
/// every holder waits, the wait lasts as long as theirs: starvation named, not guessed from a timeout.
/// </summary>
public sealed record WaitExplanation(
    string Resource, int Capacity, int Used, int Needs, int HolderCount, ImmutableArray<HolderWait> Holders, bool HoldersAllWait, string Text);
