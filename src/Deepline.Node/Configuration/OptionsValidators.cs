using System.Globalization;
using Microsoft.Extensions.Options;
using static Deepline.Node.Configuration.ConfigLoader;

namespace Deepline.Node.Configuration;

// One validator per options section: what a value of the right kind (the key table checked kinds and integer ranges)
// may still get wrong, and the rules between keys. The loader runs them all before the node is built so every problem
// is reported at once; the host runs them again at start (ValidateOnStart) for options registered in DI.

public sealed class DeadlockOptionsValidator(ConfigOrigins origins) : IValidateOptions<DeadlockOptions>
{
    private const string P = "orchestrator.deadlock.";
    private static readonly string[] AlertFormats = ["auto", "slack", "pagerduty", "generic"];
    private static readonly string[] VictimPolicies = Enum.GetNames<Deepline.Domain.Resources.VictimPolicy>();

    public ValidateOptionsResult Validate(string? name, DeadlockOptions o)
    {
        var p = new ConfigProblems(origins);
        if (origins.WellFormed(P + "alert_format") && !AlertFormats.Contains(o.AlertFormat))
            p.Fail(P + "alert_format", $"must be one of {string.Join(", ", AlertFormats)}, got \"{o.AlertFormat}\"");
        if (o.MonitorRole.Length > 0 && !IsPoolName(o.MonitorRole))
            p.Fail(P + "monitor_role", $"must be a role name of [A-Za-z0-9._:-] (1..128 characters), got {Quote(o.MonitorRole)}");
        if (origins.WellFormed(P + "victim") && !VictimPolicies.Contains(o.Victim, StringComparer.Ordinal))
            p.Fail(P + "victim", $"must be one of {string.Join(", ", VictimPolicies)}, got {Quote(o.Victim)}");
        // Never echo the value: webhook URLs carry tokens.
        if (o.AlertWebhook.Length > 0 && !IsHttpUrl(o.AlertWebhook))
            p.Fail(P + "alert_webhook", "not a valid absolute http(s) URL");
        if (origins.WellFormed(P + "check_interval_s"))
        {
            NotBelowInterval(p, "pending_stale_s", o.PendingStaleS, o.CheckIntervalS, "a stale threshold");
            NotBelowInterval(p, "workflow_stale_s", o.WorkflowStaleS, o.CheckIntervalS, "a stale threshold");
            // heartbeat_timeout_s is not bound to the scan: run actors arm their own timers at that deadline.
        }
        return p.Result;
    }

    private static void NotBelowInterval(ConfigProblems p, string key, int value, int interval, string what)
    {
        if (!p.Origins.WellFormed(P + key) || value >= interval)
            return;
        var inv = CultureInfo.InvariantCulture;
        var intervalFrom = p.Origins.Inline(P + "check_interval_s") is { } o ? ", " + o : "";
        var problem =
            string.Create(inv, $"must be at least orchestrator.deadlock.check_interval_s ({interval}{intervalFrom}), got {value}: ") +
            string.Create(inv, $"{what} below the scan interval makes no sense, the deadlock monitor only looks every {interval} s");
        if (!p.Origins.IsSet(P + key))
        {
            // The default clashes with a raised interval: say how to set the key the user never wrote.
            p.Add($"{P}{key}: {problem} (the default: set {P}{key} or {ConfigKeys.At(P + key).EnvironmentVariable})");
            return;
        }
        p.Fail(P + key, problem);
    }
}

/// <summary>The HTTP endpoint; an open API (no keys file) may only listen on loopback, hence <see cref="AuthOptions"/>.</summary>
public sealed class HttpOptionsValidator(ConfigOrigins origins, IOptions<AuthOptions> auth) : IValidateOptions<HttpOptions>
{
    public ValidateOptionsResult Validate(string? name, HttpOptions o)
    {
        var p = new ConfigProblems(origins);
        if (Host(p, "orchestrator.http.host", o.Host) && origins.WellFormed("orchestrator.auth.keys_file") && auth.Value.KeysFile.Length == 0
            && !IsLoopback(o.Host))
        {
            // An open API on a shared network would let anyone run and cancel work: refuse rather than warn.
            p.Add($"orchestrator.http.host: {o.Host} is not a loopback address, and orchestrator.auth.keys_file ({ConfigKeys.At("orchestrator.auth.keys_file").EnvironmentVariable}) is not set: " +
                  "an API without keys may only listen on 127.0.0.1, ::1 or localhost; configure a keys file (README, Security) or a loopback host");
        }
        return p.Result;
    }

    /// <summary>True when <paramref name="host"/> is a usable host name or address; else reports why.</summary>
    internal static bool Host(ConfigProblems p, string path, string host)
    {
        if (!p.Origins.WellFormed(path))
            return false;
        if (host.Length == 0)
        {
            p.Fail(path, "must not be empty");
            return false;
        }
        if (host.Any(c => char.IsWhiteSpace(c) || char.IsControl(c) || c is '/' or '@'))
        {
            p.Fail(path, $"must be a host name or IP address, got {Quote(host)}");
            return false;
        }
        return true;
    }
}

