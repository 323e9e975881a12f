using System.Text.Json;

namespace Deepline.Domain;

/// <summary>Marker for everything the node serialises (events, snapshots, commands and replies).</summary>
public interface IDeeplineMessage;

/// <summary>A fact in a run's journal. Applying the same events in order always gives the same state.</summary>
public interface IRunEvent : IDeeplineMessage
{
    DateTimeOffset At { get; }
}

/// <summary>An event about one task of the run.</summary>
public interface ITaskEvent : IRunEvent
{
    string TaskId { get; }
}

public sealed record RunSubmitted(RunSpec Spec, DateTimeOffset At) : IRunEvent;

/// <summary>An attempt of the task began on <see cref="WorkerId"/>.</summary>
public sealed record TaskStarted(string TaskId, string WorkerId, DateTimeOffset At) : ITaskEvent
{
    /// <summary>The attempt this start opened (1 for the first); 0 in events journalled before attempts were numbered.</summary>
    [System.Text.Json.Serialization.JsonIgnore(Condition = System.Text.Json.Serialization.JsonIgnoreCondition.WhenWritingDefault)]
    public int Attempt { get; init; }

    /// <summary>
    /// The cluster member (address#uid) of an in-cluster pool that started it: once that member is gone, the attempt is
    /// known to be interrupted without waiting for its lease. Null for external workers.
    /// </summary>
    public string? Incarnation { get; init; }

    /// <summary>The key (its name) an external worker holds the attempt by; null for in-cluster pools and older events.</summary>
    public string? Holder { get; init; }
}

public sealed record TaskSucceeded(string TaskId, JsonElement? Result, DateTimeOffset At) : ITaskEvent
{
    [System.Text.Json.Serialization.JsonIgnore(Condition = System.Text.Json.Serialization.JsonIgnoreCondition.WhenWritingDefault)]
    public int Attempt { get; init; }
}

/// <summary>The task failed for good: its last attempt failed, its error is not retryable, or it was poison.</summary>
public sealed record TaskFailed(string TaskId, string Error, DateTimeOffset At) : ITaskEvent
{
    [System.Text.Json.Serialization.JsonIgnore(Condition = System.Text.Json.Serialization.JsonIgnoreCondition.WhenWritingDefault)]
    public int Attempt { get; init; }

    /// <summary>The error type the worker reported (matched against non_retryable_errors).</summary>
    public string? ErrorType { get; init; }
}

/// <summary>
/// An attempt ended without succeeding and the task has attempts left: it is QUEUED again, dispatched at once or, with
/// <see cref="RetryAt"/>, once that time has come (<see cref="TaskRetryReleased"/>). <see cref="Cause"/> is one of
/// <see cref="AttemptCauses"/>.
/// </summary>
public sealed record TaskAttemptFailed(string TaskId, int Attempt, string Cause, string Error, DateTimeOffset At) : ITaskEvent
{
    public string? ErrorType { get; init; }

    public DateTimeOffset? RetryAt { get; init; }
}

/// <summary>
/// A person re-ran a FAILED run (Airflow's "clear"): these failed, cancelled and skipped tasks are open again, each with a
/// fresh retry budget, and the run is RUNNING.
/// </summary>
public sealed record RunRetried(string By, System.Collections.Immutable.ImmutableArray<string> TaskIds, DateTimeOffset At) : IRunEvent;

/// <summary>The backoff of a task's next attempt is over: it may be dispatched.</summary>
public sealed record TaskRetryReleased(string TaskId, DateTimeOffset At) : ITaskEvent;

/// <summary>A running task stopped because of its run's cancellation (acknowledged by the worker).</summary>
public sealed record TaskCancelled(string TaskId, string? Detail, DateTimeOffset At) : ITaskEvent;

/// <summary>The cancel record: the source of truth that Redis and pub/sub only copy.</summary>
public sealed record RunCancelRequested(string Reason, string CancelledBy, bool Force, DateTimeOffset At) : IRunEvent
{
    /// <summary>The detector behind an auto-cancel. Not positional, so events journalled before it read back as null.</summary>
    public string? DeadlockReason { get; init; }
}

/// <summary>A CANCELLING run is closed without waiting for its remaining workers.</summary>
public sealed record RunCancelFinalised(string By, DateTimeOffset At) : IRunEvent;

/// <summary>An event that arrived for a task or run that was already terminal: kept for audit, never applied.</summary>
public sealed record TaskEventIgnored(string TaskId, TaskEventKind Event, string Reason, DateTimeOffset At) : ITaskEvent
{
    /// <summary>The attempt the ignored report named; 0 when it named none.</summary>
    [System.Text.Json.Serialization.JsonIgnore(Condition = System.Text.Json.Serialization.JsonIgnoreCondition.WhenWritingDefault)]
    public int Attempt { get; init; }
}

/// <summary>The resource coordinator granted every resource a QUEUED task needs: it may now be dispatched.</summary>
public sealed record TaskResourcesGranted(string TaskId, DateTimeOffset At) : ITaskEvent;
