using Akka.Actor;
using Akka.Hosting;
using Deepline.Actors.Index;
using Deepline.Actors.Monitoring;
using Deepline.Actors.Resources;
using Deepline.Node.Configuration;
using Deepline.Node.Security;
using Microsoft.AspNetCore.Http.HttpResults;

namespace Deepline.Node.Http;

/// <summary>The seed's monitoring endpoints: /stats, the cancelled-runs list, and the dry-run scan.</summary>
public static class MonitorEndpoints
{
    public const int MaxListLimit = 500;

    /// <summary>The newest quarantined index events listed in /stats (all are counted).</summary>
    public const int QuarantineListed = 50;

    public static Task<MonitorStatus?> StatusAsync(IRequiredActor<DeadlockSupervisor> supervisor, CancellationToken ct) =>
        ActorQueries.AskOrNullAsync<DeadlockSupervisor, MonitorStatus>(supervisor, GetMonitorStatus.Instance, TimeSpan.FromSeconds(3), ct);

    public static DeadlockMonitorHealthResponse HealthBlock(DeeplineConfig config, MonitorStatus? status) => new(
        status?.Running ?? false,
        config.Deadlock.CheckIntervalS,
        config.Deadlock.PendingStaleS,
        config.Deadlock.CancelOnDeadlock,
        !string.IsNullOrEmpty(config.Deadlock.AlertWebhook),
        status?.LastScan);

