using Akka.Actor;
using Akka.Hosting;
using Deepline.Actors.Index;
using Deepline.Actors.Monitoring;
using Deepline.Actors.Resources;
using Deepline.Node.Configuration;
using Deepline.Node.Security;

namespace Deepline.Node.Http;

public sealed record CancelledRunResponse(
    string RunId, string WorkflowName, string Status, DateTimeOffset? CancelledAt, string? CancellationReason, string? CancelledBy, int TaskCount, string ClientId,
    string? DeadlockReason);

public sealed record ScanRequest(int? PendingStaleS, int? WorkflowStaleS, int? HeartbeatTimeoutS, int? Limit);

/// <summary>The seed's monitoring endpoints: /stats, the cancelled-runs list, and the dry-run scan.</summary>
public static class MonitorEndpoints
{
    public const int MaxListLimit = 500;

    /// <summary>The newest quarantined index events listed in /stats (all are counted).</summary>
    public const int QuarantineListed = 50;

    public static Task<MonitorStatus?> StatusAsync(IRequiredActor<DeadlockSupervisor> supervisor, CancellationToken ct) =>
        ActorQueries.AskOrNullAsync<DeadlockSupervisor, MonitorStatus>(supervisor, GetMonitorStatus.Instance, TimeSpan.FromSeconds(3), ct);

    public static Dictionary<string, object?> HealthBlock(DeeplineConfig config, MonitorStatus? status) => new()
    {
        ["running"] = status?.Running ?? false,
        ["check_interval_s"] = config.Deadlock.CheckIntervalS,
        ["pending_stale_s"] = config.Deadlock.PendingStaleS,
        ["cancel_on_deadlock"] = config.Deadlock.CancelOnDeadlock,
        ["alert_webhook_configured"] = !string.IsNullOrEmpty(config.Deadlock.AlertWebhook),
        ["last_scan"] = status?.LastScan,
    };

