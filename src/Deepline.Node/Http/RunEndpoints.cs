using System.Collections.Immutable;
using System.Text.Json;
using Deepline.Domain;

namespace Deepline.Node.Http;

public static class RunEndpoints
{
    public static IEndpointRouteBuilder MapRunEndpoints(this IEndpointRouteBuilder app, int heartbeatTimeoutS)
    {
        app.MapPost("/runs", async (HttpRequest request, RunsGateway gateway, CancellationToken ct) =>
        {
            var (body, error) = await HttpJson.ReadAsync<SubmitRunRequest>(request, ct);
            if (error is not null) return error;
            var (spec, invalid) = ToSpec(body!);
            if (invalid is not null) return invalid;
            var (reply, failure) = await gateway.AskAsync(new SubmitRun(spec!), ct);
            if (failure is not null) return failure;
            var s = ((RunReply)reply!).State;
            return Results.Created($"/runs/{s.RunId}",
                new RunCreatedResponse(s.RunId, s.WorkflowName, s.ClientId, s.Status, s.CreatedAt, s.Tasks.Count));
        });

        app.MapGet("/runs/{runId}", async (string runId, RunsGateway gateway, CancellationToken ct) =>
        {
            if (!Identifiers.IsValid(runId)) return Problems.BadRequest(Identifiers.Describe("run_id"), "run_id");
            var (reply, failure) = await gateway.AskAsync(new GetRun(runId), ct);
            return failure ?? Results.Ok(((RunReply)reply!).State.ToResponse());
        });

        app.MapPost("/runs/{runId}/tasks/{taskId}/events", async (string runId, string taskId, HttpRequest request, RunsGateway gateway, CancellationToken ct) =>
        {
            if (!Identifiers.IsValid(runId)) return Problems.BadRequest(Identifiers.Describe("run_id"), "run_id");
            if (!Identifiers.IsValid(taskId)) return Problems.BadRequest(Identifiers.Describe("task_id"), "task_id");
            var (body, error) = await HttpJson.ReadAsync<TaskEventRequest>(request, ct);
            if (error is not null) return error;
            if (!Enum.TryParse<TaskEventKind>(body!.Event, ignoreCase: false, out var kind) || !Enum.IsDefined(kind))
                return Problems.BadRequest($"event must be one of {string.Join(", ", Enum.GetNames<TaskEventKind>())}", "event");
            if (kind == TaskEventKind.TASK_STARTED && string.IsNullOrWhiteSpace(body.WorkerId))
                return Problems.BadRequest("worker_id is required to claim a task with TASK_STARTED", "worker_id");
            var (reply, failure) = await gateway.AskAsync(new ReportTaskEvent(runId, taskId, kind, body.WorkerId, body.Result, body.Error), ct);
            if (failure is not null) return failure;
            var a = (TaskEventAccepted)reply!;
            return Results.Ok(new TaskEventResponse(a.RunId, a.TaskId, a.State, a.RunStatus, heartbeatTimeoutS));
        });
        return app;
    }

    private static (RunSpec? Spec, IResult? Error) ToSpec(SubmitRunRequest body)
    {
        if (body.Tasks is null || body.Tasks.Count == 0)
            return (null, Problems.BadRequest("tasks must contain at least one task", "tasks"));
        var tasks = ImmutableArray.CreateBuilder<TaskSpec>(body.Tasks.Count);
        for (var i = 0; i < body.Tasks.Count; i++)
        {
            if (body.Tasks[i] is not { } t) return (null, Problems.BadRequest("task must be an object", $"tasks[{i}]"));
            if (t.DependsOn?.Any(d => d is null) == true)
                return (null, Problems.BadRequest("depends_on must be a list of task ids", $"tasks[{i}].depends_on"));
            tasks.Add(new TaskSpec(t.TaskId ?? "", t.Type ?? "", t.Pool ?? TaskSpec.DefaultPool,
                t.Params is { ValueKind: JsonValueKind.Null or JsonValueKind.Undefined } ? null : t.Params,
                [.. (t.DependsOn ?? []).Select(d => d!)]));
        }
        var runId = string.IsNullOrEmpty(body.RunId) ? Identifiers.NewRunId() : body.RunId;
        var overrides = body.Deadlock is { } o ? new DeadlockOverrides(o.PendingStaleS, o.WorkflowStaleS, o.HeartbeatTimeoutS) : null;
        return (new RunSpec(runId, body.WorkflowName ?? "", body.ClientId ?? "", tasks.MoveToImmutable(), overrides), null);
    }
}
