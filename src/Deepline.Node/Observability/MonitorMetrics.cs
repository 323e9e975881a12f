using System.Diagnostics.Metrics;
using Akka.Actor;
using Akka.Cluster;
using Akka.Hosting;
using Deepline.Actors.Index;
using Deepline.Actors.Monitoring;
using Deepline.Domain;
using Deepline.Node.Http;

namespace Deepline.Node.Observability;

/// <summary>
/// The deadlock monitor's numbers as instruments of the node's meter. They are the supervisor's journalled totals (a
/// cluster singleton), so they are exported only by the node that hosts it: every node exporting them made sum() over
/// the cluster count each incident once per node. <c>deadlock_monitor_up</c> is every node's own view (did the
/// supervisor answer this node's scrape), and the journal writer's counters are this process's.
/// </summary>
/// <remarks>
/// The supervisor is asked once per scrape (<see cref="RefreshAsync"/>, before the exporter collects) and the
/// observable instruments read that answer: an instrument callback is synchronous and must not block on an Ask.
/// </remarks>
public sealed class MonitorMetrics(string? monitorRole)
{
    private static readonly TimeSpan AskTimeout = TimeSpan.FromSeconds(3);

    private volatile Snapshot _last = new(null, null, false);
    private volatile IReadOnlyList<PoolQueueResponse> _pools = [];

    private sealed record Snapshot(MonitorStatus? Status, long? Quarantined, bool Hosting);

    /// <summary>Adds the instruments to this node's meter; called once the actor system exists.</summary>
    public void Register(ActorSystem system)
    {
        var meter = NodeMeter.For(system).Meter;
        meter.CreateObservableGauge("deadlock_monitor_up", () => _last.Status is null ? 0 : 1,
            description: "1 when the deadlock supervisor answered this node's scrape.");

        Hosted(meter, "deadlock_detected", "Stuck runs detected (one incident per run), by reason.", counter: true,
            s => Enum.GetValues<StuckReason>().Select(r => Measure(s.Stats.ByReason.GetValueOrDefault(r), "reason", r.ToString())));
        Hosted(meter, "workflows_cancelled", "Runs cancelled by the deadlock monitor.", counter: true, s => [Measure(s.Stats.WorkflowsCancelled)]);
        Hosted(meter, "deadlock_alerts_sent", "Deadlock alerts delivered to the webhook.", counter: true, s => [Measure(s.Stats.AlertsSent)]);
        Hosted(meter, "deadlock_alerts_failed", "Deadlock alerts that could not be delivered.", counter: true, s => [Measure(s.Stats.AlertsFailed)]);
        Hosted(meter, "deadlock_scan_errors", "Run index scans that failed.", counter: true, s => [Measure(s.Stats.ScanErrors)]);
        // The seed's dashboard queries avg(deadlock_detection_duration_seconds): a plain sample is needed for that, so the
        // mean is a gauge. The windowed mean needs _sum and _count of every incident since the monitor's first start (the
        // journalled totals): a histogram of this process's observations would restart at each failover and has buckets
        // we do not have, so the pair is exported as two gauges under the names a summary would give them.
        Hosted(meter, "deadlock_detection_duration_seconds", "Mean time from a run becoming stuck to its detection, over every incident.",
            counter: false, s => [Measure(s.Stats.AvgDetectionTimeS)]);
        Hosted(meter, "deadlock_detection_seconds_sum", "Time from a run becoming stuck to its detection, summed over every incident.",
            counter: false, s => [Measure(s.Stats.TotalDetectionSeconds)]);
        Hosted(meter, "deadlock_detection_seconds_count", "Incidents whose detection time is in deadlock_detection_seconds_sum.",
            counter: false, s => [Measure(s.Stats.DeadlocksDetected)]);
        Hosted(meter, "deadlock_alert_response_seconds_sum", "Time from a detection to its alert being delivered, summed over delivered alerts.",
            counter: false, s => [Measure(s.Stats.TotalAlertResponseSeconds)]);
        Hosted(meter, "deadlock_alert_response_seconds_count", "Delivered alerts in deadlock_alert_response_seconds_sum.",
            counter: false, s => [Measure(s.Stats.AlertsSent)]);
        Hosted(meter, "deadlock_last_scan_duration_seconds", "Duration of the last run index scan.", counter: false,
            s => [Measure(s.LastScanDurationMs / 1000)]);
        Hosted(meter, "deadlock_open_incidents", "Incidents whose run has not recovered or finished yet (still stuck, or its cancel not complete).",
            counter: false, s => [Measure(s.OpenIncidents)]);
        Hosted(meter, "deadlock_incidents_closed",
            "Incidents closed, by outcome; recovered and succeeded are false positives (the run was healthy after all).", counter: true,
            s => Enum.GetValues<IncidentOutcome>().Select(o => Measure(s.Stats.ClosedByOutcome.GetValueOrDefault(o), "outcome", o.ToString())));
        Hosted(meter, "deadlock_alerts_dead_letter", "Undelivered alerts waiting in the dead-letter list for another attempt.", counter: false,
            s => [Measure(s.DeadLetters.Length)]);
        Hosted(meter, "deadlock_alerts_expired", "Dead-lettered alerts given up undelivered after the dead-letter expiry.", counter: true,
            s => [Measure(s.Stats.AlertsExpired)]);
        Hosted(meter, "run_index_projection_lag", "Journal events not yet applied to the run index.", counter: false, s => [Measure(s.ProjectionLag)]);
        meter.CreateObservableCounter("run_index_quarantined_events",
            () => _last is { Hosting: true, Quarantined: { } q } ? [Measure(q)] : Array.Empty<Measurement<double>>(),
            description: "Journal events the run index could not read or apply and set aside.");

        // This node's task queues (each node queues the tasks of the runs it hosts: sum over nodes for a pool's total).
        Pools(meter, "pool_queue_depth", "Tasks of external pools queued on this node, waiting for a poll.", p => p.QueueDepth);
        Pools(meter, "pool_queue_oldest_age_seconds", "Age of the longest-waiting queued task of the pool on this node.", p => p.OldestQueuedAgeS ?? 0);
        Pools(meter, "pool_pollers", "Workers that polled the pool on this node in the last 30 s.", p => p.Pollers);
        Pools(meter, "pool_waiting_polls", "Polls of the pool held open on this node, waiting for a task.", p => p.WaitingPolls);
        Pools(meter, "pool_no_poller_seconds", "How long the pool has had queued tasks and no poll on this node (0: polled, or nothing queued).",
            p => p.NoPollerForS ?? 0);

        // This process's journal writer; left out until it has committed, as before (a node that wrote nothing has no writer).
        meter.CreateObservableCounter("journal_commits",
            () => Deepline.Actors.Hosting.GroupCommitJournal.Commits is > 0 and var c ? [new Measurement<long>(c)] : Array.Empty<Measurement<long>>(),
            description: "Transactions committed by this node's journal writer (each one fsync).");
        meter.CreateObservableCounter("journal_rows",
            () => Deepline.Actors.Hosting.GroupCommitJournal.Commits > 0 ? [new Measurement<long>(Deepline.Actors.Hosting.GroupCommitJournal.Rows)] : Array.Empty<Measurement<long>>(),
            description: "Journal rows (events) written by this node's journal writer.");
    }

