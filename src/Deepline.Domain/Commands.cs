using System.Collections.Immutable;
using System.Text.Json;

namespace Deepline.Domain;

/// <summary>Everything addressed to one run's entity carries the run's id.</summary>
public interface IRunCommand : IDeeplineMessage
{
    string RunId { get; }
}

public sealed record SubmitRun(RunSpec Spec) : IRunCommand
{
    public string RunId => Spec.RunId;

    /// <summary>W3C trace context of the request that submitted the run; null when nothing traces.</summary>
    public string? TraceParent { get; init; }
}

/// <summary>
/// A command on behalf of one client: a run of any other client answers exactly as a run that does not exist,
/// so that a caller cannot learn which run ids other clients use. Null: the caller may see every run.
/// </summary>
public interface IClientScoped : IRunCommand
{
    string? ClientScope { get; }
}

public sealed record GetRun(string RunId) : IClientScoped
{
    public string? ClientScope { get; init; }
}

public sealed record CancelRun(string RunId, string Reason, string CancelledBy, bool Force) : IClientScoped
{
    public string? ClientScope { get; init; }

    /// <summary>The detector behind an auto-cancel (e.g. <c>stale_pending</c>); null for a cancel by a caller.</summary>
    public string? DeadlockReason { get; init; }

    /// <summary>W3C trace context of the request that cancelled the run; null when nothing traces.</summary>
    public string? TraceParent { get; init; }
}

/// <summary>The admin's "force complete": finalise a CANCELLING run now, or cancel a RUNNING one and complete it at once.</summary>
public sealed record FinaliseCancel(string RunId, string By) : IRunCommand
{
    /// <summary>The cancel reason recorded when a RUNNING run is force-completed.</summary>
    public const string Reason = "force-completed by admin";
}

public enum TaskEventKind { TASK_STARTED, TASK_HEARTBEAT, TASK_SUCCEEDED, TASK_FAILED, TASK_CANCELLED }

/// <summary>A worker's report about one task, from an in-cluster pool or over HTTP.</summary>
public sealed record ReportTaskEvent(
    string RunId,
    string TaskId,
    TaskEventKind Event,
    string? WorkerId,
    JsonElement? Result,
    string? Error) : IRunCommand
{
    /// <summary>The pools the reporting worker may serve; null: any pool (in-cluster pools, unrestricted keys).</summary>
    public ImmutableArray<string>? Pools { get; init; }

    /// <summary>W3C trace context of the request that reported the event; null when nothing traces.</summary>
    public string? TraceParent { get; init; }
}

/// <summary>
/// From the resource coordinator: these tasks' resources are all held by the run. Repeated on every re-sync, so a lost
/// one costs a retry interval, never a grant.
/// </summary>
/// <param name="SyncId">The run's sync this answers (0: a grant pushed when another run released).</param>
public sealed record ResourcesGranted(string RunId, ImmutableArray<string> TaskIds, long SyncId) : IRunCommand;

/// <summary>Internal: the cancel_timeout_s deadline of a CANCELLING run has passed.</summary>
public sealed record CancelTimeoutElapsed(string RunId) : IRunCommand;

public enum RejectionKind
{
    BadRequest,
    NotFound,
    Conflict,
    Invalid,
    /// <summary>The caller's key may not act on this (e.g. a worker key on a task of a pool it does not serve).</summary>
    Forbidden,
    /// <summary>The store refused or failed the write: nothing was acknowledged.</summary>
    NotStored,
    /// <summary>The run's journal holds an event this node cannot read; retrying cannot help.</summary>
    HistoryUnreadable,
}

public sealed record CommandRejected(RejectionKind Kind, string Message, string? Field = null, ImmutableArray<string>? Cycle = null) : IDeeplineMessage;

/// <summary>The reply to a submission, a query, a task event or a cancel: the run as it now stands.</summary>
public sealed record RunReply(WorkflowState State) : IDeeplineMessage;

/// <summary>Reply to a cancel: <see cref="AlreadyRequested"/> tells a repeated (idempotent) request.</summary>
public sealed record CancelReply(WorkflowState State, bool AlreadyRequested) : IDeeplineMessage;

/// <summary>Reply to a task event: the task's and the run's state after it (small, since workers send many).</summary>
public sealed record TaskEventAccepted(string RunId, string TaskId, TaskState State, RunStatus RunStatus) : IDeeplineMessage
{
    /// <summary>W3C trace context of the run's span for this event, for the worker to continue; null when nothing traces.</summary>
    public string? TraceParent { get; init; }
}
