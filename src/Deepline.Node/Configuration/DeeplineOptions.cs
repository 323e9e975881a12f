using Microsoft.Extensions.Configuration;

namespace Deepline.Node.Configuration;

// The options classes, one per config.yaml section, bound from IConfiguration by ConfigurationBinder. Their keys are
// config.yaml's (snake_case, ConfigurationKeyName); their defaults come from the key table through the configuration's
// lowest source, so no default is written here. DeeplineConfig is built from them once they were checked.

public sealed class DeadlockOptions
{
    public const string Section = "orchestrator:deadlock";
    [ConfigurationKeyName("check_interval_s")] public int CheckIntervalS { get; set; }
    [ConfigurationKeyName("pending_stale_s")] public int PendingStaleS { get; set; }
    [ConfigurationKeyName("workflow_stale_s")] public int WorkflowStaleS { get; set; }
    [ConfigurationKeyName("cancel_on_deadlock")] public bool CancelOnDeadlock { get; set; }
    [ConfigurationKeyName("alert_webhook")] public string AlertWebhook { get; set; } = "";
    [ConfigurationKeyName("max_dependency_depth")] public int MaxDependencyDepth { get; set; }
    [ConfigurationKeyName("heartbeat_timeout_s")] public int HeartbeatTimeoutS { get; set; }
    [ConfigurationKeyName("cancel_timeout_s")] public int CancelTimeoutS { get; set; }
    [ConfigurationKeyName("alert_format")] public string AlertFormat { get; set; } = "";
    [ConfigurationKeyName("alert_routing_key")] public string AlertRoutingKey { get; set; } = "";
    [ConfigurationKeyName("alert_timeout_s")] public int AlertTimeoutS { get; set; }
    [ConfigurationKeyName("alert_retries")] public int AlertRetries { get; set; }
    [ConfigurationKeyName("monitor_role")] public string MonitorRole { get; set; } = "";
    [ConfigurationKeyName("victim")] public string Victim { get; set; } = "";

    public DeadlockConfig ToConfig() =>
        new(CheckIntervalS, PendingStaleS, WorkflowStaleS, CancelOnDeadlock, AlertWebhook, MaxDependencyDepth, HeartbeatTimeoutS, CancelTimeoutS)
        {
            AlertFormat = AlertFormat,
            AlertRoutingKey = AlertRoutingKey,
            AlertTimeoutS = AlertTimeoutS,
            AlertRetries = AlertRetries,
            MonitorRole = MonitorRole,
            Victim = Victim,
        };
}

public sealed class HttpOptions
{
    public const string Section = "orchestrator:http";
    [ConfigurationKeyName("host")] public string Host { get; set; } = "";
    [ConfigurationKeyName("port")] public int Port { get; set; }

    public HttpConfig ToConfig() => new(Host, Port);
}

public sealed class RemotingOptions
{
    public const string Section = "orchestrator:remoting";
    [ConfigurationKeyName("host")] public string Host { get; set; } = "";
    [ConfigurationKeyName("port")] public int Port { get; set; }
    [ConfigurationKeyName("roles")] public List<string> Roles { get; set; } = [];
    [ConfigurationKeyName("down_unreachable_after_s")] public int DownUnreachableAfterS { get; set; }
    [ConfigurationKeyName("tls_certificate")] public string TlsCertificate { get; set; } = "";
    [ConfigurationKeyName("tls_certificate_password")] public string TlsCertificatePassword { get; set; } = "";
    [ConfigurationKeyName("seed_nodes")] public List<string> SeedNodes { get; set; } = [];

    public RemotingConfig ToConfig() => new(Host, Port, [.. SeedNodes])
    {
        Roles = [.. Roles.Distinct(StringComparer.Ordinal)],
        DownUnreachableAfterS = DownUnreachableAfterS,
        TlsCertificate = TlsCertificate,
        TlsCertificatePassword = TlsCertificatePassword,
    };
}

public sealed class DataDirOptions
{
    public const string Section = "orchestrator:data";
    [ConfigurationKeyName("dir")] public string Dir { get; set; } = "";
}

