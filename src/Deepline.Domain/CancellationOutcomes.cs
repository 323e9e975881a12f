namespace Deepline.Domain;

/// <summary>Why a task ended CANCELLED, as the metrics count it.</summary>
public enum TaskCancelCause
{
    /// <summary>The run was auto-cancelled by the deadlock monitor.</summary>
    deadlock,
    /// <summary>A caller cancelled the run (PUT /runs/{id}/cancel, the CLI, or a cancel found in Redis).</summary>
    user,
    /// <summary>An admin force-completed the run (DELETE /runs/{id}/cancel).</summary>
    admin,
    /// <summary>A worker cancelled its own task while the run was not being cancelled.</summary>
    worker,
}

/// <summary>How a run's cancellation ended: the seed's "cancellation success rate" is completed over all.</summary>
public enum CancelOutcome
{
    /// <summary>Every running task acknowledged (or there was none): nothing was left behind.</summary>
    completed,
    /// <summary>Finalised on purpose without waiting: force: true, or an admin's force complete.</summary>
    forced,
    /// <summary>Workers did not acknowledge within cancel_timeout_s; the run was finalised without them.</summary>
    timed_out,
}

/// <summary>What one state change did to cancellations: pure, so the metrics are decided here and only counted by actors.</summary>
public static class CancellationOutcomes
{
    /// <summary>
    /// How many tasks became CANCELLED between the two states, and why. Terminal states are write-once, so the change in
    /// the maintained counts is exactly the tasks cancelled now: O(1) per event, not a walk over the run's tasks.
    /// </summary>
    public static (int Count, TaskCancelCause Cause) TasksCancelled(WorkflowState? before, WorkflowState after) =>
        (after.Counts.Cancelled - (before?.Counts.Cancelled ?? 0), CauseOf(after.Cancel));

    public static TaskCancelCause CauseOf(CancelRecord? cancel) => cancel switch
    {
        null => TaskCancelCause.worker,
        { DeadlockReason: not null } => TaskCancelCause.deadlock,
        { Reason: FinaliseCancel.Reason } => TaskCancelCause.admin,
        _ => TaskCancelCause.user,
    };

    /// <summary>The outcome when this change made the run CANCELLED; null for any other change.</summary>
    public static CancelOutcome? RunCancelled(WorkflowState? before, WorkflowState after)
    {
        if (after.Status != RunStatus.CANCELLED || before?.Status == RunStatus.CANCELLED || after.Cancel is not { } c) return null;
        if (c.FinalisedBy == CancelTimeoutFinaliser) return CancelOutcome.timed_out;
        return c.Forced ? CancelOutcome.forced : CancelOutcome.completed;
    }

    /// <summary>The <c>finalised_by</c> of a cancel the deadline closed (see <see cref="CancelTimeoutElapsed"/>).</summary>
    public const string CancelTimeoutFinaliser = "cancel_timeout";
}
