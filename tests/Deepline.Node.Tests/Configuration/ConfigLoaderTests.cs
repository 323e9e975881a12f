using Deepline.Node.Configuration;
using Microsoft.Extensions.Logging;
using Xunit;

namespace Deepline.Node.Tests.Configuration;

/// <summary>
/// ConfigLoader against real temp files; environments are passed as dictionaries (the process
/// environment is never touched) and the working directory is an empty temp directory.
/// </summary>
public sealed class ConfigLoaderTests : IDisposable
{
    private const string SecretWebhook = "https://hooks.example.com/services/T000/B000/SECRETTOKEN123";

    private readonly string _dir = Directory.CreateTempSubdirectory("deepline-config-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    // ------------------------------------------------------------------ helpers

    private string Write(string yaml, string name = "test-config.yaml")
    {
        var path = Path.Combine(_dir, name);
        File.WriteAllText(path, yaml);
        return path;
    }

    private static Dictionary<string, string?> Env(params (string Name, string? Value)[] pairs) =>
        pairs.ToDictionary(p => p.Name, p => p.Value);

    private DeeplineConfig Load(string? path, Dictionary<string, string?>? env = null) =>
        ConfigLoader.Load(path, env ?? Env(), _dir);

    private ConfigException Fails(string? path, Dictionary<string, string?>? env = null) =>
        Assert.Throws<ConfigException>(() => Load(path, env));

    private ConfigException FailsYaml(string yaml, Dictionary<string, string?>? env = null) =>
        Fails(Write(yaml), env);

    private static void AssertSameConfig(DeeplineConfig expected, DeeplineConfig actual)
    {
        Assert.Equal(expected.Deadlock, actual.Deadlock); // only scalars: value equality is field by field
        Assert.Equal(expected.Http, actual.Http);
        Assert.Equal(expected.Remoting.Host, actual.Remoting.Host);
        Assert.Equal(expected.Remoting.Port, actual.Remoting.Port);
        Assert.Equal(expected.Remoting.SeedNodes, actual.Remoting.SeedNodes);
        Assert.Equal(expected.Remoting.DownUnreachableAfterS, actual.Remoting.DownUnreachableAfterS);
        Assert.Equal(expected.Data, actual.Data);
        Assert.Equal(expected.Workers.Enabled, actual.Workers.Enabled);
        Assert.Equal(expected.Workers.Slots, actual.Workers.Slots);
        Assert.Equal(expected.Workers.CancelGraceS, actual.Workers.CancelGraceS);
        Assert.Equal(expected.Workers.ProcessAllowedCommands, actual.Workers.ProcessAllowedCommands);
        Assert.Equal(expected.Workers.ProcessUser, actual.Workers.ProcessUser);
        Assert.Equal(
            expected.Workers.Pools.OrderBy(p => p.Key, StringComparer.Ordinal),
            actual.Workers.Pools.OrderBy(p => p.Key, StringComparer.Ordinal));
        Assert.Equal(expected.Runs, actual.Runs);
        Assert.Equal(expected.Admin, actual.Admin);
        Assert.Equal(expected.Redis, actual.Redis);
        Assert.Equal(expected.Auth, actual.Auth);
        Assert.Equal(expected.Limits, actual.Limits);
        Assert.Equal(expected.Store, actual.Store);
        Assert.Equal(expected.Resources, actual.Resources);
    }

    [Theory]
    [InlineData("./run.sh")]
    [InlineData("bin/tool")]
    [InlineData("two words")]
    public void Process_commands_are_names_absolute_paths_or_star(string command)
    {
        var e = Assert.Throws<ConfigException>(() => Load(null, Env(("DEEPLINE_WORKERS_PROCESS_ALLOWED_COMMANDS", $"python3,{command}"))));
        Assert.StartsWith("orchestrator.workers.process.allowed_commands[1]: must be a command name, an absolute path or *", Assert.Single(e.Errors));
        Assert.Equal(["*"], Load(null, Env(("DEEPLINE_WORKERS_PROCESS_ALLOWED_COMMANDS", "*"))).Workers.ProcessAllowedCommands);
    }

    [Fact]
    public void A_process_user_must_exist()
    {
        var e = Assert.Throws<ConfigException>(() => Load(null, Env(("DEEPLINE_WORKERS_PROCESS_USER", "no-such-user-here"))));
        Assert.StartsWith("orchestrator.workers.process.user: no account \"no-such-user-here\" in /etc/passwd", Assert.Single(e.Errors));
    }

    [Fact]
    public void A_cluster_certificate_must_exist_open_with_its_password_and_hold_a_private_key()
    {
        var missing = Assert.Throws<ConfigException>(() => Load(null, Env(("DEEPLINE_REMOTING_TLS_CERTIFICATE", "/nonexistent/cluster.pfx"))));
        Assert.Equal("orchestrator.remoting.tls_certificate: \"/nonexistent/cluster.pfx\" does not exist (from DEEPLINE_REMOTING_TLS_CERTIFICATE)", Assert.Single(missing.Errors));

        var pfx = Deepline.Tests.Shared.TestCertificates.Create(_dir, "locked", "right-password");
        var wrong = Assert.Throws<ConfigException>(() => Load(null, Env(("DEEPLINE_REMOTING_TLS_CERTIFICATE", pfx), ("DEEPLINE_REMOTING_TLS_CERTIFICATE_PASSWORD", "wrong-password"))));
        Assert.Contains("is not a PKCS#12 file this password opens", Assert.Single(wrong.Errors));
        Assert.DoesNotContain("wrong-password", wrong.Message);

        var ok = Load(null, Env(("DEEPLINE_REMOTING_TLS_CERTIFICATE", pfx), ("DEEPLINE_REMOTING_TLS_CERTIFICATE_PASSWORD", "right-password")));
        Assert.Equal(pfx, ok.Remoting.TlsCertificate);
        Assert.DoesNotContain("right-password", ConfigLoader.Describe(ok));
        Assert.DoesNotContain("right-password", ok.Remoting.ToString());
    }

    [Fact]
    public void A_node_alone_must_hold_the_workflow_role_it_names()
    {
        var alone = Assert.Throws<ConfigException>(() => Load(null, Env(("DEEPLINE_RUNS_WORKFLOW_ROLE", "workflow"))));
        Assert.StartsWith("orchestrator.runs.workflow_role: a node without seed nodes must host runs itself: add \"workflow\" to orchestrator.remoting.roles",
            Assert.Single(alone.Errors));

        var bad = Assert.Throws<ConfigException>(() => Load(null, Env(("DEEPLINE_RUNS_WORKFLOW_ROLE", "work flow"))));
        Assert.StartsWith("orchestrator.runs.workflow_role: must be a role name", Assert.Single(bad.Errors));

        var proxy = Load(null, Env(("DEEPLINE_RUNS_WORKFLOW_ROLE", "workflow"), ("DEEPLINE_REMOTING_SEED_NODES", "akka.tcp://deepline@10.0.0.1:4053"),
            ("DEEPLINE_STORE_PROVIDER", "postgresql"), ("DEEPLINE_STORE_CONNECTION", "Host=db;Database=deepline;Username=deepline")));
        Assert.Equal("workflow", proxy.Runs.WorkflowRole);
        Assert.Empty(proxy.Remoting.Roles);
    }

    [Fact]
    public void A_cluster_on_sqlite_is_refused_and_postgresql_needs_a_connection()
    {
        var cluster = Assert.Throws<ConfigException>(() => Load(null, Env(("DEEPLINE_REMOTING_SEED_NODES", "akka.tcp://deepline@a:4053"))));
        Assert.StartsWith("orchestrator.remoting.seed_nodes: a cluster of several nodes needs the shared store: set orchestrator.store.provider to postgresql", Assert.Single(cluster.Errors));

        var noConnection = Assert.Throws<ConfigException>(() => Load(null, Env(("DEEPLINE_STORE_PROVIDER", "postgresql"))));
        Assert.StartsWith("orchestrator.store.connection: required with orchestrator.store.provider postgresql", Assert.Single(noConnection.Errors));

        var bad = Assert.Throws<ConfigException>(() => Load(null, Env(("DEEPLINE_STORE_PROVIDER", "postgresql"), ("DEEPLINE_STORE_CONNECTION", "Password=hunter2;;=x"))));
        Assert.DoesNotContain("hunter2", bad.Message);

        var unknown = Assert.Throws<ConfigException>(() => Load(null, Env(("DEEPLINE_STORE_PROVIDER", "mongodb"))));
        Assert.StartsWith("orchestrator.store.provider: must be sqlite or postgresql, got \"mongodb\"", Assert.Single(unknown.Errors));
        Assert.DoesNotContain("hunter2", string.Join("\n", ConfigLoader.DescribeLines(Load(null, Env(("DEEPLINE_STORE_PROVIDER", "postgresql"), ("DEEPLINE_STORE_CONNECTION", "Host=x;Password=hunter2"))))));
    }

    // ------------------------------------------------------------------ trust boundary

    [Theory]
    [InlineData("0.0.0.0")]
    [InlineData("10.1.2.3")]
    [InlineData("node-1.internal")]
    public void An_open_api_on_a_non_loopback_host_refuses_to_start(string host)
    {
        var e = Assert.Throws<ConfigException>(() => Load(null, Env(("DEEPLINE_HTTP_HOST", host))));
        var line = Assert.Single(e.Errors);
        Assert.StartsWith($"orchestrator.http.host: {host} is not a loopback address, and orchestrator.auth.keys_file (DEEPLINE_AUTH_KEYS_FILE) is not set", line);

        // with a keys file the same host is fine
        Assert.Equal(host, Load(null, Env(("DEEPLINE_HTTP_HOST", host), ("DEEPLINE_AUTH_KEYS_FILE", "/etc/deepline/keys.yaml"))).Http.Host);
    }

    [Theory]
    [InlineData("127.0.0.1")]
    [InlineData("127.0.0.2")]
    [InlineData("::1")]
    [InlineData("localhost")]
    public void An_open_api_may_listen_on_loopback(string host) =>
        Assert.Equal(host, Load(null, Env(("DEEPLINE_HTTP_HOST", host))).Http.Host);

    [Theory]
    [InlineData("DEEPLINE_LIMITS_MAX_TASKS_PER_RUN", "0", "orchestrator.limits.max_tasks_per_run: must be an integer from 1 to 1000000")]
    [InlineData("DEEPLINE_LIMITS_MAX_TASKS_PER_RUN", "1000001", "orchestrator.limits.max_tasks_per_run: must be an integer from 1 to 1000000")]
    [InlineData("DEEPLINE_LIMITS_MAX_EDGES_PER_RUN", "0", "orchestrator.limits.max_edges_per_run: must be an integer from 1 to 10000000")]
    [InlineData("DEEPLINE_LIMITS_MAX_VALUE_BYTES", "16777217", "orchestrator.limits.max_value_bytes: must be an integer from 1 to 16777216")]
    [InlineData("DEEPLINE_LIMITS_MAX_BODY_BYTES", "1023", "orchestrator.limits.max_body_bytes: must be an integer from 1024 to 268435456")]
    [InlineData("DEEPLINE_LIMITS_BODY_TIMEOUT", "3601", "orchestrator.limits.body_timeout_s: must be an integer from 1 to 3600")]
    [InlineData("DEEPLINE_LIMITS_RATE_PER_SECOND", "-1", "orchestrator.limits.rate_per_second: must be an integer from 0 (unlimited) to 1000000")]
    [InlineData("DEEPLINE_LIMITS_RATE_BURST", "0", "orchestrator.limits.rate_burst: must be an integer from 1 to 1000000")]
    [InlineData("DEEPLINE_LIMITS_RUN_THRESHOLD_MIN", "0", "orchestrator.limits.run_threshold_min_s: must be a positive integer")]
    [InlineData("DEEPLINE_LIMITS_RUN_THRESHOLD_MAX", "59", "orchestrator.limits.run_threshold_max_s: must be at least orchestrator.limits.run_threshold_min_s (60), got 59")]
    public void Limits_outside_their_range_are_refused_naming_the_key(string variable, string value, string expected)
    {
        var e = Assert.Throws<ConfigException>(() => Load(null, Env((variable, value))));
        Assert.StartsWith(expected, Assert.Single(e.Errors));
    }

    [Theory]
    [InlineData("DEEPLINE_LIMITS_MAX_TASKS_PER_RUN", "1")]
    [InlineData("DEEPLINE_LIMITS_MAX_TASKS_PER_RUN", "1000000")]
    [InlineData("DEEPLINE_LIMITS_MAX_BODY_BYTES", "1024")]
    [InlineData("DEEPLINE_LIMITS_MAX_BODY_BYTES", "268435456")]
    [InlineData("DEEPLINE_LIMITS_RATE_PER_SECOND", "0")]
    [InlineData("DEEPLINE_LIMITS_BODY_TIMEOUT", "3600")]
    public void Limits_at_the_ends_of_their_range_load(string variable, string value)
    {
        var c = Load(null, Env((variable, value)));
        var key = ConfigLoader.Keys.Single(k => k.EnvironmentVariable == variable);
        Assert.Equal(value, Field(c, key.Path));
    }

    private static string FindRepoRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "Deepline.Actors.sln")))
                return dir.FullName;
        }
        throw new InvalidOperationException("Deepline.Actors.sln not found above " + AppContext.BaseDirectory);
    }

    private const string FullYaml = """
        orchestrator:
          deadlock:
            check_interval_s: 30
            pending_stale_s: 600
            workflow_stale_s: 7200
            cancel_on_deadlock: false
            alert_webhook: "https://hooks.example.com/services/T/B/X"
            max_dependency_depth: 100
            heartbeat_timeout_s: 45
            cancel_timeout_s: 10
          http: { host: 0.0.0.0, port: 9001 }
          remoting:
            host: node-1.internal
            port: 0
            seed_nodes:
              - akka.tcp://deepline@node-1.internal:4053
              - akka.tcp://deepline@10.0.0.2:4053
          data: { dir: /var/lib/deepline }
          workers: { enabled: false, slots: 0, pools: { gpu: 2, io.bulk: 8 } }
          runs: { snapshot_every: 50, passivate_after_s: 30 }
          auth: { keys_file: /etc/deepline/keys.yaml }
          store: { provider: postgresql, connection: "Host=db.internal;Database=deepline;Username=deepline" }
        """;

    // ------------------------------------------------------------------ sources and precedence

    [Fact]
    public void No_file_and_no_environment_gives_the_defaults()
    {
        var config = Load(null);
        AssertSameConfig(DeeplineConfig.Defaults, config);
    }

    [Fact]
    public void Empty_or_comment_only_file_gives_the_defaults()
    {
        AssertSameConfig(DeeplineConfig.Defaults, Load(Write("")));
        AssertSameConfig(DeeplineConfig.Defaults, Load(Write("# nothing here\n")));
        AssertSameConfig(DeeplineConfig.Defaults, Load(Write("orchestrator:\n  deadlock:\n")));
    }

    [Fact]
    public void File_values_are_read()
    {
        var c = Load(Write(FullYaml));

        Assert.Equal(new DeadlockConfig(30, 600, 7200, false, "https://hooks.example.com/services/T/B/X", 100, 45, 10), c.Deadlock);
        Assert.Equal(new HttpConfig("0.0.0.0", 9001), c.Http);
        Assert.Equal("node-1.internal", c.Remoting.Host);
        Assert.Equal(0, c.Remoting.Port);
        Assert.Equal(["akka.tcp://deepline@node-1.internal:4053", "akka.tcp://deepline@10.0.0.2:4053"], c.Remoting.SeedNodes);
        Assert.Equal("/var/lib/deepline", c.Data.Dir);
        Assert.False(c.Workers.Enabled);
        Assert.Equal(0, c.Workers.Slots);
        Assert.Equal(2, c.Workers.Pools.Count);
        Assert.Equal(2, c.Workers.Pools["gpu"]);
        Assert.Equal(8, c.Workers.Pools["io.bulk"]);
        Assert.Equal(new RunsConfig(50, 30), c.Runs);
    }

    [Fact]
    public void Keys_missing_from_the_file_keep_their_defaults()
    {
        var c = Load(Write("orchestrator:\n  deadlock:\n    pending_stale_s: 1200\n  http:\n    port: 8080\n"));

        Assert.Equal(DeeplineConfig.Defaults.Deadlock with { PendingStaleS = 1200 }, c.Deadlock);
        Assert.Equal(DeeplineConfig.Defaults.Http with { Port = 8080 }, c.Http);
        Assert.Equal(DeeplineConfig.Defaults.Runs, c.Runs);
    }

    [Fact]
    public void Config_yaml_in_the_working_directory_is_used_when_no_path_is_named()
    {
        Write("orchestrator:\n  http:\n    port: 8123\n", ConfigLoader.DefaultFileName);
        Assert.Equal(8123, Load(null).Http.Port);
    }

    [Fact]
    public void DEEPLINE_CONFIG_names_the_file_and_the_argument_wins_over_it()
    {
        var fromEnv = Write("orchestrator:\n  http:\n    port: 8201\n", "env.yaml");
        var fromArg = Write("orchestrator:\n  http:\n    port: 8202\n", "arg.yaml");
        Write("orchestrator:\n  http:\n    port: 8203\n", ConfigLoader.DefaultFileName);

        Assert.Equal(8201, Load(null, Env(("DEEPLINE_CONFIG", fromEnv))).Http.Port);
        Assert.Equal(8202, Load(fromArg, Env(("DEEPLINE_CONFIG", fromEnv))).Http.Port);
        Assert.Equal(8203, Load(null, Env(("DEEPLINE_CONFIG", null))).Http.Port);
    }

    [Fact]
    public void Environment_overrides_the_file()
    {
        var path = Write(FullYaml);
        var c = Load(path, Env(
            ("DEEPLINE_DEADLOCK_CHECK_INTERVAL", "20"),
            ("DEEPLINE_DEADLOCK_WEBHOOK", ""),
            ("DEEPLINE_HTTP_PORT", "9100"),
            ("DEEPLINE_REMOTING_SEED_NODES", ""),
            ("DEEPLINE_WORKERS_POOLS", "cpu=3"),
            ("DEEPLINE_WORKERS_ENABLED", "yes")));

        Assert.Equal(20, c.Deadlock.CheckIntervalS);
        Assert.Equal(600, c.Deadlock.PendingStaleS); // from the file
        Assert.Equal("", c.Deadlock.AlertWebhook);
        Assert.Equal(9100, c.Http.Port);
        Assert.Equal("0.0.0.0", c.Http.Host); // from the file
        Assert.Empty(c.Remoting.SeedNodes);
        Assert.Equal(new Dictionary<string, int> { ["cpu"] = 3 }, c.Workers.Pools);
        Assert.True(c.Workers.Enabled);
    }

    [Fact]
    public void Environment_variables_set_to_null_count_as_unset()
    {
        var c = Load(Write("orchestrator:\n  http:\n    port: 8444\n"), Env(("DEEPLINE_HTTP_PORT", null)));
        Assert.Equal(8444, c.Http.Port);
    }

    [Fact]
    public void Every_key_has_exactly_the_documented_environment_variable()
    {
        string[] expected =
        [
            "DEEPLINE_DEADLOCK_CHECK_INTERVAL", "DEEPLINE_DEADLOCK_PENDING_STALE", "DEEPLINE_DEADLOCK_WORKFLOW_STALE",
            "DEEPLINE_DEADLOCK_CANCEL_ON_DEADLOCK", "DEEPLINE_DEADLOCK_WEBHOOK", "DEEPLINE_DEADLOCK_MAX_DEPENDENCY_DEPTH",
            "DEEPLINE_DEADLOCK_HEARTBEAT_TIMEOUT", "DEEPLINE_DEADLOCK_CANCEL_TIMEOUT",
            "DEEPLINE_DEADLOCK_ALERT_FORMAT", "DEEPLINE_DEADLOCK_ALERT_ROUTING_KEY", "DEEPLINE_DEADLOCK_ALERT_TIMEOUT", "DEEPLINE_DEADLOCK_ALERT_RETRIES",
            "DEEPLINE_DEADLOCK_MONITOR_ROLE", "DEEPLINE_DEADLOCK_VICTIM",
            "DEEPLINE_HTTP_HOST",
            "DEEPLINE_HTTP_PORT", "DEEPLINE_REMOTING_HOST", "DEEPLINE_REMOTING_PORT", "DEEPLINE_REMOTING_ROLES", "DEEPLINE_REMOTING_DOWN_UNREACHABLE_AFTER", "DEEPLINE_REMOTING_TLS_CERTIFICATE", "DEEPLINE_REMOTING_TLS_CERTIFICATE_PASSWORD", "DEEPLINE_REMOTING_SEED_NODES",
            "DEEPLINE_DATA_DIR", "DEEPLINE_LOGGING_DIR", "DEEPLINE_LOGGING_CONSOLE_FORMAT", "DEEPLINE_LOGGING_LEVEL", "DEEPLINE_WORKERS_ENABLED", "DEEPLINE_WORKERS_SLOTS", "DEEPLINE_WORKERS_POOLS",
            "DEEPLINE_WORKERS_CANCEL_GRACE", "DEEPLINE_WORKERS_PROCESS_ALLOWED_COMMANDS", "DEEPLINE_WORKERS_PROCESS_USER",
            "DEEPLINE_RUNS_SNAPSHOT_EVERY", "DEEPLINE_RUNS_PASSIVATE_AFTER", "DEEPLINE_RUNS_WORKFLOW_ROLE",
            "DEEPLINE_ADMIN_KEY",
            "DEEPLINE_REDIS", "DEEPLINE_REDIS_RETENTION",
            "DEEPLINE_AUTH_KEYS_FILE",
            "DEEPLINE_LIMITS_MAX_TASKS_PER_RUN", "DEEPLINE_LIMITS_MAX_EDGES_PER_RUN", "DEEPLINE_LIMITS_MAX_VALUE_BYTES",
            "DEEPLINE_LIMITS_MAX_BODY_BYTES", "DEEPLINE_LIMITS_BODY_TIMEOUT", "DEEPLINE_LIMITS_RATE_PER_SECOND", "DEEPLINE_LIMITS_RATE_BURST",
            "DEEPLINE_LIMITS_RUN_THRESHOLD_MIN", "DEEPLINE_LIMITS_RUN_THRESHOLD_MAX",
            "DEEPLINE_LIMITS_MAX_OPEN_RUNS_PER_CLIENT", "DEEPLINE_LIMITS_MAX_OPEN_TASKS_PER_CLIENT", "DEEPLINE_LIMITS_BULK_CANCEL_RATE",
            "DEEPLINE_RESOURCES_DEFAULT_CAPACITY", "DEEPLINE_RESOURCES_CLAIM_LEASE", "DEEPLINE_RESOURCES_MAX_CLAIMS_PER_KEY",
            "DEEPLINE_RETRY_MAX_ATTEMPTS", "DEEPLINE_RETRY_INITIAL_INTERVAL", "DEEPLINE_RETRY_BACKOFF_COEFFICIENT", "DEEPLINE_RETRY_MAX_INTERVAL",
            "DEEPLINE_RETRY_POOL_MAX_ATTEMPTS", "DEEPLINE_RETRY_POISON_AFTER",
            "DEEPLINE_RETENTION_SUCCEEDED", "DEEPLINE_RETENTION_FAILED", "DEEPLINE_RETENTION_CANCELLED", "DEEPLINE_RETENTION_MAX_FINISHED_RUNS", "DEEPLINE_RETENTION_ARCHIVE_DIR",
            "DEEPLINE_STORE_PROVIDER", "DEEPLINE_STORE_CONNECTION",
        ];
        Assert.Equal(expected, ConfigLoader.Keys.Select(k => k.EnvironmentVariable));
        Assert.Equal(ConfigLoader.Keys.Count, ConfigLoader.Keys.Select(k => k.Path).Distinct().Count());

        // The naming rule: DEEPLINE_<SECTION>_<KEY>, trailing _S dropped; alert_webhook is the seed's special name,
        // and the Redis connection is the issue's DEEPLINE_REDIS.
        foreach (var key in ConfigLoader.Keys.Where(k => k.Name != "alert_webhook" && k.Path != "orchestrator.redis.connection"))
        {
            var parts = key.Path.Split('.');
            var name = parts[^1].ToUpperInvariant();
            if (name.EndsWith("_S", StringComparison.Ordinal))
                name = name[..^2];
            Assert.Equal($"DEEPLINE_{string.Join("_", parts[1..^1]).ToUpperInvariant()}_{name}", key.EnvironmentVariable);
        }
    }

    public static TheoryData<string, string, string> EnvironmentCases => new()
    {
        // variable, value, expected rendering of the affected field
        { "DEEPLINE_DEADLOCK_CHECK_INTERVAL", "30", "30" },
        { "DEEPLINE_DEADLOCK_PENDING_STALE", "600", "600" },
        { "DEEPLINE_DEADLOCK_WORKFLOW_STALE", "7200", "7200" },
        { "DEEPLINE_DEADLOCK_CANCEL_ON_DEADLOCK", "false", "False" },
        { "DEEPLINE_DEADLOCK_WEBHOOK", "https://hooks.slack.com/services/A/B/C", "https://hooks.slack.com/services/A/B/C" },
        { "DEEPLINE_DEADLOCK_MAX_DEPENDENCY_DEPTH", "120", "120" },
        { "DEEPLINE_DEADLOCK_HEARTBEAT_TIMEOUT", "90", "90" },
        { "DEEPLINE_DEADLOCK_CANCEL_TIMEOUT", "15", "15" },
        { "DEEPLINE_DEADLOCK_ALERT_FORMAT", "pagerduty", "pagerduty" },
        { "DEEPLINE_DEADLOCK_ALERT_ROUTING_KEY", "R0UT1NG", "R0UT1NG" },
        { "DEEPLINE_DEADLOCK_ALERT_TIMEOUT", "9", "9" },
        { "DEEPLINE_DEADLOCK_ALERT_RETRIES", "0", "0" },
        { "DEEPLINE_DEADLOCK_MONITOR_ROLE", "monitor", "monitor" },
        { "DEEPLINE_DEADLOCK_VICTIM", "lowest_priority", "lowest_priority" },
        { "DEEPLINE_RESOURCES_DEFAULT_CAPACITY", "4", "4" },
        { "DEEPLINE_RESOURCES_CLAIM_LEASE", "5", "5" },
        { "DEEPLINE_RESOURCES_MAX_CLAIMS_PER_KEY", "250", "250" },
        { "DEEPLINE_RETRY_MAX_ATTEMPTS", "5", "5" },
        { "DEEPLINE_RETRY_INITIAL_INTERVAL", "0", "0" },
        { "DEEPLINE_RETRY_BACKOFF_COEFFICIENT", "3", "3" },
        { "DEEPLINE_RETRY_MAX_INTERVAL", "120", "120" },
        { "DEEPLINE_RETRY_POOL_MAX_ATTEMPTS", "gpu=5, io=1", "gpu=5|io=1" },
        { "DEEPLINE_RETRY_POISON_AFTER", "4", "4" },
        { "DEEPLINE_REMOTING_ROLES", "monitor, edge", "monitor|edge" },
        { "DEEPLINE_HTTP_HOST", "localhost", "localhost" },
        { "DEEPLINE_HTTP_PORT", "8080", "8080" },
        { "DEEPLINE_REMOTING_HOST", "10.1.2.3", "10.1.2.3" },
        { "DEEPLINE_REMOTING_PORT", "0", "0" },
        { "DEEPLINE_REMOTING_SEED_NODES", " akka.tcp://deepline@a:4053 , akka.tcp://deepline@b:4054 ", "akka.tcp://deepline@a:4053|akka.tcp://deepline@b:4054" },
        { "DEEPLINE_DATA_DIR", "/srv/deepline", "/srv/deepline" },
        { "DEEPLINE_LOGGING_DIR", "/var/log/deepline", "/var/log/deepline" },
        { "DEEPLINE_LOGGING_CONSOLE_FORMAT", "json", "json" },
        { "DEEPLINE_LOGGING_LEVEL", "debug", "debug" },
        { "DEEPLINE_WORKERS_ENABLED", "0", "False" },
        { "DEEPLINE_WORKERS_SLOTS", "16", "16" },
        { "DEEPLINE_WORKERS_POOLS", "gpu=2, io=8", "gpu=2|io=8" },
        { "DEEPLINE_WORKERS_CANCEL_GRACE", "3", "3" },
        { "DEEPLINE_WORKERS_PROCESS_ALLOWED_COMMANDS", "python3, /usr/bin/rsync", "python3|/usr/bin/rsync" },
        { "DEEPLINE_WORKERS_PROCESS_USER", "nobody", "nobody" },
        { "DEEPLINE_RUNS_SNAPSHOT_EVERY", "500", "500" },
        { "DEEPLINE_RUNS_PASSIVATE_AFTER", "300", "300" },
        { "DEEPLINE_RUNS_WORKFLOW_ROLE", "workflow", "workflow" },
        { "DEEPLINE_ADMIN_KEY", "0123456789abcdef-admin", "0123456789abcdef-admin" },
        { "DEEPLINE_REDIS", "127.0.0.1:6380", "127.0.0.1:6380" },
        { "DEEPLINE_REDIS_RETENTION", "3600", "3600" },
        { "DEEPLINE_AUTH_KEYS_FILE", "/etc/deepline/keys.yaml", "/etc/deepline/keys.yaml" },
        { "DEEPLINE_LIMITS_MAX_TASKS_PER_RUN", "500", "500" },
        { "DEEPLINE_LIMITS_MAX_EDGES_PER_RUN", "2000", "2000" },
        { "DEEPLINE_LIMITS_MAX_VALUE_BYTES", "1024", "1024" },
        { "DEEPLINE_LIMITS_MAX_BODY_BYTES", "65536", "65536" },
        { "DEEPLINE_LIMITS_BODY_TIMEOUT", "5", "5" },
        { "DEEPLINE_LIMITS_RATE_PER_SECOND", "0", "0" },
        { "DEEPLINE_LIMITS_RATE_BURST", "50", "50" },
        { "DEEPLINE_LIMITS_RUN_THRESHOLD_MIN", "10", "10" },
        { "DEEPLINE_LIMITS_RUN_THRESHOLD_MAX", "7200", "7200" },
        { "DEEPLINE_LIMITS_MAX_OPEN_RUNS_PER_CLIENT", "0", "0" },
        { "DEEPLINE_LIMITS_MAX_OPEN_TASKS_PER_CLIENT", "5000", "5000" },
        { "DEEPLINE_LIMITS_BULK_CANCEL_RATE", "250", "250" },
        { "DEEPLINE_RETENTION_SUCCEEDED", "3600", "3600" },
        { "DEEPLINE_RETENTION_FAILED", "0", "0" },
        { "DEEPLINE_RETENTION_CANCELLED", "86400", "86400" },
        { "DEEPLINE_RETENTION_MAX_FINISHED_RUNS", "100000", "100000" },
        { "DEEPLINE_RETENTION_ARCHIVE_DIR", "/var/lib/deepline/archive", "/var/lib/deepline/archive" },
        { "DEEPLINE_STORE_PROVIDER", "postgresql", "postgresql" },
        { "DEEPLINE_REMOTING_DOWN_UNREACHABLE_AFTER", "5", "5" },
        { "DEEPLINE_REMOTING_TLS_CERTIFICATE_PASSWORD", "p4ss", "p4ss" },
        { "DEEPLINE_REMOTING_TLS_CERTIFICATE", Deepline.Tests.Shared.TestCertificates.SharedPfx, Deepline.Tests.Shared.TestCertificates.SharedPfx },
        { "DEEPLINE_STORE_CONNECTION", "Host=db;Database=deepline;Username=deepline;Password=s3cret", "Host=db;Database=deepline;Username=deepline;Password=s3cret" },
    };

    [Theory]
    [MemberData(nameof(EnvironmentCases))]
    public void Each_environment_variable_sets_its_key(string variable, string value, string expected)
    {
        // Seed nodes mean a cluster, and a cluster needs the shared store: those keys come along.
        (string, string)[] companions = variable == "DEEPLINE_REMOTING_SEED_NODES"
            ? [("DEEPLINE_STORE_PROVIDER", "postgresql"), ("DEEPLINE_STORE_CONNECTION", "Host=db;Database=deepline;Username=deepline")]
            : variable == "DEEPLINE_STORE_PROVIDER" ? [("DEEPLINE_STORE_CONNECTION", "Host=db;Database=deepline;Username=deepline")]
            // A node of its own cluster must host its runs: it carries the role it names.
            : variable == "DEEPLINE_RUNS_WORKFLOW_ROLE" ? [("DEEPLINE_REMOTING_ROLES", value)] : [];
        var c = Load(null, Env([(variable, value), .. companions]));
        var key = ConfigLoader.Keys.Single(k => k.EnvironmentVariable == variable);
        Assert.Equal(expected, Field(c, key.Path));

        // and nothing else moved
        foreach (var other in ConfigLoader.Keys.Where(k => k != key && companions.All(x => x.Item1 != k.EnvironmentVariable)))
            Assert.Equal(Field(DeeplineConfig.Defaults, other.Path), Field(c, other.Path));
    }

    [Fact]
    public void Environment_cases_cover_every_key()
    {
        var covered = EnvironmentCases.Select(row => (string)row[0]).ToHashSet();
        Assert.All(ConfigLoader.Keys, k => Assert.Contains(k.EnvironmentVariable, covered));
    }

    private static string Field(DeeplineConfig c, string path) => path switch
    {
        "orchestrator.deadlock.check_interval_s" => c.Deadlock.CheckIntervalS.ToString(),
        "orchestrator.deadlock.pending_stale_s" => c.Deadlock.PendingStaleS.ToString(),
        "orchestrator.deadlock.workflow_stale_s" => c.Deadlock.WorkflowStaleS.ToString(),
        "orchestrator.deadlock.cancel_on_deadlock" => c.Deadlock.CancelOnDeadlock.ToString(),
        "orchestrator.deadlock.alert_webhook" => c.Deadlock.AlertWebhook,
        "orchestrator.deadlock.max_dependency_depth" => c.Deadlock.MaxDependencyDepth.ToString(),
        "orchestrator.deadlock.heartbeat_timeout_s" => c.Deadlock.HeartbeatTimeoutS.ToString(),
        "orchestrator.deadlock.cancel_timeout_s" => c.Deadlock.CancelTimeoutS.ToString(),
        "orchestrator.deadlock.alert_format" => c.Deadlock.AlertFormat,
        "orchestrator.deadlock.alert_routing_key" => c.Deadlock.AlertRoutingKey,
        "orchestrator.deadlock.alert_timeout_s" => c.Deadlock.AlertTimeoutS.ToString(),
        "orchestrator.deadlock.alert_retries" => c.Deadlock.AlertRetries.ToString(),
        "orchestrator.deadlock.monitor_role" => c.Deadlock.MonitorRole,
        "orchestrator.deadlock.victim" => c.Deadlock.Victim,
        "orchestrator.resources.default_capacity" => c.Resources.DefaultCapacity.ToString(),
        "orchestrator.resources.claim_lease_s" => c.Resources.ClaimLeaseS.ToString(),
        "orchestrator.resources.max_claims_per_key" => c.Resources.MaxClaimsPerKey.ToString(),
        "orchestrator.retry.max_attempts" => c.Retry.MaxAttempts.ToString(),
        "orchestrator.retry.initial_interval_s" => c.Retry.InitialIntervalS.ToString(),
        "orchestrator.retry.backoff_coefficient" => c.Retry.BackoffCoefficient.ToString(),
        "orchestrator.retry.max_interval_s" => c.Retry.MaxIntervalS.ToString(),
        "orchestrator.retry.poison_after" => c.Retry.PoisonAfter.ToString(),
        "orchestrator.retry.pool_max_attempts" => string.Join("|", c.Retry.PoolMaxAttempts.OrderBy(p => p.Key, StringComparer.Ordinal).Select(p => $"{p.Key}={p.Value}")),
        "orchestrator.remoting.roles" => string.Join("|", c.Remoting.Roles),
        "orchestrator.http.host" => c.Http.Host,
        "orchestrator.http.port" => c.Http.Port.ToString(),
        "orchestrator.remoting.host" => c.Remoting.Host,
        "orchestrator.remoting.port" => c.Remoting.Port.ToString(),
        "orchestrator.remoting.seed_nodes" => string.Join("|", c.Remoting.SeedNodes),
        "orchestrator.data.dir" => c.Data.Dir,
        "orchestrator.logging.dir" => c.Logging.Dir,
        "orchestrator.logging.console_format" => c.Logging.ConsoleFormat,
        "orchestrator.logging.level" => c.Logging.Level,
        "orchestrator.workers.enabled" => c.Workers.Enabled.ToString(),
        "orchestrator.workers.slots" => c.Workers.Slots.ToString(),
        "orchestrator.workers.pools" => string.Join("|", c.Workers.Pools.OrderBy(p => p.Key, StringComparer.Ordinal).Select(p => $"{p.Key}={p.Value}")),
        "orchestrator.workers.cancel_grace_s" => c.Workers.CancelGraceS.ToString(),
        "orchestrator.workers.process.allowed_commands" => string.Join("|", c.Workers.ProcessAllowedCommands),
        "orchestrator.workers.process.user" => c.Workers.ProcessUser,
        "orchestrator.runs.snapshot_every" => c.Runs.SnapshotEvery.ToString(),
        "orchestrator.runs.passivate_after_s" => c.Runs.PassivateAfterS.ToString(),
        "orchestrator.runs.workflow_role" => c.Runs.WorkflowRole,
        "orchestrator.admin.key" => c.Admin.Key,
        "orchestrator.redis.connection" => c.Redis.Connection,
        "orchestrator.redis.retention_s" => c.Redis.RetentionS.ToString(),
        "orchestrator.auth.keys_file" => c.Auth.KeysFile,
        "orchestrator.limits.max_tasks_per_run" => c.Limits.MaxTasksPerRun.ToString(),
        "orchestrator.limits.max_edges_per_run" => c.Limits.MaxEdgesPerRun.ToString(),
        "orchestrator.limits.max_value_bytes" => c.Limits.MaxValueBytes.ToString(),
        "orchestrator.limits.max_body_bytes" => c.Limits.MaxBodyBytes.ToString(),
        "orchestrator.limits.body_timeout_s" => c.Limits.BodyTimeoutS.ToString(),
        "orchestrator.limits.rate_per_second" => c.Limits.RatePerSecond.ToString(),
        "orchestrator.limits.rate_burst" => c.Limits.RateBurst.ToString(),
        "orchestrator.limits.run_threshold_min_s" => c.Limits.RunThresholdMinS.ToString(),
        "orchestrator.limits.run_threshold_max_s" => c.Limits.RunThresholdMaxS.ToString(),
        "orchestrator.limits.max_open_runs_per_client" => c.Limits.MaxOpenRunsPerClient.ToString(),
        "orchestrator.limits.max_open_tasks_per_client" => c.Limits.MaxOpenTasksPerClient.ToString(),
        "orchestrator.limits.bulk_cancel_rate" => c.Limits.BulkCancelRate.ToString(),
        "orchestrator.retention.succeeded_s" => c.Retention.SucceededS.ToString(),
        "orchestrator.retention.failed_s" => c.Retention.FailedS.ToString(),
        "orchestrator.retention.cancelled_s" => c.Retention.CancelledS.ToString(),
        "orchestrator.retention.max_finished_runs" => c.Retention.MaxFinishedRuns.ToString(),
        "orchestrator.retention.archive_dir" => c.RetentionArchiveDir,
        "orchestrator.store.provider" => c.Store.Provider,
        "orchestrator.remoting.down_unreachable_after_s" => c.Remoting.DownUnreachableAfterS.ToString(),
        "orchestrator.remoting.tls_certificate" => c.Remoting.TlsCertificate,
        "orchestrator.remoting.tls_certificate_password" => c.Remoting.TlsCertificatePassword,
        "orchestrator.store.connection" => c.Store.Connection,
        _ => throw new ArgumentOutOfRangeException(nameof(path), path, "add the new key to Field()"),
    };

    [Theory]
    [InlineData("true", true)]
    [InlineData("TRUE", true)]
    [InlineData("Yes", true)]
    [InlineData("1", true)]
    [InlineData("false", false)]
    [InlineData("No", false)]
    [InlineData("0", false)]
    public void Booleans_accept_true_false_yes_no_1_0_in_any_case(string text, bool expected)
    {
        Assert.Equal(expected, Load(null, Env(("DEEPLINE_WORKERS_ENABLED", text))).Workers.Enabled);
        Assert.Equal(expected, Load(Write($"orchestrator:\n  deadlock:\n    cancel_on_deadlock: {text}\n")).Deadlock.CancelOnDeadlock);
    }

    // ------------------------------------------------------------------ errors

    [Fact]
    public void Missing_explicit_file_is_an_error()
    {
        var missing = Path.Combine(_dir, "nope.yaml");

        var fromArg = Fails(missing);
        Assert.Equal($"config file \"{missing}\" does not exist", fromArg.Message);

        var fromEnv = Fails(null, Env(("DEEPLINE_CONFIG", missing)));
        Assert.Equal($"config file \"{missing}\" does not exist (from DEEPLINE_CONFIG)", fromEnv.Message);
    }

    [Fact]
    public void Malformed_yaml_names_the_file_and_the_line()
    {
        var path = Write("orchestrator:\n  deadlock:\n    check_interval_s: 60\n    alert_webhook: \"unterminated\n    pending_stale_s: 900\n");
        var e = Fails(path);
        Assert.Single(e.Errors);
        Assert.Contains($"config file \"{path}\", line 4", e.Message);
        Assert.Contains("malformed YAML", e.Message);
    }

    [Fact]
    public void Duplicate_key_is_malformed_yaml_with_its_line()
    {
        var path = Write("orchestrator:\n  http:\n    port: 1\n    port: 2\n");
        var e = Fails(path);
        Assert.Contains($"config file \"{path}\", line 4", e.Message);
        Assert.Contains("Duplicate key", e.Message);
    }

    [Fact]
    public void Tab_indentation_is_reported_on_the_line_with_the_tab()
    {
        var path = Write("orchestrator:\n  http:\n\tport: 1\n");
        var e = Fails(path);
        Assert.StartsWith($"config file \"{path}\", line 3, column 1: malformed YAML:", e.Message);
    }

    [Fact]
    public void Yaml_the_parser_cannot_continue_on_is_still_reported_with_file_and_line()
    {
        var path = Write("orchestrator:\n  remoting:\n    seed_nodes: [a,\n  http: 2\n");
        var e = Fails(path);
        Assert.Contains($"config file \"{path}\"", e.Message);
        Assert.Contains("line ", e.Message);
        Assert.Contains("malformed YAML", e.Message);
    }

    [Fact]
    public void Unknown_keys_are_errors_naming_the_path_and_the_known_keys()
    {
        var path = Write("orchestrator:\n  deadlock:\n    chek_interval_s: 60\n");
        var e = Fails(path);

        var line = Assert.Single(e.Errors);
        Assert.StartsWith("orchestrator.deadlock.chek_interval_s: unknown key", line);
        Assert.Contains("did you mean check_interval_s?", line);
        Assert.Contains("(known: check_interval_s, pending_stale_s, workflow_stale_s, cancel_on_deadlock, alert_webhook, " +
            "max_dependency_depth, heartbeat_timeout_s, cancel_timeout_s, alert_format, alert_routing_key, alert_timeout_s, alert_retries, monitor_role, victim)", line);
        Assert.EndsWith($"(at {path}:3)", line);
    }

    [Fact]
    public void The_log_level_is_one_of_four_names_and_anything_else_is_refused_naming_the_key()
    {
        Assert.Equal(LogLevel.Debug, Load(Write("orchestrator:\n  logging:\n    level: debug\n")).Logging.MinimumLevel);
        Assert.Equal(("info", LogLevel.Information), (Load(Write("orchestrator:\n  logging: {}\n")).Logging.Level, Load(Write("orchestrator:\n  logging: {}\n")).Logging.MinimumLevel));
        var line = Assert.Single(FailsYaml("orchestrator:\n  logging:\n    level: verbose\n").Errors);
        Assert.StartsWith("orchestrator.logging.level: must be one of debug, info, warning, error, got \"verbose\"", line);
    }

    [Fact]
    public void The_console_format_is_text_or_json_and_anything_else_is_refused_naming_the_key()
    {
        Assert.Equal("json", Load(Write("orchestrator:\n  logging:\n    console_format: json\n")).Logging.ConsoleFormat);
        Assert.Equal("text", Load(Write("orchestrator:\n  logging: {}\n")).Logging.ConsoleFormat);

        var line = Assert.Single(FailsYaml("orchestrator:\n  logging:\n    console_format: xml\n").Errors);

        Assert.StartsWith("orchestrator.logging.console_format: must be one of text, json, got \"xml\"", line);
    }

    [Fact]
    public void Unknown_sections_and_top_level_keys_are_errors()
    {
        var e = FailsYaml("orchestrator:\n  kafka:\n    url: x\n  deadlock: {}\nlogging: debug\n");
        Assert.Equal(2, e.Errors.Count);
        Assert.Contains(e.Errors, l => l.StartsWith("orchestrator.kafka: unknown key", StringComparison.Ordinal)
            && l.Contains("(known: deadlock, http, remoting, data, logging, workers, runs, admin, redis, auth, limits, resources, retry, retention, store)"));
        Assert.Contains(e.Errors, l => l.StartsWith("logging: unknown key", StringComparison.Ordinal)
            && l.Contains("(known: orchestrator)"));
    }

    [Theory]
    [InlineData("orchestrator:\n  http:\n    port: abc\n", "orchestrator.http.port: must be an integer from 1 to 65535, got \"abc\"")]
    [InlineData("orchestrator:\n  http:\n    port: \"8001\"\n", "orchestrator.http.port: must be an integer from 1 to 65535, got the string \"8001\" (write numbers without quotes)")]
    [InlineData("orchestrator:\n  http:\n    port: [8001]\n", "orchestrator.http.port: must be an integer from 1 to 65535, got a list")]
    [InlineData("orchestrator:\n  http:\n    port: 80.5\n", "orchestrator.http.port: must be an integer from 1 to 65535, got \"80.5\"")]
    [InlineData("orchestrator:\n  http:\n    port:\n", "orchestrator.http.port: must be an integer from 1 to 65535, got nothing")]
    [InlineData("orchestrator:\n  deadlock:\n    cancel_on_deadlock: maybe\n", "orchestrator.deadlock.cancel_on_deadlock: must be a boolean (true/false, yes/no, 1/0), got \"maybe\"")]
    [InlineData("orchestrator:\n  http:\n    host: { a: 1 }\n", "orchestrator.http.host: must be a string, got a mapping")]
    [InlineData("orchestrator:\n  http: 8001\n", "orchestrator.http: must be a mapping of keys, got a single value")]
    [InlineData("orchestrator:\n  remoting:\n    seed_nodes: akka.tcp://deepline@a:1\n", "orchestrator.remoting.seed_nodes: must be a list")]
    [InlineData("orchestrator:\n  workers:\n    pools: [gpu]\n", "orchestrator.workers.pools: must be a mapping of pool name to slots")]
    [InlineData("- orchestrator\n", "the top level must be a mapping")]
    public void Wrong_types_are_errors(string yaml, string expected)
    {
        var e = FailsYaml(yaml);
        var line = Assert.Single(e.Errors);
        Assert.Contains(expected, line);
    }

    [Fact]
    public void Negative_interval_is_an_error_from_the_file_and_from_the_environment()
    {
        var path = Write("orchestrator:\n  deadlock:\n    check_interval_s: -5\n");
        var fromFile = Fails(path);
        Assert.Equal($"orchestrator.deadlock.check_interval_s: must be a positive integer, got \"-5\" (at {path}:3)", fromFile.Message);

        var fromEnv = Fails(null, Env(("DEEPLINE_DEADLOCK_CHECK_INTERVAL", "-5")));
        Assert.Equal(
            "orchestrator.deadlock.check_interval_s: must be a positive integer, got \"-5\" (from DEEPLINE_DEADLOCK_CHECK_INTERVAL)",
            fromEnv.Message);
    }

    [Theory]
    [InlineData("DEEPLINE_DEADLOCK_PENDING_STALE", "orchestrator.deadlock.pending_stale_s")]
    [InlineData("DEEPLINE_DEADLOCK_WORKFLOW_STALE", "orchestrator.deadlock.workflow_stale_s")]
    public void Thresholds_below_the_check_interval_are_errors(string variable, string path)
    {
        var env = Env(
            ("DEEPLINE_DEADLOCK_CHECK_INTERVAL", "120"),
            ("DEEPLINE_DEADLOCK_PENDING_STALE", "120"),
            ("DEEPLINE_DEADLOCK_WORKFLOW_STALE", "120"),
            ("DEEPLINE_DEADLOCK_HEARTBEAT_TIMEOUT", "120"));
        env[variable] = "60";
        var e = Fails(null, env);
        var line = Assert.Single(e.Errors);
        Assert.StartsWith($"{path}: must be at least orchestrator.deadlock.check_interval_s (120, from DEEPLINE_DEADLOCK_CHECK_INTERVAL), got 60", line);
        Assert.Contains("below the scan interval makes no sense", line);
        Assert.EndsWith($"(from {variable})", line);
    }

    [Fact]
    public void Thresholds_equal_to_the_interval_and_workflow_below_pending_are_fine()
    {
        var c = Load(Write("orchestrator:\n  deadlock:\n    check_interval_s: 300\n    pending_stale_s: 300\n" +
                           "    heartbeat_timeout_s: 300\n    workflow_stale_s: 400\n"));
        Assert.Equal(new DeadlockConfig(300, 300, 400, true, "", 50, 300, 30), c.Deadlock);
    }

    [Fact]
    public void The_seeds_long_running_tuning_example_loads_with_the_default_heartbeat_timeout()
    {
        var c = Load(Write("orchestrator:\n  deadlock:\n    check_interval_s: 300\n    pending_stale_s: 3600\n    workflow_stale_s: 7200\n"));
        Assert.Equal(new DeadlockConfig(300, 3600, 7200, true, "", 50, 60, 30), c.Deadlock);
    }

    [Theory]
    [InlineData("hooks.example.com/services/SECRETTOKEN123")]
    [InlineData("ftp://hooks.example.com/SECRETTOKEN123")]
    [InlineData("https://exa mple.com/SECRETTOKEN123")]
    [InlineData("/services/SECRETTOKEN123")]
    [InlineData("https:///SECRETTOKEN123")]
    public void Malformed_webhook_url_is_an_error_that_does_not_echo_the_url(string url)
    {
        var fromEnv = Fails(null, Env(("DEEPLINE_DEADLOCK_WEBHOOK", url)));
        Assert.Equal("orchestrator.deadlock.alert_webhook: not a valid absolute http(s) URL (from DEEPLINE_DEADLOCK_WEBHOOK)", fromEnv.Message);
        Assert.DoesNotContain("SECRETTOKEN123", fromEnv.Message);

        var path = Write($"orchestrator:\n  deadlock:\n    alert_webhook: '{url}'\n");
        var fromFile = Fails(path);
        Assert.Equal($"orchestrator.deadlock.alert_webhook: not a valid absolute http(s) URL (at {path}:3)", fromFile.Message);
        Assert.DoesNotContain("SECRETTOKEN123", fromFile.Message);
    }

    [Fact]
    public void Valid_webhook_is_accepted_and_never_shown_by_Describe()
    {
        var c = Load(null, Env(("DEEPLINE_DEADLOCK_WEBHOOK", SecretWebhook)));
        Assert.Equal(SecretWebhook, c.Deadlock.AlertWebhook);

        var described = ConfigLoader.Describe(c);
        Assert.Contains("orchestrator.deadlock.alert_webhook: configured", described);
        Assert.DoesNotContain("SECRETTOKEN123", described);
        Assert.DoesNotContain("hooks.example.com", described);
        Assert.Contains("orchestrator.deadlock.alert_webhook: not configured", ConfigLoader.Describe(DeeplineConfig.Defaults));
    }

    [Fact]
    public void A_bad_role_names_its_position_in_the_list()
    {
        var e = Fails(null, Env(("DEEPLINE_REMOTING_ROLES", "monitor,not ok")));
        var line = Assert.Single(e.Errors);
        Assert.StartsWith("orchestrator.remoting.roles[1]: must be a role name", line);
        Assert.EndsWith("(from DEEPLINE_REMOTING_ROLES)", line);
    }

    [Fact]
    public void The_PagerDuty_routing_key_is_never_shown_by_Describe()
    {
        var c = Load(null, Env(("DEEPLINE_DEADLOCK_ALERT_ROUTING_KEY", "R0UT1NGSECRET")));
        var described = ConfigLoader.Describe(c);
        Assert.Contains("orchestrator.deadlock.alert_routing_key: configured", described);
        Assert.DoesNotContain("R0UT1NGSECRET", described);
    }

    [Fact]
    public void Describe_renders_every_key_once()
    {
        var lines = ConfigLoader.DescribeLines(DeeplineConfig.Defaults);
        Assert.Equal(ConfigLoader.Keys.Select(k => k.Path), lines.Select(l => l[..l.IndexOf(": ", StringComparison.Ordinal)]));
        Assert.Contains("orchestrator.deadlock.check_interval_s: 60", lines);
        Assert.Contains("orchestrator.http.port: 8001", lines);
        Assert.Equal(string.Join(Environment.NewLine, lines), ConfigLoader.Describe(DeeplineConfig.Defaults));
    }

    [Fact]
    public void Multiple_errors_are_reported_together_one_per_line()
    {
        var path = Write("""
            orchestrator:
              deadlock:
                check_interval_s: -5
                max_dependency_depth: 0
                bogus: 1
              http:
                port: 0
            """);
        var e = Fails(path, Env(("DEEPLINE_DEADLOCK_WEBHOOK", "not a url SECRETTOKEN123"), ("DEEPLINE_RUNS_SNAPSHOT_EVERY", "x")));

        Assert.Equal(6, e.Errors.Count);
        Assert.Equal(e.Errors, e.Message.Split('\n'));
        Assert.Contains(e.Errors, l => l.StartsWith("orchestrator.deadlock.bogus: unknown key", StringComparison.Ordinal));
        Assert.Contains(e.Errors, l => l.StartsWith("orchestrator.deadlock.check_interval_s: must be a positive integer, got \"-5\"", StringComparison.Ordinal));
        Assert.Contains(e.Errors, l => l.StartsWith("orchestrator.deadlock.max_dependency_depth: must be an integer from 1 to 100000, got \"0\"", StringComparison.Ordinal));
        Assert.Contains(e.Errors, l => l.StartsWith("orchestrator.http.port: must be an integer from 1 to 65535, got \"0\"", StringComparison.Ordinal));
        Assert.Contains("orchestrator.deadlock.alert_webhook: not a valid absolute http(s) URL (from DEEPLINE_DEADLOCK_WEBHOOK)", e.Errors);
        Assert.Contains("orchestrator.runs.snapshot_every: must be an integer from 1 to 100000, got \"x\" (from DEEPLINE_RUNS_SNAPSHOT_EVERY)", e.Errors);
        Assert.DoesNotContain("SECRETTOKEN123", e.Message);
    }

    [Fact]
    public void Environment_errors_are_reported_even_when_the_file_is_missing()
    {
        var e = Fails(Path.Combine(_dir, "missing.yaml"), Env(("DEEPLINE_HTTP_PORT", "99999")));
        Assert.Equal(2, e.Errors.Count);
        Assert.Contains("orchestrator.http.port: must be an integer from 1 to 65535, got \"99999\" (from DEEPLINE_HTTP_PORT)", e.Errors);
    }

    [Theory]
    [InlineData("DEEPLINE_HTTP_PORT", "0", false)]
    [InlineData("DEEPLINE_HTTP_PORT", "65535", true)]
    [InlineData("DEEPLINE_HTTP_PORT", "65536", false)]
    [InlineData("DEEPLINE_REMOTING_PORT", "0", true)]
    [InlineData("DEEPLINE_REMOTING_PORT", "-1", false)]
    [InlineData("DEEPLINE_REMOTING_PORT", "65536", false)]
    [InlineData("DEEPLINE_DEADLOCK_MAX_DEPENDENCY_DEPTH", "100000", true)]
    [InlineData("DEEPLINE_DEADLOCK_MAX_DEPENDENCY_DEPTH", "100001", false)]
    [InlineData("DEEPLINE_WORKERS_SLOTS", "0", true)]
    [InlineData("DEEPLINE_WORKERS_SLOTS", "1024", true)]
    [InlineData("DEEPLINE_WORKERS_SLOTS", "1025", false)]
    [InlineData("DEEPLINE_WORKERS_CANCEL_GRACE", "0", false)]
    [InlineData("DEEPLINE_WORKERS_CANCEL_GRACE", "1", true)]
    [InlineData("DEEPLINE_WORKERS_CANCEL_GRACE", "3600", true)]
    [InlineData("DEEPLINE_WORKERS_CANCEL_GRACE", "3601", false)]
    [InlineData("DEEPLINE_RUNS_SNAPSHOT_EVERY", "0", false)]
    [InlineData("DEEPLINE_RUNS_SNAPSHOT_EVERY", "100000", true)]
    [InlineData("DEEPLINE_RUNS_PASSIVATE_AFTER", "0", false)]
    [InlineData("DEEPLINE_RUNS_PASSIVATE_AFTER", "1", true)]
    [InlineData("DEEPLINE_DEADLOCK_CANCEL_TIMEOUT", "0", false)]
    [InlineData("DEEPLINE_DEADLOCK_ALERT_FORMAT", "teams", false)]
    [InlineData("DEEPLINE_DEADLOCK_ALERT_RETRIES", "11", false)]
    [InlineData("DEEPLINE_DEADLOCK_ALERT_TIMEOUT", "0", false)]
    [InlineData("DEEPLINE_DEADLOCK_MONITOR_ROLE", "bad role", false)]
    [InlineData("DEEPLINE_DEADLOCK_CHECK_INTERVAL", "99999999999", false)]
    [InlineData("DEEPLINE_HTTP_HOST", "", false)]
    [InlineData("DEEPLINE_HTTP_HOST", "bad host", false)]
    [InlineData("DEEPLINE_REMOTING_HOST", "  ", false)]
    [InlineData("DEEPLINE_DATA_DIR", "", false)]
    [InlineData("DEEPLINE_WORKERS_ENABLED", "on", false)]
    public void Ranges_are_enforced(string variable, string value, bool valid)
    {
        var env = Env((variable, value));
        if (valid)
        {
            Load(null, env);
            return;
        }
        var line = Assert.Single(Fails(null, env).Errors);
        var key = ConfigLoader.Keys.Single(k => k.EnvironmentVariable == variable);
        Assert.StartsWith(key.Path + ": ", line);
        Assert.EndsWith($"(from {variable})", line);
    }

    [Fact]
    public void The_seeds_top_level_deadlock_snippet_is_read_as_orchestrator_deadlock_with_one_notice()
    {
        // The seed's "For long-running workflows" tuning snippet, pasted as is.
        var path = Write("""
            # For long-running workflows
            deadlock:
              check_interval_s: 300       # Less frequent checks
              pending_stale_s: 3600       # Longer timeout
              workflow_stale_s: 7200      # 2-hour workflow timeout
            """);

        var c = Load(path);

        Assert.Equal((300, 3600, 7200), (c.Deadlock.CheckIntervalS, c.Deadlock.PendingStaleS, c.Deadlock.WorkflowStaleS));
        var notice = Assert.Single(c.Notices);
        Assert.Equal($"config file \"{path}\", line 2: top-level \"deadlock:\" read as orchestrator.deadlock " +
            "(the seed document's short form); nest it under \"orchestrator:\" to silence this notice", notice);
        Assert.Empty(Load(Write("orchestrator:\n  deadlock:\n    check_interval_s: 300\n", "nested.yaml")).Notices);

        // The short form is still checked like the long one, and the environment still wins over it.
        Assert.Equal(30, Load(path, Env(("DEEPLINE_DEADLOCK_CHECK_INTERVAL", "30"))).Deadlock.CheckIntervalS);
        var unknown = Assert.Single(FailsYaml("deadlock:\n  pending_stale: 10\n").Errors);
        Assert.StartsWith("orchestrator.deadlock.pending_stale: unknown key, did you mean pending_stale_s?", unknown);

        // Both forms at once for one key: refused, since either could be the one meant.
        var both = Assert.Single(FailsYaml("orchestrator:\n  deadlock:\n    pending_stale_s: 600\ndeadlock:\n  pending_stale_s: 1800\n").Errors);
        Assert.StartsWith("orchestrator.deadlock.pending_stale_s: set both under", both);
    }

    [Fact]
    public void Seed_node_addresses_must_parse()
    {
        var path = Write("""
            orchestrator:
              remoting:
                seed_nodes:
                  - akka.tcp://deepline@10.0.0.1:4053
                  - akka.tcp://deepline@[::1]:4053
                  - http://10.0.0.1:4053
                  - akka.tcp://deepline@host
                  - akka.tcp://deepline@host:70000
                  - akka.tcp://@host:4053
            """);
        var e = Fails(path);
        Assert.Equal(4, e.Errors.Count);
        Assert.Equal(
            $"orchestrator.remoting.seed_nodes[2]: must be an address akka.tcp://<system>@<host>:<port> (port 1..65535), got \"http://10.0.0.1:4053\" (at {path}:6)",
            e.Errors[0]);
        Assert.StartsWith("orchestrator.remoting.seed_nodes[3]:", e.Errors[1]);
        Assert.StartsWith("orchestrator.remoting.seed_nodes[4]:", e.Errors[2]);
        Assert.StartsWith("orchestrator.remoting.seed_nodes[5]:", e.Errors[3]);

        var fromEnv = Fails(null, Env(("DEEPLINE_REMOTING_SEED_NODES", "akka.tcp://deepline@a:1,akka.tcp://deepline@b")));
        Assert.Equal(
            "orchestrator.remoting.seed_nodes[1]: must be an address akka.tcp://<system>@<host>:<port> (port 1..65535), got \"akka.tcp://deepline@b\" (from DEEPLINE_REMOTING_SEED_NODES)",
            fromEnv.Message);
    }

    [Fact]
    public void Pool_names_and_slots_are_validated()
    {
        var path = Write("""
            orchestrator:
              workers:
                pools:
                  gpu: 2
                  "has space": 1
                  io: 0
                  cpu: "4"
                  default: 3
                  "tenant:a.b-c_d": 1024
            """);
        var e = Fails(path);
        Assert.Equal(4, e.Errors.Count);
        Assert.Contains(e.Errors, l => l.StartsWith("orchestrator.workers.pools: pool name \"has space\" must be 1..128 characters of [A-Za-z0-9._:-]", StringComparison.Ordinal));
        Assert.Contains($"orchestrator.workers.pools.io: must be an integer from 1 to 1024, got \"0\" (at {path}:6)", e.Errors);
        Assert.Contains(e.Errors, l => l.StartsWith("orchestrator.workers.pools.cpu: must be an integer from 1 to 1024, got the string \"4\"", StringComparison.Ordinal));
        Assert.Contains(e.Errors, l => l.StartsWith("orchestrator.workers.pools.default: pool \"default\" is sized by orchestrator.workers.slots", StringComparison.Ordinal));

        var fromEnv = Fails(null, Env(("DEEPLINE_WORKERS_POOLS", "gpu=2,io,gpu=3,x=abc")));
        Assert.Equal(3, fromEnv.Errors.Count);
        Assert.Contains("orchestrator.workers.pools: entry \"io\" must be name=slots, e.g. gpu=2 (from DEEPLINE_WORKERS_POOLS)", fromEnv.Errors);
        Assert.Contains("orchestrator.workers.pools.gpu: pool listed twice (from DEEPLINE_WORKERS_POOLS)", fromEnv.Errors);
        Assert.Contains("orchestrator.workers.pools.x: must be an integer from 1 to 1024, got \"abc\" (from DEEPLINE_WORKERS_POOLS)", fromEnv.Errors);

        Assert.Equal(new Dictionary<string, int> { ["tenant:a.b-c_d"] = 1024 },
            Load(Write("orchestrator:\n  workers:\n    pools: { \"tenant:a.b-c_d\": 1024 }\n")).Workers.Pools);
        Assert.Empty(Load(Write("orchestrator:\n  workers:\n    pools:\n")).Workers.Pools);
    }

    [Fact]
    public void Cancel_grace_is_read_from_the_file_and_a_bad_value_names_the_key_and_line()
    {
        Assert.Equal(10, DeeplineConfig.Defaults.Workers.CancelGraceS);
        Assert.Equal(25, Load(Write("orchestrator:\n  workers:\n    cancel_grace_s: 25\n")).Workers.CancelGraceS);

        var path = Write("orchestrator:\n  workers:\n    cancel_grace_s: soon\n");
        var line = Assert.Single(Fails(path).Errors);
        Assert.Equal($"orchestrator.workers.cancel_grace_s: must be an integer from 1 to 3600, got \"soon\" (at {path}:3)", line);
    }

    // ------------------------------------------------------------------ redis

    [Fact]
    public void Redis_is_off_by_default_and_an_empty_DEEPLINE_REDIS_keeps_it_off()
    {
        Assert.False(DeeplineConfig.Defaults.Redis.Enabled);
        Assert.Equal(604_800, DeeplineConfig.Defaults.Redis.RetentionS);
        Assert.False(Load(null, Env(("DEEPLINE_REDIS", ""))).Redis.Enabled);
        Assert.False(Load(null, Env(("DEEPLINE_REDIS", "   "))).Redis.Enabled);
    }

    [Fact]
    public void Redis_connection_and_retention_are_read_from_the_file()
    {
        var c = Load(Write("orchestrator:\n  redis:\n    connection: \"10.0.0.5:6379,password=s3cret\"\n    retention_s: 86400\n"));
        Assert.True(c.Redis.Enabled);
        Assert.Equal("10.0.0.5:6379,password=s3cret", c.Redis.Connection);
        Assert.Equal(86400, c.Redis.RetentionS);
        // The connection string may carry a password: Describe only says whether it is set.
        Assert.Contains("orchestrator.redis.connection: configured", ConfigLoader.Describe(c));
        Assert.DoesNotContain("s3cret", ConfigLoader.Describe(c));
    }

    [Fact]
    public void Bad_redis_values_name_the_key_and_never_echo_the_connection_string()
    {
        var e = Assert.Throws<ConfigException>(() => Load(null, Env(("DEEPLINE_REDIS", "localhost:6379,sekrit=hunter2"), ("DEEPLINE_REDIS_RETENTION", "0"))));
        Assert.Contains("orchestrator.redis.connection: not a valid Redis connection string", e.Message);
        Assert.Contains("DEEPLINE_REDIS", e.Message);
        Assert.DoesNotContain("hunter2", e.Message);
        Assert.Contains("orchestrator.redis.retention_s: must be a positive integer", e.Message);
    }

    // ------------------------------------------------------------------ the shipped file

    [Fact]
    public void Shipped_config_yaml_loads_and_equals_the_defaults()
    {
        var shipped = Path.Combine(FindRepoRoot(), "config.yaml");
        Assert.True(File.Exists(shipped), shipped);

        var c = ConfigLoader.Load(shipped, Env(), _dir);
        AssertSameConfig(DeeplineConfig.Defaults, c);

        // every key is spelled out, with its environment variable in the comment
        var text = File.ReadAllText(shipped);
        foreach (var key in ConfigLoader.Keys)
        {
            Assert.Contains($"    {key.Name}: {key.DefaultValue} ", text);
            Assert.Contains(key.EnvironmentVariable, text);
        }
    }

    [Fact]
    public void Key_defaults_written_as_yaml_load_as_the_defaults()
    {
        var lines = new List<string> { "orchestrator:" };
        // Sections nest (orchestrator.workers.process.*): write each key under its full path, opening sections as they come.
        var open = new List<string>();
        foreach (var key in ConfigLoader.Keys.OrderBy(k => k.Path.Split('.')[1], StringComparer.Ordinal).ThenBy(k => k.Path.Count(c => c == '.')))
        {
            var sections = key.Path.Split('.')[1..^1];
            var common = 0;
            while (common < open.Count && common < sections.Length && open[common] == sections[common]) common++;
            open = [.. open.Take(common)];
            for (var i = common; i < sections.Length; i++)
            {
                lines.Add($"{new string(' ', 2 * (i + 1))}{sections[i]}:");
                open.Add(sections[i]);
            }
            lines.Add($"{new string(' ', 2 * (sections.Length + 1))}{key.Name}: {key.DefaultValue}");
        }
        AssertSameConfig(DeeplineConfig.Defaults, Load(Write(string.Join("\n", lines) + "\n")));
    }
}
