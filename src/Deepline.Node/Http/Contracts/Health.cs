namespace Deepline.Node.Http;

// Wire shapes of GET /health (the seed's diagnostic page) and of the /healthz probes.

/// <summary>Self, roles and leader are null/empty for callers without the operator or admin role (anyone may call /health).</summary>
public sealed record ClusterHealthResponse(string? Self, string Status, IReadOnlyList<string> Roles, string? Leader, int Members, int Unreachable);

/// <summary>Store and error are null for callers without the operator or admin role.</summary>
public sealed record PersistenceHealthResponse(bool Reachable, string? Store, string? Error);

/// <summary>The seed's deadlock_monitor block of GET /health, field for field.</summary>
public sealed record DeadlockMonitorHealthResponse(
    bool Running, int CheckIntervalS, int PendingStaleS, bool CancelOnDeadlock, bool AlertWebhookConfigured, DateTimeOffset? LastScan);

/// <summary>
/// GET /health. <see cref="Dependencies"/> maps store, cluster, redis (when configured), run_index and deadlock_monitor to
/// <c>{state: ok|degraded|down, detail, ...}</c>; each adds its own fields (store: store, unreadable_runs, unreadable;
/// run_index: lag, offset, quarantined), so they are objects of their own shape rather than one record.
/// </summary>
public sealed record HealthResponse(
    string Status,
    ClusterHealthResponse Cluster,
    PersistenceHealthResponse Persistence,
    IReadOnlyDictionary<string, Dictionary<string, object?>> Dependencies,
    DeadlockMonitorHealthResponse DeadlockMonitor);

/// <summary>/healthz/live and /healthz/ready: {"status": "Healthy|Degraded|Unhealthy", "checks": {name: {...}}}.</summary>
public sealed record HealthReportResponse(string Status, IReadOnlyDictionary<string, HealthCheckEntryResponse> Checks);

public sealed record HealthCheckEntryResponse(string Status, string? Description, double DurationMs);
