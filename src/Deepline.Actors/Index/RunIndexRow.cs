using Deepline.Domain;

namespace Deepline.Actors.Index;

/// <summary>One run as the index holds it: what the scan and the list endpoints read, without the run's tasks.</summary>
public sealed record RunIndexRow(
    string RunId,
    string WorkflowName,
    string ClientId,
    RunStatus Status,
    DateTimeOffset CreatedAt,
    DateTimeOffset UpdatedAt,
    int TaskCount,
    TaskCounts Counts,
    string? CancelReason,
    string? CancelledBy,
    DateTimeOffset? CancelledAt)
{
    /// <summary>The detector behind an auto-cancel (its own column); null otherwise. Filled by the cancelled list only.</summary>
    public string? DeadlockReason { get; init; }
}

/// <summary>
/// The index columns of a run, derived from its state. The *_base columns are when each detector's clock
/// started (null when the detector cannot apply); the deadlines add the thresholds in force.
/// </summary>
public static class IndexColumns
{
    public static long? StaleBase(WorkflowState s) =>
        s.Status == RunStatus.RUNNING && s.Counts.Running == 0 && s.Counts.Open > 0 ? Ms(s.UpdatedAt) : null;

    public static long? HeartbeatBase(WorkflowState s) =>
        s.Status == RunStatus.RUNNING && s.Counts.Running > 0
            ? s.Tasks.Values.Where(t => t.State == TaskState.RUNNING).Min(t => Ms(t.LastHeartbeatAt ?? t.UpdatedAt))
            : null;

    public static long? TimeoutBase(WorkflowState s) => s.Status == RunStatus.RUNNING ? Ms(s.CreatedAt) : null;

    public static long Ms(DateTimeOffset t) => t.ToUnixTimeMilliseconds();

    public static DateTimeOffset At(long ms) => DateTimeOffset.FromUnixTimeMilliseconds(ms);
}
