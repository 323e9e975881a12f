using System.Collections.Immutable;
using Microsoft.Extensions.Logging;
namespace Deepline.Node.Configuration;

/// <summary>The node's whole configuration after config.yaml and the environment were merged and validated.</summary>
public sealed record DeeplineConfig(
    DeadlockConfig Deadlock,
    HttpConfig Http,
    RemotingConfig Remoting,
    DataConfig Data,
    WorkersConfig Workers,
    RunsConfig Runs)
{
    /// <summary>Every key at its default from the key table (<see cref="ConfigKeys.All"/>), bound as a loaded file would be.</summary>
    public static DeeplineConfig Defaults { get; } =
        DeeplineSections.Bind(DeeplineConfigurationSources.Build(null, new Dictionary<string, string?>())).ToConfig();

    /// <summary>Not positional so that adding it broke no caller; defaults to no key (an open node then makes loopback callers admin).</summary>
    public AdminConfig Admin { get; init; } = AdminConfig.Disabled;
    /// <summary>Redis mirroring of cancels; a property rather than a constructor argument so sections can be added independently.</summary>
    public RedisConfig Redis { get; init; } = RedisConfig.Defaults;

    /// <summary>API keys and roles; without a keys file the API is open to the (loopback-only) host.</summary>
    public AuthConfig Auth { get; init; } = AuthConfig.Open;

    /// <summary>What one caller or one run may cost the node.</summary>
    public LimitsConfig Limits { get; init; } = LimitsConfig.Defaults;

    /// <summary>Optional rolling log files beside the console.</summary>
    public LoggingConfig Logging { get; init; } = LoggingConfig.ConsoleOnly;

    /// <summary>Named resources tasks may need (issue 12).</summary>
    public ResourcesConfig Resources { get; init; } = ResourcesConfig.Defaults;

    public RetryConfig Retry { get; init; } = RetryConfig.Defaults;

    /// <summary>How long finished runs are kept, per terminal state (orchestrator.retention.*).</summary>
    public Deepline.Domain.RetentionPolicy Retention { get; init; } = Deepline.Domain.RetentionPolicy.Forever;

    /// <summary>Where removed runs are archived first (orchestrator.retention.archive_dir); empty: not archived.</summary>
    public string RetentionArchiveDir { get; init; } = "";

    /// <summary>Where journal, snapshots, remember-entities and the run index live.</summary>
    public StoreConfig Store { get; init; } = StoreConfig.Embedded;

    /// <summary>
    /// One line each about input that was accepted but written in an older form (e.g. the seed's top-level
    /// <c>deadlock:</c>), for the start-up log. Empty for a file in the documented form.
    /// </summary>
    public IReadOnlyList<string> Notices { get; init; } = NoNotices;

    private static readonly string[] NoNotices = [];

    /// <summary>When /health calls the run index degraded; not read from config.yaml yet (the defaults suit every deployment we know).</summary>
    public IntegrityConfig Integrity { get; init; } = IntegrityConfig.Defaults;
}

/// <summary>The run index is degraded past this lag (events), or when it has not moved for this long with events to apply.</summary>
public sealed record IntegrityConfig(long IndexLagDegradedEvents, TimeSpan IndexStalledAfter)
{
    public static IntegrityConfig Defaults { get; } = new(1000, TimeSpan.FromSeconds(30));
}

/// <summary>
/// <c>sqlite</c>: one file under data.dir, for a single node. <c>postgresql</c>: a shared server, the only store a
/// cluster of several nodes may use. <see cref="Connection"/> is an Npgsql connection string and may hold a password:
/// never shown.
/// </summary>
public sealed record StoreConfig(string Provider, string Connection)
{
    public const string Sqlite = "sqlite";
    public const string PostgreSql = "postgresql";

    public static StoreConfig Embedded { get; } = new(Sqlite, "");

    public bool IsPostgreSql => Provider == PostgreSql;

    public override string ToString() => $"StoreConfig {{ Provider = {Provider}, Connection = {(Connection.Length > 0 ? "configured" : "not configured")} }}";
}

/// <summary>Where the API keys live; the file holds secrets (or their digests) and is re-read when it changes.</summary>
public sealed record AuthConfig(string KeysFile)
{
    public static AuthConfig Open { get; } = new("");

    public bool Enabled => KeysFile.Length > 0;
}

