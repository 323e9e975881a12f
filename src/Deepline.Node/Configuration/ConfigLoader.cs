using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;
using YamlDotNet.Core;
using YamlDotNet.Core.Events;
using YamlDotNet.RepresentationModel;

namespace Deepline.Node.Configuration;

/// <summary>
/// Loads <see cref="DeeplineConfig"/> from config.yaml and DEEPLINE_* environment variables.
/// <list type="bullet">
/// <item>File: the <c>configPath</c> argument, else <c>DEEPLINE_CONFIG</c>, else <c>./config.yaml</c> if it
/// exists, else pure <see cref="DeeplineConfig.Defaults"/>. A named file that does not exist is an error.</item>
/// <item>Every key may be absent (its default applies) and every key has an environment override
/// (<see cref="Keys"/>); the environment wins over the file.</item>
/// <item>Unknown keys, wrong types and bad values are errors; all of them are collected and thrown
/// together as one <see cref="ConfigException"/>, one problem per line, each naming the key at fault
/// and, when the value came from the environment, the variable.</item>
/// </list>
/// </summary>
public static partial class ConfigLoader
{
    /// <summary>Environment variable naming the config file when no path is passed.</summary>
    public const string ConfigPathVariable = "DEEPLINE_CONFIG";

    /// <summary>The file looked for in the working directory when no path is named.</summary>
    public const string DefaultFileName = "config.yaml";

    private const string Deadlock = "orchestrator.deadlock.";
    private const string Http = "orchestrator.http.";
    private const string Remoting = "orchestrator.remoting.";
    private const string Data = "orchestrator.data.";
    private const string Workers = "orchestrator.workers.";
    private const string Runs = "orchestrator.runs.";
    private const string Admin = "orchestrator.admin.";

    /// <summary>Shorter keys can be guessed; 16 characters is the floor for a shared secret sent in a header.</summary>
    public const int MinAdminKeyLength = 16;
    private const string Redis = "orchestrator.redis.";
    private const string Auth = "orchestrator.auth.";
    private const string Limits = "orchestrator.limits.";
    private const string Store = "orchestrator.store.";
    private const string Process = "orchestrator.workers.process.";
    private const string Logging = "orchestrator.logging.";
    private const string ResourcesSection = "orchestrator.resources.";
    private static readonly string[] VictimPolicies = Enum.GetNames<Deepline.Domain.Resources.VictimPolicy>();

    private const int MaxSlots = 1024;
    private const int MaxDependencyDepth = 100_000;
    private const int MaxSnapshotEvery = 100_000;
    private const int MaxCancelGraceS = 3600;

    /// <summary>
    /// Every configuration key in config.yaml order, with its environment override, default and description.
    /// Environment names are <c>DEEPLINE_&lt;SECTION&gt;_&lt;KEY&gt;</c> upper-cased with a trailing <c>_S</c>
    /// dropped; <c>alert_webhook</c> is the seed's <c>DEEPLINE_DEADLOCK_WEBHOOK</c>.
    /// </summary>
    public static IReadOnlyList<ConfigKey> Keys { get; } =
    [
        new(Deadlock + "check_interval_s", "DEEPLINE_DEADLOCK_CHECK_INTERVAL", "60",
            "How often (seconds) the deadlock supervisor scans the run index."),
        new(Deadlock + "pending_stale_s", "DEEPLINE_DEADLOCK_PENDING_STALE", "900",
            "A run with nothing RUNNING and no task transition for this long (seconds) is stale_pending."),
        new(Deadlock + "workflow_stale_s", "DEEPLINE_DEADLOCK_WORKFLOW_STALE", "3600",
            "A run older than this (seconds) and not terminal is run_timeout."),
        new(Deadlock + "cancel_on_deadlock", "DEEPLINE_DEADLOCK_CANCEL_ON_DEADLOCK", "true",
            "Cancel runs found deadlocked (false: only alert and count)."),
        new(Deadlock + "alert_webhook", "DEEPLINE_DEADLOCK_WEBHOOK", "\"\"",
            "http(s) webhook (Slack/PagerDuty) alerted once per deadlocked run; empty: no alerts."),
        new(Deadlock + "max_dependency_depth", "DEEPLINE_DEADLOCK_MAX_DEPENDENCY_DEPTH", "50",
            "Longest task dependency chain accepted at submission (1..100000)."),
        new(Deadlock + "heartbeat_timeout_s", "DEEPLINE_DEADLOCK_HEARTBEAT_TIMEOUT", "60",
            "A RUNNING task with no worker heartbeat for this long (seconds) is no_heartbeat."),
        new(Deadlock + "cancel_timeout_s", "DEEPLINE_DEADLOCK_CANCEL_TIMEOUT", "30",
            "How long (seconds) a cancel waits for running tasks to acknowledge before it is forced."),
        new(Deadlock + "alert_format", "DEEPLINE_DEADLOCK_ALERT_FORMAT", "auto",
            "Alert body: slack, pagerduty, generic, or auto (inferred from the webhook's host)."),
        new(Deadlock + "alert_routing_key", "DEEPLINE_DEADLOCK_ALERT_ROUTING_KEY", "\"\"",
            "PagerDuty Events API v2 routing key (secret: never printed)."),
        new(Deadlock + "alert_timeout_s", "DEEPLINE_DEADLOCK_ALERT_TIMEOUT", "5",
            "Timeout (seconds) of one webhook delivery attempt."),
        new(Deadlock + "alert_retries", "DEEPLINE_DEADLOCK_ALERT_RETRIES", "3",
            "Retries (exponential backoff) after a failed or timed-out delivery (0..10)."),
        new(Deadlock + "monitor_role", "DEEPLINE_DEADLOCK_MONITOR_ROLE", "\"\"",
            "Cluster role whose nodes may host the deadlock supervisor and run index singletons; empty: any node."),
        new(Deadlock + "victim", "DEEPLINE_DEADLOCK_VICTIM", "youngest",
            "Which run of a resource deadlock cycle is cancelled: youngest, least_work (fewest succeeded tasks) or lowest_priority."),
        new(Http + "host", "DEEPLINE_HTTP_HOST", "127.0.0.1",
            "Address the HTTP API listens on."),
        new(Http + "port", "DEEPLINE_HTTP_PORT", "8001",
            "Port of the HTTP API (1..65535)."),
        new(Remoting + "host", "DEEPLINE_REMOTING_HOST", "127.0.0.1",
            "Address Akka.Remote binds to and advertises."),
        new(Remoting + "port", "DEEPLINE_REMOTING_PORT", "4053",
            "Akka.Remote port (0..65535, 0 = pick a free one)."),
        new(Remoting + "roles", "DEEPLINE_REMOTING_ROLES", "[]",
            "Extra cluster roles of this node (\"worker\" is added when it serves pools), e.g. [monitor]."),
        new(Remoting + "down_unreachable_after_s", "DEEPLINE_REMOTING_DOWN_UNREACHABLE_AFTER", "20",
            "Split-brain resolver (keep-majority): seconds of stable membership after which the minority side is downed (1..600)."),
        new(Remoting + "tls_certificate", "DEEPLINE_REMOTING_TLS_CERTIFICATE", "\"\"",
            "PKCS#12 file (.pfx) of the cluster certificate with its private key: Akka.Remote then speaks TLS and accepts only peers holding it; empty: no TLS."),
        new(Remoting + "tls_certificate_password", "DEEPLINE_REMOTING_TLS_CERTIFICATE_PASSWORD", "\"\"",
            "Password of the cluster certificate file (never printed)."),
        new(Remoting + "seed_nodes", "DEEPLINE_REMOTING_SEED_NODES", "[]",
            "Cluster seed nodes as akka.tcp://<system>@<host>:<port> (env: comma separated); empty: join itself."),
        new(Data + "dir", "DEEPLINE_DATA_DIR", "./data",
            "Directory for the node's local data (SQLite journal and snapshots)."),
        new(Logging + "dir", "DEEPLINE_LOGGING_DIR", "\"\"",
            "Directory for rolling log files orchestrator.log and worker.log (10 MB each, 10 kept); empty: console only."),
        new(Logging + "console_format", "DEEPLINE_LOGGING_CONSOLE_FORMAT", "text",
            "Console log lines: text, or json (one JSON object per line with the message template's fields, for log shippers)."),
        new(Workers + "enabled", "DEEPLINE_WORKERS_ENABLED", "true",
            "Run in-cluster worker pools on this node."),
        new(Workers + "slots", "DEEPLINE_WORKERS_SLOTS", "4",
            "Slots of pool \"default\" on this node (0..1024, 0 = not served in-cluster)."),
        new(Workers + "pools", "DEEPLINE_WORKERS_POOLS", "{}",
            "Extra in-cluster pools, name: slots (1..1024) (env: gpu=2,io=8)."),
        new(Workers + "cancel_grace_s", "DEEPLINE_WORKERS_CANCEL_GRACE", "10",
            "Seconds a cancelled task's handler gets to return before its pool abandons it (forced TASK_CANCELLED)."),
        new(Process + "allowed_commands", "DEEPLINE_WORKERS_PROCESS_ALLOWED_COMMANDS", "[]",
            "Commands process tasks may run: names or absolute paths as tasks write them, or * for any (env: comma separated); []: process tasks are refused."),
        new(Process + "user", "DEEPLINE_WORKERS_PROCESS_USER", "\"\"",
            "Account process tasks run as (needs the node to run as root); empty: the node's own user."),
        new(Runs + "snapshot_every", "DEEPLINE_RUNS_SNAPSHOT_EVERY", "100",
            "Snapshot a run's state every N journal events (1..100000)."),
        new(Runs + "passivate_after_s", "DEEPLINE_RUNS_PASSIVATE_AFTER", "120",
            "Stop a finished run's entity after it was idle this long (seconds)."),
        new(Runs + "workflow_role", "DEEPLINE_RUNS_WORKFLOW_ROLE", "\"\"",
            "Cluster role whose nodes host the runs (workflow shards); other nodes reach them through a proxy; empty: every node."),
        new(Admin + "key", "DEEPLINE_ADMIN_KEY", "\"\"",
            "Shared admin key (X-Deepline-Admin-Key header) for mutating management endpoints; empty: without a keys file, loopback callers are admin."),
        new(Redis + "connection", "DEEPLINE_REDIS", "\"\"",
            "Redis for cancel signals to external workers (StackExchange.Redis string, e.g. 127.0.0.1:6379); empty: no Redis."),
        new(Redis + "retention_s", "DEEPLINE_REDIS_RETENTION", "604800",
            "Cancelled runs older than this (seconds) are pruned from Redis (cancelled_runs and its hashes)."),
        new(Auth + "keys_file", "DEEPLINE_AUTH_KEYS_FILE", "\"\"",
            "API keys file (JSON or YAML: keys with name, key or key_sha256, role, client_id, pools); empty: open API, loopback host only."),
        new(Limits + "max_tasks_per_run", "DEEPLINE_LIMITS_MAX_TASKS_PER_RUN", "10000",
            "Most tasks one run may have (1..1000000); more is 422."),
        new(Limits + "max_edges_per_run", "DEEPLINE_LIMITS_MAX_EDGES_PER_RUN", "100000",
            "Most dependency edges one run may have (1..10000000); more is 422."),
        new(Limits + "max_value_bytes", "DEEPLINE_LIMITS_MAX_VALUE_BYTES", "65536",
            "Most bytes of JSON in one task's params or one result (1..16777216); more is 422."),
        new(Limits + "max_body_bytes", "DEEPLINE_LIMITS_MAX_BODY_BYTES", "8388608",
            "Most bytes of one request body (1024..268435456); more is 413."),
        new(Limits + "body_timeout_s", "DEEPLINE_LIMITS_BODY_TIMEOUT", "30",
            "Seconds a request body may take to arrive (1..3600); slower is 408."),
        new(Limits + "rate_per_second", "DEEPLINE_LIMITS_RATE_PER_SECOND", "500",
            "Requests per second per key (per address without keys), 0 = unlimited; over it is 429 with Retry-After."),
        new(Limits + "rate_burst", "DEEPLINE_LIMITS_RATE_BURST", "1000",
            "Requests a key may send at once above its rate (1..1000000)."),
        new(Limits + "run_threshold_min_s", "DEEPLINE_LIMITS_RUN_THRESHOLD_MIN", "60",
            "Lowest pending_stale_s / workflow_stale_s a run may ask for (its heartbeat_timeout_s may not go below the node's)."),
        new(Limits + "run_threshold_max_s", "DEEPLINE_LIMITS_RUN_THRESHOLD_MAX", "86400",
            "Highest detector threshold (seconds) a run may ask for."),
        new(ResourcesSection + "default_capacity", "DEEPLINE_RESOURCES_DEFAULT_CAPACITY", "1",
            "Capacity of a resource nobody declared with PUT /resources/{name} (1..1000000)."),
        new(Store + "provider", "DEEPLINE_STORE_PROVIDER", "sqlite",
            "sqlite (one file under data.dir, single node only) or postgresql (shared; required for a cluster of several nodes)."),
        new(Store + "connection", "DEEPLINE_STORE_CONNECTION", "\"\"",
            "Npgsql connection string of the PostgreSQL store (never printed); required with provider postgresql."),
    ];

