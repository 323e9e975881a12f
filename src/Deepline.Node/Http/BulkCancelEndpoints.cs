using System.Collections.Immutable;
using System.Globalization;
using System.Security.Claims;
using Akka.Actor;
using Akka.Hosting;
using Deepline.Actors.Index;
using Deepline.Actors.Operations;
using Deepline.Domain;
using Deepline.Node.Security;
using Microsoft.AspNetCore.Http.HttpResults;

namespace Deepline.Node.Http;

/// <summary>Cancel many runs at once: a dry run counts them, a real one is a journalled operation that survives node loss.</summary>
public static class BulkCancelEndpoints
{
    public const int MaxRunIds = 500; // one IN list of the run index query
    public const int MaxWorkflowName = 200;
    public const int SampleSize = 20;
    public const string DefaultReason = "bulk cancel";
    private static readonly DateTimeOffset Earliest = new(2000, 1, 1, 0, 0, 0, TimeSpan.Zero);
    private static readonly DateTimeOffset Latest = new(2100, 1, 1, 0, 0, 0, TimeSpan.Zero);
    private static readonly TimeSpan AskTimeout = TimeSpan.FromSeconds(10);

    public static IEndpointRouteBuilder MapBulkCancelEndpoints(this IEndpointRouteBuilder app)
    {
        // Role submitter (its own client's runs only), operator or admin: the same callers as a single cancel.
        app.MapPost("/runs/cancel", async Task<Results<Ok<BulkCancelDryRunResponse>, Accepted<OperationResponse>, ProblemHttpResult>> (HttpRequest request,
            ClaimsPrincipal user, RunIndexStore index, IRequiredActor<BulkCancels> operations, CancellationToken ct) =>
        {
            var (body, error) = await HttpJson.ReadAsync<BulkCancelRequest>(request, ct);
            if (error is not null) return error;
            var (filter, problem) = Validate(body!, user.ClientScope());
            if (problem is not null) return problem;
            var reason = string.IsNullOrWhiteSpace(body!.Reason) ? DefaultReason : Identifiers.StripControl(body.Reason.Trim());
            if (reason.Length > CancelEndpoints.MaxReasonLength)
                return Problems.BadRequest($"reason is longer than {CancelEndpoints.MaxReasonLength} characters", "reason");

            var now = DateTimeOffset.UtcNow;
            var (matched, sample) = await index.CountOpenMatchesAsync(filter!, now, SampleSize, ct);
            if (body.DryRun == true) return TypedResults.Ok(new BulkCancelDryRunResponse(matched, sample));
            var accepted = await ActorQueries.AskOrNullAsync<BulkCancels, BulkCancelAccepted>(operations,
                new StartBulkCancel(filter!, reason, user.Name(), user.ClientScope(), matched), AskTimeout, ct);
            if (accepted is null) return Problems.Unavailable("the bulk operations did not answer in time; asking again is safe: a run cancelled already is only counted as skipped");
            return TypedResults.Accepted($"/operations/{accepted.Operation.OperationId}", OperationResponse.Of(accepted.Operation));
        }).RequireAuthorization(Policies.CancelRuns)
            .Documented("cancellation", "Cancel every RUNNING run a filter matches: dry_run counts them, else a journalled operation (202)", 400, 403, 408, 413, 415, 422, 503)
            .Accepts<BulkCancelRequest>("application/json");

        // Role submitter (its own client's operations), operator or admin.
        app.MapGet("/operations/{operationId}", async Task<Results<Ok<OperationResponse>, ProblemHttpResult>> (string operationId, ClaimsPrincipal user,
            IRequiredActor<BulkCancels> operations, CancellationToken ct) =>
        {
            if (!Identifiers.IsValid(operationId)) return Problems.BadRequest(Identifiers.Describe("operation_id"), "operation_id");
            var reply = await ActorQueries.AskOrNullAsync<BulkCancels, BulkOperationReply>(operations, new GetBulkOperation(operationId), AskTimeout, ct);
            if (reply is null) return Problems.Unavailable("the bulk operations did not answer in time");
            var scope = user.ClientScope();
            // Another client's operation is answered exactly as one that does not exist.
            if (reply.Operation is not { } op || (scope is not null && op.ClientScope != scope))
                return Problems.Of(404, "Not found", $"operation '{operationId}' not found");
            return TypedResults.Ok(OperationResponse.Of(op));
        }).RequireAuthorization(Policies.CancelRuns)
            .Documented("cancellation", "A bulk operation's progress: state, matched, cancelled, skipped, failed", 400, 404, 503);
        return app;
    }

