using System.Collections.Immutable;

namespace Deepline.Domain.Resources;

/// <summary>
/// The wait-for graph is not stored apart from the book: a run waits for the resources in its WaitsOn, a resource waits
/// for its holders. Victims still leaving are left out: they are about to release everything, so a cycle through one
/// is already being resolved.
/// </summary>
public static class WaitForGraph
{
    /// <summary>
    /// The cycle closed by <paramref name="runId"/>'s waits, if any: a depth-first walk from the holders of what the run
    /// waits for, looking for the run. It visits only what the run transitively waits for, never the whole graph.
    /// </summary>
    public static ImmutableArray<CycleStep>? FindCycle(ResourceBook book, string runId)
    {
        if (!book.Runs.TryGetValue(runId, out var start) || start.WaitsOn.IsEmpty || book.Victims.ContainsKey(runId)) return null;
        // parent[x] = (run that waits, resource it waits for) through which x was first reached.
        var parent = new Dictionary<string, (string Run, string Resource)>(StringComparer.Ordinal);
        var stack = new Stack<string>();
        stack.Push(runId);
        var visited = new HashSet<string>(StringComparer.Ordinal) { runId };
        while (stack.Count > 0)
        {
            var current = stack.Pop();
            if (!book.Runs.TryGetValue(current, out var run)) continue;
            foreach (var resource in run.WaitsOn.Order(StringComparer.Ordinal))
            {
                foreach (var holder in book.Resource(resource).Holders.Keys.Order(StringComparer.Ordinal))
                {
                    // A holding that ends with a running task is no wait edge: it is released whatever its run waits for.
                    if (Releases(book, holder, resource)) continue;
                    if (holder == runId)
                        return Path(parent, runId, current, resource);
                    if (book.Victims.ContainsKey(holder) || !visited.Add(holder)) continue;
                    parent[holder] = (current, resource);
                    stack.Push(holder);
                }
            }
        }
        return null;
    }

    private static bool Releases(ResourceBook book, string holder, string resource) =>
        book.Runs.TryGetValue(holder, out var run) && run.Releasing.Contains(resource);

    /// <summary>The steps from <paramref name="start"/> round to it, where <paramref name="last"/> waits for <paramref name="closing"/>, held by start.</summary>
    private static ImmutableArray<CycleStep> Path(Dictionary<string, (string Run, string Resource)> parent, string start, string last, string closing)
    {
        // Walk back from the last run: each run holds what its parent waits for, and waits for what leads on.
        var steps = new List<CycleStep>();
        var waitsFor = closing;
        var run = last;
        while (run != start)
        {
            var (previous, viaResource) = parent[run];
            steps.Add(new CycleStep(run, viaResource, waitsFor));
            waitsFor = viaResource;
            run = previous;
        }
        steps.Add(new CycleStep(start, closing, waitsFor));
        steps.Reverse();
        return [.. steps];
    }

    /// <summary>
    /// Whether the run is deadlocked, not only on a cycle: with capacities above one a cycle can still dissolve (a holder
    /// outside it may release enough). Holt's reduction over what the run reaches: runs that wait for nothing, or for
    /// no more than is free, are assumed to finish and free what they hold; the run is deadlocked if it is never freed.
    /// Costs what the cycle search visits, times the rounds.
    /// </summary>
    public static bool IsDeadlocked(ResourceBook book, string runId, int defaultCapacity)
    {
        if (!book.Runs.TryGetValue(runId, out var start) || start.WaitsOn.IsEmpty || book.Victims.ContainsKey(runId)) return false;
        var reached = new List<ResourceRun>();
        var free = new Dictionary<string, int>(StringComparer.Ordinal);
        var seen = new HashSet<string>(StringComparer.Ordinal) { runId };
        var stack = new Stack<ResourceRun>([start]);
        while (stack.Count > 0)
        {
            var run = stack.Pop();
            reached.Add(run);
            foreach (var name in run.WaitsOn)
            {
                var resource = book.Resource(name);
                if (free.ContainsKey(name)) continue;
                // What holders release when their running tasks end counts as free: no wait stands behind it.
                var releasing = resource.Holders.Where(kv => Releases(book, kv.Key, name)).Sum(kv => kv.Value);
                free[name] = resource.Free(defaultCapacity) + releasing;
                foreach (var holder in resource.Holders.Keys)
                    if (!Releases(book, holder, name) && seen.Add(holder) && book.Runs.TryGetValue(holder, out var h)) stack.Push(h);
            }
        }

        var open = reached.ToList();
        bool progress;
        do
        {
            progress = false;
            for (var i = open.Count - 1; i >= 0; i--)
            {
                var run = open[i];
                var canFinish = book.Victims.ContainsKey(run.RunId)
                                || run.WaitsOn.All(name => free[name] >= WaitCount(book, name, run.RunId));
                if (!canFinish) continue;
                if (run.RunId == runId) return false;
                foreach (var held in run.Holds)
                    if (free.ContainsKey(held) && !run.Releasing.Contains(held)) free[held] += book.Resource(held).Holders[run.RunId];
                open.RemoveAt(i);
                progress = true;
            }
        } while (progress);
        return true;
    }

    private static int WaitCount(ResourceBook book, string resource, string runId) =>
        book.Resource(resource).Waiters.FirstOrDefault(w => w.RunId == runId)?.Count ?? 0;

