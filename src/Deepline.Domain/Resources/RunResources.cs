using System.Collections.Immutable;

namespace Deepline.Domain.Resources;

/// <summary>What a run wants from the resource coordinator, as a pure function of the run's state.</summary>
public static class RunResources
{
    /// <summary>The run's full wish: null for a run that uses no resources (it never talks to the coordinator).</summary>
    public static ResourceSync? Sync(WorkflowState s)
    {
        if (!s.UsesResources) return null;
        var facts = new RunFacts(s.CreatedAt, s.Priority ?? 0, s.Counts.Succeeded) { WorkflowName = s.WorkflowName, ClientId = s.ClientId };
        if (s.Status.IsTerminal())
            return new ResourceSync(s.RunId, facts, ImmutableDictionary<string, ImmutableArray<ResourceRequest>>.Empty, [], true);

        var wants = ImmutableDictionary.CreateBuilder<string, ImmutableArray<ResourceRequest>>(StringComparer.Ordinal);
        var keep = new SortedSet<string>(StringComparer.Ordinal);
        // Resources some task keeps past its own end, or while it is not dispatchable: those wait with the run.
        var pinned = new HashSet<string>(StringComparer.Ordinal);
        foreach (var t in s.Tasks.Values)
        {
            if (!t.NeedsResources) continue;
            if (t.State == TaskState.QUEUED && !t.Granted && s.Status == RunStatus.RUNNING)
            {
                wants[t.TaskId] = t.Resources;
                continue;
            }
            if (!t.Granted) continue;
            // Held while the task is open, and after it until its hold_until task has ended.
            var holder = t.HoldUntil is { } h && s.Tasks.TryGetValue(h, out var until) ? until : t;
            if (!t.State.IsTerminal() || !holder.State.IsTerminal())
                foreach (var r in t.Resources)
                {
                    keep.Add(r.Name);
                    // A granted task that is RUNNING or QUEUED (dispatchable) and holds only for itself ends without waiting
                    // for anything else of the run: its holding is released whatever the run's other tasks wait for.
                    if (!ReleasesByItself(t, holder)) pinned.Add(r.Name);
                }
        }
        return new ResourceSync(s.RunId, facts, wants.ToImmutable(), [.. keep], false) { Releasing = [.. keep.Where(k => !pinned.Contains(k))] };
    }

    private static bool ReleasesByItself(TaskRecord task, TaskRecord holder) =>
        holder.TaskId == task.TaskId && task.State is TaskState.RUNNING or TaskState.QUEUED;

    private static bool SameSet(ImmutableArray<string> a, ImmutableArray<string> b)
    {
        var x = a.IsDefault ? [] : a;
        var y = b.IsDefault ? [] : b;
        return x.SequenceEqual(y);
    }

    /// <summary>Whether two wishes differ in anything the coordinator acts on (facts change with every success; they ride along).</summary>
    public static bool Differs(ResourceSync? a, ResourceSync? b)
    {
        if (a is null || b is null) return !ReferenceEquals(a, b);
        return a.Terminal != b.Terminal || !a.Keep.SequenceEqual(b.Keep) || !SameSet(a.Releasing, b.Releasing) || a.Wants.Count != b.Wants.Count
               || a.Wants.Any(kv => !b.Wants.TryGetValue(kv.Key, out var other) || !kv.Value.SequenceEqual(other));
    }
}
