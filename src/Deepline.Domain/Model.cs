using System.Collections.Immutable;
using System.Text.Json;
using Deepline.Domain.Resources;

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

    /// <summary>
    /// Resources the task needs granted before it is dispatched. Not positional: older journals read back empty. Left
    /// default (not written) when there are none, so runs without resources journal not one byte more.
    /// </summary>
    [System.Text.Json.Serialization.JsonIgnore(Condition = System.Text.Json.Serialization.JsonIgnoreCondition.WhenWritingDefault)]
    public ImmutableArray<ResourceRequest> Resources { get; init; }

    /// <summary>The task whose end releases this task's resources (this task, or one downstream of it); null: this task.</summary>
    public string? HoldUntil { get; init; }

    /// <summary>The task's own retry policy; null: the node's (orchestrator.retry.*), decided when an attempt ends.</summary>
    public RetryPolicy? Retry { get; init; }
}

/// <summary>A run as the caller submitted it, before validation.</summary>
public sealed record RunSpec(
    string RunId,
    string WorkflowName,
    string ClientId,
    ImmutableArray<TaskSpec> Tasks,
    DeadlockOverrides? Deadlock = null)
{
    /// <summary>For the lowest_priority victim policy: the lower, the sooner cancelled. Null counts as 0.</summary>
    public int? Priority { get; init; }
}

/// <summary>Per-run detector thresholds submitted with the run; each one set wins over the node's.</summary>
public sealed record DeadlockOverrides(int? PendingStaleS, int? WorkflowStaleS, int? HeartbeatTimeoutS);

/// <summary>
/// What the node allows at submission beyond the DAG's own shape: the depth limit and, for pools served
/// inside the cluster, which task types have a handler. Tasks for any other pool wait for external workers.
/// </summary>
public sealed record SubmissionPolicy(int MaxDependencyDepth, ImmutableDictionary<string, ImmutableHashSet<string>> InClusterPools)
{
    public static SubmissionPolicy Default { get; } = new(50, ImmutableDictionary<string, ImmutableHashSet<string>>.Empty);

    /// <summary>Size limits and per-run threshold bounds; a property so that adding it broke no caller.</summary>
    public RunLimits Limits { get; init; } = RunLimits.Default;

    /// <summary>Commands the in-cluster <c>process</c> handler may run; refused at submission otherwise.</summary>
    public ProcessAllowlist Processes { get; init; } = ProcessAllowlist.Disabled;

    /// <summary>The node's retry policy for tasks without their own, and its poison rule.</summary>
    public RetrySettings Retry { get; init; } = RetrySettings.Off;
}

/// <summary>
/// What one run may cost the node. Each bound exists because a single submission without it could take the
/// node's memory (tasks, edges, values) or its monitor (thresholds far outside the node's) hostage.
/// </summary>
/// <param name="MaxTasks">Tasks per run.</param>
/// <param name="MaxEdges">Dependency edges per run, summed over every task's depends_on.</param>
/// <param name="MaxValueBytes">UTF-8 bytes of one task's params or one result as JSON text.</param>
/// <param name="ThresholdMinS">Lowest per-run pending_stale_s / workflow_stale_s.</param>
/// <param name="ThresholdMaxS">Highest per-run threshold of any kind.</param>
/// <param name="HeartbeatMinS">Lowest per-run heartbeat_timeout_s: below the node's, in-cluster pools (which beat at a third of it) would be called silent while healthy.</param>
public sealed record RunLimits(int MaxTasks, int MaxEdges, int MaxValueBytes, int ThresholdMinS, int ThresholdMaxS, int HeartbeatMinS)
{
    public const int MaxWorkflowNameLength = 256;

    public static RunLimits Default { get; } = new(10_000, 100_000, 65_536, 1, int.MaxValue, 1);
}
