using System.Collections.Immutable;
using Deepline.Domain;

namespace Deepline.Actors.Monitoring;

/// <summary>What the monitor needs from the node's configuration.</summary>
public sealed record MonitorSettings(
    DetectorThresholds Thresholds,
    TimeSpan CheckInterval,
    bool CancelOnDeadlock,
    bool AlertWebhookConfigured,
    int ScanLimit = 1000);

/// <summary>A run's own timer found it stuck. The supervisor confirms against the run's current state before acting.</summary>
public sealed record RunSuspected(Detection Detection) : IDeeplineMessage;

/// <summary>Dry run: what would be flagged now, optionally under what-if thresholds; nothing is alerted or cancelled.</summary>
public sealed record ManualScan(int? PendingStaleS, int? WorkflowStaleS, int? HeartbeatTimeoutS, int Limit = 500) : IDeeplineMessage;

public sealed record ManualScanResult(DateTimeOffset ScannedAt, DetectorThresholds Thresholds, int Candidates, ImmutableArray<Detection> Flagged) : IDeeplineMessage;

public sealed record GetMonitorStatus : IDeeplineMessage
{
    public static GetMonitorStatus Instance { get; } = new();
}

public sealed record MonitorStatus(
    bool Running,
    DateTimeOffset? LastScan,
    double LastScanDurationMs,
    MonitorStats Stats,
    int OpenIncidents,
    long ProjectionLag) : IDeeplineMessage;

public sealed record MonitorStats(
    long DeadlocksDetected,
    long WorkflowsCancelled,
    long AlertsSent,
    long AlertsFailed,
    long ScanErrors,
    double TotalDetectionSeconds,
    ImmutableDictionary<StuckReason, long> ByReason)
{
    public static MonitorStats Zero { get; } = new(0, 0, 0, 0, 0, 0, ImmutableDictionary<StuckReason, long>.Empty);

    public double AvgDetectionTimeS => DeadlocksDetected == 0 ? 0 : TotalDetectionSeconds / DeadlocksDetected;

    /// <summary>
    /// Sum over delivered alerts of (delivered at − detected at): the seed's "alert response time". Not positional, so
    /// a snapshot written before it reads back as 0.
    /// </summary>
    public double TotalAlertResponseSeconds { get; init; }

    public double AvgAlertResponseTimeS => AlertsSent == 0 ? 0 : TotalAlertResponseSeconds / AlertsSent;
}

// Journal of the supervisor: what it decided, so a failover neither repeats nor forgets an incident.

public sealed record IncidentOpened(Detection Detection, DateTimeOffset DetectedAt, string Via) : IDeeplineMessage;

public sealed record IncidentCancelled(string RunId, bool ByMonitor, DateTimeOffset At) : IDeeplineMessage;

public sealed record IncidentAlerted(string RunId, bool Delivered, DateTimeOffset At) : IDeeplineMessage;

public sealed record ScanRecorded(DateTimeOffset At, double DurationMs, bool Failed) : IDeeplineMessage;
