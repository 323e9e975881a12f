using System.Text.Json;

namespace Deepline.Domain;

/// <summary>Marker for everything the node serialises (events, snapshots, commands and replies).</summary>
public interface IDeeplineMessage;

/// <summary>A fact in a run's journal. Applying the same events in order always gives the same state.</summary>
public interface IRunEvent : IDeeplineMessage
{
    DateTimeOffset At { get; }
}

public sealed record RunSubmitted(RunSpec Spec, DateTimeOffset At) : IRunEvent;

public sealed record TaskStarted(string TaskId, string WorkerId, DateTimeOffset At) : IRunEvent;

public sealed record TaskSucceeded(string TaskId, JsonElement? Result, DateTimeOffset At) : IRunEvent;

public sealed record TaskFailed(string TaskId, string Error, DateTimeOffset At) : IRunEvent;

/// <summary>A running task stopped because of its run's cancellation (acknowledged by the worker).</summary>
public sealed record TaskCancelled(string TaskId, string? Detail, DateTimeOffset At) : IRunEvent;

/// <summary>The cancel record: the source of truth that Redis and pub/sub only copy.</summary>
public sealed record RunCancelRequested(string Reason, string CancelledBy, bool Force, DateTimeOffset At) : IRunEvent
{
    /// <summary>The detector behind an auto-cancel. Not positional, so events journalled before it read back as null.</summary>
    public string? DeadlockReason { get; init; }
}

/// <summary>A CANCELLING run is closed without waiting for its remaining workers.</summary>
public sealed record RunCancelFinalised(string By, DateTimeOffset At) : IRunEvent;

/// <summary>An event that arrived for a task or run that was already terminal: kept for audit, never applied.</summary>
public sealed record TaskEventIgnored(string TaskId, TaskEventKind Event, string Reason, DateTimeOffset At) : IRunEvent;

/// <summary>The resource coordinator granted every resource a QUEUED task needs: it may now be dispatched.</summary>
public sealed record TaskResourcesGranted(string TaskId, DateTimeOffset At) : IRunEvent;
