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
        app.MapGet("/metrics", async (IRequiredActor<DeadlockSupervisor> supervisor, Deepline.Actors.Index.RunIndexStore index,
            Akka.Actor.ActorSystem system, CancellationToken ct) =>
        {
            var status = await MonitorEndpoints.StatusAsync(supervisor, ct);
            long? quarantined = null;
            try { (quarantined, _) = await index.QuarantinedAsync(0, ct); }
            catch (System.Data.Common.DbException) { /* tables not created yet: the metric is left out, not reported as 0 */ }
            return Results.Text(Render(status) + RenderIndex(quarantined) + RenderCancellations(CancellationCounters.For(system)) + RenderJournal(),
                "text/plain; version=0.0.4; charset=utf-8");
        }).RequireAuthorization(Deepline.Node.Security.Policies.Operate); // a Prometheus job sends an operator key as its bearer token
        return app;
    }

    /// <summary>This node's counters (its run entities'): sum() over the nodes gives the cluster's.</summary>
    public static string RenderCancellations(CancellationCounters counters)
    {
        var sb = new StringBuilder();
        sb.Append("# HELP task_cancelled_total Tasks that ended CANCELLED on this node's runs, by cause (deadlock, user, admin, worker).\n")
            .Append("# TYPE task_cancelled_total counter\n");
        foreach (var cause in Enum.GetValues<TaskCancelCause>())
            sb.Append("task_cancelled_total{cause=\"").Append(cause).Append("\"} ").Append(counters.Tasks(cause).ToString(CultureInfo.InvariantCulture)).Append('\n');
        sb.Append("# HELP run_cancellations_total Cancellations of this node's runs that reached CANCELLED, by outcome (completed, forced, timed_out).\n")
            .Append("# TYPE run_cancellations_total counter\n");
        foreach (var outcome in Enum.GetValues<CancelOutcome>())
            sb.Append("run_cancellations_total{outcome=\"").Append(outcome).Append("\"} ").Append(counters.Runs(outcome).ToString(CultureInfo.InvariantCulture)).Append('\n');
        return sb.ToString();
    }

    /// <summary>
    /// This process's journal writer: rate(rows) / rate(commits) is how many events share one COMMIT and fsync; near 1
    /// under load means writes are not being grouped.
    /// </summary>
    public static string RenderJournal()
    {
        var (commits, rows) = (Deepline.Actors.Hosting.GroupCommitJournal.Commits, Deepline.Actors.Hosting.GroupCommitJournal.Rows);
        if (commits == 0) return "";
        return "# HELP journal_commits_total Transactions committed by this node's journal writer (each one fsync).\n" +
               "# TYPE journal_commits_total counter\n" +
               "journal_commits_total " + commits.ToString(CultureInfo.InvariantCulture) + "\n" +
               "# HELP journal_rows_total Journal rows (events) written by this node's journal writer.\n" +
               "# TYPE journal_rows_total counter\n" +
               "journal_rows_total " + rows.ToString(CultureInfo.InvariantCulture) + "\n";
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

        void Summary(string name, string help, double sum, long count) =>
            sb.Append("# HELP ").Append(name).Append(' ').Append(help).Append('\n')
                .Append("# TYPE ").Append(name).Append(" summary\n")
                .Append(name).Append("_sum ").Append(sum.ToString("R", CultureInfo.InvariantCulture)).Append('\n')
                .Append(name).Append("_count ").Append(count.ToString(CultureInfo.InvariantCulture)).Append('\n');

        Metric("deadlock_monitor_up", "gauge", "1 when the deadlock supervisor answered this scrape.", ("", status is null ? 0 : 1));
        if (status is null) return sb.ToString();
        var s = status.Stats;
        Metric("deadlock_detected_total", "counter", "Stuck runs detected (one incident per run), by reason.",
            [.. Enum.GetValues<StuckReason>().Select(r => ($"{{reason=\"{r}\"}}", (double)s.ByReason.GetValueOrDefault(r)))]);
        Metric("workflows_cancelled_total", "counter", "Runs cancelled by the deadlock monitor.", ("", s.WorkflowsCancelled));
        Metric("deadlock_alerts_sent_total", "counter", "Deadlock alerts delivered to the webhook.", ("", s.AlertsSent));
        Metric("deadlock_alerts_failed_total", "counter", "Deadlock alerts that could not be delivered.", ("", s.AlertsFailed));
        Metric("deadlock_scan_errors_total", "counter", "Run index scans that failed.", ("", s.ScanErrors));
        // The seed's dashboard queries avg(deadlock_detection_duration_seconds): a plain sample is needed for that, so
        // the mean is a gauge, and the summary for windowed means (rate of _sum over rate of _count) has its own name.
        Metric("deadlock_detection_duration_seconds", "gauge", "Mean time from a run becoming stuck to its detection, over every incident.",
            ("", s.AvgDetectionTimeS));
        Summary("deadlock_detection_seconds", "Time from a run becoming stuck to its detection.", s.TotalDetectionSeconds, s.DeadlocksDetected);
        Summary("deadlock_alert_response_seconds", "Time from a detection to its alert being delivered (the seed's alert response time).",
            s.TotalAlertResponseSeconds, s.AlertsSent);
        Metric("deadlock_last_scan_duration_seconds", "gauge", "Duration of the last run index scan.", ("", status.LastScanDurationMs / 1000));
        Metric("deadlock_open_incidents", "gauge", "Incidents whose run has not recovered or finished yet (still stuck, or its cancel not complete).",
            ("", status.OpenIncidents));
        Metric("deadlock_incidents_closed_total", "counter",
            "Incidents closed, by outcome; recovered and succeeded are false positives (the run was healthy after all).",
            [.. Enum.GetValues<IncidentOutcome>().Select(o => ($"{{outcome=\"{o}\"}}", (double)s.ClosedByOutcome.GetValueOrDefault(o)))]);
        Metric("deadlock_alerts_dead_letter", "gauge", "Undelivered alerts waiting in the dead-letter list for another attempt.", ("", status.DeadLetters.Length));
        Metric("deadlock_alerts_expired_total", "counter", "Dead-lettered alerts given up undelivered after the dead-letter expiry.", ("", s.AlertsExpired));
        Metric("run_index_projection_lag", "gauge", "Journal events not yet applied to the run index.", ("", status.ProjectionLag));
        return sb.ToString();
    }
}