    /// <summary>Asks the supervisor (and the index, for its quarantine count) for this scrape.</summary>
    public async Task RefreshAsync(IServiceProvider services, CancellationToken ct)
    {
        var status = await ActorQueries.AskOrNullAsync<DeadlockSupervisor, MonitorStatus>(
            services.GetRequiredService<IRequiredActor<DeadlockSupervisor>>(), GetMonitorStatus.Instance, AskTimeout, ct);
        var hosting = HostsMonitor(services.GetRequiredService<ActorSystem>());
        long? quarantined = null;
        if (hosting)
        {
            try { (quarantined, _) = await services.GetRequiredService<RunIndexStore>().QuarantinedAsync(0, ct); }
            catch (System.Data.Common.DbException) { /* tables not created yet: the metric is left out, not reported as 0 */ }
        }
        _last = new Snapshot(status, quarantined, hosting);
        _pools = await PoolEndpoints.QueuesAsync(await services.GetRequiredService<IRequiredActor<Deepline.Actors.Queues.TaskQueues>>().GetAsync(ct), ct);
    }

    private void Pools(Meter meter, string name, string description, Func<PoolQueueResponse, double> read) =>
        meter.CreateObservableGauge(name, () => _pools.Select(p => Measure(read(p), "pool", p.Pool)), description: description);

    /// <summary>
    /// Whether the singletons run here: Akka places a cluster singleton on the oldest Up (or Leaving) member with its role.
    /// During a hand-over two nodes may both say yes for a scrape or two; max() over instances absorbs that.
    /// </summary>
    private bool HostsMonitor(ActorSystem system)
    {
        var cluster = Cluster.Get(system);
        var oldest = cluster.State.Members
            .Where(m => m.Status is MemberStatus.Up or MemberStatus.Leaving && (string.IsNullOrEmpty(monitorRole) || m.HasRole(monitorRole)))
            .OrderBy(m => m, Member.AgeOrdering)
            .FirstOrDefault();
        return oldest is not null && oldest.Address == cluster.SelfAddress;
    }

    private void Hosted(Meter meter, string name, string description, bool counter, Func<MonitorStatus, IEnumerable<Measurement<double>>> read)
    {
        IEnumerable<Measurement<double>> Observe() => _last is { Hosting: true, Status: { } s } ? read(s) : [];
        if (counter) meter.CreateObservableCounter(name, Observe, description: description);
        else meter.CreateObservableGauge(name, Observe, description: description);
    }

    private static Measurement<double> Measure(double value) => new(value);

    private static Measurement<double> Measure(double value, string label, string labelValue) =>
        new(value, new KeyValuePair<string, object?>(label, labelValue));
}
