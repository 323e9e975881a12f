using System.Collections.Immutable;
using System.Text.Json;

namespace Deepline.Domain;

/// <summary>Everything addressed to one run's entity carries the run's id.</summary>
public interface IRunCommand : IDeeplineMessage
{
    string RunId { get; }
}

/// <summary>A command nobody waits on (timers, pushes): a run that does not exist or cannot be read ignores it.</summary>
public interface IUnansweredRunCommand : IRunCommand;

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

    /// <summary>
    /// The attempt the worker holds (from its lease or its claim): a report naming any other than the task's current one
    /// is refused and journalled as ignored. Null: the current attempt (workers written before attempts existed).
    /// </summary>
    public int? Attempt { get; init; }

    /// <summary>With TASK_FAILED: the error's type, matched against the retry policy's non_retryable_errors.</summary>
    public string? ErrorType { get; init; }

    /// <summary>With an in-cluster pool's TASK_STARTED: the cluster member (address#uid) the attempt runs on.</summary>
    public string? Incarnation { get; init; }

    /// <summary>
    /// The key (its name) of a report that came over HTTP; null for an in-cluster pool. Such a report may not touch a task
    /// of an in-cluster pool, nor one leased to another key.
    /// </summary>
    public string? Caller { get; init; }
}

/// <summary>
/// An external worker's poll took this task: start its next attempt on <paramref name="WorkerId"/> (a lease kept by
/// heartbeats) and answer with everything the worker needs to run it (<see cref="TaskLeased"/>).
/// </summary>
public sealed record LeaseTask(string RunId, string TaskId, string WorkerId) : IRunCommand
{
    /// <summary>The pools the polling key may serve; null: any.</summary>
    public ImmutableArray<string>? Pools { get; init; }

    /// <summary>The polling key's name: only reports from that key count for the attempt.</summary>
    public string? Caller { get; init; }
}

/// <summary>A leased attempt, as a polling worker receives it.</summary>
/// <param name="Inputs">The results of the tasks it depends on, by task id.</param>
/// <param name="HeartbeatTimeoutS">The run's own heartbeat timeout, or null for the node's: the lease is that long after each heartbeat.</param>
public sealed record TaskLeased(
    string RunId,
    string TaskId,
    string Type,
    string Pool,
    int Attempt,
    JsonElement? Params,
    ImmutableDictionary<string, JsonElement?> Inputs,
    ImmutableArray<Resources.ResourceRequest> Resources,
    DateTimeOffset StartedAt,
    int? HeartbeatTimeoutS) : IDeeplineMessage
{
    public string? TraceParent { get; init; }
}

/// <summary>Internal: the run's timer found RUNNING tasks past their lease; those with an attempt left are queued again.</summary>
public sealed record ExpireLeases(string RunId, DetectorThresholds Thresholds) : IUnansweredRunCommand;

/// <summary>
/// Internal: these cluster members (address#uid) are gone (this node's earlier incarnation, a removed member), so the
/// attempts their pools ran are over: each is retried at once, or failed when it has no attempt left.
/// </summary>
public sealed record RequeueInterrupted(string RunId, ImmutableArray<string> GoneIncarnations) : IUnansweredRunCommand;

/// <summary>Re-runs a FAILED run's failed, cancelled and skipped tasks, on behalf of <paramref name="By"/>.</summary>
public sealed record RetryRun(string RunId, string By) : IClientScoped
{
    public string? ClientScope { get; init; }
}

/// <summary>Internal: the backoff timer of the run's next retry fired.</summary>
public sealed record ReleaseRetries(string RunId) : IUnansweredRunCommand;
/// <summary>
/// From the resource coordinator: these tasks' resources are all held by the run. Repeated on every re-sync, so a lost
/// one costs a retry interval, never a grant.
/// </summary>
/// <param name="SyncId">The run's sync this answers (0: a grant pushed when another run released).</param>
public sealed record ResourcesGranted(string RunId, ImmutableArray<string> TaskIds, long SyncId) : IUnansweredRunCommand;

/// <summary>Internal: the cancel_timeout_s deadline of a CANCELLING run has passed.</summary>
public sealed record CancelTimeoutElapsed(string RunId) : IUnansweredRunCommand;

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
    /// <summary>The store could not be reached or failed the write (down, restarting, full): the outcome is unknown, retry later.</summary>
    StoreUnavailable,
}

public sealed record CommandRejected(RejectionKind Kind, string Message, string? Field = null, ImmutableArray<string>? Cycle = null) : IDeeplineMessage
{
    /// <summary>Set when a report named an attempt that is not the task's current one: the attempt that is.</summary>
    public int? CurrentAttempt { get; init; }
}

/// <summary>The reply to a submission, a query, a task event or a cancel: the run as it now stands.</summary>
public sealed record RunReply(WorkflowState State) : IDeeplineMessage;

/// <summary>Reply to a cancel: <see cref="AlreadyRequested"/> tells a repeated (idempotent) request.</summary>
public sealed record CancelReply(WorkflowState State, bool AlreadyRequested) : IDeeplineMessage;

/// <summary>Reply to a task event: the task's and the run's state after it (small, since workers send many).</summary>
public sealed record TaskEventAccepted(string RunId, string TaskId, TaskState State, RunStatus RunStatus) : IDeeplineMessage
{
    /// <summary>The task's current attempt after the event (0 before its first start).</summary>
    [System.Text.Json.Serialization.JsonIgnore(Condition = System.Text.Json.Serialization.JsonIgnoreCondition.WhenWritingDefault)]
    public int Attempt { get; init; }

    /// <summary>Set when the event queued the task's next attempt behind a backoff.</summary>
    public DateTimeOffset? RetryAt { get; init; }

    /// <summary>W3C trace context of the run's span for this event, for the worker to continue; null when nothing traces.</summary>
    public string? TraceParent { get; init; }
}
