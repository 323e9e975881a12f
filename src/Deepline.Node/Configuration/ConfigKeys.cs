namespace Deepline.Node.Configuration;

/// <summary>
/// The one list of configuration keys, in config.yaml order: path, environment override, default, description, kind
/// and range. The loader reads and checks every key from it, <see cref="DeeplineConfig.Defaults"/> are its defaults,
/// the start-up summary shows it, and config.yaml and the README's configuration table are checked against it
/// (<see cref="ConfigDocs"/>). Environment names are <c>DEEPLINE_&lt;SECTION&gt;_&lt;KEY&gt;</c> upper-cased with a
/// trailing <c>_S</c> dropped; <c>alert_webhook</c> is the seed's <c>DEEPLINE_DEADLOCK_WEBHOOK</c> and the Redis
/// connection is <c>DEEPLINE_REDIS</c>.
/// </summary>
public static class ConfigKeys
{
    public static IReadOnlyList<ConfigKey> All { get; } =
    [
        new("orchestrator.deadlock.check_interval_s", "DEEPLINE_DEADLOCK_CHECK_INTERVAL", "60",
            "How often (seconds) the deadlock supervisor scans the run index.")
        {
            Kind = ConfigKind.Integer, Min = 1, Max = int.MaxValue, Read = c => c.Deadlock.CheckIntervalS,
        },
        new("orchestrator.deadlock.pending_stale_s", "DEEPLINE_DEADLOCK_PENDING_STALE", "900",
            "A run with nothing RUNNING and no task transition for this long (seconds) is stale_pending (at least check_interval_s).")
        {
            Kind = ConfigKind.Integer, Min = 1, Max = int.MaxValue, Read = c => c.Deadlock.PendingStaleS,
        },
        new("orchestrator.deadlock.workflow_stale_s", "DEEPLINE_DEADLOCK_WORKFLOW_STALE", "3600",
            "A run older than this (seconds) and not terminal is run_timeout (at least check_interval_s).")
        {
            Kind = ConfigKind.Integer, Min = 1, Max = int.MaxValue, Read = c => c.Deadlock.WorkflowStaleS,
        },
        new("orchestrator.deadlock.cancel_on_deadlock", "DEEPLINE_DEADLOCK_CANCEL_ON_DEADLOCK", "true",
            "Cancel runs found deadlocked (false: only alert and count).")
        {
            Kind = ConfigKind.Boolean, Read = c => c.Deadlock.CancelOnDeadlock,
        },
        new("orchestrator.deadlock.alert_webhook", "DEEPLINE_DEADLOCK_WEBHOOK", "\"\"",
            "http(s) webhook (Slack/PagerDuty) alerted once per deadlocked run; empty: no alerts.")
        {
            Kind = ConfigKind.Secret, Read = c => c.Deadlock.AlertWebhook,
        },
        new("orchestrator.deadlock.max_dependency_depth", "DEEPLINE_DEADLOCK_MAX_DEPENDENCY_DEPTH", "50",
            "Longest task dependency chain accepted at submission (1..100000).")
        {
            Kind = ConfigKind.Integer, Min = 1, Max = 100000, Read = c => c.Deadlock.MaxDependencyDepth,
        },
        new("orchestrator.deadlock.heartbeat_timeout_s", "DEEPLINE_DEADLOCK_HEARTBEAT_TIMEOUT", "60",
            "A RUNNING task's lease: no worker heartbeat for this long (seconds) ends its attempt (retried; no_heartbeat when no attempt is left).")
        {
            Kind = ConfigKind.Integer, Min = 1, Max = int.MaxValue, Read = c => c.Deadlock.HeartbeatTimeoutS,
        },
        new("orchestrator.deadlock.cancel_timeout_s", "DEEPLINE_DEADLOCK_CANCEL_TIMEOUT", "30",
            "How long (seconds) a cancel waits for running tasks to acknowledge before it is forced.")
        {
            Kind = ConfigKind.Integer, Min = 1, Max = int.MaxValue, Read = c => c.Deadlock.CancelTimeoutS,
        },
        new("orchestrator.deadlock.alert_format", "DEEPLINE_DEADLOCK_ALERT_FORMAT", "auto",
            "Alert body: slack, pagerduty, generic, or auto (inferred from the webhook's host).")
        {
            Kind = ConfigKind.Text, Read = c => c.Deadlock.AlertFormat,
        },
        new("orchestrator.deadlock.alert_routing_key", "DEEPLINE_DEADLOCK_ALERT_ROUTING_KEY", "\"\"",
            "PagerDuty Events API v2 routing key (secret: never printed).")
        {
            Kind = ConfigKind.Secret, Read = c => c.Deadlock.AlertRoutingKey,
        },
        new("orchestrator.deadlock.alert_timeout_s", "DEEPLINE_DEADLOCK_ALERT_TIMEOUT", "5",
            "Timeout (seconds, 1..300) of one webhook delivery attempt.")
        {
            Kind = ConfigKind.Integer, Min = 1, Max = 300, Read = c => c.Deadlock.AlertTimeoutS,
        },
        new("orchestrator.deadlock.alert_retries", "DEEPLINE_DEADLOCK_ALERT_RETRIES", "3",
            "Retries (exponential backoff) after a failed or timed-out delivery (0..10).")
        {
            Kind = ConfigKind.Integer, Min = 0, Max = 10, Read = c => c.Deadlock.AlertRetries,
        },
        new("orchestrator.deadlock.monitor_role", "DEEPLINE_DEADLOCK_MONITOR_ROLE", "\"\"",
            "Cluster role whose nodes may host the deadlock supervisor and run index singletons; empty: any node.")
        {
            Kind = ConfigKind.Text, WhenUnset = "any node", Read = c => c.Deadlock.MonitorRole,
        },
        new("orchestrator.deadlock.victim", "DEEPLINE_DEADLOCK_VICTIM", "youngest",
            "Which run of a resource deadlock cycle is cancelled: youngest, least_work (fewest succeeded tasks) or lowest_priority.")
        {
            Kind = ConfigKind.Text, Read = c => c.Deadlock.Victim,
        },
        new("orchestrator.http.host", "DEEPLINE_HTTP_HOST", "127.0.0.1",
            "Address the HTTP API listens on.")
        {
            Kind = ConfigKind.Text, Read = c => c.Http.Host,
        },
        new("orchestrator.http.port", "DEEPLINE_HTTP_PORT", "8001",
            "Port of the HTTP API (1..65535).")
        {
            Kind = ConfigKind.Integer, Min = 1, Max = 65535, Read = c => c.Http.Port,
        },
        new("orchestrator.remoting.host", "DEEPLINE_REMOTING_HOST", "127.0.0.1",
            "Address Akka.Remote binds to and advertises.")
        {
            Kind = ConfigKind.Text, Read = c => c.Remoting.Host,
        },
        new("orchestrator.remoting.port", "DEEPLINE_REMOTING_PORT", "4053",
            "Akka.Remote port (0..65535, 0 = pick a free one).")
        {
            Kind = ConfigKind.Integer, Min = 0, Max = 65535, RequirementText = "an integer from 0 to 65535 (0 = pick a free port)", WhenUnset = "any free port", Read = c => c.Remoting.Port,
        },
        new("orchestrator.remoting.roles", "DEEPLINE_REMOTING_ROLES", "[]",
            "Extra cluster roles of this node (\"worker\" is added when it serves pools), e.g. [monitor].")
        {
            Kind = ConfigKind.List, WhenUnset = "none", Read = c => c.Remoting.Roles,
        },
        new("orchestrator.remoting.down_unreachable_after_s", "DEEPLINE_REMOTING_DOWN_UNREACHABLE_AFTER", "20",
            "Split-brain resolver (keep-majority): seconds of stable membership after which the minority side is downed (1..600).")
        {
            Kind = ConfigKind.Integer, Min = 1, Max = 600, Read = c => c.Remoting.DownUnreachableAfterS,
        },
        new("orchestrator.remoting.tls_certificate", "DEEPLINE_REMOTING_TLS_CERTIFICATE", "\"\"",
            "PKCS#12 file (.pfx) of the cluster certificate with its private key: Akka.Remote then speaks TLS and accepts only peers holding it; empty: no TLS.")
        {
            Kind = ConfigKind.Text, WhenUnset = "not configured (no TLS)", Read = c => c.Remoting.TlsCertificate,
        },
        new("orchestrator.remoting.tls_certificate_password", "DEEPLINE_REMOTING_TLS_CERTIFICATE_PASSWORD", "\"\"",
            "Password of the cluster certificate file (never printed).")
        {
            Kind = ConfigKind.Secret, Read = c => c.Remoting.TlsCertificatePassword,
        },
        new("orchestrator.remoting.seed_nodes", "DEEPLINE_REMOTING_SEED_NODES", "[]",
            "Cluster seed nodes as akka.tcp://<system>@<host>:<port> (env: comma separated); empty: join itself.")
        {
            Kind = ConfigKind.List, WhenUnset = "none (joins itself)", Read = c => c.Remoting.SeedNodes,
        },
        new("orchestrator.data.dir", "DEEPLINE_DATA_DIR", "./data",
            "Directory for the node's local data (SQLite journal and snapshots).")
        {
            Kind = ConfigKind.Text, Read = c => c.Data.Dir,
        },
        new("orchestrator.logging.dir", "DEEPLINE_LOGGING_DIR", "\"\"",
            "Directory for rolling log files orchestrator.log and worker.log (10 MB each, 10 kept); empty: console only.")
        {
            Kind = ConfigKind.Text, WhenUnset = "not configured (console only)", Read = c => c.Logging.Dir,
        },
        new("orchestrator.logging.console_format", "DEEPLINE_LOGGING_CONSOLE_FORMAT", "text",
            "Console log lines: text, or json (one JSON object per line with the message template's fields, for log shippers).")
        {
            Kind = ConfigKind.Text, Read = c => c.Logging.ConsoleFormat,
        },
        new("orchestrator.logging.level", "DEEPLINE_LOGGING_LEVEL", "info",
            "Lowest level logged, on the console and in the files: debug, info, warning or error (debug adds e.g. the monitor's \"No deadlocks detected in current scan\").")
        {
            Kind = ConfigKind.Text, Read = c => c.Logging.Level,
        },
        new("orchestrator.workers.enabled", "DEEPLINE_WORKERS_ENABLED", "true",
            "Run in-cluster worker pools on this node.")
        {
            Kind = ConfigKind.Boolean, Read = c => c.Workers.Enabled,
        },
        new("orchestrator.workers.slots", "DEEPLINE_WORKERS_SLOTS", "4",
            "Slots of pool \"default\" on this node (0..1024, 0 = not served in-cluster).")
        {
            Kind = ConfigKind.Integer, Min = 0, Max = 1024, RequirementText = "an integer from 0 to 1024 (0 = pool \"default\" not served in-cluster)", Read = c => c.Workers.Slots,
        },
        new("orchestrator.workers.pools", "DEEPLINE_WORKERS_POOLS", "{}",
            "Extra in-cluster pools, name: slots (1..1024) (env: gpu=2,io=8).")
        {
            Kind = ConfigKind.Pools, Min = 1, Max = 1024, WhenUnset = "none", Read = c => c.Workers.Pools,
        },
        new("orchestrator.workers.cancel_grace_s", "DEEPLINE_WORKERS_CANCEL_GRACE", "10",
            "Seconds a cancelled task's handler gets to return before its pool abandons it (forced TASK_CANCELLED) (1..3600).")
        {
            Kind = ConfigKind.Integer, Min = 1, Max = 3600, Read = c => c.Workers.CancelGraceS,
        },
        new("orchestrator.workers.process.allowed_commands", "DEEPLINE_WORKERS_PROCESS_ALLOWED_COMMANDS", "[]",
            "Commands process tasks may run: names or absolute paths as tasks write them, or * for any (env: comma separated); []: process tasks are refused.")
        {
            Kind = ConfigKind.List, WhenUnset = "none (process tasks refused)", Read = c => c.Workers.ProcessAllowedCommands,
        },
        new("orchestrator.workers.process.user", "DEEPLINE_WORKERS_PROCESS_USER", "\"\"",
            "Account process tasks run as (needs the node to run as root); empty: the node's own user.")
        {
            Kind = ConfigKind.Text, WhenUnset = "the node's own", Read = c => c.Workers.ProcessUser,
        },
        new("orchestrator.runs.snapshot_every", "DEEPLINE_RUNS_SNAPSHOT_EVERY", "100",
            "Snapshot a run's state every N journal events (1..100000).")
        {
            Kind = ConfigKind.Integer, Min = 1, Max = 100000, Read = c => c.Runs.SnapshotEvery,
        },
        new("orchestrator.runs.passivate_after_s", "DEEPLINE_RUNS_PASSIVATE_AFTER", "120",
            "Stop a finished run's entity after it was idle this long (seconds).")
        {
            Kind = ConfigKind.Integer, Min = 1, Max = int.MaxValue, Read = c => c.Runs.PassivateAfterS,
        },
        new("orchestrator.runs.workflow_role", "DEEPLINE_RUNS_WORKFLOW_ROLE", "\"\"",
            "Cluster role whose nodes host the runs (workflow shards); other nodes reach them through a proxy; empty: every node.")
        {
            Kind = ConfigKind.Text, WhenUnset = "every node", Read = c => c.Runs.WorkflowRole,
        },
        new("orchestrator.admin.key", "DEEPLINE_ADMIN_KEY", "\"\"",
            "Shared admin key (X-Deepline-Admin-Key header) for mutating management endpoints; empty: without a keys file, loopback callers are admin.")
        {
            Kind = ConfigKind.Secret, Read = c => c.Admin.Key,
        },
        new("orchestrator.redis.connection", "DEEPLINE_REDIS", "\"\"",
            "Redis for cancel signals to external workers (StackExchange.Redis string, e.g. 127.0.0.1:6379); empty: no Redis.")
        {
            Kind = ConfigKind.Secret, Read = c => c.Redis.Connection,
        },
        new("orchestrator.redis.retention_s", "DEEPLINE_REDIS_RETENTION", "604800",
            "Cancelled runs older than this (seconds) are pruned from Redis (cancelled_runs and its hashes).")
        {
            Kind = ConfigKind.Integer, Min = 1, Max = int.MaxValue, Read = c => c.Redis.RetentionS,
        },
        new("orchestrator.auth.keys_file", "DEEPLINE_AUTH_KEYS_FILE", "\"\"",
            "API keys file (JSON or YAML: keys with name, key or key_sha256, role, client_id, pools); empty: open API, loopback host only.")
        {
            Kind = ConfigKind.Text, WhenUnset = "not configured (open API, loopback only)", Read = c => c.Auth.KeysFile,
        },
        new("orchestrator.limits.max_tasks_per_run", "DEEPLINE_LIMITS_MAX_TASKS_PER_RUN", "10000",
            "Most tasks one run may have (1..1000000); more is 422.")
        {
            Kind = ConfigKind.Integer, Min = 1, Max = 1000000, Read = c => c.Limits.MaxTasksPerRun,
        },
        new("orchestrator.limits.max_edges_per_run", "DEEPLINE_LIMITS_MAX_EDGES_PER_RUN", "100000",
            "Most dependency edges one run may have (1..10000000); more is 422.")
        {
            Kind = ConfigKind.Integer, Min = 1, Max = 10000000, Read = c => c.Limits.MaxEdgesPerRun,
        },
        new("orchestrator.limits.max_value_bytes", "DEEPLINE_LIMITS_MAX_VALUE_BYTES", "65536",
            "Most bytes of JSON in one task's params or one result (1..16777216); more is 422.")
        {
            Kind = ConfigKind.Integer, Min = 1, Max = 16777216, Read = c => c.Limits.MaxValueBytes,
        },
        new("orchestrator.limits.max_body_bytes", "DEEPLINE_LIMITS_MAX_BODY_BYTES", "8388608",
            "Most bytes of one request body (1024..268435456); more is 413.")
        {
            Kind = ConfigKind.Integer, Min = 1024, Max = 268435456, Read = c => c.Limits.MaxBodyBytes,
        },
        new("orchestrator.limits.body_timeout_s", "DEEPLINE_LIMITS_BODY_TIMEOUT", "30",
            "Seconds a request body may take to arrive (1..3600); slower is 408.")
        {
            Kind = ConfigKind.Integer, Min = 1, Max = 3600, Read = c => c.Limits.BodyTimeoutS,
        },
        new("orchestrator.limits.rate_per_second", "DEEPLINE_LIMITS_RATE_PER_SECOND", "500",
            "Requests per second per key (per address without keys) (0..1000000, 0 = unlimited); over it is 429 with Retry-After.")
        {
            Kind = ConfigKind.Integer, Min = 0, Max = 1000000, RequirementText = "an integer from 0 (unlimited) to 1000000", WhenUnset = "unlimited", Read = c => c.Limits.RatePerSecond,
        },
        new("orchestrator.limits.rate_burst", "DEEPLINE_LIMITS_RATE_BURST", "1000",
            "Requests a key may send at once above its rate (1..1000000).")
        {
            Kind = ConfigKind.Integer, Min = 1, Max = 1000000, Read = c => c.Limits.RateBurst,
        },
        new("orchestrator.limits.run_threshold_min_s", "DEEPLINE_LIMITS_RUN_THRESHOLD_MIN", "60",
            "Lowest pending_stale_s / workflow_stale_s a run may ask for (its heartbeat_timeout_s may not go below the node's).")
        {
            Kind = ConfigKind.Integer, Min = 1, Max = int.MaxValue, Read = c => c.Limits.RunThresholdMinS,
        },
        new("orchestrator.limits.run_threshold_max_s", "DEEPLINE_LIMITS_RUN_THRESHOLD_MAX", "86400",
            "Highest detector threshold (seconds) a run may ask for.")
        {
            Kind = ConfigKind.Integer, Min = 1, Max = int.MaxValue, Read = c => c.Limits.RunThresholdMaxS,
        },
        new("orchestrator.limits.max_open_runs_per_client", "DEEPLINE_LIMITS_MAX_OPEN_RUNS_PER_CLIENT", "20000",
            "Most runs one client may have open (RUNNING or CANCELLING) at once (0..10000000, 0 = unlimited); more is 429.")
        {
            Kind = ConfigKind.Integer, Min = 0, Max = 10000000, RequirementText = "an integer from 0 (unlimited) to 10000000", WhenUnset = "unlimited",
            Read = c => c.Limits.MaxOpenRunsPerClient,
        },
        new("orchestrator.limits.max_open_tasks_per_client", "DEEPLINE_LIMITS_MAX_OPEN_TASKS_PER_CLIENT", "200000",
            "Most unfinished tasks one client's open runs may hold at once (0..100000000, 0 = unlimited); more is 429.")
        {
            Kind = ConfigKind.Integer, Min = 0, Max = 100000000, RequirementText = "an integer from 0 (unlimited) to 100000000", WhenUnset = "unlimited",
            Read = c => c.Limits.MaxOpenTasksPerClient,
        },
        new("orchestrator.limits.bulk_cancel_rate", "DEEPLINE_LIMITS_BULK_CANCEL_RATE", "1000",
            "Most runs a second a bulk cancel (POST /runs/cancel) cancels, so live traffic keeps its latency (1..100000).")
        {
            Kind = ConfigKind.Integer, Min = 1, Max = 100000, Read = c => c.Limits.BulkCancelRate,
        },
        new("orchestrator.resources.default_capacity", "DEEPLINE_RESOURCES_DEFAULT_CAPACITY", "1",
            "Capacity of a resource nobody declared with PUT /resources/{name} (1..1000000).")
        {
            Kind = ConfigKind.Integer, Min = 1, Max = Deepline.Domain.Resources.ResourceLimits.MaxCapacity, Read = c => c.Resources.DefaultCapacity,
        },
        new("orchestrator.resources.claim_lease_s", "DEEPLINE_RESOURCES_CLAIM_LEASE", "30",
            "An external worker's claims (grants and waits) are released this long (seconds) after its last renewal (1..86400); renew every third of it.")
        {
            Kind = ConfigKind.Integer, Min = 1, Max = 86400, Read = c => c.Resources.ClaimLeaseS,
        },
        new("orchestrator.resources.max_claims_per_key", "DEEPLINE_RESOURCES_MAX_CLAIMS_PER_KEY", "10000",
            "Most claims (grants and waits) the external workers of one key may have at once (1..100000); more is 429.")
        {
            Kind = ConfigKind.Integer, Min = 1, Max = Deepline.Domain.Resources.ResourceLimits.MaxKnownResources, Read = c => c.Resources.MaxClaimsPerKey,
        },
        new("orchestrator.retry.max_attempts", "DEEPLINE_RETRY_MAX_ATTEMPTS", "3",
            "Attempts a task gets when its own retry policy does not say (1..100; 1: never retried).")
        {
            Kind = ConfigKind.Integer, Min = 1, Max = Deepline.Domain.RetryPolicy.MaxAttemptsLimit, Read = c => c.Retry.MaxAttempts,
        },
        new("orchestrator.retry.initial_interval_s", "DEEPLINE_RETRY_INITIAL_INTERVAL", "1",
            "Backoff (seconds, 0..86400) before the second attempt of a task without its own policy; 0: at once.")
        {
            Kind = ConfigKind.Integer, Min = 0, Max = 86400, Read = c => c.Retry.InitialIntervalS,
        },
        new("orchestrator.retry.backoff_coefficient", "DEEPLINE_RETRY_BACKOFF_COEFFICIENT", "2",
            "Each later backoff is the previous one times this (1..100).")
        {
            Kind = ConfigKind.Integer, Min = 1, Max = 100, Read = c => c.Retry.BackoffCoefficient,
        },
        new("orchestrator.retry.max_interval_s", "DEEPLINE_RETRY_MAX_INTERVAL", "60",
            "Longest backoff (seconds, 0..86400) between two attempts; 0: no cap beyond the initial interval's growth.")
        {
            Kind = ConfigKind.Integer, Min = 0, Max = 86400, Read = c => c.Retry.MaxIntervalS,
        },
        new("orchestrator.retry.pool_max_attempts", "DEEPLINE_RETRY_POOL_MAX_ATTEMPTS", "{}",
            "Attempts per pool for tasks without their own policy, pool: attempts (1..100) (env: gpu=5,io=2); other pools take max_attempts.")
        {
            Kind = ConfigKind.Pools, Min = 1, Max = Deepline.Domain.RetryPolicy.MaxAttemptsLimit, WhenUnset = "none", Read = c => c.Retry.PoolMaxAttempts,
        },
        new("orchestrator.retry.poison_after", "DEEPLINE_RETRY_POISON_AFTER", "3",
            "A task whose worker was lost (lease ran out, node gone) on this many attempts in a row fails as poison (1..100).")
        {
            Kind = ConfigKind.Integer, Min = 1, Max = 100, Read = c => c.Retry.PoisonAfter,
        },
        new("orchestrator.retention.succeeded_s", "DEEPLINE_RETENTION_SUCCEEDED", "604800",
            "Seconds a SUCCEEDED run is kept after it finished, then removed with its history (0..315360000, 0 = forever).")
        {
            Kind = ConfigKind.Integer, Min = 0, Max = 315360000, RequirementText = "an integer from 0 (forever) to 315360000", WhenUnset = "forever",
            Read = c => c.Retention.SucceededS,
        },
        new("orchestrator.retention.failed_s", "DEEPLINE_RETENTION_FAILED", "604800",
            "Seconds a FAILED run is kept after it finished, then removed with its history (0..315360000, 0 = forever).")
        {
            Kind = ConfigKind.Integer, Min = 0, Max = 315360000, RequirementText = "an integer from 0 (forever) to 315360000", WhenUnset = "forever",
            Read = c => c.Retention.FailedS,
        },
        new("orchestrator.retention.cancelled_s", "DEEPLINE_RETENTION_CANCELLED", "604800",
            "Seconds a CANCELLED run is kept after it finished, then removed with its history (0..315360000, 0 = forever).")
        {
            Kind = ConfigKind.Integer, Min = 0, Max = 315360000, RequirementText = "an integer from 0 (forever) to 315360000", WhenUnset = "forever",
            Read = c => c.Retention.CancelledS,
        },
        new("orchestrator.retention.max_finished_runs", "DEEPLINE_RETENTION_MAX_FINISHED_RUNS", "0",
            "Most finished runs kept; beyond it those that finished first are removed, whatever their age (0..1000000000, 0 = no cap).")
        {
            Kind = ConfigKind.Integer, Min = 0, Max = 1_000_000_000, RequirementText = "an integer from 0 (no cap) to 1000000000", WhenUnset = "no cap",
            Read = c => c.Retention.MaxFinishedRuns,
        },
        new("orchestrator.retention.archive_dir", "DEEPLINE_RETENTION_ARCHIVE_DIR", "\"\"",
            "Directory where removed runs' histories are written first (gzip JSON lines per hour, manifest.jsonl); empty: not archived.")
        {
            Kind = ConfigKind.Text, WhenUnset = "not archived", Read = c => c.RetentionArchiveDir,
        },
        new("orchestrator.store.provider", "DEEPLINE_STORE_PROVIDER", "sqlite",
            "sqlite (one file under data.dir, single node only) or postgresql (shared; required for a cluster of several nodes).")
        {
            Kind = ConfigKind.Text, Read = c => c.Store.Provider,
        },
        new("orchestrator.store.connection", "DEEPLINE_STORE_CONNECTION", "\"\"",
            "Npgsql connection string of the PostgreSQL store (never printed); required with provider postgresql.")
        {
            Kind = ConfigKind.Secret, Read = c => c.Store.Connection,
        },
    ];

    private static readonly Dictionary<string, ConfigKey> ByPath = All.ToDictionary(k => k.Path, StringComparer.Ordinal);

    /// <summary>The key at <paramref name="path"/>; a typo in the loader fails at once, not as a silent default.</summary>
    public static ConfigKey At(string path) => ByPath[path];

    public static bool Contains(string path) => ByPath.ContainsKey(path);
}