/// <summary>
/// Limits with a 4xx answer each: sizes of a run and its values, of a request body and how long it may take to
/// arrive, a per-key request rate (token bucket), and the range a run's own detector thresholds may take.
/// </summary>
public sealed record LimitsConfig(
    int MaxTasksPerRun,
    int MaxEdgesPerRun,
    int MaxValueBytes,
    int MaxBodyBytes,
    int BodyTimeoutS,
    int RatePerSecond,
    int RateBurst,
    int RunThresholdMinS,
    int RunThresholdMaxS,
    int MaxOpenRunsPerClient = LimitsConfig.DefaultMaxOpenRunsPerClient,
    int MaxOpenTasksPerClient = LimitsConfig.DefaultMaxOpenTasksPerClient,
    int BulkCancelRate = LimitsConfig.DefaultBulkCancelRate)
{
    public const int DefaultMaxOpenRunsPerClient = 20_000;
    public const int DefaultMaxOpenTasksPerClient = 200_000;
    public const int DefaultBulkCancelRate = 1_000;

    public static LimitsConfig Defaults { get; } = new(10_000, 100_000, 65_536, 8_388_608, 30, 500, 1_000, 60, 86_400);
}

/// <summary>The seed's orchestrator.deadlock block plus our own keys.</summary>
public sealed record DeadlockConfig(
    int CheckIntervalS,
    int PendingStaleS,
    int WorkflowStaleS,
    bool CancelOnDeadlock,
    string AlertWebhook,
    int MaxDependencyDepth,
    int HeartbeatTimeoutS,
    int CancelTimeoutS)
{
    public string AlertFormat { get; init; } = "auto";

    /// <summary>PagerDuty routing key: a secret, shown only as configured / not configured.</summary>
    public string AlertRoutingKey { get; init; } = "";

    public int AlertTimeoutS { get; init; } = 5;

    public int AlertRetries { get; init; } = 3;

    /// <summary>Role of the nodes that may host the monitor's singletons; empty: any node.</summary>
    public string MonitorRole { get; init; } = "";

    /// <summary>The victim policy of resource deadlocks: youngest, least_work or lowest_priority.</summary>
    public string Victim { get; init; } = "youngest";
}

/// <summary>
/// <see cref="DefaultCapacity"/>: the capacity of a resource nobody declared. <see cref="ClaimLeaseS"/>: seconds an
/// external worker's claims live after its last renewal. <see cref="MaxClaimsPerKey"/>: claims one key's workers may have.
/// </summary>
public sealed record ResourcesConfig(int DefaultCapacity, int ClaimLeaseS, int MaxClaimsPerKey)
{
    public static ResourcesConfig Defaults { get; } = new(1, 30, 10_000);
}

/// <summary>The node's retry policy for tasks without their own (Temporal's shape) and the poison rule for lost workers.</summary>
public sealed record RetryConfig(int MaxAttempts, int InitialIntervalS, int BackoffCoefficient, int MaxIntervalS, int PoisonAfter)
{
    public static RetryConfig Defaults { get; } = new(3, 1, 2, 60, 3);

    /// <summary>Attempts per pool for tasks without their own policy; a pool not listed takes <see cref="MaxAttempts"/>.</summary>
    public IReadOnlyDictionary<string, int> PoolMaxAttempts { get; init; } = new Dictionary<string, int>();

    public Deepline.Domain.RetrySettings ToSettings() =>
        new(new Deepline.Domain.RetryPolicy(MaxAttempts, InitialIntervalS, BackoffCoefficient, MaxIntervalS), PoisonAfter)
        {
            PoolMaxAttempts = PoolMaxAttempts.ToImmutableDictionary(StringComparer.Ordinal),
        };
}

public sealed record HttpConfig(string Host, int Port);

/// <summary>Akka.Remote endpoint; with no seed nodes the node joins itself (a single-node cluster).</summary>
public sealed record RemotingConfig(string Host, int Port, IReadOnlyList<string> SeedNodes)
{
    /// <summary>Extra cluster roles of this node; "worker" is added when it serves in-cluster pools.</summary>
    public IReadOnlyList<string> Roles { get; init; } = [];

    /// <summary>The split-brain resolver (keep-majority) downs the minority side after the membership was stable this long.</summary>
    public int DownUnreachableAfterS { get; init; } = 20;

