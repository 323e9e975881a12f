using System.Collections.Immutable;
using Deepline.Domain;

namespace Deepline.Actors.Monitoring;

/// <summary>What the monitor needs from the node's configuration.</summary>
public sealed record MonitorSettings(
    DetectorThresholds Thresholds,
    TimeSpan CheckInterval,
    bool CancelOnDeadlock,
    bool AlertWebhookConfigured,
    int ScanLimit = 1000)
{
    /// <summary>First wait before an undelivered alert is sent again; doubled per attempt up to <see cref="DeadLetterMaxDelay"/>.</summary>
    public TimeSpan DeadLetterBaseDelay { get; init; } = TimeSpan.FromMinutes(1);

    public TimeSpan DeadLetterMaxDelay { get; init; } = TimeSpan.FromHours(1);

    /// <summary>An alert still undelivered this long after its first failure is given up (counted as expired).</summary>
    public TimeSpan DeadLetterExpiry { get; init; } = TimeSpan.FromHours(24);

    /// <summary>Open incidents whose run is asked about per scan, to see whether it recovered or finished.</summary>
    public int SettleLimit { get; init; } = 200;

    /// <summary>When the next attempt of a dead letter is due after <paramref name="attempts"/> failed deliveries.</summary>
    public TimeSpan DeadLetterDelay(int attempts) =>
        TimeSpan.FromTicks(Math.Min(DeadLetterMaxDelay.Ticks, DeadLetterBaseDelay.Ticks * (1L << Math.Clamp(attempts - 1, 0, 20))));
}

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
    long ProjectionLag) : IDeeplineMessage
{
    /// <summary>Alerts waiting for another delivery attempt, oldest first.</summary>
    public ImmutableArray<DeadLetter> DeadLetters { get; init; } = [];

    /// <summary>Resolves owed to the receiver for closed incidents.</summary>
    public int PendingResolves { get; init; }
}

/// <summary>How an incident ended. recovered and succeeded mean the run was not stuck after all: false positives.</summary>
public enum IncidentOutcome { recovered, succeeded, failed, cancelled }

/// <summary>An alert whose delivery and retries failed: sent again on a longer backoff until delivered or expired.</summary>
public sealed record DeadLetter(Detection Detection, DateTimeOffset DetectedAt, bool AutoCancel, int Attempts, DateTimeOffset FirstFailedAt, DateTimeOffset NextAttemptAt);

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

    /// <summary>Closed incidents by how they ended.</summary>
    public ImmutableDictionary<IncidentOutcome, long> ClosedByOutcome { get; init; } = ImmutableDictionary<IncidentOutcome, long>.Empty;

    /// <summary>Incidents whose run turned out healthy: it moved on by itself, or succeeded, without being cancelled.</summary>
    public long FalsePositives => ClosedByOutcome.GetValueOrDefault(IncidentOutcome.recovered) + ClosedByOutcome.GetValueOrDefault(IncidentOutcome.succeeded);

    /// <summary>Dead-lettered alerts given up after the dead-letter expiry.</summary>
    public long AlertsExpired { get; init; }

    /// <summary>Undelivered alerts dropped because their incident closed as a false positive (recovered, succeeded).</summary>
    public long AlertsWithdrawn { get; init; }
}

// Journal of the supervisor: what it decided, so a failover neither repeats nor forgets an incident.

public sealed record IncidentOpened(Detection Detection, DateTimeOffset DetectedAt, string Via) : IDeeplineMessage
{
    /// <summary>Whether cancel_on_deadlock was on when it opened: only then is the run cancelled, now or after a failover.</summary>
    public bool AutoCancel { get; init; } = true;
}

/// <summary>The incident's run recovered or finished: it stops counting as open, and the run may be detected again.</summary>
public sealed record IncidentClosed(string RunId, IncidentOutcome Outcome, DateTimeOffset At) : IDeeplineMessage
{
    /// <summary>Its alert was delivered to a receiver that keeps incidents (PagerDuty): a resolve is owed.</summary>
    public bool Resolve { get; init; }
}

/// <summary>A dead-lettered alert (or, with <see cref="Resolve"/>, an owed resolve) reached its expiry undelivered.</summary>
public sealed record AlertExpired(string RunId, DateTimeOffset At) : IDeeplineMessage
{
    public bool Resolve { get; init; }
}

/// <summary>A resolve was sent for a closed incident: delivered, or to be tried again at <see cref="RetryAt"/>.</summary>
public sealed record AlertResolveSent(string RunId, bool Delivered, DateTimeOffset At) : IDeeplineMessage
{
    public DateTimeOffset? RetryAt { get; init; }
}

public sealed record IncidentCancelled(string RunId, bool ByMonitor, DateTimeOffset At) : IDeeplineMessage;

public sealed record IncidentAlerted(string RunId, bool Delivered, DateTimeOffset At) : IDeeplineMessage
{
    /// <summary>For a failed delivery: when to try again (the supervisor's backoff, recorded so a successor keeps it).</summary>
    public DateTimeOffset? RetryAt { get; init; }

    /// <summary>Delivered after its incident closed, to a receiver that keeps incidents: a resolve is owed.</summary>
    public bool Resolve { get; init; }
}

public sealed record ScanRecorded(DateTimeOffset At, double DurationMs, bool Failed) : IDeeplineMessage;
