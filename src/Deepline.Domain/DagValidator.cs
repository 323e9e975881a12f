using System.Collections.Immutable;

namespace Deepline.Domain;

/// <summary>Why a submission was refused. <see cref="Cycle"/> is set for dependency cycles.</summary>
public sealed record SubmissionError(RejectionKind Kind, string Field, string Message, ImmutableArray<string>? Cycle = null);

/// <summary>
/// Validates a submitted run. Everything is iterative (Kahn's algorithm) so that a chain of tens of
/// thousands of tasks costs O(tasks + edges) and never touches the call stack's depth.
/// </summary>
public static class DagValidator
{
    public static SubmissionError? Validate(RunSpec spec, SubmissionPolicy policy)
    {
        var limits = policy.Limits;
        if (!Identifiers.IsValid(spec.RunId))
            return new(RejectionKind.Invalid, "run_id", Identifiers.Describe("run_id"));
        if (Identifiers.IsReserved(spec.RunId))
            return new(RejectionKind.Invalid, "run_id", $"run_id '{spec.RunId}' is reserved: GET /runs/{spec.RunId} is a list, not a run");
        if (spec.ClientId.Length > 0 && !Identifiers.IsValid(spec.ClientId))
            return new(RejectionKind.Invalid, "client_id", Identifiers.Describe("client_id"));
        if (spec.WorkflowName.Length > RunLimits.MaxWorkflowNameLength || Identifiers.HasControl(spec.WorkflowName))
            return new(RejectionKind.Invalid, "workflow_name",
                $"workflow_name must be at most {RunLimits.MaxWorkflowNameLength} characters without control characters");
        if (spec.Deadlock is { } o && Thresholds(o, limits) is { } thresholdError)
            return thresholdError;
        if (spec.Tasks.IsDefaultOrEmpty)
            return new(RejectionKind.BadRequest, "tasks", "tasks must contain at least one task");
        if (spec.Tasks.Length > limits.MaxTasks)
            return new(RejectionKind.Invalid, "tasks",
                $"a run may have at most {limits.MaxTasks} tasks on this node (orchestrator.limits.max_tasks_per_run), got {spec.Tasks.Length}");
        var edges = 0L;
        foreach (var t in spec.Tasks)
            if (t is not null && !t.DependsOn.IsDefault) edges += t.DependsOn.Length;
        if (edges > limits.MaxEdges)
            return new(RejectionKind.Invalid, "tasks",
                $"a run may have at most {limits.MaxEdges} dependency edges on this node (orchestrator.limits.max_edges_per_run), got {edges}");

        var index = new Dictionary<string, int>(spec.Tasks.Length, StringComparer.Ordinal);
        for (var i = 0; i < spec.Tasks.Length; i++)
        {
            var t = spec.Tasks[i];
            var field = $"tasks[{i}]";
            if (t is null) return new(RejectionKind.Invalid, field, "task must be an object");
            if (!Identifiers.IsValid(t.TaskId))
                return new(RejectionKind.Invalid, field + ".task_id", Identifiers.Describe("task_id"));
            if (string.IsNullOrWhiteSpace(t.Type))
                return new(RejectionKind.Invalid, field + ".type", "type is required");
            if (!Identifiers.IsValid(t.Pool))
                return new(RejectionKind.Invalid, field + ".pool", Identifiers.Describe("pool"));
            if (t.Params is { } p && JsonSize.Utf8Bytes(p) > limits.MaxValueBytes)
                return new(RejectionKind.Invalid, field + ".params",
                    $"params may be at most {limits.MaxValueBytes} bytes of JSON on this node (orchestrator.limits.max_value_bytes)");
            if (JsonLimits.Check(t.Params, "params") is { } tooDeep)
                return new(RejectionKind.Invalid, field + ".params", tooDeep);
            if (!index.TryAdd(t.TaskId, i))
                return new(RejectionKind.Invalid, field + ".task_id", $"duplicate task_id '{t.TaskId}'");
            if (t.Retry?.Problem() is { } badRetry)
                return new(RejectionKind.Invalid, field + ".retry", badRetry);
            if (t.Type == ProcessAllowlist.TaskType && policy.InClusterPools.ContainsKey(t.Pool) && policy.Processes.Refusal(t.Params) is { } refused)
                return new(RejectionKind.Invalid, $"{field}.{refused.Field}", refused.Message);
            if (policy.InClusterPools.TryGetValue(t.Pool, out var types) && !types.Contains(t.Type))
                return new(RejectionKind.Invalid, field + ".type",
                    $"unknown task type '{t.Type}' for in-cluster pool '{t.Pool}' (known: {string.Join(", ", types.Order(StringComparer.Ordinal))})");
        }

        var n = spec.Tasks.Length;
        var unresolved = new int[n];
        var dependents = new List<int>?[n];
        for (var i = 0; i < n; i++)
        {
            var deps = spec.Tasks[i].DependsOn;
            if (deps.IsDefault) continue;
            var seen = new HashSet<string>(StringComparer.Ordinal);
            foreach (var d in deps)
            {
                if (d is null)
                    return new(RejectionKind.Invalid, $"tasks[{i}].depends_on", "depends_on must not contain null");
                if (!index.TryGetValue(d, out var j))
                    return new(RejectionKind.Invalid, $"tasks[{i}].depends_on",
                        $"task '{spec.Tasks[i].TaskId}' depends on unknown task '{d}'");
                if (!seen.Add(d)) continue;
                unresolved[i]++;
                (dependents[j] ??= []).Add(i);
            }
        }

        // Kahn: depth[i] is the number of edges on the longest dependency chain ending at task i.
        var depth = new int[n];
        var via = new int[n];
        Array.Fill(via, -1);
        var ready = new Queue<int>();
        for (var i = 0; i < n; i++) if (unresolved[i] == 0) ready.Enqueue(i);
        var processed = 0;
        while (ready.Count > 0)
        {
            var i = ready.Dequeue();
            processed++;
            if (dependents[i] is not { } ds) continue;
            foreach (var k in ds)
            {
                if (depth[i] + 1 > depth[k]) { depth[k] = depth[i] + 1; via[k] = i; }
                if (--unresolved[k] == 0) ready.Enqueue(k);
            }
        }

        if (processed < n)
        {
            var cycle = FindCycle(spec, index, unresolved);
            return new(RejectionKind.Invalid, "tasks",
                $"dependency cycle: {string.Join(" -> ", cycle)}", cycle);
        }

        var deepest = 0;
        for (var i = 1; i < n; i++) if (depth[i] > depth[deepest]) deepest = i;
        if (depth[deepest] > policy.MaxDependencyDepth)
        {
            var chainEnd = spec.Tasks[deepest].TaskId;
            var start = deepest;
            while (via[start] >= 0) start = via[start];
            return new(RejectionKind.Invalid, "tasks",
                $"longest dependency chain has depth {depth[deepest]} (from '{spec.Tasks[start].TaskId}' to '{chainEnd}'), above max_dependency_depth {policy.MaxDependencyDepth}");
        }
        return Resources.ResourceValidator.Validate(spec, index);
    }