public sealed class RemotingOptionsValidator(ConfigOrigins origins) : IValidateOptions<RemotingOptions>
{
    private const string P = "orchestrator.remoting.";

    public ValidateOptionsResult Validate(string? name, RemotingOptions o)
    {
        var p = new ConfigProblems(origins);
        HttpOptionsValidator.Host(p, P + "host", o.Host);
        if (o.TlsCertificate.Length > 0 && CertificateProblem(o.TlsCertificate, o.TlsCertificatePassword) is { } problem)
            p.Fail(P + "tls_certificate", problem);
        for (var i = 0; i < o.SeedNodes.Count; i++)
        {
            if (!IsSeedAddress(o.SeedNodes[i]))
                p.Add($"{P}seed_nodes[{i}]: must be an address akka.tcp://<system>@<host>:<port> (port 1..65535), got {Quote(o.SeedNodes[i])}{origins.ItemSuffix(P + "seed_nodes", i)}");
        }
        for (var i = 0; i < o.Roles.Count; i++)
        {
            if (!IsPoolName(o.Roles[i]))
                p.Add($"{P}roles[{i}]: must be a role name of [A-Za-z0-9._:-] (1..128 characters), got {Quote(o.Roles[i])}{origins.ItemSuffix(P + "roles", i)}");
        }
        return p.Result;
    }

    /// <summary>The seed list as the cluster rules see it: empty when any entry is refused (reported on its own).</summary>
    internal static IReadOnlyList<string> UsableSeeds(RemotingOptions o) => o.SeedNodes.All(IsSeedAddress) ? o.SeedNodes : [];

    /// <summary>The role list as the cluster rules see it: the default (none) when any entry is refused.</summary>
    internal static IReadOnlyList<string> UsableRoles(RemotingOptions o) => o.Roles.All(IsPoolName) ? o.Roles : [];
}

public sealed class DataDirOptionsValidator(ConfigOrigins origins) : IValidateOptions<DataDirOptions>
{
    public ValidateOptionsResult Validate(string? name, DataDirOptions o)
    {
        var p = new ConfigProblems(origins);
        if (origins.WellFormed("orchestrator.data.dir") && o.Dir.Length == 0)
            p.Fail("orchestrator.data.dir", "must not be empty");
        return p.Result;
    }
}

public sealed class LoggingOptionsValidator(ConfigOrigins origins) : IValidateOptions<LoggingOptions>
{
    public ValidateOptionsResult Validate(string? name, LoggingOptions o)
    {
        var p = new ConfigProblems(origins);
        if (o.Dir.Length > 0 && (o.Dir.Any(char.IsControl) || File.Exists(o.Dir)))
            p.Fail("orchestrator.logging.dir", $"must name a directory (it is created when missing), got {Quote(o.Dir)}");
        if (origins.WellFormed("orchestrator.logging.console_format") && o.ConsoleFormat is not (LoggingConfig.Text or LoggingConfig.Json))
            p.Fail("orchestrator.logging.console_format", $"must be one of {LoggingConfig.Text}, {LoggingConfig.Json}, got {Quote(o.ConsoleFormat)}");
        if (origins.WellFormed("orchestrator.logging.level") && !LoggingConfig.Levels.Contains(o.Level))
            p.Fail("orchestrator.logging.level", $"must be one of {string.Join(", ", LoggingConfig.Levels)}, got {Quote(o.Level)}");
        return p.Result;
    }
}

public sealed class WorkersOptionsValidator(ConfigOrigins origins) : IValidateOptions<WorkersOptions>
{
    private const string P = "orchestrator.workers.process.";

    public ValidateOptionsResult Validate(string? name, WorkersOptions o)
    {
        var p = new ConfigProblems(origins);
        // A relative path would mean a different program in every working directory: names (looked up on the node's
        // PATH) or absolute paths only.
        var commands = o.Process.AllowedCommands;
        for (var i = 0; i < commands.Count; i++)
        {
            var text = commands[i];
            if (text.Length == 0 || text.Any(ch => char.IsWhiteSpace(ch) || char.IsControl(ch)) || (text != "*" && text.Contains('/') && !text.StartsWith('/')))
                p.Add($"{P}allowed_commands[{i}]: must be a command name, an absolute path or *, got {Quote(text)}{origins.ItemSuffix(P + "allowed_commands", i)}");
        }
        var user = o.Process.User;
        if (user.Length > 0)
        {
            if (Deepline.Actors.Workers.ProcessUser.Find(user) is null)
                p.Fail(P + "user", $"no account {Quote(user)} in /etc/passwd");
            else if (!Environment.UserName.Equals("root", StringComparison.Ordinal))
                p.Fail(P + "user", $"running tasks as {Quote(user)} needs the node to run as root (it runs as {Environment.UserName})");
        }
        return p.Result;
    }
}

/// <summary>Runs; a node of its own cluster must hold the workflow role it names, hence <see cref="RemotingOptions"/>.</summary>
public sealed class RunsOptionsValidator(ConfigOrigins origins, IOptions<RemotingOptions> remoting) : IValidateOptions<RunsOptions>
{
    private const string P = "orchestrator.runs.";

