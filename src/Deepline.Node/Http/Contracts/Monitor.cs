using Deepline.Domain;

namespace Deepline.Node.Http;

// Wire shapes of the monitoring endpoints (/stats, /runs/cancelled, /deadlock/scan). Field order is the order the
// node has always written them in.

/// <summary>One entry of the seed's GET /runs/cancelled list, plus deadlock_reason.</summary>
public sealed record CancelledRunResponse(
    string RunId, string WorkflowName, string Status, DateTimeOffset? CancelledAt, string? CancellationReason, string? CancelledBy, int TaskCount, string ClientId,
    string? DeadlockReason);

/// <summary>What-if thresholds for the dry-run scan; each one left out is the node's own.</summary>
public sealed record ScanRequest(int? PendingStaleS, int? WorkflowStaleS, int? HeartbeatTimeoutS, int? Limit);

public sealed record ScanThresholdsResponse(int PendingStaleS, int WorkflowStaleS, int HeartbeatTimeoutS);

public sealed record FlaggedRunResponse(
    string RunId, string WorkflowName, StuckReason Reason, string Explanation, DateTimeOffset StuckSince, DateTimeOffset LastUpdate,
    IReadOnlyList<string> StuckTasks);

/// <summary>The seed's manual scan: nothing is alerted or cancelled.</summary>
/// <param name="ResourceDeadlocks">Deadlocks between runs over resources, each with the victim the policy would cancel; null: the coordinator did not answer.</param>
public sealed record ScanResponse(DateTimeOffset ScannedAt, ScanThresholdsResponse Thresholds, int Candidates, IReadOnlyList<FlaggedRunResponse> Flagged,
    ResourceDeadlocksResponse? ResourceDeadlocks);

public sealed record QuarantinedEventResponse(string RunId, long SequenceNr, long Offset, string Error, DateTimeOffset QuarantinedAt);

public sealed record RunIndexStatsResponse(long ProjectionLag, long QuarantinedTotal, IReadOnlyList<QuarantinedEventResponse> Quarantined);

public sealed record DeadLetterResponse(string RunId, int Attempts, DateTimeOffset FirstFailedAt, DateTimeOffset NextAttemptAt);

/// <summary>The seed's deadlock_monitor counters of GET /stats, and ours after them.</summary>
public sealed record DeadlockMonitorStatsResponse(
    long DeadlocksDetected,
    long WorkflowsCancelled,
    long AlertsSent,
    double AvgDetectionTimeS,
    double AvgAlertResponseTimeS,
    long ScanErrors,
    long AlertsFailed,
    IReadOnlyDictionary<string, long> ByReason,
    int OpenIncidents,
    IReadOnlyDictionary<string, long> IncidentsClosed,
    long FalsePositives,
    double FalsePositiveRate,
    int AlertsDeadLetter,
    long AlertsExpired,
    IReadOnlyList<DeadLetterResponse> DeadLetters,
    DateTimeOffset? LastScan,
    double LastScanDurationMs,
    long ProjectionLag)
{
    /// <summary>Undelivered alerts dropped because their incident closed as a false positive before a retry got through.</summary>
    public long AlertsWithdrawn { get; init; }

    /// <summary>Resolves owed to a PagerDuty receiver for closed incidents, not delivered yet.</summary>
    public int AlertResolvesPending { get; init; }
}

public sealed record StatsResponse(RunIndexStatsResponse RunIndex, DeadlockMonitorStatsResponse DeadlockMonitor)
{
    /// <summary>This node's task queues for external pools: depth, oldest age, pollers, and how long a pool has gone unpolled.</summary>
    public IReadOnlyList<PoolQueueResponse> Pools { get; init; } = [];
}