    private static readonly Dictionary<string, ConfigKey> KeyByPath =
        Keys.ToDictionary(k => k.Path, StringComparer.Ordinal);

    /// <summary>Every proper prefix of a key path ("orchestrator", "orchestrator.deadlock", ...).</summary>
    private static readonly HashSet<string> Sections = Keys
        .SelectMany(k => Prefixes(k.Path))
        .ToHashSet(StringComparer.Ordinal);

    /// <summary>
    /// Loads, merges and validates the configuration.
    /// </summary>
    /// <param name="configPath">Config file to read; null or empty: <c>DEEPLINE_CONFIG</c>, else ./config.yaml if present.</param>
    /// <param name="environment">The environment to read DEEPLINE_* overrides from (null values count as unset).</param>
    /// <exception cref="ConfigException">Every problem found, one per line.</exception>
    public static DeeplineConfig Load(string? configPath, IReadOnlyDictionary<string, string?> environment) =>
        Load(configPath, environment, Directory.GetCurrentDirectory());

    /// <summary><see cref="Load(string, IReadOnlyDictionary{string, string})"/> with relative paths taken from <paramref name="workingDirectory"/>.</summary>
    internal static DeeplineConfig Load(string? configPath, IReadOnlyDictionary<string, string?> environment, string workingDirectory)
    {
        ArgumentNullException.ThrowIfNull(environment);
        ArgumentNullException.ThrowIfNull(workingDirectory);
        var errors = new List<string>();
        var notices = new List<string>();
        var raw = new Dictionary<string, Raw>(StringComparer.Ordinal);

        var file = ResolveFile(configPath, environment, workingDirectory, errors);
        if (file is not null)
            ReadFile(file, raw, errors, notices);

        foreach (var key in Keys)
        {
            if (environment.TryGetValue(key.EnvironmentVariable, out var value) && value is not null)
                raw[key.Path] = new Raw(null, value, Origin.Env(key.EnvironmentVariable));
        }

        var config = Build(new Values(raw, errors));
        if (errors.Count > 0)
            throw new ConfigException(errors);
        return notices.Count == 0 ? config : config with { Notices = notices };
    }

    /// <summary>
    /// The config file <see cref="Load(string, IReadOnlyDictionary{string, string})"/> reads for these arguments (full path), or null when it runs on
    /// defaults and environment only. Does not check that a named file exists.
    /// </summary>
    public static string? ResolvePath(string? configPath, IReadOnlyDictionary<string, string?> environment)
    {
        ArgumentNullException.ThrowIfNull(environment);
        var cwd = Directory.GetCurrentDirectory();
        if (!string.IsNullOrWhiteSpace(configPath))
            return Path.GetFullPath(configPath, cwd);
        if (environment.TryGetValue(ConfigPathVariable, out var fromEnv) && !string.IsNullOrWhiteSpace(fromEnv))
            return Path.GetFullPath(fromEnv, cwd);
        var local = Path.Combine(cwd, DefaultFileName);
        return File.Exists(local) ? local : null;
    }

