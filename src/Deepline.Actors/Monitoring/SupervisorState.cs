using System.Collections.Immutable;
using Deepline.Domain;

namespace Deepline.Actors.Monitoring;

public sealed record Incident(Detection Detection, DateTimeOffset DetectedAt, bool Alerted, bool Cancelled);

/// <summary>
/// The supervisor's memory: one incident per run (alert once, cancel once, count once) and the counters of
/// /stats. Incidents of runs that are long finished are forgotten after <see cref="IncidentsKept"/>.
/// </summary>
public sealed record SupervisorState(
    ImmutableDictionary<string, Incident> Incidents,
    MonitorStats Stats,
    DateTimeOffset? LastScan,
    double LastScanDurationMs) : IDeeplineMessage
{
    public const int IncidentsKept = 100_000;

    public static SupervisorState Empty { get; } = new(ImmutableDictionary<string, Incident>.Empty, MonitorStats.Zero, null, 0);

    public bool Knows(string runId) => Incidents.ContainsKey(runId);

    public SupervisorState Apply(IDeeplineMessage e) => e switch
    {
        IncidentOpened o => Open(o),
        IncidentCancelled c when Incidents.TryGetValue(c.RunId, out var i) => this with
        {
            Incidents = Incidents.SetItem(c.RunId, i with { Cancelled = true }),
            Stats = c.ByMonitor ? Stats with { WorkflowsCancelled = Stats.WorkflowsCancelled + 1 } : Stats,
        },
        IncidentAlerted a when Incidents.TryGetValue(a.RunId, out var i) => this with
        {
            Incidents = Incidents.SetItem(a.RunId, i with { Alerted = true }),
            Stats = a.Delivered
                ? Stats with
                {
                    AlertsSent = Stats.AlertsSent + 1,
                    TotalAlertResponseSeconds = Stats.TotalAlertResponseSeconds + Math.Max(0, (a.At - i.DetectedAt).TotalSeconds),
                }
                : Stats with { AlertsFailed = Stats.AlertsFailed + 1 },
        },
        ScanRecorded s => this with
        {
            LastScan = s.At,
            LastScanDurationMs = s.DurationMs,
            Stats = s.Failed ? Stats with { ScanErrors = Stats.ScanErrors + 1 } : Stats,
        },
        _ => this,
    };

    private SupervisorState Open(IncidentOpened o)
    {
        if (Incidents.ContainsKey(o.Detection.RunId)) return this;
        var latency = Math.Max(0, (o.DetectedAt - o.Detection.StuckSince).TotalSeconds);
        var incidents = Incidents;
        if (incidents.Count >= IncidentsKept)
        {
            var oldest = incidents.Values.MinBy(i => i.DetectedAt)!;
            incidents = incidents.Remove(oldest.Detection.RunId);
        }
        return this with
        {
            Incidents = incidents.Add(o.Detection.RunId, new Incident(o.Detection, o.DetectedAt, false, false)),
            Stats = Stats with
            {
                DeadlocksDetected = Stats.DeadlocksDetected + 1,
                TotalDetectionSeconds = Stats.TotalDetectionSeconds + latency,
                ByReason = Stats.ByReason.SetItem(o.Detection.Reason, Stats.ByReason.GetValueOrDefault(o.Detection.Reason) + 1),
            },
        };
    }

    /// <summary>Incidents whose follow-up did not complete before a crash or failover: to be done again.</summary>
    public IEnumerable<Incident> Unfinished(bool cancelOnDeadlock, bool alerting) =>
        Incidents.Values.Where(i => (cancelOnDeadlock && !i.Cancelled) || (alerting && !i.Alerted));
}
