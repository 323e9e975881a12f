using System.Text.Json;
using Deepline.Actors.Workflows;
using Deepline.Domain;

namespace Deepline.Node.Http;

// Wire shapes of the HTTP API. Names are serialised snake_case (see HttpJson), matching the seed's contract.

public sealed record SubmitRunRequest(string? RunId, string? WorkflowName, string? ClientId, List<SubmitTaskRequest?>? Tasks, DeadlockOverridesRequest? Deadlock = null)
{
    /// <summary>For the lowest_priority victim policy of resource deadlocks.</summary>
    public int? Priority { get; init; }
}

/// <summary>Per-run detector thresholds (seconds); each one given wins over the node's configuration.</summary>
public sealed record DeadlockOverridesRequest(int? PendingStaleS, int? WorkflowStaleS, int? HeartbeatTimeoutS);

public sealed record SubmitTaskRequest(string? TaskId, string? Type, string? Pool, JsonElement? Params, List<string?>? DependsOn)
{
    public List<ResourceRequestBody?>? Resources { get; init; }

    public string? HoldUntil { get; init; }

    /// <summary>The task's own retry policy; absent: the node's (orchestrator.retry.*).</summary>
    public RetryPolicyRequest? Retry { get; init; }
}

/// <summary>Temporal's retry policy; absent fields take the node's values.</summary>
public sealed record RetryPolicyRequest(int? MaxAttempts, double? InitialIntervalS, double? BackoffCoefficient, double? MaxIntervalS,
    List<string?>? NonRetryableErrors);

public sealed record ResourceRequestBody(string? Name, int? Count);

public sealed record ResourceCapacityRequest(int? Capacity);

public sealed record RunCreatedResponse(string RunId, string WorkflowName, string ClientId, RunStatus Status, DateTimeOffset CreatedAt, int TaskCount);

public sealed record TaskResponse(
    string TaskId,
    string Type,
    string Pool,
    TaskState State,
    IReadOnlyList<string> DependsOn,
    int Attempts,
    DateTimeOffset UpdatedAt,
    DateTimeOffset? LastHeartbeatAt,
    string? WorkerId,
    JsonElement? Params,
    JsonElement? Result,
    string? Error)
{
    public IReadOnlyList<ResourceRequestBody> Resources { get; init; } = [];

    public string? HoldUntil { get; init; }

    /// <summary>Resources a QUEUED task still waits for: it holds no worker slot meanwhile. Empty otherwise.</summary>
    public IReadOnlyList<string> WaitingFor { get; init; } = [];

    /// <summary>A QUEUED task waiting for its next attempt's backoff: when it is dispatched.</summary>
    public DateTimeOffset? RetryAt { get; init; }

    /// <summary>The error type of the last failed attempt, as its worker reported it.</summary>
    public string? ErrorType { get; init; }

    /// <summary>How many attempts the task gets in all (its policy, or the node's).</summary>
    public int MaxAttempts { get; init; }
}

public sealed record CancellationResponse(
    string Reason,
    string CancelledBy,
    DateTimeOffset CancelledAt,
    int CancelledTasks,
    bool Forced,
    DateTimeOffset? FinalisedAt,
    string? FinalisedBy,
    string? DeadlockReason);

public sealed record IgnoredEventResponse(string TaskId, TaskEventKind Event, string Reason, DateTimeOffset At)
{
    /// <summary>The attempt the ignored report named; absent when it named none.</summary>
    public int? Attempt { get; init; }
}

public sealed record RunResponse(
    string RunId,
    string WorkflowName,
    string ClientId,
    RunStatus Status,
    DateTimeOffset CreatedAt,
    DateTimeOffset UpdatedAt,
    int TaskCount,
    IReadOnlyDictionary<string, int> TaskCounts,
    CancellationResponse? Cancellation,
    IReadOnlyList<TaskResponse> Tasks,
    IReadOnlyList<IgnoredEventResponse> IgnoredEvents,
    long IgnoredEventsTotal)
{
    /// <summary>Resources the run has been granted and still keeps (running tasks, open hold_until); empty for runs without resources.</summary>
    public IReadOnlyList<string> ResourcesHeld { get; init; } = [];

    /// <summary>For each resource a QUEUED task waits for: who holds it and what those holders wait for. Empty when nothing waits.</summary>
    public IReadOnlyList<ResourceWaitResponse> ResourceWaits { get; init; } = [];
}

public sealed record CancelRequest(string? Reason, bool? Force, string? CancelledBy);

/// <summary>The seed's answer to PUT /runs/{run_id}/cancel, field for field.</summary>
public sealed record CancelResponse(string RunId, RunStatus Status, string Message, DateTimeOffset CancelledAt, int CancelledTasks, string Reason);

/// <summary>The seed's answer to GET /runs/{run_id}/cancel.</summary>
public sealed record CancelStatusResponse(
    string RunId,
    bool IsCancelled,
    RunStatus Status,
    string? CancellationReason,
    DateTimeOffset? CancelledAt,
    string? CancelledBy,
    string? DeadlockReason);

public sealed record TaskEventRequest(string? Event, string? WorkerId, JsonElement? Result, string? Error)
{
    /// <summary>The attempt the worker holds (from its lease): a report of any other attempt is refused (409). Absent: the current one.</summary>
    public int? Attempt { get; init; }

    /// <summary>With TASK_FAILED: the error's type, matched against the retry policy's non_retryable_errors.</summary>
    public string? ErrorType { get; init; }
}

public sealed record TaskEventResponse(string RunId, string TaskId, TaskState State, RunStatus RunStatus, int HeartbeatTimeoutS)
{
    /// <summary>The task's current attempt.</summary>
    public int Attempt { get; init; }