    /// <summary>
    /// The victim the policy picks among the runs of a cycle, and among those of <paramref name="closer"/>'s client when
    /// a run's wish closed it; ties go deterministically to the larger run id.
    /// </summary>
    public static string ChooseVictim(ResourceBook book, ImmutableArray<CycleStep> cycle, VictimPolicy policy, string? closer = null)
    {
        // A run can be cancelled; an external worker can only be refused its wait and left holding. So a cycle with a run
        // on it costs a run, and only a cycle of external workers alone costs one of them its wait.
        var members = cycle.Select(s => book.Runs[s.RunId]).ToList();
        var runs = members.Any(r => !ExternalHolders.IsExternal(r.RunId)) ? members.Where(r => !ExternalHolders.IsExternal(r.RunId)).ToList() : members;
        // The policy ranks within the client whose wish closed the cycle: otherwise one client could submit runs that
        // close cycles on purpose and have another client's runs cancelled ahead of its own.
        if (closer is not null && book.Runs.TryGetValue(closer, out var closing) && closing.Facts.ClientId is { } client
            && runs.Where(r => r.Facts.ClientId == client).ToList() is { Count: > 0 } own)
            runs = own;
        IOrderedEnumerable<ResourceRun> ranked = policy switch
        {
            VictimPolicy.least_work => runs.OrderBy(r => r.Facts.Work).ThenByDescending(r => r.Facts.CreatedAt),
            VictimPolicy.lowest_priority => runs.OrderBy(r => r.Facts.Priority).ThenByDescending(r => r.Facts.CreatedAt),
            _ => runs.OrderByDescending(r => r.Facts.CreatedAt),
        };
        return ranked.ThenByDescending(r => r.RunId, StringComparer.Ordinal).First().RunId;
    }

    /// <summary>The cancel reason and alert text: every run of the cycle, what it holds and what it waits for.</summary>
    public static string Describe(ImmutableArray<CycleStep> cycle)
    {
        var named = cycle.Take(ResourceLimits.CycleRunsNamed).Select(s => $"{HolderName(s.RunId)} holds {s.Holds}, waits for {s.WaitsFor}");
        var text = string.Join("; ", named);
        return cycle.Length > ResourceLimits.CycleRunsNamed ? $"{text}; and {cycle.Length - ResourceLimits.CycleRunsNamed} more run(s)" : text;
    }

    /// <summary>
    /// For each resource the run waits for: its holders and what each of them waits for, as data and as one sentence
    /// ("waits for gpu (capacity 1, 1 used): held by run B, which waits for warehouse-db; every holder waits itself").
    /// Costs the run's waits times <paramref name="holdersNamed"/>, not the graph.
    /// </summary>
    /// <param name="nameHolder">How a holder is named in the sentence (default <see cref="HolderName"/>; a worker's claim
    /// answer names runs without their ids, see <see cref="ExternalClaims.Status"/>).</param>
    public static ImmutableArray<WaitExplanation> ExplainWaits(ResourceBook book, string runId, int defaultCapacity, int holdersNamed = 5,
        Func<string, string>? nameHolder = null)
    {
        nameHolder ??= HolderName;
        if (!book.Runs.TryGetValue(runId, out var run) || run.WaitsOn.IsEmpty) return [];
        var result = ImmutableArray.CreateBuilder<WaitExplanation>();
        foreach (var name in run.WaitsOn.Order(StringComparer.Ordinal))
        {
            var r = book.Resource(name);
            var needs = WaitCount(book, name, runId);
            var holders = r.Holders.OrderBy(h => h.Key, StringComparer.Ordinal)
                .Select(h => new HolderWait(h.Key, h.Value, book.Runs.TryGetValue(h.Key, out var hr) ? [.. hr.WaitsOn.Order(StringComparer.Ordinal)] : [])
                {
                    Releasing = Releases(book, h.Key, name),
                })
                .ToList();
            var allWait = holders.Count > 0 && holders.All(h => !h.WaitsFor.IsEmpty && !h.Releasing);
            var named = holders.Take(holdersNamed).ToImmutableArray();
            var parts = named.Select(h =>
                $"{nameHolder(h.Holder)}{(h.Count > 1 ? $" ({h.Count})" : "")}, which " +
                (h.Releasing ? "releases it when its task ends" : h.WaitsFor.IsEmpty ? "waits for nothing" : "waits for " + string.Join(", ", h.WaitsFor)));
            var text = $"waits for {name} (capacity {r.Capacity(defaultCapacity)}, {r.Used} used{(needs > 1 ? $", needs {needs}" : "")}): " +
                       (holders.Count == 0 ? "held by nobody (queued behind earlier waiters)" : "held by " + string.Join("; ", parts)) +
                       (holders.Count > holdersNamed ? $"; and {holders.Count - holdersNamed} more holder(s)" : "") +
                       (allWait ? "; every holder waits itself" : "");
            result.Add(new WaitExplanation(name, r.Capacity(defaultCapacity), r.Used, needs, holders.Count, named, allWait, text));
        }
        return result.ToImmutable();
    }

    /// <summary>How a holder is named to people: a run, or an external worker's claim (see <see cref="ExternalHolders"/>).</summary>
    public static string HolderName(string holder) =>
        ExternalHolders.WorkerOf(holder) is { } worker ? $"worker {worker}" : $"run {holder}";
}
