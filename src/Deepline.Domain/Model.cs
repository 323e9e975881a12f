using System.Collections.Immutable;
using System.Text.Json;

namespace Deepline.Domain;

public enum RunStatus { RUNNING, SUCCEEDED, FAILED, CANCELLING, CANCELLED }

public enum TaskState { PENDING, QUEUED, RUNNING, SUCCEEDED, FAILED, CANCELLED, SKIPPED }

public static class States
{
    public static bool IsTerminal(this RunStatus s) => s is RunStatus.SUCCEEDED or RunStatus.FAILED or RunStatus.CANCELLED;

    public static bool IsTerminal(this TaskState s) =>
        s is TaskState.SUCCEEDED or TaskState.FAILED or TaskState.CANCELLED or TaskState.SKIPPED;
}

/// <summary>A task as the caller submitted it.</summary>
public sealed record TaskSpec(
    string TaskId,
    string Type,
    string Pool,
    JsonElement? Params,
    ImmutableArray<string> DependsOn)
{
    public const string DefaultPool = "default";
}

/// <summary>A run as the caller submitted it, before validation.</summary>
public sealed record RunSpec(
    string RunId,
    string WorkflowName,
    string ClientId,
    ImmutableArray<TaskSpec> Tasks,
    DeadlockOverrides? Deadlock = null);

/// <summary>Per-run detector thresholds submitted with the run; each one set wins over the node's.</summary>
public sealed record DeadlockOverrides(int? PendingStaleS, int? WorkflowStaleS, int? HeartbeatTimeoutS);

/// <summary>
/// What the node allows at submission beyond the DAG's own shape: the depth limit and, for pools served
/// inside the cluster, which task types have a handler. Tasks for any other pool wait for external workers.
/// </summary>
public sealed record SubmissionPolicy(int MaxDependencyDepth, ImmutableDictionary<string, ImmutableHashSet<string>> InClusterPools)
{
    public static SubmissionPolicy Default { get; } = new(50, ImmutableDictionary<string, ImmutableHashSet<string>>.Empty);
}