    /// <summary>Set when a TASK_FAILED queued the next attempt behind a backoff: when it will be dispatched.</summary>
    public DateTimeOffset? RetryAt { get; init; }

    /// <summary>When the attempt's lease ends unless renewed by a heartbeat (RUNNING tasks only).</summary>
    public DateTimeOffset? LeaseExpiresAt { get; init; }

    /// <summary>W3C trace context of the run's span for this event, when the node traces: the worker's task span can join the run's trace.</summary>
    [System.Text.Json.Serialization.JsonPropertyName("traceparent")]
    [System.Text.Json.Serialization.JsonIgnore(Condition = System.Text.Json.Serialization.JsonIgnoreCondition.WhenWritingNull)]
    public string? TraceParent { get; init; }
}

public static class Views
{
    public static RunResponse ToResponse(this WorkflowState s, RetrySettings? retry = null) => new(
        s.RunId, s.WorkflowName, s.ClientId, s.Status, s.CreatedAt, s.UpdatedAt, s.Tasks.Count,
        Enum.GetValues<TaskState>().ToDictionary(st => st.ToString().ToLowerInvariant(), st => s.Counts.Of(st)),
        s.Cancel is { } c ? new CancellationResponse(c.Reason, c.CancelledBy, c.CancelledAt, c.CancelledTasks, c.Forced, c.FinalisedAt, c.FinalisedBy, c.DeadlockReason) : null,
        [.. s.OrderedTasks.Select(t => new TaskResponse(t.TaskId, t.Type, t.Pool, t.State, t.DependsOn, t.Attempts, t.UpdatedAt,
            t.LastHeartbeatAt, t.WorkerId, t.Params, t.Result, t.Error)
        {
            Resources = t.NeedsResources ? [.. t.Resources.Select(r => new ResourceRequestBody(r.Name, r.Count))] : [],
            HoldUntil = t.HoldUntil,
            WaitingFor = t.WaitingFor,
            RetryAt = t.RetryAt,
            ErrorType = t.ErrorType,
            MaxAttempts = (retry ?? RetrySettings.Off).For(t).MaxAttempts,
        })],
        [.. s.Ignored.Select(i => new IgnoredEventResponse(i.TaskId, i.Event, i.Reason, i.At) { Attempt = i.Attempt == 0 ? null : i.Attempt })],
        Math.Max(s.IgnoredTotal, s.Ignored.Count))
    {
        ResourcesHeld = Deepline.Domain.Resources.RunResources.Sync(s) is { } sync ? sync.Keep : [],
    };

    public static CancelStatusResponse ToCancelStatus(this WorkflowState s) => new(
        s.RunId, s.Cancel is not null, s.Status, s.Cancel?.Reason, s.Cancel?.CancelledAt, s.Cancel?.CancelledBy, s.Cancel?.DeadlockReason);

    public static CancelResponse ToCancelResponse(this CancelReply reply)
    {
        var s = reply.State;
        var c = s.Cancel!;
        var message = (reply.AlreadyRequested, s.Status, c.Forced) switch
        {
            (false, RunStatus.CANCELLING, _) => "Workflow cancellation initiated successfully",
            (false, _, false) => "Workflow cancelled",
            (_, RunStatus.CANCELLED, true) => $"Workflow cancelled (forced by {c.FinalisedBy}: running tasks were not waited for)",
            (true, RunStatus.CANCELLING, _) => "Workflow cancellation already in progress",
            _ => "Workflow already cancelled",
        };
        return new CancelResponse(s.RunId, s.Status, message, c.CancelledAt, c.CancelledTasks, c.Reason);
    }
}

/// <summary>A page of a run's history; <c>next_after</c> is the <c>after</c> of the next page, null on the last.</summary>
public sealed record RunHistoryResponse(string RunId, IReadOnlyList<RunHistoryEvent> Events, long? NextAfter);

/// <summary>POST /runs/cancel: which runs, why, and whether only to count them.</summary>
public sealed record BulkCancelRequest(RunFilterRequest? Filter, string? Reason, bool? DryRun, bool? Confirm);

/// <summary>Times are ISO-8601 (UTC when no offset is given); <c>status</c> may only be RUNNING.</summary>
public sealed record RunFilterRequest(string? ClientId, string? WorkflowName, string? Status, string? CreatedBefore, string? CreatedAfter, List<string?>? RunIds);

public sealed record BulkCancelDryRunResponse(long Matched, IReadOnlyList<string> Sample);

public sealed record OperationFilterResponse(string? ClientId, string? WorkflowName, DateTimeOffset? CreatedAfter, DateTimeOffset? CreatedBefore, int RunIds);

/// <summary>A bulk operation's progress: <c>cancelled + skipped + failed</c> reaches <c>matched</c> (or more, with runs started meanwhile that match) when it is done.</summary>
public sealed record OperationResponse(string OperationId, string Kind, string State, long Matched, long Cancelled, long Skipped, long Failed,
    string Reason, string By, OperationFilterResponse Filter, DateTimeOffset CreatedAt, DateTimeOffset UpdatedAt)
{
    public static OperationResponse Of(BulkOperation o) => new(o.OperationId, "cancel", o.Status.ToString(), o.Matched, o.Cancelled, o.Skipped,
        o.Failed, o.Reason, o.By, new OperationFilterResponse(o.Filter.ClientId, o.Filter.WorkflowName, o.Filter.CreatedAfter, o.Filter.CreatedBefore,
            o.Filter.RunIds.IsDefaultOrEmpty ? 0 : o.Filter.RunIds.Length), o.CreatedAt, o.UpdatedAt);
}
