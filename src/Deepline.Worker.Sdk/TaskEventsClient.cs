using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace Deepline.Worker.Sdk;

/// <summary>The events an external worker reports on a task (POST /runs/{run_id}/tasks/{task_id}/events).</summary>
[JsonConverter(typeof(JsonStringEnumConverter<TaskEvent>))]
public enum TaskEvent
{
    TASK_STARTED,
    TASK_HEARTBEAT,
    TASK_SUCCEEDED,
    TASK_FAILED,
    TASK_CANCELLED,
}

/// <summary>How the node answered a task event. Transport failures and 5xx are exceptions (retry them); these are not.</summary>
public abstract record TaskEventResult
{
    private TaskEventResult()
    {
    }

    /// <summary>Applied. Heartbeat at least every <c>HeartbeatTimeoutS / 3</c> seconds while the task runs.</summary>
    public sealed record Accepted(string RunId, string TaskId, string State, string RunStatus, int HeartbeatTimeoutS) : TaskEventResult
    {
        /// <summary>W3C trace context of the node's span for this event (when the node traces): parent for the worker's own task span.</summary>
        public string? TraceParent { get; init; }

        /// <summary>The task's current attempt.</summary>
        public int Attempt { get; init; }

        /// <summary>Set when a TASK_FAILED queued the next attempt behind a backoff.</summary>
        public DateTimeOffset? RetryAt { get; init; }

        /// <summary>When the attempt's lease ends unless a heartbeat renews it (RUNNING tasks).</summary>
        public DateTimeOffset? LeaseExpiresAt { get; init; }
    }

    /// <summary>409: the task is over for this worker (run cancelled, task finished or held by another worker). Stop working on it.</summary>
    public sealed record TaskOver(string Detail) : TaskEventResult;

    /// <summary>400/401/403/404/422: the request itself is wrong (unknown run or task, bad id, missing worker id, a key without the worker role or pool).</summary>
    public sealed record Rejected(int Status, string Detail, string? Field) : TaskEventResult;
}

/// <summary>Reports task events to a node's HTTP API on behalf of one worker.</summary>
/// <param name="http">A client whose BaseAddress is the node, e.g. <c>http://127.0.0.1:8001</c>.</param>
/// <param name="workerId">This worker's id, sent with every event (it is how the run knows who holds a task).</param>
public sealed class TaskEventsClient(HttpClient http, string workerId)
{
    public const string KeyVariable = "DEEPLINE_KEY";

    public string WorkerId { get; } = string.IsNullOrWhiteSpace(workerId) ? throw new ArgumentException("worker id is required", nameof(workerId)) : workerId;

    /// <summary>
    /// A client for the node at <paramref name="node"/> that sends <paramref name="apiKey"/> (default: the
    /// <c>DEEPLINE_KEY</c> environment variable; none on an open node) as its bearer key. Use a key of role worker.
    /// </summary>
    public static TaskEventsClient Connect(Uri node, string workerId, string? apiKey = null)
    {
        var http = new HttpClient { BaseAddress = node };
        apiKey ??= Environment.GetEnvironmentVariable(KeyVariable);
        if (!string.IsNullOrWhiteSpace(apiKey))
            http.DefaultRequestHeaders.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", apiKey.Trim());
        return new TaskEventsClient(http, workerId);
    }

    /// <summary>Claims a QUEUED task. <see cref="TaskEventResult.TaskOver"/> means: do not start it.</summary>
    public Task<TaskEventResult> StartedAsync(string runId, string taskId, CancellationToken ct = default) =>
        ReportAsync(runId, taskId, TaskEvent.TASK_STARTED, null, null, ct);

    public Task<TaskEventResult> HeartbeatAsync(string runId, string taskId, CancellationToken ct = default) =>
        ReportAsync(runId, taskId, TaskEvent.TASK_HEARTBEAT, null, null, ct);

    public Task<TaskEventResult> SucceededAsync(string runId, string taskId, JsonElement? result = null, CancellationToken ct = default) =>
        ReportAsync(runId, taskId, TaskEvent.TASK_SUCCEEDED, result, null, ct);

    public Task<TaskEventResult> FailedAsync(string runId, string taskId, string error, CancellationToken ct = default) =>
        ReportAsync(runId, taskId, TaskEvent.TASK_FAILED, null, error, ct);

