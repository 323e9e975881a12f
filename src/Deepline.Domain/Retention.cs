namespace Deepline.Domain;

/// <summary>
/// How long a finished run is kept after it finished, per terminal state; 0: kept forever. Open runs are never due.
/// </summary>
public sealed record RetentionPolicy(int SucceededS, int FailedS, int CancelledS)
{
    public static RetentionPolicy Forever { get; } = new(0, 0, 0);

    [System.Text.Json.Serialization.JsonIgnore]
    public bool KeepsEverything => SucceededS == 0 && FailedS == 0 && CancelledS == 0;

    /// <summary>How long a run that ended in <paramref name="status"/> is kept; null: forever (or not finished).</summary>
    public TimeSpan? LimitFor(RunStatus status) => status switch
    {
        RunStatus.SUCCEEDED when SucceededS > 0 => TimeSpan.FromSeconds(SucceededS),
        RunStatus.FAILED when FailedS > 0 => TimeSpan.FromSeconds(FailedS),
        RunStatus.CANCELLED when CancelledS > 0 => TimeSpan.FromSeconds(CancelledS),
        _ => null,
    };

    /// <summary>Whether the run finished longer ago than its state's limit (its last change is when it finished).</summary>
    public bool IsDue(WorkflowState run, DateTimeOffset now) => LimitFor(run.Status) is { } limit && run.UpdatedAt + limit <= now;
}

/// <summary>Removes a finished run whose retention is over: its journal and snapshots, decided by the run itself.</summary>
public sealed record ExpireRun(string RunId, RetentionPolicy Policy) : IRunCommand;

/// <summary>The run's history is deleted (or there was none): its index row and leftover rows may go.</summary>
public sealed record RunExpired(string RunId) : IDeeplineMessage;

/// <summary>The run was not removed, and why (not finished, not due, busy, the delete failed).</summary>
public sealed record RunKept(string RunId, string Reason) : IDeeplineMessage;
