using System.Collections.Immutable;

namespace Deepline.Domain.Resources;

/// <summary>Checks a submission's resources, hold_until and priority; run after the DAG itself is known to be valid.</summary>
public static class ResourceValidator
{
    public static SubmissionError? Validate(RunSpec spec, IReadOnlyDictionary<string, int> index)
    {
        if (spec.Priority is { } p && Math.Abs((long)p) > ResourceLimits.MaxPriority)
            return new(RejectionKind.Invalid, "priority", $"priority must be from -{ResourceLimits.MaxPriority} to {ResourceLimits.MaxPriority}");

        var counts = new Dictionary<string, int>(StringComparer.Ordinal);
        var holdUntils = 0;
        for (var i = 0; i < spec.Tasks.Length; i++)
        {
            var t = spec.Tasks[i];
            var field = $"tasks[{i}]";
            var resources = t.Resources.IsDefault ? [] : t.Resources;
            if (resources.Length > ResourceLimits.MaxPerTask)
                return new(RejectionKind.Invalid, field + ".resources", $"a task may declare at most {ResourceLimits.MaxPerTask} resources");
            var own = new HashSet<string>(StringComparer.Ordinal);
            for (var j = 0; j < resources.Length; j++)
            {
                var r = resources[j];
                var at = $"{field}.resources[{j}]";
                if (r is null) return new(RejectionKind.Invalid, at, "resource must be an object with name and count");
                if (!Identifiers.IsValid(r.Name)) return new(RejectionKind.Invalid, at + ".name", Identifiers.Describe("name"));
                if (r.Count is < 1 or > ResourceLimits.MaxCapacity)
                    return new(RejectionKind.Invalid, at + ".count", $"count must be from 1 to {ResourceLimits.MaxCapacity}");
                if (!own.Add(r.Name)) return new(RejectionKind.Invalid, at + ".name", $"resource '{r.Name}' is declared twice by this task");
                // A run holds a resource once, whichever of its tasks acquired it: a later task asking for more could wait
                // on its own run.
                if (counts.TryGetValue(r.Name, out var earlier) && earlier != r.Count)
                    return new(RejectionKind.Invalid, at + ".count",
                        $"resource '{r.Name}' is declared with count {earlier} by another task of this run; every task of a run must ask for the same count");
                counts[r.Name] = r.Count;
            }

            if (t.HoldUntil is not { } until) continue;
            if (resources.IsEmpty)
                return new(RejectionKind.Invalid, field + ".hold_until", "hold_until needs resources: it says until when they are held");
            if (++holdUntils > ResourceLimits.MaxHoldUntilPerRun)
                return new(RejectionKind.Invalid, field + ".hold_until", $"at most {ResourceLimits.MaxHoldUntilPerRun} tasks of a run may name a hold_until");
            if (!index.ContainsKey(until))
                return new(RejectionKind.Invalid, field + ".hold_until", $"hold_until names unknown task '{until}'");
            if (until != t.TaskId && !DependsOn(spec, index, until, t.TaskId))
                return new(RejectionKind.Invalid, field + ".hold_until",
                    $"hold_until task '{until}' does not depend on '{t.TaskId}': it could end before the resources were even acquired");
        }
        return null;
    }

    /// <summary>Whether <paramref name="from"/> reaches <paramref name="target"/> through depends_on (the DAG is acyclic here).</summary>
    private static bool DependsOn(RunSpec spec, IReadOnlyDictionary<string, int> index, string from, string target)
    {
        var seen = new HashSet<string>(StringComparer.Ordinal) { from };
        var stack = new Stack<string>([from]);
        while (stack.Count > 0)
        {
            var deps = spec.Tasks[index[stack.Pop()]].DependsOn;
            if (deps.IsDefault) continue;
            foreach (var d in deps)
            {
                if (d == target) return true;
                if (seen.Add(d)) stack.Push(d);
            }
        }
        return false;
    }
}