public sealed class LoggingOptions
{
    public const string Section = "orchestrator:logging";
    [ConfigurationKeyName("dir")] public string Dir { get; set; } = "";
    [ConfigurationKeyName("console_format")] public string ConsoleFormat { get; set; } = LoggingConfig.Text;
    [ConfigurationKeyName("level")] public string Level { get; set; } = "info";
}

public sealed class ProcessOptions
{
    [ConfigurationKeyName("allowed_commands")] public List<string> AllowedCommands { get; set; } = [];
    [ConfigurationKeyName("user")] public string User { get; set; } = "";
}

public sealed class WorkersOptions
{
    public const string Section = "orchestrator:workers";
    [ConfigurationKeyName("enabled")] public bool Enabled { get; set; }
    [ConfigurationKeyName("slots")] public int Slots { get; set; }
    [ConfigurationKeyName("cancel_grace_s")] public int CancelGraceS { get; set; }
    [ConfigurationKeyName("process")] public ProcessOptions Process { get; set; } = new();

    /// <summary>
    /// Not bound by name: a pool name may hold ':' (e.g. tenant:a), which configuration keys use as their separator.
    /// <see cref="Bind"/> reads every leaf under <c>pools</c> as one name.
    /// </summary>
    [ConfigurationKeyName("pools-read-by-Bind")] public Dictionary<string, int> Pools { get; set; } = new(StringComparer.Ordinal);

    public static WorkersOptions Bind(IConfiguration configuration)
    {
        var section = configuration.GetSection(Section);
        var options = section.Get<WorkersOptions>() ?? new WorkersOptions();
        options.Pools = section.GetSection("pools").AsEnumerable(makePathsRelative: true)
            .Where(kv => !string.IsNullOrEmpty(kv.Value))
            .ToDictionary(kv => kv.Key, kv => int.Parse(kv.Value!, System.Globalization.CultureInfo.InvariantCulture), StringComparer.Ordinal);
        return options;
    }

    public WorkersConfig ToConfig() => new(Enabled, Slots, Pools, CancelGraceS)
    {
        ProcessAllowedCommands = [.. Process.AllowedCommands.Distinct(StringComparer.Ordinal)],
        ProcessUser = Process.User,
    };
}

public sealed class RunsOptions
{
    public const string Section = "orchestrator:runs";
    [ConfigurationKeyName("snapshot_every")] public int SnapshotEvery { get; set; }
    [ConfigurationKeyName("passivate_after_s")] public int PassivateAfterS { get; set; }
    [ConfigurationKeyName("workflow_role")] public string WorkflowRole { get; set; } = "";

    public RunsConfig ToConfig() => new(SnapshotEvery, PassivateAfterS) { WorkflowRole = WorkflowRole };
}

public sealed class AdminOptions
{
    public const string Section = "orchestrator:admin";
    [ConfigurationKeyName("key")] public string Key { get; set; } = "";
}

public sealed class RedisOptions
{
    public const string Section = "orchestrator:redis";
    [ConfigurationKeyName("connection")] public string Connection { get; set; } = "";
    [ConfigurationKeyName("retention_s")] public int RetentionS { get; set; }
}

public sealed class AuthOptions
{
    public const string Section = "orchestrator:auth";
    [ConfigurationKeyName("keys_file")] public string KeysFile { get; set; } = "";
}

public sealed class LimitsOptions
{
    public const string Section = "orchestrator:limits";
    [ConfigurationKeyName("max_tasks_per_run")] public int MaxTasksPerRun { get; set; }
    [ConfigurationKeyName("max_edges_per_run")] public int MaxEdgesPerRun { get; set; }
    [ConfigurationKeyName("max_value_bytes")] public int MaxValueBytes { get; set; }
    [ConfigurationKeyName("max_body_bytes")] public int MaxBodyBytes { get; set; }
    [ConfigurationKeyName("body_timeout_s")] public int BodyTimeoutS { get; set; }
    [ConfigurationKeyName("rate_per_second")] public int RatePerSecond { get; set; }
    [ConfigurationKeyName("rate_burst")] public int RateBurst { get; set; }
    [ConfigurationKeyName("run_threshold_min_s")] public int RunThresholdMinS { get; set; }
    [ConfigurationKeyName("run_threshold_max_s")] public int RunThresholdMaxS { get; set; }
    [ConfigurationKeyName("max_open_runs_per_client")] public int MaxOpenRunsPerClient { get; set; }
    [ConfigurationKeyName("max_open_tasks_per_client")] public int MaxOpenTasksPerClient { get; set; }
    [ConfigurationKeyName("bulk_cancel_rate")] public int BulkCancelRate { get; set; }