    /// <summary>The filter the request names, within the caller's client for a submitter, or the problem with it.</summary>
    public static (RunFilter? Filter, ProblemHttpResult? Problem) Validate(BulkCancelRequest body, string? clientScope)
    {
        var f = body.Filter;
        if (f is null) return (null, Problems.BadRequest("filter is required: {\"filter\": {\"client_id\", \"workflow_name\", \"created_before\", \"created_after\", \"run_ids\"}}", "filter"));
        if (f.Status is not null && f.Status != nameof(RunStatus.RUNNING))
            return (null, Problems.Of(422, "Invalid filter", "filter.status can only be RUNNING: a CANCELLING run is being cancelled already and a finished one cannot be", "filter.status"));
        var client = f.ClientId?.Trim();
        if (client is { Length: 0 } || client is not null && !Identifiers.IsValid(client))
            return (null, Problems.BadRequest(Identifiers.Describe("filter.client_id"), "filter.client_id"));
        if (clientScope is not null)
        {
            if (client is not null && client != clientScope)
                return (null, Problems.Of(403, "Forbidden", $"this key cancels only its own client's runs (client_id '{clientScope}')", "filter.client_id"));
            client = clientScope;
        }
        var workflow = f.WorkflowName;
        if (workflow is not null && (workflow.Length is 0 or > MaxWorkflowName || workflow.Any(char.IsControl)))
            return (null, Problems.BadRequest($"filter.workflow_name must be 1 to {MaxWorkflowName} printable characters", "filter.workflow_name"));
        var (after, afterProblem) = Date(f.CreatedAfter, "filter.created_after");
        if (afterProblem is not null) return (null, afterProblem);
        var (before, beforeProblem) = Date(f.CreatedBefore, "filter.created_before");
        if (beforeProblem is not null) return (null, beforeProblem);
        if (after is { } a && before is { } b && a >= b)
            return (null, Problems.Of(422, "Invalid filter", "filter.created_after must be earlier than filter.created_before: nothing can match", "filter.created_after"));
        var ids = ImmutableArray<string>.Empty;
        if (f.RunIds is { } list)
        {
            if (list.Count is 0 or > MaxRunIds)
                return (null, Problems.BadRequest($"filter.run_ids must hold 1 to {MaxRunIds} run ids", "filter.run_ids"));
            for (var i = 0; i < list.Count; i++)
                if (list[i] is not { } id || !Identifiers.IsValid(id))
                    return (null, Problems.BadRequest(Identifiers.Describe($"filter.run_ids[{i}]"), $"filter.run_ids[{i}]"));
            ids = [.. list.Distinct(StringComparer.Ordinal)!];
        }
        var filter = new RunFilter(client, workflow, after, before, ids);
        if (filter.MatchesEverything && body.DryRun != true && body.Confirm != true)
            return (null, Problems.BadRequest("this filter matches every RUNNING run of every client; pass \"confirm\": true to cancel them all (or \"dry_run\": true to count them)", "confirm"));
        return (filter, null);
    }

    private static (DateTimeOffset? Value, ProblemHttpResult? Problem) Date(string? text, string field)
    {
        if (text is null) return (null, null);
        if (!DateTimeOffset.TryParse(text, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal | DateTimeStyles.AdjustToUniversal, out var value))
            return (null, Problems.BadRequest($"{field} must be an ISO-8601 time, e.g. 2026-12-07T10:00:00Z", field));
        if (value < Earliest || value > Latest)
            return (null, Problems.Of(422, "Invalid filter", $"{field} must be between 2000 and 2100", field));
        return (value, null);
    }
}