    /// <summary>Acknowledges the run's cancellation: the task stopped.</summary>
    public Task<TaskEventResult> CancelledAsync(string runId, string taskId, string? detail = null, CancellationToken ct = default) =>
        ReportAsync(runId, taskId, TaskEvent.TASK_CANCELLED, null, detail, ct);

    public Task<TaskEventResult> ReportAsync(string runId, string taskId, TaskEvent kind, JsonElement? result, string? error, CancellationToken ct = default) =>
        ReportAsync(runId, taskId, kind, result, error, null, null, ct);

    /// <param name="attempt">The attempt this worker holds (from its lease): the node refuses a report of any other (409).</param>
    /// <param name="errorType">With TASK_FAILED: the error's type, matched against the task's non_retryable_errors.</param>
    public async Task<TaskEventResult> ReportAsync(string runId, string taskId, TaskEvent kind, JsonElement? result, string? error,
        int? attempt, string? errorType, CancellationToken ct = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(runId);
        ArgumentException.ThrowIfNullOrEmpty(taskId);
        var body = new EventBody(kind, WorkerId, result, error) { Attempt = attempt, ErrorType = errorType };
        using var response = await http.PostAsJsonAsync(
            $"runs/{Uri.EscapeDataString(runId)}/tasks/{Uri.EscapeDataString(taskId)}/events", body, RedisContract.Json, ct);
        if (response.IsSuccessStatusCode)
        {
            var a = await response.Content.ReadFromJsonAsync<AcceptedBody>(RedisContract.Json, ct)
                    ?? throw new HttpRequestException("empty answer to a task event");
            return new TaskEventResult.Accepted(a.RunId, a.TaskId, a.State, a.RunStatus, a.HeartbeatTimeoutS)
            {
                TraceParent = a.TraceParent, Attempt = a.Attempt, RetryAt = a.RetryAt, LeaseExpiresAt = a.LeaseExpiresAt,
            };
        }

        var status = (int)response.StatusCode;
        if (status is 400 or 401 or 403 or 404 or 409 or 422)
        {
            var problem = await ReadProblem(response, ct);
            return response.StatusCode == HttpStatusCode.Conflict
                ? new TaskEventResult.TaskOver(problem.Detail ?? "the task is over")
                : new TaskEventResult.Rejected(status, problem.Detail ?? response.ReasonPhrase ?? "rejected", problem.Field);
        }

        // 503 (the cluster did not answer in time) and anything else: the event may not be applied; the caller retries.
        response.EnsureSuccessStatusCode();
        throw new HttpRequestException($"unexpected answer {status}", null, response.StatusCode);
    }

    private static async Task<ProblemBody> ReadProblem(HttpResponseMessage response, CancellationToken ct)
    {
        try
        {
            return await response.Content.ReadFromJsonAsync<ProblemBody>(RedisContract.Json, ct) ?? new ProblemBody(null, null);
        }
        catch (JsonException)
        {
            return new ProblemBody(null, null);
        }
    }

    private sealed record EventBody(
        [property: JsonPropertyName("event")] TaskEvent Event,
        [property: JsonPropertyName("worker_id")] string WorkerId,
        [property: JsonPropertyName("result"), JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] JsonElement? Result,
        [property: JsonPropertyName("error"), JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] string? Error)
    {
        [JsonPropertyName("attempt"), JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
        public int? Attempt { get; init; }

        [JsonPropertyName("error_type"), JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
        public string? ErrorType { get; init; }
    }

    private sealed record AcceptedBody(
        [property: JsonPropertyName("run_id")] string RunId,
        [property: JsonPropertyName("task_id")] string TaskId,
        [property: JsonPropertyName("state")] string State,
        [property: JsonPropertyName("run_status")] string RunStatus,
        [property: JsonPropertyName("heartbeat_timeout_s")] int HeartbeatTimeoutS,
        [property: JsonPropertyName("traceparent")] string? TraceParent = null,
        [property: JsonPropertyName("attempt")] int Attempt = 0,
        [property: JsonPropertyName("retry_at")] DateTimeOffset? RetryAt = null,
        [property: JsonPropertyName("lease_expires_at")] DateTimeOffset? LeaseExpiresAt = null);

    private sealed record ProblemBody(
        [property: JsonPropertyName("detail")] string? Detail,
        [property: JsonPropertyName("field")] string? Field);
}
