using System.Collections.Immutable;
using Deepline.Domain;

namespace Deepline.Actors.Monitoring;

public sealed record Incident(Detection Detection, DateTimeOffset DetectedAt, bool Alerted, bool Cancelled)
{
    /// <summary>cancel_on_deadlock when it opened: an incident opened with it off is never cancelled later.</summary>
    public bool AutoCancel { get; init; } = true;

    /// <summary>Its alert reached the receiver (Alerted says only that it was tried): only then has it something to resolve.</summary>
    public bool Delivered { get; init; }
}

/// <summary>A receiver's incident (PagerDuty's) to resolve because ours closed: sent until delivered or expired.</summary>
public sealed record PendingResolve(string RunId, DateTimeOffset QueuedAt, int Attempts, DateTimeOffset NextAttemptAt);

/// <summary>
/// The supervisor's memory: one open incident per stuck run (alert once, cancel once, count once) until the run
/// recovers or finishes, the alerts waiting in the dead-letter list, and the counters of /stats. A closed incident is
/// forgotten (its outcome is counted), so the open ones are exactly the runs still stuck or still being cancelled.
/// </summary>
public sealed record SupervisorState(
    ImmutableDictionary<string, Incident> Incidents,
    MonitorStats Stats,
    DateTimeOffset? LastScan,
    double LastScanDurationMs) : IDeeplineMessage
{
    public const int IncidentsKept = 100_000;

    /// <summary>Most alerts kept for another attempt; past that the oldest is given up (counted as expired).</summary>
    public const int DeadLettersKept = 10_000;

    public static SupervisorState Empty { get; } = new(ImmutableDictionary<string, Incident>.Empty, MonitorStats.Zero, null, 0);

    /// <summary>Alerts that could not be delivered, by run, waiting for their next attempt.</summary>
    public ImmutableDictionary<string, DeadLetter> DeadLetters { get; init; } = ImmutableDictionary<string, DeadLetter>.Empty;

    /// <summary>Resolves owed to the receiver for incidents that closed after their alert was delivered, by run.</summary>
    public ImmutableDictionary<string, PendingResolve> PendingResolves { get; init; } = ImmutableDictionary<string, PendingResolve>.Empty;

    public bool Knows(string runId) => Incidents.ContainsKey(runId);

    public SupervisorState Apply(IDeeplineMessage e) => e switch
    {
        IncidentOpened o => Open(o),
        IncidentCancelled c when Incidents.TryGetValue(c.RunId, out var i) => this with
        {
            Incidents = Incidents.SetItem(c.RunId, i with { Cancelled = true }),
            Stats = c.ByMonitor ? Stats with { WorkflowsCancelled = Stats.WorkflowsCancelled + 1 } : Stats,
        },
        IncidentAlerted a => Alerted(a),
        IncidentClosed c when Incidents.ContainsKey(c.RunId) => Closed(c),
        AlertExpired { Resolve: true } x when PendingResolves.ContainsKey(x.RunId) => this with { PendingResolves = PendingResolves.Remove(x.RunId) },
        AlertExpired { Resolve: false } x when DeadLetters.ContainsKey(x.RunId) => this with
        {
            DeadLetters = DeadLetters.Remove(x.RunId),
            Stats = Stats with { AlertsExpired = Stats.AlertsExpired + 1 },
        },
        AlertResolveSent r when PendingResolves.TryGetValue(r.RunId, out var pending) => this with
        {
            PendingResolves = r.Delivered
                ? PendingResolves.Remove(r.RunId)
                : PendingResolves.SetItem(r.RunId, pending with { Attempts = pending.Attempts + 1, NextAttemptAt = r.RetryAt ?? r.At }),
        },
        ScanRecorded s => this with
        {
            LastScan = s.At,
            LastScanDurationMs = s.DurationMs,
            Stats = s.Failed ? Stats with { ScanErrors = Stats.ScanErrors + 1 } : Stats,
        },
        _ => this,
    };

    /// <summary>
    /// An incident closes. An alert of it still undelivered is withdrawn if the run was not stuck after all (recovered,
    /// succeeded): told later, it would page someone about a run that is fine. A real one (cancelled, failed) is still
    /// delivered, and then resolved like any delivered alert whose incident closed.
    /// </summary>
    private SupervisorState Closed(IncidentClosed c)
    {
        var withdrawn = c.Outcome is IncidentOutcome.recovered or IncidentOutcome.succeeded && DeadLetters.ContainsKey(c.RunId);
        return this with
        {
            Incidents = Incidents.Remove(c.RunId),
            DeadLetters = withdrawn ? DeadLetters.Remove(c.RunId) : DeadLetters,
            PendingResolves = c.Resolve ? QueueResolve(c.RunId, c.At) : PendingResolves,
            Stats = Stats with
            {
                ClosedByOutcome = Stats.ClosedByOutcome.SetItem(c.Outcome, Stats.ClosedByOutcome.GetValueOrDefault(c.Outcome) + 1),
                AlertsWithdrawn = Stats.AlertsWithdrawn + (withdrawn ? 1 : 0),
            },
        };
    }

    /// <summary>Whether an alert delivered now, of a run whose incident is no longer open, leaves a receiver's incident to resolve.</summary>
    public bool ResolveOnDelivery(string runId) => !Incidents.ContainsKey(runId);

    /// <summary>Whether the run's incident, when it closes, leaves a delivered alert to resolve.</summary>
    public bool ResolveOnClose(string runId) => Incidents.TryGetValue(runId, out var i) && i.Delivered;

    private ImmutableDictionary<string, PendingResolve> QueueResolve(string runId, DateTimeOffset at) =>
        PendingResolves.ContainsKey(runId) ? PendingResolves : PendingResolves.SetItem(runId, new PendingResolve(runId, at, 0, at));

    private SupervisorState Alerted(IncidentAlerted a)
    {
        Incidents.TryGetValue(a.RunId, out var incident);
        DeadLetters.TryGetValue(a.RunId, out var letter);
        var incidents = incident is null ? Incidents : Incidents.SetItem(a.RunId, incident with { Alerted = true, Delivered = incident.Delivered || a.Delivered });
        if (a.Delivered)
        {
            var detectedAt = letter?.DetectedAt ?? incident?.DetectedAt ?? a.At;
            return this with
            {
                Incidents = incidents,
                DeadLetters = DeadLetters.Remove(a.RunId),
                PendingResolves = a.Resolve ? QueueResolve(a.RunId, a.At) : PendingResolves,
                Stats = Stats with
                {
                    AlertsSent = Stats.AlertsSent + 1,
                    TotalAlertResponseSeconds = Stats.TotalAlertResponseSeconds + Math.Max(0, (a.At - detectedAt).TotalSeconds),
                },
            };
        }
        var retryAt = a.RetryAt ?? a.At;
        if (letter is not null)
            return this with { Incidents = incidents, DeadLetters = DeadLetters.SetItem(a.RunId, letter with { Attempts = letter.Attempts + 1, NextAttemptAt = retryAt }) };
        if (incident is null) return this;
        var letters = DeadLetters;
        var stats = Stats with { AlertsFailed = Stats.AlertsFailed + 1 };
        if (letters.Count >= DeadLettersKept)
        {
            letters = letters.Remove(letters.Values.MinBy(l => l.FirstFailedAt)!.Detection.RunId);
            stats = stats with { AlertsExpired = stats.AlertsExpired + 1 };
        }
        return this with
        {
            Incidents = incidents,
            DeadLetters = letters.Add(a.RunId, new DeadLetter(incident.Detection, incident.DetectedAt, incident.AutoCancel, 1, a.At, retryAt)),
            Stats = stats,
        };
    }

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
            Incidents = incidents.Add(o.Detection.RunId, new Incident(o.Detection, o.DetectedAt, false, false) { AutoCancel = o.AutoCancel }),
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
        Incidents.Values.Where(i => (cancelOnDeadlock && i.AutoCancel && !i.Cancelled) || (alerting && !i.Alerted));

    /// <summary>
    /// Open incidents that may have settled: those not waiting for their own cancel to land. An incident whose cancel
    /// is still to be sent is left alone, so a run is never closed as recovered while the monitor is cancelling it.
    /// </summary>
    public IEnumerable<Incident> Settleable() => Incidents.Values.Where(i => i.Cancelled || !i.AutoCancel);

    /// <summary>
    /// How an open incident's run stands now: null while it is still stuck (or still being cancelled). A resource
    /// deadlock is invisible to the run's own detectors, so its run is never called recovered while it runs: only its end
    /// settles it (the coordinator knows when the cycle is gone; the run does not).
    /// </summary>
    public static IncidentOutcome? Settle(WorkflowState run, DetectorThresholds thresholds, DateTimeOffset now, StuckReason? reason = null) => run.Status switch
    {
        RunStatus.SUCCEEDED => IncidentOutcome.succeeded,
        RunStatus.FAILED => IncidentOutcome.failed,
        RunStatus.CANCELLED => IncidentOutcome.cancelled,
        RunStatus.RUNNING when reason == StuckReason.resource_deadlock => null,
        RunStatus.RUNNING when StuckDetector.Evaluate(run, thresholds, now) is null => IncidentOutcome.recovered,
        _ => null,
    };

    /// <summary>Resolves due for an attempt, and those past their expiry (counted from when the incident closed).</summary>
    public (IReadOnlyList<PendingResolve> Due, IReadOnlyList<PendingResolve> Expired) ResolvesAt(DateTimeOffset now, TimeSpan expiry) =>
        Retries(PendingResolves.Values, r => r.QueuedAt, r => r.NextAttemptAt, now, expiry);

    /// <summary>Dead letters due for another attempt, and those past their expiry.</summary>
    public (IReadOnlyList<DeadLetter> Due, IReadOnlyList<DeadLetter> Expired) DeadLettersAt(DateTimeOffset now, TimeSpan expiry) =>
        Retries(DeadLetters.Values, l => l.FirstFailedAt, l => l.NextAttemptAt, now, expiry);

    /// <summary>Deliveries retried on a backoff: those past their expiry (from <paramref name="since"/>), else those due now.</summary>
    private static (IReadOnlyList<T> Due, IReadOnlyList<T> Expired) Retries<T>(IEnumerable<T> pending, Func<T, DateTimeOffset> since,
        Func<T, DateTimeOffset> next, DateTimeOffset now, TimeSpan expiry)
    {
        var due = new List<T>();
        var expired = new List<T>();
        foreach (var p in pending)
        {
            if (since(p) + expiry <= now) expired.Add(p);
            else if (next(p) <= now) due.Add(p);
        }
        return (due, expired);
    }
}