    /// <summary>PKCS#12 file of the cluster certificate; empty: Akka.Remote without TLS (a private network only).</summary>
    public string TlsCertificate { get; init; } = "";

    /// <summary>Password of <see cref="TlsCertificate"/>: a secret, never shown.</summary>
    public string TlsCertificatePassword { get; init; } = "";

    public override string ToString() =>
        $"RemotingConfig {{ Host = {Host}, Port = {Port}, SeedNodes = [{string.Join(", ", SeedNodes)}], Tls = {(TlsCertificate.Length > 0 ? TlsCertificate : "off")} }}";
}

public sealed record DataConfig(string Dir);

/// <summary>
/// <see cref="Dir"/>: where orchestrator.log (everything but the worker pools) and worker.log (the pools: task starts,
/// cancels, aborts) roll; empty: console only. The file names are the seed's, so its troubleshooting greps work.
/// </summary>
public sealed record LoggingConfig(string Dir)
{
    public static LoggingConfig ConsoleOnly { get; } = new("");

    public const string Text = "text";
    public const string Json = "json";

    /// <summary><see cref="Text"/> or <see cref="Json"/> (one JSON object per line): <c>orchestrator.logging.console_format</c>.</summary>
    public string ConsoleFormat { get; init; } = Text;

    /// <summary>The names <c>orchestrator.logging.level</c> takes, lowest first.</summary>
    public static readonly string[] Levels = ["debug", "info", "warning", "error"];

    /// <summary>One of <see cref="Levels"/>: <c>orchestrator.logging.level</c>.</summary>
    public string Level { get; init; } = "info";

    /// <summary>The level as Microsoft.Extensions.Logging's.</summary>
    public LogLevel MinimumLevel => Level switch
    {
        "debug" => LogLevel.Debug,
        "warning" => LogLevel.Warning,
        "error" => LogLevel.Error,
        _ => LogLevel.Information,
    };

    /// <summary>The level as Akka's akka.loglevel (it filters before anything reaches the loggers).</summary>
    public string AkkaLevel => Level switch
    {
        "debug" => "DEBUG",
        "warning" => "WARNING",
        "error" => "ERROR",
        _ => "INFO",
    };

    public bool Enabled => Dir.Length > 0;
}

/// <summary>
/// In-cluster worker pools: <see cref="Slots"/> for pool "default", <see cref="Pools"/> for any others;
/// <see cref="CancelGraceS"/>: how long a cancelled handler may take to return before its pool abandons it.
/// </summary>
public sealed record WorkersConfig(bool Enabled, int Slots, IReadOnlyDictionary<string, int> Pools, int CancelGraceS = 10)
{
    /// <summary>Commands process tasks may run (names or absolute paths as tasks write them, or *); empty: none.</summary>
    public IReadOnlyList<string> ProcessAllowedCommands { get; init; } = [];

    /// <summary>Account process tasks run as (the node must run as root to switch); empty: the node's own.</summary>
    public string ProcessUser { get; init; } = "";
}

/// <summary>Entity tuning: snapshot every N events, passivate a finished run after it was idle this long.</summary>
public sealed record RunsConfig(int SnapshotEvery, int PassivateAfterS)
{
    /// <summary>Role of the nodes that host runs (workflow shards); empty: every node.</summary>
    public string WorkflowRole { get; init; } = "";
}

/// <summary>The shared admin key guarding mutating management endpoints; empty: those endpoints are disabled.</summary>
public sealed record AdminConfig(string Key)
{
    public static AdminConfig Disabled { get; } = new("");

    public bool Enabled => Key.Length > 0;

    /// <summary>Never the key itself: records print their members, and this one is a secret.</summary>
    public override string ToString() => $"AdminConfig {{ Key = {(Enabled ? "configured" : "not configured")} }}";
}

/// <summary>Redis cancel signals for workers outside the cluster: an empty <see cref="Connection"/> means no Redis.</summary>
/// <param name="Connection">StackExchange.Redis configuration string (e.g. <c>127.0.0.1:6379</c>); may hold a password, never shown.</param>
/// <param name="RetentionS">Cancelled runs older than this (seconds) are pruned from the set, the hashes and the time index.</param>
public sealed record RedisConfig(string Connection, int RetentionS)
{
    public static RedisConfig Defaults { get; } = new("", 604_800);

    public bool Enabled => Connection.Length > 0;
}