    /// <summary>The effective configuration as "key: value" lines for the start-up log (webhook redacted).</summary>
    public static string Describe(DeeplineConfig c) => string.Join(Environment.NewLine, DescribeLines(c));

    /// <summary>The lines of <see cref="Describe"/>, one per key in <see cref="Keys"/> order.</summary>
    public static IReadOnlyList<string> DescribeLines(DeeplineConfig c)
    {
        ArgumentNullException.ThrowIfNull(c);
        static string I(int v) => v.ToString(CultureInfo.InvariantCulture);
        static string B(bool v) => v ? "true" : "false";
        return
        [
            $"{Deadlock}check_interval_s: {I(c.Deadlock.CheckIntervalS)}",
            $"{Deadlock}pending_stale_s: {I(c.Deadlock.PendingStaleS)}",
            $"{Deadlock}workflow_stale_s: {I(c.Deadlock.WorkflowStaleS)}",
            $"{Deadlock}cancel_on_deadlock: {B(c.Deadlock.CancelOnDeadlock)}",
            $"{Deadlock}alert_webhook: {(string.IsNullOrEmpty(c.Deadlock.AlertWebhook) ? "not configured" : "configured")}",
            $"{Deadlock}max_dependency_depth: {I(c.Deadlock.MaxDependencyDepth)}",
            $"{Deadlock}heartbeat_timeout_s: {I(c.Deadlock.HeartbeatTimeoutS)}",
            $"{Deadlock}cancel_timeout_s: {I(c.Deadlock.CancelTimeoutS)}",
            $"{Deadlock}alert_format: {c.Deadlock.AlertFormat}",
            $"{Deadlock}alert_routing_key: {(string.IsNullOrEmpty(c.Deadlock.AlertRoutingKey) ? "not configured" : "configured")}",
            $"{Deadlock}alert_timeout_s: {I(c.Deadlock.AlertTimeoutS)}",
            $"{Deadlock}alert_retries: {I(c.Deadlock.AlertRetries)}",
            $"{Deadlock}monitor_role: {(c.Deadlock.MonitorRole.Length == 0 ? "any node" : c.Deadlock.MonitorRole)}",
            $"{Deadlock}victim: {c.Deadlock.Victim}",
            $"{Http}host: {c.Http.Host}",
            $"{Http}port: {I(c.Http.Port)}",
            $"{Remoting}host: {c.Remoting.Host}",
            $"{Remoting}port: {(c.Remoting.Port == 0 ? "0 (any free port)" : I(c.Remoting.Port))}",
            $"{Remoting}roles: {(c.Remoting.Roles.Count == 0 ? "none" : string.Join(", ", c.Remoting.Roles))}",
            $"{Remoting}down_unreachable_after_s: {I(c.Remoting.DownUnreachableAfterS)}",
            $"{Remoting}tls_certificate: {(c.Remoting.TlsCertificate.Length == 0 ? "not configured (no TLS)" : c.Remoting.TlsCertificate)}",
            $"{Remoting}tls_certificate_password: {(c.Remoting.TlsCertificatePassword.Length == 0 ? "not configured" : "configured")}",
            $"{Remoting}seed_nodes: {(c.Remoting.SeedNodes.Count == 0 ? "none (joins itself)" : string.Join(", ", c.Remoting.SeedNodes))}",
            $"{Data}dir: {c.Data.Dir}",
            $"{Logging}dir: {(c.Logging.Dir.Length == 0 ? "not configured (console only)" : c.Logging.Dir)}",
            $"{Logging}console_format: {c.Logging.ConsoleFormat}",
            $"{Workers}enabled: {B(c.Workers.Enabled)}",
            $"{Workers}slots: {I(c.Workers.Slots)}",
            $"{Workers}pools: {(c.Workers.Pools.Count == 0 ? "none" : string.Join(", ", c.Workers.Pools.OrderBy(p => p.Key, StringComparer.Ordinal).Select(p => $"{p.Key}={I(p.Value)}")))}",
            $"{Workers}cancel_grace_s: {I(c.Workers.CancelGraceS)}",
            $"{Process}allowed_commands: {(c.Workers.ProcessAllowedCommands.Count == 0 ? "none (process tasks refused)" : string.Join(", ", c.Workers.ProcessAllowedCommands))}",
            $"{Process}user: {(c.Workers.ProcessUser.Length == 0 ? "the node's own" : c.Workers.ProcessUser)}",
            $"{Runs}snapshot_every: {I(c.Runs.SnapshotEvery)}",
            $"{Runs}passivate_after_s: {I(c.Runs.PassivateAfterS)}",
            $"{Runs}workflow_role: {(c.Runs.WorkflowRole.Length == 0 ? "every node" : c.Runs.WorkflowRole)}",
            $"{Admin}key: {(c.Admin.Enabled ? "configured" : "not configured")}",
            $"{Redis}connection: {(c.Redis.Enabled ? "configured" : "not configured")}",
            $"{Redis}retention_s: {I(c.Redis.RetentionS)}",
            $"{Auth}keys_file: {(c.Auth.Enabled ? c.Auth.KeysFile : "not configured (open API, loopback only)")}",
            $"{Limits}max_tasks_per_run: {I(c.Limits.MaxTasksPerRun)}",
            $"{Limits}max_edges_per_run: {I(c.Limits.MaxEdgesPerRun)}",
            $"{Limits}max_value_bytes: {I(c.Limits.MaxValueBytes)}",
            $"{Limits}max_body_bytes: {I(c.Limits.MaxBodyBytes)}",
            $"{Limits}body_timeout_s: {I(c.Limits.BodyTimeoutS)}",
            $"{Limits}rate_per_second: {(c.Limits.RatePerSecond == 0 ? "0 (unlimited)" : I(c.Limits.RatePerSecond))}",
            $"{Limits}rate_burst: {I(c.Limits.RateBurst)}",
            $"{Limits}run_threshold_min_s: {I(c.Limits.RunThresholdMinS)}",
            $"{Limits}run_threshold_max_s: {I(c.Limits.RunThresholdMaxS)}",
            $"{ResourcesSection}default_capacity: {I(c.Resources.DefaultCapacity)}",
            $"{Store}provider: {c.Store.Provider}",
            $"{Store}connection: {(c.Store.Connection.Length > 0 ? "configured" : "not configured")}",
        ];
    }

    // ---------------------------------------------------------------- file

    private static string? ResolveFile(
        string? configPath, IReadOnlyDictionary<string, string?> environment, string workingDirectory, List<string> errors)
    {
        string named;
        string from;
        if (!string.IsNullOrWhiteSpace(configPath))
        {
            named = configPath;
            from = "";
        }
        else if (environment.TryGetValue(ConfigPathVariable, out var fromEnv) && !string.IsNullOrWhiteSpace(fromEnv))
        {
            named = fromEnv;
            from = $" (from {ConfigPathVariable})";
        }
        else
        {
            var local = Path.Combine(workingDirectory, DefaultFileName);
            return File.Exists(local) ? local : null;
        }

        var full = Path.GetFullPath(named, workingDirectory);
        if (Directory.Exists(full))
        {
            errors.Add($"config file \"{named}\" is a directory{from}");
            return null;
        }
        if (!File.Exists(full))
        {
            errors.Add($"config file \"{named}\" does not exist{from}");
            return null;
        }
        return full;
    }

