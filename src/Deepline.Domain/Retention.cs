namespace Deepline.Domain;

/// <summary>
/// How long a finished run is kept after it finished, per terminal state; 0: kept forever. Open runs are never due.
/// <see cref="MaxFinishedRuns"/> caps how many finished runs are kept at all (0: no cap): beyond it the runs that
/// finished first go, whatever their age.
/// </summary>
public sealed record RetentionPolicy(int SucceededS, int FailedS, int CancelledS)
{
    public static RetentionPolicy Forever { get; } = new(0, 0, 0);

    public int MaxFinishedRuns { get; init; }

    [System.Text.Json.Serialization.JsonIgnore]
    public bool KeepsEverything => SucceededS == 0 && FailedS == 0 && CancelledS == 0 && MaxFinishedRuns == 0;

    /// <summary>How long a run that ended in <paramref name="status"/> is kept; null: forever (or not finished).</summary>
    public TimeSpan? LimitFor(RunStatus status) => status switch
    {
        RunStatus.SUCCEEDED when SucceededS > 0 => TimeSpan.FromSeconds(SucceededS),
        RunStatus.FAILED when FailedS > 0 => TimeSpan.FromSeconds(FailedS),
        RunStatus.CANCELLED when CancelledS > 0 => TimeSpan.FromSeconds(CancelledS),
        _ => null,
    };

    /// <summary>
    /// Whether the run finished longer ago than its state's limit (its last change is when it finished), or, over the
    /// cap, at or before <paramref name="finishedBefore"/> (the last of the oldest finished runs the cap removes), to the
    /// millisecond: the run index, where the cutoff comes from, keeps times in milliseconds.
    /// </summary>
    public bool IsDue(WorkflowState run, DateTimeOffset now, DateTimeOffset? finishedBefore = null) =>
        (LimitFor(run.Status) is { } limit && run.UpdatedAt + limit <= now)
        || (run.Status.IsTerminal() && finishedBefore is { } cutoff && run.UpdatedAt.ToUnixTimeMilliseconds() <= cutoff.ToUnixTimeMilliseconds());
}

/// <summary>Removes a finished run whose retention is over: its journal and snapshots, decided by the run itself.</summary>
/// <param name="Policy">The limits by age.</param>
public sealed record ExpireRun(string RunId, RetentionPolicy Policy) : IRunCommand
{
    /// <summary>Set when the run is one of the oldest beyond max_finished_runs: it goes if it finished no later than this.</summary>
    public DateTimeOffset? FinishedBefore { get; init; }
}

/// <summary>The run's history is deleted (or there was none): its index row and leftover rows may go.</summary>
public sealed record RunExpired(string RunId) : IDeeplineMessage;

/// <summary>The run was not removed, and why (not finished, not due, busy, the delete failed).</summary>
public sealed record RunKept(string RunId, string Reason) : IDeeplineMessage;