    public static IEndpointRouteBuilder MapMonitorEndpoints(this IEndpointRouteBuilder app)
    {
        // Role operator or admin (the counters describe every client's runs).
        app.MapGet("/stats", async Task<Results<Ok<StatsResponse>, ProblemHttpResult>> (IRequiredActor<DeadlockSupervisor> supervisor, RunIndexStore index,
            IRequiredActor<Deepline.Actors.Queues.TaskQueues> queues, CancellationToken ct) =>
        {
            if (await StatusAsync(supervisor, ct) is not { } s)
                return Problems.Unavailable("the deadlock monitor did not answer; it may be starting or moving to another node");
            var stats = s.Stats;
            var (quarantinedTotal, quarantined) = await index.QuarantinedAsync(QuarantineListed, ct);
            return TypedResults.Ok(new StatsResponse(
                new RunIndexStatsResponse(s.ProjectionLag, quarantinedTotal,
                    [.. quarantined.Select(q => new QuarantinedEventResponse(q.RunId, q.SequenceNr, q.Offset, q.Error, q.At))]),
                new DeadlockMonitorStatsResponse(
                    stats.DeadlocksDetected,
                    stats.WorkflowsCancelled,
                    stats.AlertsSent,
                    Math.Round(stats.AvgDetectionTimeS, 3),
                    Math.Round(stats.AvgAlertResponseTimeS, 3),
                    stats.ScanErrors,
                    stats.AlertsFailed,
                    Enum.GetValues<Deepline.Domain.StuckReason>().ToDictionary(r => r.ToString(), r => stats.ByReason.GetValueOrDefault(r)),
                    s.OpenIncidents,
                    Enum.GetValues<IncidentOutcome>().ToDictionary(o => o.ToString(), o => stats.ClosedByOutcome.GetValueOrDefault(o)),
                    stats.FalsePositives,
                    stats.DeadlocksDetected == 0 ? 0 : Math.Round((double)stats.FalsePositives / stats.DeadlocksDetected, 4),
                    s.DeadLetters.Length,
                    stats.AlertsExpired,
                    // Newest first, a bounded page: the list itself can hold thousands during a long webhook outage.
                    [.. s.DeadLetters.Reverse().Take(QuarantineListed)
                        .Select(l => new DeadLetterResponse(l.Detection.RunId, l.Attempts, l.FirstFailedAt, l.NextAttemptAt))],
                    s.LastScan,
                    Math.Round(s.LastScanDurationMs, 3),
                    s.ProjectionLag)
                {
                    AlertsWithdrawn = stats.AlertsWithdrawn,
                    AlertResolvesPending = s.PendingResolves,
                })
            {
                Pools = await PoolEndpoints.QueuesAsync(await queues.GetAsync(ct), ct),
            });
        }).RequireAuthorization(Policies.Operate)
            .Documented("monitor", "The seed's statistics: run index and deadlock monitor counters", 503);

        // Role submitter (only its own client's runs, whatever client_id asks for), operator or admin.
        app.MapGet("/runs/cancelled", async Task<Results<Ok<CancelledRunResponse[]>, ProblemHttpResult>> (HttpRequest request,
            System.Security.Claims.ClaimsPrincipal user, RunIndexStore index, CancellationToken ct) =>
        {
            var q = request.Query;
            if (!TryInt(q["limit"], 50, out var limit) || limit is < 1 or > MaxListLimit)
                return Problems.BadRequest($"limit must be an integer from 1 to {MaxListLimit}", "limit");
            if (!TryInt(q["offset"], 0, out var offset) || offset < 0)
                return Problems.BadRequest("offset must be an integer >= 0", "offset");
            var client = user.ClientScope() ?? q["client_id"].ToString();
            var rows = await index.CancelledAsync(limit, offset, string.IsNullOrEmpty(client) ? null : client, ct);
            return TypedResults.Ok(rows.Select(r => new CancelledRunResponse(r.RunId, r.WorkflowName, r.Status.ToString(), r.CancelledAt,
                r.CancelReason, r.CancelledBy, r.TaskCount, r.ClientId, r.DeadlockReason)).ToArray());
        }).RequireAuthorization(Policies.ReadRuns)
            .Documented("cancellation", "Cancelled runs, newest first (the seed's list)", 400)
            .WithDescription($"Query: limit (1..{MaxListLimit}, default 50), offset (>= 0, default 0), client_id (ignored for a submitter: its own client).");

        // Role operator or admin: a dry run that reads every client's runs.
        app.MapPost("/deadlock/scan", async Task<Results<Ok<ScanResponse>, ProblemHttpResult>> (HttpRequest request,
            IRequiredActor<DeadlockSupervisor> supervisor, IRequiredActor<ResourceCoordinator> coordinator, CancellationToken ct) =>
        {
            var body = new ScanRequest(null, null, null, null);
            if (request.ContentLength is > 0)
            {
                var (parsed, error) = await HttpJson.ReadAsync<ScanRequest>(request, ct);
                if (error is not null) return error;
                body = parsed!;
            }
            foreach (var (name, value) in new[] { ("pending_stale_s", body.PendingStaleS), ("workflow_stale_s", body.WorkflowStaleS), ("heartbeat_timeout_s", body.HeartbeatTimeoutS) })
                if (value is < 1) return Problems.BadRequest($"{name} must be a positive number of seconds", name);
            if (body.Limit is < 1 or > MaxListLimit) return Problems.BadRequest($"limit must be from 1 to {MaxListLimit}", "limit");
            try
            {
                var actor = await supervisor.GetAsync(ct);
                var result = await actor.Ask<ManualScanResult>(
                    new ManualScan(body.PendingStaleS, body.WorkflowStaleS, body.HeartbeatTimeoutS, body.Limit ?? MaxListLimit), TimeSpan.FromSeconds(30), ct);
                var resources = await ResourceEndpoints.ScanAsync(coordinator, body.Limit ?? MaxListLimit, ct);
                return TypedResults.Ok(new ScanResponse(result.ScannedAt,
                    new ScanThresholdsResponse(result.Thresholds.PendingStaleS, result.Thresholds.WorkflowStaleS, result.Thresholds.HeartbeatTimeoutS),
                    result.Candidates,
                    [.. result.Flagged.Select(d => new FlaggedRunResponse(d.RunId, d.WorkflowName, d.Reason, d.Explanation, d.StuckSince, d.LastUpdate, d.StuckTasks))],
                    resources));
            }
            catch (AskTimeoutException)
            {
                return Problems.Unavailable("the deadlock monitor did not answer the scan in time");
            }
        }).RequireAuthorization(Policies.Operate)
            .Documented("monitor", "Dry-run deadlock scan with what-if thresholds: nothing is alerted or cancelled", 400, 408, 413, 415, 503)
            .Accepts<ScanRequest>(isOptional: true, "application/json");
        return app;
    }

    private static bool TryInt(Microsoft.Extensions.Primitives.StringValues raw, int fallback, out int value)
    {
        if (raw.Count == 0 || string.IsNullOrEmpty(raw[0])) { value = fallback; return true; }
        return int.TryParse(raw[0], System.Globalization.NumberStyles.Integer, System.Globalization.CultureInfo.InvariantCulture, out value);
    }
}
