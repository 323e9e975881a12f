using System.Collections.Immutable;

namespace Deepline.Domain.Resources;

/// <summary>
/// External workers hold and wait for resources in the same book as runs, under a key no run id can take ('/' is not
/// allowed in run ids), so their waits enter the same wait-for graph and a cycle through a worker is found like any other.
/// </summary>
public static class ExternalHolders
{
    public const string Prefix = "worker/";

    public static string KeyOf(string workerId) => Prefix + workerId;

    public static bool IsExternal(string holder) => holder.StartsWith(Prefix, StringComparison.Ordinal);

    /// <summary>The worker id of an external holder's key, or null for a run.</summary>
    public static string? WorkerOf(string holder) => IsExternal(holder) ? holder[Prefix.Length..] : null;
}

/// <summary>Where an external worker's claim on one resource stands.</summary>
public enum ClaimState { none, granted, waiting, refused }

public sealed record ClaimStatus(string WorkerId, string Resource, int Count, ClaimState State, string? Explanation);

/// <summary>
/// An external worker's claims as whole wishes: each claim or release is turned into the worker's complete
/// <see cref="ResourceSync"/> (every resource it waits for as a want, every one it holds kept), so the coordinator decides
/// a worker's claims exactly like a run's, in the same book and the same wait-for graph.
/// </summary>
public static class ExternalClaims
{
    /// <summary>Claims the worker may hold or wait for at once.</summary>
    public const int MaxPerWorker = ResourceLimits.MaxPerTask;

    public static ClaimStatus Status(ResourceBook book, string workerId, string name, int defaultCapacity)
    {
        if (!book.Runs.TryGetValue(ExternalHolders.KeyOf(workerId), out var run)) return new(workerId, name, 0, ClaimState.none, null);
        if (book.Resource(name).Holders.TryGetValue(run.RunId, out var held)) return new(workerId, name, held, ClaimState.granted, null);
        if (run.WaitsOn.Contains(name))
        {
            var waiter = book.Resource(name).Waiters.First(w => w.RunId == run.RunId);
            return new(workerId, name, waiter.Count, ClaimState.waiting,
                WaitForGraph.ExplainWaits(book, run.RunId, defaultCapacity, nameHolder: ForWorkers).FirstOrDefault(w => w.Resource == name)?.Text);
        }
        return run.Refused.TryGetValue(name, out var why) ? new(workerId, name, 0, ClaimState.refused, why) : new(workerId, name, 0, ClaimState.none, null);
    }

    /// <summary>
    /// A worker key serves pools, not a client: its claim answer says that a run holds the resource, never which run (a
    /// run id is another client's). Operators see every holder by name in /resources and the wait-for graph.
    /// </summary>
    private static string ForWorkers(string holder) => ExternalHolders.WorkerOf(holder) is { } worker ? $"worker {worker}" : "a run";

    /// <summary>Owner of the worker's claims, or null when it has none.</summary>
    public static string? OwnerOf(ResourceBook book, string workerId) =>
        book.Runs.TryGetValue(ExternalHolders.KeyOf(workerId), out var run) ? run.Facts.Owner ?? "" : null;

    /// <summary>The worker's wish with <paramref name="name"/> claimed too; null with the reason when the claim cannot be made.</summary>
    public static (ResourceSync? Sync, string? Error) Claim(ResourceBook book, string workerId, string owner, string name, int count, DateTimeOffset now)
    {
        var key = ExternalHolders.KeyOf(workerId);
        var known = book.Runs.TryGetValue(key, out var run);
        var (wants, keep) = Current(book, run);
        var existing = book.Resource(name).Holders.TryGetValue(key, out var held) ? held
            : known && run!.WaitsOn.Contains(name) ? book.Resource(name).Waiters.First(w => w.RunId == key).Count : (int?)null;
        if (existing is { } c && c != count)
            return (null, $"worker '{workerId}' already claims {c} of '{name}'; release it before claiming another count");
        if (existing is null && wants.Count + keep.Count >= MaxPerWorker)
            return (null, $"a worker may claim at most {MaxPerWorker} resources at once");
        if (existing is null) wants[name] = [new ResourceRequest(name, count)];
        var facts = known ? run!.Facts : new RunFacts(now, 0, 0) { WorkflowName = "external worker", Owner = owner };
        return (new ResourceSync(key, facts, wants.ToImmutable(), [.. keep], false), null);
    }

    /// <summary>The worker's wish without <paramref name="name"/> (held or waited for); the last release forgets the worker.</summary>
    public static ResourceSync? Release(ResourceBook book, string workerId, string name)
    {
        if (!book.Runs.TryGetValue(ExternalHolders.KeyOf(workerId), out var run)) return null;
        var (wants, keep) = Current(book, run);
        wants.Remove(name);
        keep.Remove(name);
        return new ResourceSync(run.RunId, run.Facts, wants.ToImmutable(), [.. keep], wants.Count == 0 && keep.Count == 0);
    }

    private static (ImmutableDictionary<string, ImmutableArray<ResourceRequest>>.Builder Wants, SortedSet<string> Keep) Current(ResourceBook book, ResourceRun? run)
    {
        var wants = ImmutableDictionary.CreateBuilder<string, ImmutableArray<ResourceRequest>>(StringComparer.Ordinal);
        var keep = new SortedSet<string>(StringComparer.Ordinal);
        if (run is null) return (wants, keep);
        foreach (var name in run.WaitsOn)
            wants[name] = [new ResourceRequest(name, book.Resource(name).Waiters.First(w => w.RunId == run.RunId).Count)];
        foreach (var name in run.Holds) keep.Add(name);
        return (wants, keep);
    }
}