    public static IEndpointRouteBuilder MapMonitorEndpoints(this IEndpointRouteBuilder app)
    {
        // Role operator or admin (the counters describe every client's runs).
        app.MapGet("/stats", async (IRequiredActor<DeadlockSupervisor> supervisor, RunIndexStore index, CancellationToken ct) =>
        {
            if (await StatusAsync(supervisor, ct) is not { } s)
                return Problems.Unavailable("the deadlock monitor did not answer; it may be starting or moving to another node");
            var stats = s.Stats;
            var (quarantinedTotal, quarantined) = await index.QuarantinedAsync(QuarantineListed, ct);
            return Results.Ok(new Dictionary<string, object?>
            {
                ["run_index"] = new Dictionary<string, object?>
                {
                    ["projection_lag"] = s.ProjectionLag,
                    ["quarantined_total"] = quarantinedTotal,
                    ["quarantined"] = quarantined.Select(q => new
                    {
                        run_id = q.RunId, sequence_nr = q.SequenceNr, offset = q.Offset, error = q.Error, quarantined_at = q.At,
                    }).ToArray(),
                },
                ["deadlock_monitor"] = new Dictionary<string, object?>
                {
                    ["deadlocks_detected"] = stats.DeadlocksDetected,
                    ["workflows_cancelled"] = stats.WorkflowsCancelled,
                    ["alerts_sent"] = stats.AlertsSent,
                    ["avg_detection_time_s"] = Math.Round(stats.AvgDetectionTimeS, 3),
                    ["avg_alert_response_time_s"] = Math.Round(stats.AvgAlertResponseTimeS, 3),
                    ["scan_errors"] = stats.ScanErrors,
                    ["alerts_failed"] = stats.AlertsFailed,
                    ["by_reason"] = Enum.GetValues<Deepline.Domain.StuckReason>().ToDictionary(r => r.ToString(), r => stats.ByReason.GetValueOrDefault(r)),
                    ["open_incidents"] = s.OpenIncidents,
                    ["incidents_closed"] = Enum.GetValues<IncidentOutcome>().ToDictionary(o => o.ToString(), o => stats.ClosedByOutcome.GetValueOrDefault(o)),
                    ["false_positives"] = stats.FalsePositives,
                    ["false_positive_rate"] = stats.DeadlocksDetected == 0 ? 0 : Math.Round((double)stats.FalsePositives / stats.DeadlocksDetected, 4),
                    ["alerts_dead_letter"] = s.DeadLetters.Length,
                    ["alerts_expired"] = stats.AlertsExpired,
                    // Newest first, a bounded page: the list itself can hold thousands during a long webhook outage.
                    ["dead_letters"] = s.DeadLetters.Reverse().Take(QuarantineListed).Select(l => new
                    {
                        run_id = l.Detection.RunId, attempts = l.Attempts, first_failed_at = l.FirstFailedAt, next_attempt_at = l.NextAttemptAt,
                    }).ToArray(),
                    ["last_scan"] = s.LastScan,
                    ["last_scan_duration_ms"] = Math.Round(s.LastScanDurationMs, 3),
                    ["projection_lag"] = s.ProjectionLag,
                },
            });
        }).RequireAuthorization(Policies.Operate);

        // Role submitter (only its own client's runs, whatever client_id asks for), operator or admin.
        app.MapGet("/runs/cancelled", async (HttpRequest request, System.Security.Claims.ClaimsPrincipal user, RunIndexStore index, CancellationToken ct) =>
        {
            var q = request.Query;
            if (!TryInt(q["limit"], 50, out var limit) || limit is < 1 or > MaxListLimit)
                return Problems.BadRequest($"limit must be an integer from 1 to {MaxListLimit}", "limit");
            if (!TryInt(q["offset"], 0, out var offset) || offset < 0)
                return Problems.BadRequest("offset must be an integer >= 0", "offset");
            var client = user.ClientScope() ?? q["client_id"].ToString();
            var rows = await index.CancelledAsync(limit, offset, string.IsNullOrEmpty(client) ? null : client, ct);
            return Results.Ok(rows.Select(r => new CancelledRunResponse(r.RunId, r.WorkflowName, r.Status.ToString(), r.CancelledAt,
                r.CancelReason, r.CancelledBy, r.TaskCount, r.ClientId, r.DeadlockReason)));
        }).RequireAuthorization(Policies.ReadRuns);

        // Role operator or admin: a dry run that reads every client's runs.
        app.MapPost("/deadlock/scan", async (HttpRequest request, IRequiredActor<DeadlockSupervisor> supervisor, IRequiredActor<ResourceCoordinator> coordinator,
            CancellationToken ct) =>
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
                return Results.Ok(new
                {
                    scanned_at = result.ScannedAt,
                    thresholds = new
                    {
                        pending_stale_s = result.Thresholds.PendingStaleS,
                        workflow_stale_s = result.Thresholds.WorkflowStaleS,
                        heartbeat_timeout_s = result.Thresholds.HeartbeatTimeoutS,
                    },
                    candidates = result.Candidates,
                    flagged = result.Flagged.Select(d => new
                    {
                        run_id = d.RunId,
                        workflow_name = d.WorkflowName,
                        reason = d.Reason.ToString(),
                        explanation = d.Explanation,
                        stuck_since = d.StuckSince,
                        last_update = d.LastUpdate,
                        stuck_tasks = d.StuckTasks,
                    }),
                    // Deadlocks between runs over resources, each with the victim the policy would cancel (null: coordinator silent).
                    resource_deadlocks = resources,
                });
            }
            catch (AskTimeoutException)
            {
                return Problems.Unavailable("the deadlock monitor did not answer the scan in time");
            }
        }).RequireAuthorization(Policies.Operate);
        return app;
    }

    private static bool TryInt(Microsoft.Extensions.Primitives.StringValues raw, int fallback, out int value)
    {
        if (raw.Count == 0 || string.IsNullOrEmpty(raw[0])) { value = fallback; return true; }
        return int.TryParse(raw[0], System.Globalization.NumberStyles.Integer, System.Globalization.CultureInfo.InvariantCulture, out value);
    }
}
