using System.Collections.Immutable;
using System.Security.Claims;
using System.Text.Json;
using Akka.Hosting;
using Deepline.Actors.Resources;
using Deepline.Domain;
using Deepline.Domain.Resources;
using Deepline.Node.Configuration;
using Deepline.Node.Security;
using Microsoft.AspNetCore.Http.HttpResults;

namespace Deepline.Node.Http;

public static class RunEndpoints
{
    public const int MaxWorkerIdLength = 128;

    /// <summary>
    /// A worker id as task events and polls take it: 1..128 characters, no spaces, control or format characters (a
    /// zero-width space alone was accepted, an id no operator can read or type), no lone surrogates.
    /// </summary>
    public static bool IsWorkerId(string? id) =>
        !string.IsNullOrEmpty(id) && id.Length <= MaxWorkerIdLength && !HttpJson.HasLoneSurrogate(id)
        && !id.Any(c => char.IsControl(c) || char.IsWhiteSpace(c) || char.GetUnicodeCategory(c) == System.Globalization.UnicodeCategory.Format);

    public static IEndpointRouteBuilder MapRunEndpoints(this IEndpointRouteBuilder app, int heartbeatTimeoutS)
    {
        // Role submitter (its own client's runs) or admin.
        app.MapPost("/runs", async Task<Results<Created<RunCreatedResponse>, ProblemHttpResult>> (HttpRequest request, ClaimsPrincipal user,
            RunsGateway gateway, DeeplineConfig config, ClientQuotas quotas, CancellationToken ct) =>
        {
            var (body, error) = await HttpJson.ReadAsync<SubmitRunRequest>(request, ct);
            if (error is not null) return error;
            var (spec, invalid) = ToSpec(body!, user, config.Retry.ToSettings());
            if (invalid is not null) return invalid;
            if (await quotas.RefusalAsync(spec!.ClientId, spec.Tasks.Length, ct) is { } overQuota)
            {
                request.HttpContext.Response.Headers.RetryAfter = "10";
                return Problems.Of(429, "Quota exceeded", overQuota, "client_id");
            }
            var (reply, failure) = await gateway.AskAsync<RunReply>(new SubmitRun(spec), ct);
            if (failure is not null) return failure;
            quotas.Admitted(spec.ClientId, spec.RunId, spec.Tasks.Length);
            var s = reply!.State;
            return TypedResults.Created($"/runs/{s.RunId}",
                new RunCreatedResponse(s.RunId, s.WorkflowName, s.ClientId, s.Status, s.CreatedAt, s.Tasks.Count));
        }).RequireAuthorization(Policies.Submit)
            .Documented("runs", "Submit a run", 400, 408, 409, 413, 415, 422, 429, 500, 503).Accepts<SubmitRunRequest>("application/json");

        // Role submitter (own client), operator or admin; another client's run is 404.
        app.MapGet("/runs/{runId}", async Task<Results<Ok<RunResponse>, ProblemHttpResult>> (string runId, ClaimsPrincipal user, RunsGateway gateway,
            IRequiredActor<ResourceCoordinator> coordinator, DeeplineConfig config, CancellationToken ct) =>
        {
            if (!Identifiers.IsValid(runId)) return Problems.BadRequest(Identifiers.Describe("run_id"), "run_id");
            var (reply, failure) = await gateway.AskAsync<RunReply>(new GetRun(runId) { ClientScope = user.ClientScope() }, ct);
            if (failure is not null) return failure;
            var response = reply!.State.ToResponse(config.Retry.ToSettings());
            // Starvation made explicit: a waiting task's run says who holds what it waits for.
            if (response.Tasks.Any(t => t.WaitingFor.Count > 0))
                response = response with { ResourceWaits = await ResourceEndpoints.ExplainWaitsAsync(coordinator, runId, ct) };
            return TypedResults.Ok(response);
        }).RequireAuthorization(Policies.ReadRuns)
            .Documented("runs", "A run with its tasks", 400, 404, 500, 503);

        // Role worker (its pools only, when the key names pools) or admin.
        app.MapPost("/runs/{runId}/tasks/{taskId}/events", async Task<Results<Ok<TaskEventResponse>, ProblemHttpResult>> (string runId, string taskId,
            HttpRequest request, ClaimsPrincipal user, RunsGateway gateway, DeeplineConfig config, CancellationToken ct) =>
        {
            if (!Identifiers.IsValid(runId)) return Problems.BadRequest(Identifiers.Describe("run_id"), "run_id");
            if (!Identifiers.IsValid(taskId)) return Problems.BadRequest(Identifiers.Describe("task_id"), "task_id");
            var (body, error) = await HttpJson.ReadAsync<TaskEventRequest>(request, ct);
            if (error is not null) return error;
            if (!TryParseEvent(body!.Event, out var kind))
                return Problems.BadRequest($"event must be exactly one of {string.Join(", ", Enum.GetNames<TaskEventKind>())}", "event");
            if (string.IsNullOrEmpty(body.WorkerId))
                return Problems.BadRequest("worker_id is required on every task event: it proves the reporter holds the task", "worker_id");
            if (!IsWorkerId(body.WorkerId))
                return Problems.BadRequest($"worker_id must be 1..{MaxWorkerIdLength} characters without spaces or control characters", "worker_id");
            var result = body.Result is { ValueKind: JsonValueKind.Null or JsonValueKind.Undefined } ? null : body.Result;
            if (result is { } r && JsonSize.Utf8Bytes(r) > config.Limits.MaxValueBytes)
                return Problems.Of(422, "Too large",
                    $"result may be at most {config.Limits.MaxValueBytes} bytes of JSON on this node (orchestrator.limits.max_value_bytes)", "result");
            if (body.Error is { } e && System.Text.Encoding.UTF8.GetByteCount(e) > config.Limits.MaxValueBytes)
                return Problems.Of(422, "Too large",
                    $"error may be at most {config.Limits.MaxValueBytes} bytes on this node (orchestrator.limits.max_value_bytes)", "error");
            // No upper bound beside the type's: a task re-run by a person numbers its attempts on past max_attempts.
            if (body.Attempt is < 1)
                return Problems.Of(422, "Invalid attempt", "attempt must be 1 or more (the attempt number of the worker's lease)", "attempt");
            if (body.ErrorType is { } et && (et.Length is 0 or > RetryPolicy.MaxErrorTypeLength || Identifiers.HasControl(et)))
                return Problems.Of(422, "Invalid error type", $"error_type must be 1..{RetryPolicy.MaxErrorTypeLength} characters without control characters", "error_type");
            var command = new ReportTaskEvent(runId, taskId, kind, body.WorkerId, result,
                body.Error is null ? null : Identifiers.StripControl(body.Error))
            {
                Pools = user.Pools(), Attempt = body.Attempt, ErrorType = body.ErrorType, Caller = user.Name(),
            };
            var (a, failure) = await gateway.AskAsync<TaskEventAccepted>(command, ct);
            if (failure is not null) return failure;
            return TypedResults.Ok(new TaskEventResponse(a!.RunId, a.TaskId, a.State, a.RunStatus, heartbeatTimeoutS)
            {
                TraceParent = a.TraceParent,
                Attempt = a.Attempt,
                RetryAt = a.RetryAt,
                // The node's timeout: a run's own (deadlock.heartbeat_timeout_s) may only be longer, so this end is safe to renew by.
                LeaseExpiresAt = a.State == TaskState.RUNNING ? DateTimeOffset.UtcNow.AddSeconds(heartbeatTimeoutS) : null,
            });
        }).RequireAuthorization(Policies.ReportTasks)
            .Documented("tasks", "Report a task event (external workers)", 400, 408, 404, 409, 413, 415, 422, 500, 503)
            .Accepts<TaskEventRequest>("application/json");
        return app;
    }