    private static SubmissionError? Thresholds(DeadlockOverrides o, RunLimits limits)
    {
        foreach (var (name, value, min) in new[]
                 {
                     ("pending_stale_s", o.PendingStaleS, limits.ThresholdMinS),
                     ("workflow_stale_s", o.WorkflowStaleS, limits.ThresholdMinS),
                     ("heartbeat_timeout_s", o.HeartbeatTimeoutS, limits.HeartbeatMinS),
                 })
        {
            if (value is not { } v) continue;
            if (v < 1)
                return new(RejectionKind.Invalid, "deadlock." + name, $"{name} must be a positive number of seconds");
            if (v < min)
                return new(RejectionKind.Invalid, "deadlock." + name, name == "heartbeat_timeout_s"
                    ? $"{name} must be at least {min} s, the node's heartbeat_timeout_s: in-cluster workers beat at a third of the node's value, so a lower one would cancel healthy tasks"
                    : $"{name} must be at least {min} s on this node (orchestrator.limits.run_threshold_min_s), got {v}");
            if (v > limits.ThresholdMaxS)
                return new(RejectionKind.Invalid, "deadlock." + name,
                    $"{name} must be at most {limits.ThresholdMaxS} s on this node (orchestrator.limits.run_threshold_max_s), got {v}");
        }
        return null;
    }

    /// <summary>
    /// Every task Kahn could not release still has an unresolved dependency inside that leftover set, so walking
    /// those dependencies must revisit a task: the walk from that task's first visit is a cycle.
    /// </summary>
    private static ImmutableArray<string> FindCycle(RunSpec spec, Dictionary<string, int> index, int[] unresolved)
    {
        var start = Array.FindIndex(unresolved, u => u > 0);
        var position = new Dictionary<int, int>();
        var path = new List<int>();
        var current = start;
        while (!position.ContainsKey(current))
        {
            position[current] = path.Count;
            path.Add(current);
            current = spec.Tasks[current].DependsOn.Select(d => index[d]).First(j => unresolved[j] > 0);
        }
        var cycle = path.Skip(position[current]).Select(i => spec.Tasks[i].TaskId).ToList();
        cycle.Add(spec.Tasks[current].TaskId);
        return [.. cycle];
    }
}
