using Deepline.Domain;

namespace Deepline.Node.Http;

/// <summary>The seed's cancellation API. The cancel record is journalled before any of these answers.</summary>
public static class CancelEndpoints
{
    public const int MaxReasonLength = 1000;
    public const string DefaultReason = "user requested cancellation";

    public static IEndpointRouteBuilder MapCancelEndpoints(this IEndpointRouteBuilder app)
    {
        app.MapPut("/runs/{runId}/cancel", async (string runId, HttpRequest request, RunsGateway gateway, CancellationToken ct) =>
        {
            if (!Identifiers.IsValid(runId)) return Problems.BadRequest(Identifiers.Describe("run_id"), "run_id");
            CancelRequest body = new(null, null, null);
            if (request.ContentLength is > 0 || request.Headers.TransferEncoding.Count > 0)
            {
                var (parsed, error) = await HttpJson.ReadAsync<CancelRequest>(request, ct);
                if (error is not null) return error;
                body = parsed!;
            }
            var reason = string.IsNullOrWhiteSpace(body.Reason) ? DefaultReason : body.Reason.Trim();
            if (reason.Length > MaxReasonLength)
                return Problems.BadRequest($"reason is longer than {MaxReasonLength} characters", "reason");
            var by = string.IsNullOrWhiteSpace(body.CancelledBy) ? "api" : body.CancelledBy.Trim();
            var (reply, failure) = await gateway.AskAsync(new CancelRun(runId, reason, by, body.Force ?? false), ct);
            return failure ?? Results.Ok(((CancelReply)reply!).ToCancelResponse());
        });

        app.MapGet("/runs/{runId}/cancel", async (string runId, RunsGateway gateway, CancellationToken ct) =>
        {
            if (!Identifiers.IsValid(runId)) return Problems.BadRequest(Identifiers.Describe("run_id"), "run_id");
            var (reply, failure) = await gateway.AskAsync(new GetRun(runId), ct);
            return failure ?? Results.Ok(((RunReply)reply!).State.ToCancelStatus());
        });

        // Admin: finalise a CANCELLING run now (X-Deepline-Admin-Key).
        app.MapDelete("/runs/{runId}/cancel", async (string runId, RunsGateway gateway, CancellationToken ct) =>
        {
            if (!Identifiers.IsValid(runId)) return Problems.BadRequest(Identifiers.Describe("run_id"), "run_id");
            var (_, failure) = await gateway.AskAsync(new FinaliseCancel(runId, "admin"), ct);
            return failure ?? Results.NoContent();
        }).WithName("ForceCompleteCancel").RequireAdmin();
        return app;
    }
}