    private static void ReadFile(string path, Dictionary<string, Raw> raw, List<string> errors, List<string> notices)
    {
        string text;
        try
        {
            text = File.ReadAllText(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            errors.Add($"config file \"{path}\" cannot be read: {e.Message}");
            return;
        }

        var stream = new YamlStream();
        var parser = new TrackingParser(new Parser(new StringReader(text)));
        try
        {
            stream.Load(parser);
        }
        catch (YamlException e)
        {
            var (line, column) = (e.Start.Line, e.Start.Column);
            if (e.Message.Contains("tab", StringComparison.OrdinalIgnoreCase) && FirstTabIndentedLine(text) is { } tabLine)
                (line, column) = (tabLine, 1); // YamlDotNet points at the enclosing mapping, not at the tab
            errors.Add($"config file \"{path}\", line {line}, column {column}: malformed YAML: {e.Message}");
            return;
        }
        catch (Exception e) when (e is InvalidOperationException or ArgumentException or FormatException)
        {
            // YamlDotNet occasionally gives up with a bare exception; the last event it read marks the spot.
            errors.Add($"config file \"{path}\", near line {Math.Max(1L, parser.LastLine)}: malformed YAML (the parser could not continue here)");
            return;
        }

        if (stream.Documents.Count == 0)
            return;
        if (stream.Documents.Count > 1)
        {
            errors.Add($"config file \"{path}\", line {stream.Documents[1].RootNode.Start.Line}: only one YAML document is allowed");
            return;
        }

        var root = stream.Documents[0].RootNode;
        if (root is YamlMappingNode mapping)
            WalkRoot(mapping, path, raw, errors, notices);
        else if (!IsNull(root))
            errors.Add($"config file \"{path}\", line {root.Start.Line}: the top level must be a mapping (orchestrator: ...), got {KindOf(root)}");
    }

    /// <summary>The seed's tuning and troubleshooting snippets start at <c>deadlock:</c>; the section they mean.</summary>
    public const string SeedDeadlockSection = "deadlock";

    /// <summary>
    /// The top level, where a <c>deadlock:</c> section (as the seed document writes its snippets) is read as
    /// <c>orchestrator.deadlock</c> with a notice: refusing a snippet copied from the product document helps nobody.
    /// A key given both ways is an error, since either choice could be the one the operator meant.
    /// </summary>
    private static void WalkRoot(YamlMappingNode mapping, string file, Dictionary<string, Raw> raw, List<string> errors, List<string> notices)
    {
        var seedKey = mapping.Children.Keys.FirstOrDefault(k => k is YamlScalarNode { Value: SeedDeadlockSection });
        if (seedKey is null)
        {
            Walk(mapping, "", file, raw, errors);
            return;
        }
        Walk(new YamlMappingNode(mapping.Children.Where(c => !ReferenceEquals(c.Key, seedKey))), "", file, raw, errors);
        var section = mapping.Children[seedKey];
        var target = Deadlock.TrimEnd('.');
        if (section is not YamlMappingNode seedSection)
        {
            if (!IsNull(section))
                errors.Add($"{SeedDeadlockSection}: must be a mapping of keys, got {KindOf(section)}{Origin.File(file, section.Start.Line).Suffix}");
            return;
        }
        notices.Add($"config file \"{file}\", line {seedKey.Start.Line}: top-level \"{SeedDeadlockSection}:\" read as {target} " +
            "(the seed document's short form); nest it under \"orchestrator:\" to silence this notice");
        var seed = new Dictionary<string, Raw>(StringComparer.Ordinal);
        Walk(seedSection, target, file, seed, errors);
        foreach (var (key, value) in seed)
        {
            if (raw.ContainsKey(key))
                errors.Add($"{key}: set both under \"orchestrator.deadlock:\" and under the top-level \"{SeedDeadlockSection}:\"{value.Origin.Suffix}; keep one");
            else
                raw[key] = value;
        }
    }

    private static int? FirstTabIndentedLine(string text)
    {
        var lines = text.Split('\n');
        for (var i = 0; i < lines.Length; i++)
        {
            var indent = lines[i].Length - lines[i].TrimStart(' ', '\t').Length;
            if (lines[i].AsSpan(0, indent).Contains('\t'))
                return i + 1;
        }
        return null;
    }

    private static void Walk(YamlMappingNode mapping, string prefix, string file, Dictionary<string, Raw> raw, List<string> errors)
    {
        foreach (var (keyNode, valueNode) in mapping.Children)
        {
            var keyOrigin = Origin.File(file, keyNode.Start.Line);
            if (keyNode is not YamlScalarNode { Value: { } name })
            {
                errors.Add($"{(prefix.Length == 0 ? "(top level)" : prefix)}: keys must be plain names, got {KindOf(keyNode)}{keyOrigin.Suffix}");
                continue;
            }

            var path = prefix.Length == 0 ? name : prefix + "." + name;
            if (KeyByPath.ContainsKey(path))
            {
                raw[path] = new Raw(valueNode, null, Origin.File(file, valueNode.Start.Line));
            }
            else if (Sections.Contains(path))
            {
                if (valueNode is YamlMappingNode section)
                    Walk(section, path, file, raw, errors);
                else if (!IsNull(valueNode))
                    errors.Add($"{path}: must be a mapping of keys, got {KindOf(valueNode)}{Origin.File(file, valueNode.Start.Line).Suffix}");
            }
            else
            {
                var known = KnownChildren(prefix);
                var guess = Suggest(name, known);
                errors.Add($"{path}: unknown key{(guess is null ? "" : $", did you mean {guess}?")} (known: {string.Join(", ", known)}){keyOrigin.Suffix}");
            }
        }
    }

    private static List<string> KnownChildren(string prefix)
    {
        var start = prefix.Length == 0 ? "" : prefix + ".";
        return Keys
            .Where(k => k.Path.StartsWith(start, StringComparison.Ordinal))
            .Select(k => k.Path[start.Length..].Split('.')[0])
            .Distinct(StringComparer.Ordinal)
            .ToList();
    }

    private static IEnumerable<string> Prefixes(string path)
    {
        for (var i = path.IndexOf('.'); i >= 0; i = path.IndexOf('.', i + 1))
            yield return path[..i];
    }

    // ---------------------------------------------------------------- build and validate

    private static readonly string[] AlertFormats = ["auto", "slack", "pagerduty", "generic"];

    private static DeeplineConfig Build(Values v)
    {
        var d = DeeplineConfig.Defaults;
        const string Positive = "a positive integer";

        var checkInterval = v.Int(Deadlock + "check_interval_s", d.Deadlock.CheckIntervalS, 1, int.MaxValue, Positive);
        var pendingStale = v.Int(Deadlock + "pending_stale_s", d.Deadlock.PendingStaleS, 1, int.MaxValue, Positive);
        var workflowStale = v.Int(Deadlock + "workflow_stale_s", d.Deadlock.WorkflowStaleS, 1, int.MaxValue, Positive);
        var cancelOnDeadlock = v.Bool(Deadlock + "cancel_on_deadlock", d.Deadlock.CancelOnDeadlock);
        var webhook = v.String(Deadlock + "alert_webhook", d.Deadlock.AlertWebhook);
        var maxDepth = v.Int(Deadlock + "max_dependency_depth", d.Deadlock.MaxDependencyDepth, 1, MaxDependencyDepth,
            $"an integer from 1 to {MaxDependencyDepth}");
        var heartbeatTimeout = v.Int(Deadlock + "heartbeat_timeout_s", d.Deadlock.HeartbeatTimeoutS, 1, int.MaxValue, Positive);
        var cancelTimeout = v.Int(Deadlock + "cancel_timeout_s", d.Deadlock.CancelTimeoutS, 1, int.MaxValue, Positive);
        var alertFormat = v.String(Deadlock + "alert_format", d.Deadlock.AlertFormat);
        if (alertFormat is not null && !AlertFormats.Contains(alertFormat))
        {
            v.Fail(Deadlock + "alert_format", $"must be one of {string.Join(", ", AlertFormats)}, got \"{alertFormat}\"");
            alertFormat = null;
        }
        var routingKey = v.String(Deadlock + "alert_routing_key", d.Deadlock.AlertRoutingKey);
        var alertTimeout = v.Int(Deadlock + "alert_timeout_s", d.Deadlock.AlertTimeoutS, 1, 300, "an integer from 1 to 300");
        var alertRetries = v.Int(Deadlock + "alert_retries", d.Deadlock.AlertRetries, 0, 10, "an integer from 0 to 10");
        var monitorRole = v.String(Deadlock + "monitor_role", d.Deadlock.MonitorRole);
        if (monitorRole is { Length: > 0 } && !IsPoolName(monitorRole))
        {
            v.Fail(Deadlock + "monitor_role", $"must be a role name of [A-Za-z0-9._:-] (1..128 characters), got {Quote(monitorRole)}");
            monitorRole = null;
        }
        var victim = v.String(Deadlock + "victim", d.Deadlock.Victim);
        if (victim is not null && !VictimPolicies.Contains(victim, StringComparer.Ordinal))
        {
            v.Fail(Deadlock + "victim", $"must be one of {string.Join(", ", VictimPolicies)}, got {Quote(victim)}");
            victim = null;
        }
        var defaultCapacity = v.Int(ResourcesSection + "default_capacity", d.Resources.DefaultCapacity, 1, Deepline.Domain.Resources.ResourceLimits.MaxCapacity,
            $"an integer from 1 to {Deepline.Domain.Resources.ResourceLimits.MaxCapacity}");

        if (webhook is { Length: > 0 } && !IsHttpUrl(webhook))
        {
            // Never echo the value: webhook URLs carry tokens.
            v.Fail(Deadlock + "alert_webhook", "not a valid absolute http(s) URL");
            webhook = null;
        }

        if (checkInterval is { } interval)
        {
            NotBelowInterval(v, "pending_stale_s", pendingStale, interval, "a stale threshold");
            NotBelowInterval(v, "workflow_stale_s", workflowStale, interval, "a stale threshold");
            // heartbeat_timeout_s is not bound to the scan: run actors arm their own timers at that deadline.
        }

        var httpHost = Host(v, Http + "host", d.Http.Host);
        var httpPort = v.Int(Http + "port", d.Http.Port, 1, 65535, "an integer from 1 to 65535");
        var remotingHost = Host(v, Remoting + "host", d.Remoting.Host);
        var remotingPort = v.Int(Remoting + "port", d.Remoting.Port, 0, 65535,
            "an integer from 0 to 65535 (0 = pick a free port)");
        var downAfter = v.Int(Remoting + "down_unreachable_after_s", d.Remoting.DownUnreachableAfterS, 1, 600, "an integer from 1 to 600");
        var tlsCertificate = v.String(Remoting + "tls_certificate", d.Remoting.TlsCertificate);
        var tlsPassword = v.String(Remoting + "tls_certificate_password", d.Remoting.TlsCertificatePassword);
        if (tlsCertificate is { Length: > 0 } && CertificateProblem(tlsCertificate, tlsPassword ?? "") is { } problem)
        {
            v.Fail(Remoting + "tls_certificate", problem);
            tlsCertificate = null;
        }
        var seedNodes = SeedNodes(v, d.Remoting.SeedNodes);
        var roles = Roles(v, d.Remoting.Roles);

        var dataDir = v.String(Data + "dir", d.Data.Dir);
        if (dataDir is { Length: 0 })
        {
            v.Fail(Data + "dir", "must not be empty");
            dataDir = null;
        }

        var logDir = v.String(Logging + "dir", d.Logging.Dir);
        if (logDir is { Length: > 0 } && (logDir.Any(char.IsControl) || File.Exists(logDir)))
        {
            v.Fail(Logging + "dir", $"must name a directory (it is created when missing), got {Quote(logDir)}");
            logDir = null;
        }
        var consoleFormat = v.String(Logging + "console_format", d.Logging.ConsoleFormat);
        if (consoleFormat is not null && consoleFormat is not (LoggingConfig.Text or LoggingConfig.Json))
        {
            v.Fail(Logging + "console_format", $"must be one of {LoggingConfig.Text}, {LoggingConfig.Json}, got {Quote(consoleFormat)}");
            consoleFormat = null;
        }

        var workersEnabled = v.Bool(Workers + "enabled", d.Workers.Enabled);
        var slots = v.Int(Workers + "slots", d.Workers.Slots, 0, MaxSlots,
            $"an integer from 0 to {MaxSlots} (0 = pool \"default\" not served in-cluster)");
        var pools = v.Pools(Workers + "pools", d.Workers.Pools);
        var cancelGrace = v.Int(Workers + "cancel_grace_s", d.Workers.CancelGraceS, 1, MaxCancelGraceS,
            $"an integer from 1 to {MaxCancelGraceS}");

        var processCommands = ProcessCommands(v, d.Workers.ProcessAllowedCommands);
        var processUser = v.String(Process + "user", d.Workers.ProcessUser);
        if (processUser is { Length: > 0 })
        {
            if (Deepline.Actors.Workers.ProcessUser.Find(processUser) is null)
            {
                v.Fail(Process + "user", $"no account {Quote(processUser)} in /etc/passwd");
                processUser = null;
            }
            else if (!Environment.UserName.Equals("root", StringComparison.Ordinal))
            {
                v.Fail(Process + "user", $"running tasks as {Quote(processUser)} needs the node to run as root (it runs as {Environment.UserName})");
                processUser = null;
            }
        }
        var snapshotEvery = v.Int(Runs + "snapshot_every", d.Runs.SnapshotEvery, 1, MaxSnapshotEvery,
            $"an integer from 1 to {MaxSnapshotEvery}");
        var passivateAfter = v.Int(Runs + "passivate_after_s", d.Runs.PassivateAfterS, 1, int.MaxValue, Positive);
        var workflowRole = v.String(Runs + "workflow_role", d.Runs.WorkflowRole);
        if (workflowRole is { Length: > 0 } && !IsPoolName(workflowRole))
        {
            v.Fail(Runs + "workflow_role", $"must be a role name of [A-Za-z0-9._:-] (1..128 characters), got {Quote(workflowRole)}");
            workflowRole = null;
        }

        var adminKey = v.String(Admin + "key", d.Admin.Key);
        if (adminKey is { Length: > 0 } && (adminKey.Length < MinAdminKeyLength || adminKey.Any(char.IsWhiteSpace)))
        {
            // Never echo the value: it is a secret.
            v.Fail(Admin + "key", $"must be at least {MinAdminKeyLength} characters without spaces (or empty: no admin key)");
            adminKey = null;
        }
        var redisConnection = v.String(Redis + "connection", d.Redis.Connection);
        if (redisConnection is { Length: > 0 } && !IsRedisConfiguration(redisConnection))
        {
            // Never echo the value: it may carry a password.
            v.Fail(Redis + "connection", "not a valid Redis connection string (expected e.g. 127.0.0.1:6379 or host:port,password=...)");
            redisConnection = null;
        }
        var redisRetention = v.Int(Redis + "retention_s", d.Redis.RetentionS, 1, int.MaxValue, Positive);

        var keysFile = v.String(Auth + "keys_file", d.Auth.KeysFile);
        if (keysFile is { Length: 0 } && httpHost is { } h && !IsLoopback(h))
        {
            // An open API on a shared network would let anyone run and cancel work: refuse rather than warn.
            v.Errors.Add($"{Http}host: {h} is not a loopback address, and {Auth}keys_file ({KeyByPath[Auth + "keys_file"].EnvironmentVariable}) is not set: " +
                         "an API without keys may only listen on 127.0.0.1, ::1 or localhost; configure a keys file (README, Security) or a loopback host");
        }
        var l = d.Limits;
        var maxTasks = v.Int(Limits + "max_tasks_per_run", l.MaxTasksPerRun, 1, 1_000_000, "an integer from 1 to 1000000");
        var maxEdges = v.Int(Limits + "max_edges_per_run", l.MaxEdgesPerRun, 1, 10_000_000, "an integer from 1 to 10000000");
        var maxValue = v.Int(Limits + "max_value_bytes", l.MaxValueBytes, 1, 16 * 1024 * 1024, "an integer from 1 to 16777216");
        var maxBody = v.Int(Limits + "max_body_bytes", l.MaxBodyBytes, 1024, 256 * 1024 * 1024, "an integer from 1024 to 268435456");
        var bodyTimeout = v.Int(Limits + "body_timeout_s", l.BodyTimeoutS, 1, 3600, "an integer from 1 to 3600");
        var rate = v.Int(Limits + "rate_per_second", l.RatePerSecond, 0, 1_000_000, "an integer from 0 (unlimited) to 1000000");
        var burst = v.Int(Limits + "rate_burst", l.RateBurst, 1, 1_000_000, "an integer from 1 to 1000000");
        var thresholdMin = v.Int(Limits + "run_threshold_min_s", l.RunThresholdMinS, 1, int.MaxValue, Positive);
        var thresholdMax = v.Int(Limits + "run_threshold_max_s", l.RunThresholdMaxS, 1, int.MaxValue, Positive);
        var storeProvider = v.String(Store + "provider", d.Store.Provider);
        if (storeProvider is not null && storeProvider is not (StoreConfig.Sqlite or StoreConfig.PostgreSql))
        {
            v.Fail(Store + "provider", $"must be {StoreConfig.Sqlite} or {StoreConfig.PostgreSql}, got {Quote(storeProvider)}");
            storeProvider = null;
        }
        var storeConnection = v.String(Store + "connection", d.Store.Connection);
        if (storeProvider == StoreConfig.PostgreSql)
        {
            if (storeConnection is { Length: 0 })
                v.Errors.Add($"{Store}connection: required with {Store}provider postgresql (an Npgsql connection string, e.g. Host=db;Database=deepline;Username=deepline), set it or {KeyByPath[Store + "connection"].EnvironmentVariable}");
            else if (storeConnection is { Length: > 0 } && !IsNpgsqlConnection(storeConnection))
            {
                // Never echo the value: it may carry a password.
                v.Fail(Store + "connection", "not a valid Npgsql connection string (expected e.g. Host=db;Port=5432;Database=deepline;Username=deepline;Password=...)");
                storeConnection = null;
            }
        }
        if (storeProvider == StoreConfig.Sqlite && seedNodes is { Count: > 0 })
        {
            // Each SQLite node has its own file: a second node would serve a different history.
            v.Errors.Add($"{Remoting}seed_nodes: a cluster of several nodes needs the shared store: set {Store}provider to postgresql " +
                         $"({KeyByPath[Store + "provider"].EnvironmentVariable}); sqlite is single-node only");
        }
        if (workflowRole is { Length: > 0 } && seedNodes is not { Count: > 0 } && !(roles ?? d.Remoting.Roles).Contains(workflowRole, StringComparer.Ordinal))
        {
            // Without seed nodes the node is a cluster of one: nobody else could host its runs.
            v.Errors.Add($"{Runs}workflow_role: a node without seed nodes must host runs itself: add {Quote(workflowRole)} to {Remoting}roles " +
                         $"({KeyByPath[Remoting + "roles"].EnvironmentVariable}) or leave {Runs}workflow_role empty");
        }
        if (thresholdMin is { } tmin && thresholdMax is { } tmax && tmax < tmin)
        {
            v.Fail(Limits + "run_threshold_max_s", string.Create(CultureInfo.InvariantCulture,
                $"must be at least {Limits}run_threshold_min_s ({tmin}), got {tmax}"));
            thresholdMax = null;
        }

        return new DeeplineConfig(
            new DeadlockConfig(
                checkInterval ?? d.Deadlock.CheckIntervalS,
                pendingStale ?? d.Deadlock.PendingStaleS,
                workflowStale ?? d.Deadlock.WorkflowStaleS,
                cancelOnDeadlock ?? d.Deadlock.CancelOnDeadlock,
                webhook ?? d.Deadlock.AlertWebhook,
                maxDepth ?? d.Deadlock.MaxDependencyDepth,
                heartbeatTimeout ?? d.Deadlock.HeartbeatTimeoutS,
                cancelTimeout ?? d.Deadlock.CancelTimeoutS)
            {
                AlertFormat = alertFormat ?? d.Deadlock.AlertFormat,
                AlertRoutingKey = routingKey ?? d.Deadlock.AlertRoutingKey,
                AlertTimeoutS = alertTimeout ?? d.Deadlock.AlertTimeoutS,
                AlertRetries = alertRetries ?? d.Deadlock.AlertRetries,
                MonitorRole = monitorRole ?? d.Deadlock.MonitorRole,
                Victim = victim ?? d.Deadlock.Victim,
            },
            new HttpConfig(httpHost ?? d.Http.Host, httpPort ?? d.Http.Port),
            new RemotingConfig(remotingHost ?? d.Remoting.Host, remotingPort ?? d.Remoting.Port, seedNodes ?? []) {
                Roles = roles ?? d.Remoting.Roles,
                DownUnreachableAfterS = downAfter ?? d.Remoting.DownUnreachableAfterS,
                TlsCertificate = tlsCertificate ?? d.Remoting.TlsCertificate,
                TlsCertificatePassword = tlsPassword ?? d.Remoting.TlsCertificatePassword,
            },
            new DataConfig(dataDir ?? d.Data.Dir),
            new WorkersConfig(workersEnabled ?? d.Workers.Enabled, slots ?? d.Workers.Slots,
                pools ?? new Dictionary<string, int>(StringComparer.Ordinal), cancelGrace ?? d.Workers.CancelGraceS)
            {
                ProcessAllowedCommands = processCommands ?? d.Workers.ProcessAllowedCommands,
                ProcessUser = processUser ?? d.Workers.ProcessUser,
            },
            new RunsConfig(snapshotEvery ?? d.Runs.SnapshotEvery, passivateAfter ?? d.Runs.PassivateAfterS)
            {
                WorkflowRole = workflowRole ?? d.Runs.WorkflowRole,
            })
        {
            Admin = new AdminConfig(adminKey ?? d.Admin.Key),
            Redis = new RedisConfig(redisConnection ?? d.Redis.Connection, redisRetention ?? d.Redis.RetentionS),
            Auth = new AuthConfig(keysFile ?? d.Auth.KeysFile),
            Limits = new LimitsConfig(maxTasks ?? l.MaxTasksPerRun, maxEdges ?? l.MaxEdgesPerRun, maxValue ?? l.MaxValueBytes,
                maxBody ?? l.MaxBodyBytes, bodyTimeout ?? l.BodyTimeoutS, rate ?? l.RatePerSecond, burst ?? l.RateBurst,
                thresholdMin ?? l.RunThresholdMinS, thresholdMax ?? l.RunThresholdMaxS),
            Store = new StoreConfig(storeProvider ?? d.Store.Provider, storeConnection ?? d.Store.Connection),
            Logging = new LoggingConfig(logDir ?? d.Logging.Dir) { ConsoleFormat = consoleFormat ?? d.Logging.ConsoleFormat },
            Resources = new ResourcesConfig(defaultCapacity ?? d.Resources.DefaultCapacity),
        };
    }

    /// <summary>Addresses only this machine can reach: an open API is safe only there.</summary>
    internal static bool IsLoopback(string host) =>
        host.Equals("localhost", StringComparison.OrdinalIgnoreCase) ||
        (System.Net.IPAddress.TryParse(host.Trim('[', ']'), out var ip) && System.Net.IPAddress.IsLoopback(ip));

    /// <summary>Null when the file holds a certificate with its private key; else what is wrong (never the password).</summary>
    private static string? CertificateProblem(string path, string password)
    {
        if (!File.Exists(path)) return $"\"{path}\" does not exist";
        try
        {
            using var certificate = System.Security.Cryptography.X509Certificates.X509CertificateLoader.LoadPkcs12FromFile(path, password);
            return certificate.HasPrivateKey ? null : $"\"{path}\" holds no private key: a node must prove it holds the cluster certificate";
        }
        catch (System.Security.Cryptography.CryptographicException)
        {
            return $"\"{path}\" is not a PKCS#12 file this password opens (orchestrator.remoting.tls_certificate_password)";
        }
    }

    private static bool IsNpgsqlConnection(string text)
    {
        try
        {
            var b = new Npgsql.NpgsqlConnectionStringBuilder(text);
            return !string.IsNullOrEmpty(b.Host);
        }
        catch (ArgumentException)
        {
            return false;
        }
    }

    private static bool IsRedisConfiguration(string text)
    {
        try
        {
            return StackExchange.Redis.ConfigurationOptions.Parse(text).EndPoints.Count > 0;
        }
        catch (ArgumentException)
        {
            return false;
        }
    }

    private static void NotBelowInterval(Values v, string key, int? value, int interval, string what)
    {
        if (value is not { } n || n >= interval)
            return;
        var inv = CultureInfo.InvariantCulture;
        var intervalFrom = v.OriginOf(Deadlock + "check_interval_s") is { } o ? ", " + o.Inline : "";
        var problem =
            string.Create(inv, $"must be at least orchestrator.deadlock.check_interval_s ({interval}{intervalFrom}), got {n}: ") +
            string.Create(inv, $"{what} below the scan interval makes no sense, the deadlock monitor only looks every {interval} s");
        if (v.OriginOf(Deadlock + key) is null)
        {
            // The default clashes with a raised interval: say how to set the key the user never wrote.
            v.Errors.Add($"{Deadlock}{key}: {problem} (the default: set {Deadlock}{key} or {KeyByPath[Deadlock + key].EnvironmentVariable})");
            return;
        }
        v.Fail(Deadlock + key, problem);
    }

    private static string? Host(Values v, string path, string fallback)
    {
        var host = v.String(path, fallback);
        if (host is null)
            return null;
        if (host.Length == 0)
        {
            v.Fail(path, "must not be empty");
            return null;
        }
        if (host.Any(c => char.IsWhiteSpace(c) || char.IsControl(c) || c is '/' or '@'))
        {
            v.Fail(path, $"must be a host name or IP address, got {Quote(host)}");
            return null;
        }
        return host;
    }

    private static List<string>? SeedNodes(Values v, IReadOnlyList<string> fallback)
    {
        var path = Remoting + "seed_nodes";
        var items = v.Strings(path, fallback);
        if (items is null)
            return null;
        var result = new List<string>(items.Count);
        var ok = true;
        for (var i = 0; i < items.Count; i++)
        {
            var (text, origin) = items[i];
            if (!IsSeedAddress(text))
            {
                v.Errors.Add($"{path}[{i}]: must be an address akka.tcp://<system>@<host>:<port> (port 1..65535), got {Quote(text)}{origin.Suffix}");
                ok = false;
            }
            result.Add(text);
        }
        return ok ? result : null;
    }

    private static List<string>? ProcessCommands(Values v, IReadOnlyList<string> fallback)
    {
        var path = Process + "allowed_commands";
        if (v.Strings(path, fallback) is not { } items) return null;
        // A relative path would mean a different program in every working directory: names (looked up on the node's
        // PATH) or absolute paths only.
        var bad = items.Select((item, i) => (item, i)).Where(x =>
            x.item.Text.Length == 0 || x.item.Text.Any(ch => char.IsWhiteSpace(ch) || char.IsControl(ch))
            || (x.item.Text != "*" && x.item.Text.Contains('/') && !x.item.Text.StartsWith('/'))).ToList();
        foreach (var ((text, origin), i) in bad)
            v.Errors.Add($"{path}[{i}]: must be a command name, an absolute path or *, got {Quote(text)}{origin.Suffix}");
        return bad.Count == 0 ? [.. items.Select(x => x.Text).Distinct(StringComparer.Ordinal)] : null;
    }

    private static List<string>? Roles(Values v, IReadOnlyList<string> fallback)
    {
        var path = Remoting + "roles";
        if (v.Strings(path, fallback) is not { } items) return null;
        var bad = items.Select((item, i) => (item, i)).Where(x => !IsPoolName(x.item.Text)).ToList();
        foreach (var ((text, origin), i) in bad)
            v.Errors.Add($"{path}[{i}]: must be a role name of [A-Za-z0-9._:-] (1..128 characters), got {Quote(text)}{origin.Suffix}");
        return bad.Count == 0 ? [.. items.Select(x => x.Text).Distinct(StringComparer.Ordinal)] : null;
    }

    internal static bool IsSeedAddress(string text)
    {
        var m = SeedAddressRegex().Match(text);
        return m.Success
            && int.TryParse(m.Groups["port"].ValueSpan, NumberStyles.None, CultureInfo.InvariantCulture, out var port)
            && port is >= 1 and <= 65535;
    }

    internal static bool IsHttpUrl(string text) =>
        !text.Any(c => char.IsWhiteSpace(c) || char.IsControl(c))
        && Uri.TryCreate(text, UriKind.Absolute, out var uri)
        && (uri.Scheme == Uri.UriSchemeHttp || uri.Scheme == Uri.UriSchemeHttps)
        && uri.Host.Length > 0;

    internal static bool IsPoolName(string name) => PoolNameRegex().IsMatch(name);

    [GeneratedRegex(@"^akka\.(ssl\.)?tcp://[A-Za-z0-9][A-Za-z0-9_-]*@(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._-]+):(?<port>[0-9]{1,5})$")]
    private static partial Regex SeedAddressRegex();

    [GeneratedRegex(@"^[A-Za-z0-9._:-]{1,128}$")]
    private static partial Regex PoolNameRegex();

    // ---------------------------------------------------------------- helpers

    private static bool IsNull(YamlNode node) =>
        node is YamlScalarNode { Style: ScalarStyle.Plain or ScalarStyle.Any } s && IsNullText(s.Value);

    private static bool IsNullText(string? text) => text is null or "" or "~" or "null" or "Null" or "NULL";

    private static string KindOf(YamlNode? node) => node switch
    {
        YamlMappingNode => "a mapping",
        YamlSequenceNode => "a list",
        YamlScalarNode s when IsNull(s) => "nothing",
        YamlScalarNode => "a single value",
        _ => "something else",
    };

    /// <summary>Quotes a (non-secret) value for an error message, escaped and cut short.</summary>
    private static string Quote(string? text)
    {
        text ??= "";
        const int Max = 80;
        var sb = new StringBuilder("\"");
        foreach (var ch in text.Length > Max ? text[..Max] : text)
        {
            sb.Append(ch switch
            {
                '"' => "\\\"",
                '\\' => "\\\\",
                '\n' => "\\n",
                '\r' => "\\r",
                '\t' => "\\t",
                _ when char.IsControl(ch) => $"\\u{(int)ch:x4}",
                _ => ch.ToString(),
            });
        }
        if (text.Length > Max)
            sb.Append("...");
        return sb.Append('"').ToString();
    }

    private static string? Suggest(string name, IEnumerable<string> known)
    {
        string? best = null;
        var bestDistance = int.MaxValue;
        foreach (var candidate in known)
        {
            var distance = Distance(name.ToLowerInvariant(), candidate);
            if (distance < bestDistance)
            {
                bestDistance = distance;
                best = candidate;
            }
        }
        return best is not null && bestDistance <= Math.Max(1, Math.Min(3, best.Length / 3)) ? best : null;
    }

    private static int Distance(string a, string b)
    {
        var previous = new int[b.Length + 1];
        var current = new int[b.Length + 1];
        for (var j = 0; j <= b.Length; j++)
            previous[j] = j;
        for (var i = 1; i <= a.Length; i++)
        {
            current[0] = i;
            for (var j = 1; j <= b.Length; j++)
            {
                var cost = a[i - 1] == b[j - 1] ? 0 : 1;
                current[j] = Math.Min(Math.Min(current[j - 1] + 1, previous[j] + 1), previous[j - 1] + cost);
            }
            (previous, current) = (current, previous);
        }
        return previous[b.Length];
    }

    /// <summary>Where a value came from: an environment variable, a file line, or (neither) the defaults.</summary>
    private sealed record Origin(string? Variable, string? FilePath, long Line)
    {
        public static Origin Env(string variable) => new(variable, null, 0);

        public static Origin File(string path, long line) => new(null, path, line);

        /// <summary>" (from DEEPLINE_X)" or " (at file:line)", appended to an error line.</summary>
        public string Suffix => " (" + Inline + ")";

        public string Inline => Variable is not null
            ? "from " + Variable
            : string.Create(CultureInfo.InvariantCulture, $"at {FilePath}:{Line}");
    }

    /// <summary>A value before conversion: a YAML node from the file or a text from the environment.</summary>
    private sealed record Raw(YamlNode? Node, string? Text, Origin Origin);

    /// <summary>Typed access to the raw values; every failed conversion adds one error and yields null.</summary>
    private sealed class Values(Dictionary<string, Raw> raw, List<string> errors)
    {
        private const string BoolWords = "true/false, yes/no, 1/0";

        public List<string> Errors => errors;

        public Origin? OriginOf(string path) => raw.TryGetValue(path, out var r) ? r.Origin : null;

        public void Fail(string path, string problem) =>
            errors.Add($"{path}: {problem}{(raw.TryGetValue(path, out var r) ? r.Origin.Suffix : "")}");

        public int? Int(string path, int fallback, int min, int max, string requirement)
        {
            if (!raw.TryGetValue(path, out var r))
                return fallback;
            var text = Scalar(path, r, requirement, "numbers");
            if (text is null)
                return null;
            if (ParseInt(text, min, max) is { } n)
                return n;
            Fail(path, $"must be {requirement}, got {Quote(text)}");
            return null;
        }

        public bool? Bool(string path, bool fallback)
        {
            if (!raw.TryGetValue(path, out var r))
                return fallback;
            var requirement = $"a boolean ({BoolWords})";
            var text = Scalar(path, r, requirement, "booleans");
            if (text is null)
                return null;
            switch (text.ToLowerInvariant())
            {
                case "true" or "yes" or "1":
                    return true;
                case "false" or "no" or "0":
                    return false;
                default:
                    Fail(path, $"must be {requirement}, got {Quote(text)}");
                    return null;
            }
        }

        /// <summary>A string value; YAML null or an empty variable gives "". Values are never echoed.</summary>
        public string? String(string path, string fallback)
        {
            if (!raw.TryGetValue(path, out var r))
                return fallback;
            if (r.Text is not null)
                return r.Text.Trim();
            if (r.Node is YamlScalarNode s)
                return IsNull(s) ? "" : s.Value ?? "";
            Fail(path, $"must be a string, got {KindOf(r.Node)}");
            return null;
        }

        /// <summary>A list of strings: a YAML sequence, or a comma separated variable.</summary>
        public List<(string Text, Origin Origin)>? Strings(string path, IReadOnlyList<string> fallback)
        {
            if (!raw.TryGetValue(path, out var r))
                return fallback.Select(s => (s, new Origin(null, null, 0))).ToList();
            if (r.Text is not null)
            {
                return r.Text.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries)
                    .Select(s => (s, r.Origin))
                    .ToList();
            }
            if (r.Node is YamlScalarNode s0 && IsNull(s0))
                return [];
            if (r.Node is not YamlSequenceNode sequence)
            {
                Fail(path, $"must be a list, e.g. [\"akka.tcp://deepline@10.0.0.1:4053\"], got {KindOf(r.Node)}");
                return null;
            }

            var result = new List<(string, Origin)>();
            var ok = true;
            var index = 0;
            foreach (var item in sequence.Children)
            {
                var origin = Origin.File(r.Origin.FilePath!, item.Start.Line);
                if (item is YamlScalarNode { Value: { } value } s && !IsNull(s))
                {
                    result.Add((value, origin));
                }
                else
                {
                    errors.Add($"{path}[{index}]: must be a string, got {KindOf(item)}{origin.Suffix}");
                    ok = false;
                }
                index++;
            }
            return ok ? result : null;
        }

        /// <summary>Pool name to slots: a YAML mapping, or <c>gpu=2,io=8</c> in the variable.</summary>
        public Dictionary<string, int>? Pools(string path, IReadOnlyDictionary<string, int> fallback)
        {
            if (!raw.TryGetValue(path, out var r))
                return new Dictionary<string, int>(fallback, StringComparer.Ordinal);

            var entries = new List<(string Name, string? SlotsText, string? Problem, Origin Origin)>();
            if (r.Text is not null)
            {
                foreach (var entry in r.Text.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries))
                {
                    var eq = entry.IndexOf('=', StringComparison.Ordinal);
                    if (eq < 0)
                    {
                        errors.Add($"{path}: entry {Quote(entry)} must be name=slots, e.g. gpu=2{r.Origin.Suffix}");
                        entries.Add(("", null, "", r.Origin));
                        continue;
                    }
                    entries.Add((entry[..eq].Trim(), entry[(eq + 1)..].Trim(), null, r.Origin));
                }
            }
            else if (r.Node is YamlScalarNode s0 && IsNull(s0))
            {
                // "pools:" with nothing: no extra pools.
            }
            else if (r.Node is YamlMappingNode mapping)
            {
                foreach (var (keyNode, valueNode) in mapping.Children)
                {
                    var origin = Origin.File(r.Origin.FilePath!, valueNode.Start.Line);
                    if (keyNode is not YamlScalarNode { Value: { } name })
                    {
                        errors.Add($"{path}: pool names must be plain names, got {KindOf(keyNode)}{origin.Suffix}");
                        entries.Add(("", null, "", origin));
                        continue;
                    }
                    string? problem = valueNode switch
                    {
                        YamlScalarNode { Style: not (ScalarStyle.Plain or ScalarStyle.Any) } q =>
                            $"got the string {Quote(q.Value)} (write numbers without quotes)",
                        YamlScalarNode s when IsNull(s) => "got nothing",
                        YamlScalarNode => null,
                        _ => $"got {KindOf(valueNode)}",
                    };
                    entries.Add((name, (valueNode as YamlScalarNode)?.Value, problem, origin));
                }
            }
            else
            {
                Fail(path, $"must be a mapping of pool name to slots, e.g. {{ gpu: 2 }}, got {KindOf(r.Node)}");
                return null;
            }

            var pools = new Dictionary<string, int>(StringComparer.Ordinal);
            var ok = true;
            var requirement = $"an integer from 1 to {MaxSlots}";
            foreach (var (name, slotsText, problem, origin) in entries)
            {
                if (problem == "")
                {
                    ok = false; // already reported
                    continue;
                }
                if (!IsPoolName(name))
                {
                    errors.Add($"{path}: pool name {Quote(name)} must be 1..128 characters of [A-Za-z0-9._:-]{origin.Suffix}");
                    ok = false;
                    continue;
                }
                if (name == "default")
                {
                    errors.Add($"{path}.default: pool \"default\" is sized by {Workers}slots, not listed here{origin.Suffix}");
                    ok = false;
                    continue;
                }
                if (problem is not null)
                {
                    errors.Add($"{path}.{name}: must be {requirement}, {problem}{origin.Suffix}");
                    ok = false;
                    continue;
                }
                if (ParseInt(slotsText ?? "", 1, MaxSlots) is not { } slots)
                {
                    errors.Add($"{path}.{name}: must be {requirement}, got {Quote(slotsText)}{origin.Suffix}");
                    ok = false;
                    continue;
                }
                if (!pools.TryAdd(name, slots))
                {
                    errors.Add($"{path}.{name}: pool listed twice{origin.Suffix}");
                    ok = false;
                }
            }
            return ok ? pools : null;
        }

