using Deepline.Node.Configuration;
using System.Security.Claims;
using Deepline.Domain;
using Deepline.Node.Security;
using Microsoft.AspNetCore.Http.HttpResults;

namespace Deepline.Node.Http;

/// <summary>The seed's cancellation API. The cancel record is journalled before any of these answers.</summary>
public static class CancelEndpoints
{
    public const int MaxReasonLength = 1000;
    public const string DefaultReason = "user requested cancellation";

    public static IEndpointRouteBuilder MapCancelEndpoints(this IEndpointRouteBuilder app)
    {
        // Role submitter (own client's runs), operator or admin; cancelled_by is the caller's key name.
        app.MapPut("/runs/{runId}/cancel", async Task<Results<Ok<CancelResponse>, ProblemHttpResult>> (string runId, HttpRequest request,
            ClaimsPrincipal user, RunsGateway gateway, CancellationToken ct) =>
        {
            if (!Identifiers.IsValid(runId)) return Problems.BadRequest(Identifiers.Describe("run_id"), "run_id");
            CancelRequest body = new(null, null, null);
            if (request.ContentLength is > 0 || request.Headers.TransferEncoding.Count > 0)
            {
                var (parsed, error) = await HttpJson.ReadAsync<CancelRequest>(request, ct);
                if (error is not null) return error;
                body = parsed!;
            }
            if (body.CancelledBy is not null)
                return Problems.BadRequest("cancelled_by is not accepted: the node records the name of the caller's key (\"api\" on a node without keys)", "cancelled_by");
            var reason = string.IsNullOrWhiteSpace(body.Reason) ? DefaultReason : Identifiers.StripControl(body.Reason.Trim());
            if (reason.Length > MaxReasonLength)
                return Problems.BadRequest($"reason is longer than {MaxReasonLength} characters", "reason");
            // The record says who cancelled: the caller's key, never a name the body claims (e.g. "system").
            var cancel = new CancelRun(runId, reason, user.Name(), body.Force ?? false) { ClientScope = user.ClientScope() };
            var (reply, failure) = await gateway.AskAsync<CancelReply>(cancel, ct);
            return failure is not null ? failure : TypedResults.Ok(reply!.ToCancelResponse());
        }).RequireAuthorization(Policies.CancelRuns)
            .Documented("cancellation", "Cancel a run (the seed's API); the body is optional", 400, 408, 404, 409, 413, 415, 500, 503)
            .Accepts<CancelRequest>(isOptional: true, "application/json");

        // Role submitter (own client's runs), operator or admin.
        app.MapGet("/runs/{runId}/cancel", async Task<Results<Ok<CancelStatusResponse>, ProblemHttpResult>> (string runId, ClaimsPrincipal user,
            RunsGateway gateway, CancellationToken ct) =>
        {
            if (!Identifiers.IsValid(runId)) return Problems.BadRequest(Identifiers.Describe("run_id"), "run_id");
            var (reply, failure) = await gateway.AskAsync<RunReply>(new GetRun(runId) { ClientScope = user.ClientScope() }, ct);
            return failure is not null ? failure : TypedResults.Ok(reply!.State.ToCancelStatus());
        }).RequireAuthorization(Policies.ReadRuns)
            .Documented("cancellation", "A run's cancellation status (the seed's API)", 400, 404, 500, 503);

        // Role submitter (own client's runs), operator or admin: who may cancel a run may re-run it.
        app.MapPost("/runs/{runId}/retry", async Task<Results<Ok<RunResponse>, ProblemHttpResult>> (string runId, ClaimsPrincipal user,
            RunsGateway gateway, DeeplineConfig config, CancellationToken ct) =>
        {
            if (!Identifiers.IsValid(runId)) return Problems.BadRequest(Identifiers.Describe("run_id"), "run_id");
            var (reply, failure) = await gateway.AskAsync<RunReply>(new RetryRun(runId, user.Name()) { ClientScope = user.ClientScope() }, ct);
            return failure is not null ? failure : TypedResults.Ok(reply!.State.ToResponse(config.Retry.ToSettings()));
        }).RequireAuthorization(Policies.CancelRuns)
            .Documented("runs", "Re-run a FAILED run's failed, cancelled and skipped tasks", 400, 404, 409, 500, 503);

        // Role admin: finalise a CANCELLING run now.
        app.MapDelete("/runs/{runId}/cancel", async Task<Results<NoContent, ProblemHttpResult>> (string runId, ClaimsPrincipal user, RunsGateway gateway,
            CancellationToken ct) =>
        {
            if (!Identifiers.IsValid(runId)) return Problems.BadRequest(Identifiers.Describe("run_id"), "run_id");
            var (_, failure) = await gateway.AskAsync<RunReply>(new FinaliseCancel(runId, user.Name()), ct);
            return failure is not null ? failure : TypedResults.NoContent();
        }).WithName("ForceCompleteCancel").RequireAuthorization(Policies.Admin)
            .Documented("cancellation", "Force complete a cancellation (admin, the seed's API)", 400, 404, 409, 500, 503);
        return app;
    }
}
