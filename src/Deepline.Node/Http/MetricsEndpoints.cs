using System.Globalization;
using System.Text;
using Akka.Hosting;
using Deepline.Actors.Monitoring;
using Deepline.Domain;

namespace Deepline.Node.Http;

/// <summary>
/// Prometheus text exposition of the monitor's counters. Rendered from the supervisor's journalled stats at scrape
/// time, so the numbers survive restarts and failovers exactly like /stats (names follow the seed's dashboards).
/// </summary>
public static class MetricsEndpoints
{
    public static IEndpointRouteBuilder MapMetricsEndpoints(this IEndpointRouteBuilder app)
    {
        app.MapGet("/metrics", async (IRequiredActor<DeadlockSupervisor> supervisor, Deepline.Actors.Index.RunIndexStore index, CancellationToken ct) =>
        {
            var status = await MonitorEndpoints.StatusAsync(supervisor, ct);
            long? quarantined = null;
            try { (quarantined, _) = await index.QuarantinedAsync(0, ct); }
            catch (System.Data.Common.DbException) { /* tables not created yet: the metric is left out, not reported as 0 */ }
            return Results.Text(Render(status) + RenderIndex(quarantined), "text/plain; version=0.0.4; charset=utf-8");
        }).RequireAuthorization(Deepline.Node.Security.Policies.Operate); // a Prometheus job sends an operator key as its bearer token
        return app;
    }

    public static string RenderIndex(long? quarantined) => quarantined is not { } q ? "" :
        "# HELP run_index_quarantined_events_total Journal events the run index could not read or apply and set aside.\n" +
        "# TYPE run_index_quarantined_events_total counter\n" +
        "run_index_quarantined_events_total " + q.ToString(CultureInfo.InvariantCulture) + "\n";

    public static string Render(MonitorStatus? status)
    {
        var sb = new StringBuilder();
        void Metric(string name, string type, string help, params (string Labels, double Value)[] samples)
        {
            sb.Append("# HELP ").Append(name).Append(' ').Append(help).Append('\n');
            sb.Append("# TYPE ").Append(name).Append(' ').Append(type).Append('\n');
            foreach (var (labels, value) in samples)
                sb.Append(name).Append(labels).Append(' ').Append(value.ToString("R", CultureInfo.InvariantCulture)).Append('\n');
        }

        Metric("deadlock_monitor_up", "gauge", "1 when the deadlock supervisor answered this scrape.", ("", status is null ? 0 : 1));
        if (status is null) return sb.ToString();
        var s = status.Stats;
        Metric("deadlock_detected_total", "counter", "Stuck runs detected (one incident per run), by reason.",
            [.. Enum.GetValues<StuckReason>().Select(r => ($"{{reason=\"{r}\"}}", (double)s.ByReason.GetValueOrDefault(r)))]);
        Metric("workflows_cancelled_total", "counter", "Runs cancelled by the deadlock monitor.", ("", s.WorkflowsCancelled));
        Metric("deadlock_alerts_sent_total", "counter", "Deadlock alerts delivered to the webhook.", ("", s.AlertsSent));
        Metric("deadlock_alerts_failed_total", "counter", "Deadlock alerts that could not be delivered.", ("", s.AlertsFailed));
        Metric("deadlock_scan_errors_total", "counter", "Run index scans that failed.", ("", s.ScanErrors));
        sb.Append("# HELP deadlock_detection_duration_seconds Time from a run becoming stuck to its detection.\n")
            .Append("# TYPE deadlock_detection_duration_seconds summary\n")
            .Append("deadlock_detection_duration_seconds_sum ").Append(s.TotalDetectionSeconds.ToString("R", CultureInfo.InvariantCulture)).Append('\n')
            .Append("deadlock_detection_duration_seconds_count ").Append(s.DeadlocksDetected.ToString(CultureInfo.InvariantCulture)).Append('\n');
        Metric("deadlock_last_scan_duration_seconds", "gauge", "Duration of the last run index scan.", ("", status.LastScanDurationMs / 1000));
        Metric("deadlock_open_incidents", "gauge", "Incidents whose cancel is not confirmed yet.", ("", status.OpenIncidents));
        Metric("run_index_projection_lag", "gauge", "Journal events not yet applied to the run index.", ("", status.ProjectionLag));
        return sb.ToString();
    }
}