    public LimitsConfig ToConfig() => new(MaxTasksPerRun, MaxEdgesPerRun, MaxValueBytes, MaxBodyBytes, BodyTimeoutS, RatePerSecond, RateBurst,
        RunThresholdMinS, RunThresholdMaxS, MaxOpenRunsPerClient, MaxOpenTasksPerClient, BulkCancelRate);
}

public sealed class RetentionOptions
{
    public const string Section = "orchestrator:retention";
    [ConfigurationKeyName("succeeded_s")] public int SucceededS { get; set; }
    [ConfigurationKeyName("failed_s")] public int FailedS { get; set; }
    [ConfigurationKeyName("cancelled_s")] public int CancelledS { get; set; }
    [ConfigurationKeyName("max_finished_runs")] public int MaxFinishedRuns { get; set; }
    [ConfigurationKeyName("archive_dir")] public string ArchiveDir { get; set; } = "";
}

public sealed class ResourcesOptions
{
    public const string Section = "orchestrator:resources";
    [ConfigurationKeyName("default_capacity")] public int DefaultCapacity { get; set; }
    [ConfigurationKeyName("claim_lease_s")] public int ClaimLeaseS { get; set; }
    [ConfigurationKeyName("max_claims_per_key")] public int MaxClaimsPerKey { get; set; }
}

public sealed class RetryOptions
{
    public const string Section = "orchestrator:retry";
    [ConfigurationKeyName("max_attempts")] public int MaxAttempts { get; set; }
    [ConfigurationKeyName("initial_interval_s")] public int InitialIntervalS { get; set; }
    [ConfigurationKeyName("backoff_coefficient")] public int BackoffCoefficient { get; set; }
    [ConfigurationKeyName("max_interval_s")] public int MaxIntervalS { get; set; }
    [ConfigurationKeyName("poison_after")] public int PoisonAfter { get; set; }

    /// <summary>Read by <see cref="Bind"/>, as workers.pools is: a pool name may hold ':'.</summary>
    [ConfigurationKeyName("pool_max_attempts-read-by-Bind")] public Dictionary<string, int> PoolMaxAttempts { get; set; } = new(StringComparer.Ordinal);

    public static RetryOptions Bind(IConfiguration configuration)
    {
        var section = configuration.GetSection(Section);
        var options = section.Get<RetryOptions>() ?? new RetryOptions();
        options.PoolMaxAttempts = section.GetSection("pool_max_attempts").AsEnumerable(makePathsRelative: true)
            .Where(kv => !string.IsNullOrEmpty(kv.Value))
            .ToDictionary(kv => kv.Key, kv => int.Parse(kv.Value!, System.Globalization.CultureInfo.InvariantCulture), StringComparer.Ordinal);
        return options;
    }
}

public sealed class StoreOptions
{
    public const string Section = "orchestrator:store";
    [ConfigurationKeyName("provider")] public string Provider { get; set; } = "";
    [ConfigurationKeyName("connection")] public string Connection { get; set; } = "";
}