    public ValidateOptionsResult Validate(string? name, RunsOptions o)
    {
        var p = new ConfigProblems(origins);
        var role = o.WorkflowRole;
        if (role.Length > 0 && !IsPoolName(role))
        {
            p.Fail(P + "workflow_role", $"must be a role name of [A-Za-z0-9._:-] (1..128 characters), got {Quote(role)}");
        }
        else if (role.Length > 0 && RemotingOptionsValidator.UsableSeeds(remoting.Value).Count == 0
                 && !RemotingOptionsValidator.UsableRoles(remoting.Value).Contains(role, StringComparer.Ordinal))
        {
            // Without seed nodes the node is a cluster of one: nobody else could host its runs.
            p.Add($"{P}workflow_role: a node without seed nodes must host runs itself: add {Quote(role)} to orchestrator.remoting.roles " +
                  $"({ConfigKeys.At("orchestrator.remoting.roles").EnvironmentVariable}) or leave {P}workflow_role empty");
        }
        return p.Result;
    }
}

public sealed class AdminOptionsValidator(ConfigOrigins origins) : IValidateOptions<AdminOptions>
{
    public ValidateOptionsResult Validate(string? name, AdminOptions o)
    {
        var p = new ConfigProblems(origins);
        // Never echo the value: it is a secret.
        if (o.Key.Length > 0 && (o.Key.Length < MinAdminKeyLength || o.Key.Any(char.IsWhiteSpace)))
            p.Fail("orchestrator.admin.key", $"must be at least {MinAdminKeyLength} characters without spaces (or empty: no admin key)");
        return p.Result;
    }
}

public sealed class RedisOptionsValidator(ConfigOrigins origins) : IValidateOptions<RedisOptions>
{
    public ValidateOptionsResult Validate(string? name, RedisOptions o)
    {
        var p = new ConfigProblems(origins);
        // Never echo the value: it may carry a password.
        if (o.Connection.Length > 0 && !IsRedisConfiguration(o.Connection))
            p.Fail("orchestrator.redis.connection", "not a valid Redis connection string (expected e.g. 127.0.0.1:6379 or host:port,password=...)");
        return p.Result;
    }
}

public sealed class LimitsOptionsValidator(ConfigOrigins origins) : IValidateOptions<LimitsOptions>
{
    private const string P = "orchestrator.limits.";

    public ValidateOptionsResult Validate(string? name, LimitsOptions o)
    {
        var p = new ConfigProblems(origins);
        if (origins.WellFormed(P + "run_threshold_min_s") && origins.WellFormed(P + "run_threshold_max_s") && o.RunThresholdMaxS < o.RunThresholdMinS)
        {
            p.Fail(P + "run_threshold_max_s", string.Create(CultureInfo.InvariantCulture,
                $"must be at least {P}run_threshold_min_s ({o.RunThresholdMinS}), got {o.RunThresholdMaxS}"));
        }
        return p.Result;
    }
}

/// <summary>The store; SQLite is single-node, so the seed list (<see cref="RemotingOptions"/>) is checked against it.</summary>
public sealed class StoreOptionsValidator(ConfigOrigins origins, IOptions<RemotingOptions> remoting) : IValidateOptions<StoreOptions>
{
    private const string P = "orchestrator.store.";

    public ValidateOptionsResult Validate(string? name, StoreOptions o)
    {
        var p = new ConfigProblems(origins);
        if (!origins.WellFormed(P + "provider"))
            return p.Result;
        if (o.Provider is not (StoreConfig.Sqlite or StoreConfig.PostgreSql))
        {
            p.Fail(P + "provider", $"must be {StoreConfig.Sqlite} or {StoreConfig.PostgreSql}, got {Quote(o.Provider)}");
            return p.Result;
        }
        if (o.Provider == StoreConfig.PostgreSql && origins.WellFormed(P + "connection"))
        {
            if (o.Connection.Length == 0)
                p.Add($"{P}connection: required with {P}provider postgresql (an Npgsql connection string, e.g. Host=db;Database=deepline;Username=deepline), set it or {ConfigKeys.At(P + "connection").EnvironmentVariable}");
            else if (!IsNpgsqlConnection(o.Connection))
                // Never echo the value: it may carry a password.
                p.Fail(P + "connection", "not a valid Npgsql connection string (expected e.g. Host=db;Port=5432;Database=deepline;Username=deepline;Password=...)");
        }
        if (o.Provider == StoreConfig.Sqlite && RemotingOptionsValidator.UsableSeeds(remoting.Value).Count > 0)
        {
            // Each SQLite node has its own file: a second node would serve a different history.
            p.Add($"orchestrator.remoting.seed_nodes: a cluster of several nodes needs the shared store: set {P}provider to postgresql " +
                  $"({ConfigKeys.At(P + "provider").EnvironmentVariable}); sqlite is single-node only");
        }
        return p.Result;
    }
}