    /// <summary>Exact names only: Enum.TryParse would also take "0", "task_started" and "TASK_HEARTBEAT, TASK_SUCCEEDED".</summary>
    internal static bool TryParseEvent(string? text, out TaskEventKind kind)
    {
        foreach (var k in Enum.GetValues<TaskEventKind>())
        {
            if (string.Equals(k.ToString(), text, StringComparison.Ordinal))
            {
                kind = k;
                return true;
            }
        }
        kind = default;
        return false;
    }

    private static (RunSpec? Spec, ProblemHttpResult? Error) ToSpec(SubmitRunRequest body, ClaimsPrincipal user, RetrySettings defaults)
    {
        if (body.Tasks is null || body.Tasks.Count == 0)
            return (null, Problems.BadRequest("tasks must contain at least one task", "tasks"));
        var tasks = ImmutableArray.CreateBuilder<TaskSpec>(body.Tasks.Count);
        for (var i = 0; i < body.Tasks.Count; i++)
        {
            if (body.Tasks[i] is not { } t) return (null, Problems.BadRequest("task must be an object", $"tasks[{i}]"));
            if (t.DependsOn?.Any(d => d is null) == true)
                return (null, Problems.BadRequest("depends_on must be a list of task ids", $"tasks[{i}].depends_on"));
            if (t.Resources is { Count: > ResourceLimits.MaxPerTask })
                return (null, Problems.Of(422, "Invalid workflow", $"a task may declare at most {ResourceLimits.MaxPerTask} resources", $"tasks[{i}].resources"));
            var resources = ImmutableArray.CreateBuilder<ResourceRequest>();
            for (var j = 0; j < (t.Resources?.Count ?? 0); j++)
            {
                if (t.Resources![j] is not { } r || r.Name is null || r.Count is null)
                    return (null, Problems.Of(422, "Invalid workflow", "a resource is an object with name and count", $"tasks[{i}].resources[{j}]"));
                resources.Add(new ResourceRequest(r.Name, r.Count.Value));
            }
            if (t.Retry?.NonRetryableErrors?.Any(e => e is null) == true)
                return (null, Problems.Of(422, "Invalid workflow", "non_retryable_errors must be a list of error types", $"tasks[{i}].retry.non_retryable_errors"));
            var d = defaults.Default;
            var retry = t.Retry is not { } rp ? null : new RetryPolicy(rp.MaxAttempts ?? d.MaxAttempts, rp.InitialIntervalS ?? d.InitialIntervalS,
                rp.BackoffCoefficient ?? d.BackoffCoefficient, rp.MaxIntervalS ?? d.MaxIntervalS)
            {
                NonRetryableErrors = rp.NonRetryableErrors is { Count: > 0 } types ? [.. types.Select(e => e!)] : default,
            };
            tasks.Add(new TaskSpec(t.TaskId ?? "", t.Type ?? "", t.Pool ?? TaskSpec.DefaultPool,
                t.Params is { ValueKind: JsonValueKind.Null or JsonValueKind.Undefined } ? null : t.Params,
                [.. (t.DependsOn ?? []).Select(d => d!)])
            {
                Resources = resources.Count == 0 ? default : resources.ToImmutable(),
                HoldUntil = t.HoldUntil,
                Retry = retry,
            });
        }
        var runId = string.IsNullOrEmpty(body.RunId) ? Identifiers.NewRunId() : body.RunId;
        var overrides = body.Deadlock is { } o ? new DeadlockOverrides(o.PendingStaleS, o.WorkflowStaleS, o.HeartbeatTimeoutS) : null;
        // A submitter's runs belong to its key's client, whatever the body says.
        var clientId = user.ClientScope() ?? body.ClientId ?? "";
        return (new RunSpec(runId, body.WorkflowName ?? "", clientId, tasks.MoveToImmutable(), overrides) { Priority = body.Priority }, null);
    }
}