/// <summary>Every section bound from one configuration, their validators, and the <see cref="DeeplineConfig"/> they make.</summary>
public sealed record DeeplineSections(
    DeadlockOptions Deadlock,
    HttpOptions Http,
    RemotingOptions Remoting,
    DataDirOptions Data,
    LoggingOptions Logging,
    WorkersOptions Workers,
    RunsOptions Runs,
    AdminOptions Admin,
    RedisOptions Redis,
    AuthOptions Auth,
    LimitsOptions Limits,
    ResourcesOptions Resources,
    RetryOptions Retry,
    StoreOptions Store,
    RetentionOptions Retention)
{
    public static DeeplineSections Bind(IConfiguration configuration)
    {
        T Get<T>(string section) where T : new() => configuration.GetSection(section).Get<T>() ?? new T();
        return new DeeplineSections(
            Get<DeadlockOptions>(DeadlockOptions.Section),
            Get<HttpOptions>(HttpOptions.Section),
            Get<RemotingOptions>(RemotingOptions.Section),
            Get<DataDirOptions>(DataDirOptions.Section),
            Get<LoggingOptions>(LoggingOptions.Section),
            WorkersOptions.Bind(configuration),
            Get<RunsOptions>(RunsOptions.Section),
            Get<AdminOptions>(AdminOptions.Section),
            Get<RedisOptions>(RedisOptions.Section),
            Get<AuthOptions>(AuthOptions.Section),
            Get<LimitsOptions>(LimitsOptions.Section),
            Get<ResourcesOptions>(ResourcesOptions.Section),
            RetryOptions.Bind(configuration),
            Get<StoreOptions>(StoreOptions.Section),
            Get<RetentionOptions>(RetentionOptions.Section));
    }

    /// <summary>Every problem every section's validator finds, one line each, in config.yaml's order.</summary>
    public IEnumerable<string> Validate(ConfigOrigins origins)
    {
        var remoting = Microsoft.Extensions.Options.Options.Create(Remoting);
        Microsoft.Extensions.Options.ValidateOptionsResult[] results =
        [
            new DeadlockOptionsValidator(origins).Validate(null, Deadlock),
            new HttpOptionsValidator(origins, Microsoft.Extensions.Options.Options.Create(Auth)).Validate(null, Http),
            new RemotingOptionsValidator(origins).Validate(null, Remoting),
            new DataDirOptionsValidator(origins).Validate(null, Data),
            new LoggingOptionsValidator(origins).Validate(null, Logging),
            new WorkersOptionsValidator(origins).Validate(null, Workers),
            new RunsOptionsValidator(origins, remoting).Validate(null, Runs),
            new AdminOptionsValidator(origins).Validate(null, Admin),
            new RedisOptionsValidator(origins).Validate(null, Redis),
            new LimitsOptionsValidator(origins).Validate(null, Limits),
            new StoreOptionsValidator(origins, remoting).Validate(null, Store),
        ];
        return results.Where(r => r.Failed).SelectMany(r => r.Failures ?? []);
    }

    public DeeplineConfig ToConfig() =>
        new(Deadlock.ToConfig(), Http.ToConfig(), Remoting.ToConfig(), new DataConfig(Data.Dir), Workers.ToConfig(), Runs.ToConfig())
        {
            Admin = new AdminConfig(Admin.Key),
            Redis = new RedisConfig(Redis.Connection, Redis.RetentionS),
            Auth = new AuthConfig(Auth.KeysFile),
            Limits = Limits.ToConfig(),
            Logging = new LoggingConfig(Logging.Dir) { ConsoleFormat = Logging.ConsoleFormat, Level = Logging.Level },
            Resources = new ResourcesConfig(Resources.DefaultCapacity, Resources.ClaimLeaseS, Resources.MaxClaimsPerKey),
            Retry = new RetryConfig(Retry.MaxAttempts, Retry.InitialIntervalS, Retry.BackoffCoefficient, Retry.MaxIntervalS, Retry.PoisonAfter)
            {
                PoolMaxAttempts = Retry.PoolMaxAttempts,
            },
            Store = new StoreConfig(Store.Provider, Store.Connection),
            Retention = new Deepline.Domain.RetentionPolicy(Retention.SucceededS, Retention.FailedS, Retention.CancelledS)
            {
                MaxFinishedRuns = Retention.MaxFinishedRuns,
            },
            RetentionArchiveDir = Retention.ArchiveDir,
        };
}