        /// <summary>The text of a scalar value, or null (after reporting) when it is not a plain scalar.</summary>
        private string? Scalar(string path, Raw r, string requirement, string what)
        {
            if (r.Text is not null)
                return r.Text.Trim();
            switch (r.Node)
            {
                case YamlScalarNode s when IsNull(s):
                    Fail(path, $"must be {requirement}, got nothing");
                    return null;
                case YamlScalarNode { Style: ScalarStyle.Plain or ScalarStyle.Any, Value: { } value }:
                    return value;
                case YamlScalarNode s:
                    Fail(path, $"must be {requirement}, got the string {Quote(s.Value)} (write {what} without quotes)");
                    return null;
                default:
                    Fail(path, $"must be {requirement}, got {KindOf(r.Node)}");
                    return null;
            }
        }

        private static int? ParseInt(string text, int min, int max) =>
            int.TryParse(text, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var n) && n >= min && n <= max
                ? n
                : null;
    }

    /// <summary>Remembers where the parser was, for YamlDotNet failures that carry no position.</summary>
    private sealed class TrackingParser(IParser inner) : IParser
    {
        public long LastLine { get; private set; }

        public ParsingEvent? Current => inner.Current;

        public bool MoveNext()
        {
            var moved = inner.MoveNext();
            if (inner.Current is { } current)
                LastLine = current.End.Line;
            return moved;
        }
    }
}
