using Deepline.Actors.Serialization;
using Deepline.Domain;

namespace Deepline.Actors.Workflows;

/// <param name="Seq">The event's sequence number in the run's journal (1 is the submission).</param>
/// <param name="By">Who caused it: the worker that reported, the key or person that cancelled or re-ran, the client that submitted.</param>
/// <param name="Cause">Why: the detector behind an auto-cancel, an attempt's end cause (failed, lease_expired, interrupted, ...), an error type.</param>
/// <param name="Detail">The text the event carries: an error, a reason.</param>
public sealed record RunHistoryEvent(long Seq, DateTimeOffset? At, string Type, string? TaskId, int? Attempt, string? By, string? Cause, string? Detail);

/// <summary>A run's journalled events as its timeline (GET /runs/{id}/history and the retention archive show the same).</summary>
public static class RunTimeline
{
    /// <summary>One journalled event as the timeline shows it: who or what caused it, and the text it carries.</summary>
    public static RunHistoryEvent Describe(long seq, object payload) => payload switch
    {
        RunSubmitted e => new(seq, e.At, "run_submitted", null, null, e.Spec.ClientId, null,
            $"workflow '{e.Spec.WorkflowName}', {e.Spec.Tasks.Length} task(s)"),
        TaskStarted e => new(seq, e.At, "task_started", e.TaskId, Attempt(e.Attempt), e.WorkerId, null,
            e.Holder is null ? null : $"held by key '{e.Holder}'"),
        TaskSucceeded e => new(seq, e.At, "task_succeeded", e.TaskId, Attempt(e.Attempt), null, null, null),
        TaskFailed e => new(seq, e.At, "task_failed", e.TaskId, Attempt(e.Attempt), null, e.ErrorType, e.Error),
        TaskAttemptFailed e => new(seq, e.At, "task_attempt_failed", e.TaskId, e.Attempt, null, e.Cause,
            e.RetryAt is { } at ? $"{e.Error}; next attempt at {at.UtcDateTime:yyyy-MM-dd'T'HH:mm:ss.fff'Z'}" : e.Error),
        TaskRetryReleased e => new(seq, e.At, "task_retry_released", e.TaskId, null, null, null, null),
        TaskResourcesGranted e => new(seq, e.At, "task_resources_granted", e.TaskId, null, "resource coordinator", null, null),
        TaskCancelled e => new(seq, e.At, "task_cancelled", e.TaskId, null, null, null, e.Detail),
        TaskEventIgnored e => new(seq, e.At, "task_event_ignored", e.TaskId, Attempt(e.Attempt), null, e.Event.ToString(), e.Reason),
        RunCancelRequested e => new(seq, e.At, "run_cancel_requested", null, null, e.CancelledBy, e.DeadlockReason,
            e.Force ? e.Reason + " (forced)" : e.Reason),
        RunCancelFinalised e => new(seq, e.At, "run_cancel_finalised", null, null, e.By, null, null),
        RunRetried e => new(seq, e.At, "run_retried", null, null, e.By, null, $"re-opened: {string.Join(", ", e.TaskIds)}"),
        UnreadablePayload u => new(seq, null, "unreadable", null, null, null, null, $"{u.Manifest}: {u.Error}"),
        IRunEvent e => new(seq, e.At, e.GetType().Name, (e as ITaskEvent)?.TaskId, null, null, null, null),
        _ => new(seq, null, "unknown", null, null, null, null, payload.GetType().Name),
    };

    private static int? Attempt(int attempt) => attempt > 0 ? attempt : null;
}
