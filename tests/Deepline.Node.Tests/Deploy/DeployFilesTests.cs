using System.Diagnostics;
using System.Net;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Deepline.Node.Configuration;
using Deepline.Node.Security;
using Deepline.Node.Tests.Http;
using Deepline.Tests.Shared;
using YamlDotNet.RepresentationModel;

namespace Deepline.Node.Tests.Deploy;

/// <summary>
/// Docker and Kubernetes cannot run here, so deploy/ is checked for what can be proven without them: every file
/// parses, every metric the dashboard and the alerts query is one a live node exports, every DEEPLINE_* variable
/// is one the node reads, and the configurations the files hand a node load without errors.
/// </summary>
public sealed partial class DeployFilesTests(NodeFixture node) : IClassFixture<NodeFixture>
{
    private static readonly string Root = FindRoot();
    private static readonly string DeployDir = Path.Combine(Root, "deploy");

    private static string FindRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "Deepline.Actors.sln")))
                return dir.FullName;
        }
        throw new InvalidOperationException($"Deepline.Actors.sln not found above {AppContext.BaseDirectory}");
    }

    private static string Rel(string path) => Path.GetRelativePath(Root, path);

    // Generated secrets (deploy/compose/secrets) are local files, not deployment material.
    private static IEnumerable<string> DeployFiles(params string[] extensions) =>
        Directory.EnumerateFiles(DeployDir, "*", SearchOption.AllDirectories)
            .Where(f => !f.Split(Path.DirectorySeparatorChar).Contains("secrets"))
            .Where(f => extensions.Length == 0 || extensions.Contains(Path.GetExtension(f), StringComparer.OrdinalIgnoreCase))
            .Order(StringComparer.Ordinal);

    private static List<YamlDocument> LoadYaml(string path)
    {
        var stream = new YamlStream();
        using var reader = new StreamReader(path);
        stream.Load(reader);
        return [.. stream.Documents];
    }

    [Fact]
    public void Every_yaml_file_under_deploy_parses()
    {
        var files = DeployFiles(".yml", ".yaml").ToList();
        // Compose, k8s (2), Prometheus (2), Grafana provisioning (2) at least: an empty walk must not pass.
        Assert.True(files.Count >= 7, $"only {files.Count} YAML files found under deploy/");
        var failures = new List<string>();
        foreach (var file in files)
        {
            try
            {
                if (LoadYaml(file).Count == 0) failures.Add($"{Rel(file)}: no YAML document");
            }
            catch (YamlDotNet.Core.YamlException e)
            {
                failures.Add($"{Rel(file)}: {e.Message}");
            }
        }
        Assert.Empty(failures);
    }

    [Fact]
    public void Every_json_file_under_deploy_parses()
    {
        var files = DeployFiles(".json").ToList();
        Assert.NotEmpty(files);
        var failures = new List<string>();
        foreach (var file in files)
        {
            try
            {
                JsonNode.Parse(File.ReadAllText(file));
            }
            catch (JsonException e)
            {
                failures.Add($"{Rel(file)}: {e.Message}");
            }
        }
        Assert.Empty(failures);
    }

    [Fact]
    public void Kubernetes_manifests_hold_the_expected_objects()
    {
        var kinds = DeployFiles(".yml", ".yaml")
            .Where(f => Rel(f).StartsWith(Path.Combine("deploy", "k8s"), StringComparison.Ordinal))
            .SelectMany(LoadYaml)
            .Select(d => ((YamlMappingNode)d.RootNode)["kind"].ToString())
            .Order(StringComparer.Ordinal)
            .ToList();
        Assert.Equal(["ConfigMap", "PodDisruptionBudget", "Secret", "Service", "Service", "StatefulSet"], kinds);
    }

    // ---- metrics ----

    /// <summary>Names a node's /metrics exports, from its TYPE lines, with the series a summary or histogram adds.</summary>
    private async Task<(HashSet<string> Names, Dictionary<string, string> Types)> ExportedAsync()
    {
        // The pool gauges have series only once some external pool has queued a task on the node.
        await node.Client.PostAsync("/runs", new StringContent(
            """{"run_id":"deploy-metrics-pool","tasks":[{"task_id":"q","type":"etl","pool":"deploy-check"}]}""", System.Text.Encoding.UTF8, "application/json"));
        var text = "";
        await Eventually.Until(async () =>
        {
            var response = await node.Client.GetAsync("/metrics");
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            text = await response.Content.ReadAsStringAsync();
            return text.Contains("pool_queue_depth", StringComparison.Ordinal);
        }, TimeSpan.FromSeconds(15), "/metrics exports the pool gauges");
        var types = TypeLine().Matches(text).ToDictionary(m => m.Groups["name"].Value, m => m.Groups["type"].Value, StringComparer.Ordinal);
        // /metrics renders only deadlock_monitor_up while the supervisor does not answer: that is not the full set.
        Assert.True(types.Count > 5, $"/metrics exported only {types.Count} metrics:\n{text}");
        var names = new HashSet<string>(types.Keys, StringComparer.Ordinal);
        foreach (var line in text.Split('\n').Where(l => l.Length > 0 && l[0] != '#'))
            names.Add(SampleName().Match(line).Value);
        return (names, types);
    }

    /// <summary>Series Prometheus itself writes for every target; not the node's to export.</summary>
    private static readonly HashSet<string> PrometheusSeries = ["up"];

    private static readonly HashSet<string> PromQlWords =
    [
        "by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and", "or", "unless", "offset", "atan2",
        "inf", "nan",
    ];

    /// <summary>Metric names in a PromQL expression: identifiers that are not functions, keywords, label names,
    /// label values, ranges or Grafana variables.</summary>
    internal static IReadOnlyList<string> MetricNames(string expr)
    {
        var s = QuotedString().Replace(expr, " ");
        s = Braces().Replace(s, " ");
        s = Brackets().Replace(s, " ");
        s = Grouping().Replace(s, " ");
        s = GrafanaVariable().Replace(s, " ");
        return [.. Identifier().Matches(s)
            .Where(m => !PromQlWords.Contains(m.Value.ToLowerInvariant()))
            .Where(m => !IsFollowedByParenthesis(s, m.Index + m.Length))
            .Select(m => m.Value)
            .Distinct(StringComparer.Ordinal)];
    }

    private static bool IsFollowedByParenthesis(string s, int i)
    {
        while (i < s.Length && char.IsWhiteSpace(s[i])) i++;
        return i < s.Length && s[i] == '(';
    }

    /// <summary>Why a used name is not exported, or null when it is.</summary>
    private static string? Unexported(string name, HashSet<string> exported, Dictionary<string, string> types)
    {
        if (exported.Contains(name) || PrometheusSeries.Contains(name)) return null;
        foreach (var suffix in new[] { "_sum", "_count", "_bucket" })
        {
            if (!name.EndsWith(suffix, StringComparison.Ordinal)) continue;
            var baseName = name[..^suffix.Length];
            if (types.TryGetValue(baseName, out var type) && (type == "histogram" || (type == "summary" && suffix != "_bucket")))
                return null;
        }
        return $"{name} is not exported by the node";
    }

    private static IEnumerable<(string Where, string Expr)> DashboardExpressions()
    {
        var file = Path.Combine(DeployDir, "grafana", "deepline-dashboard.json");
        var exprs = new List<(string, string)>();
        void Walk(JsonNode? n, string where)
        {
            switch (n)
            {
                case JsonObject o:
                    var title = o["title"] is JsonValue t && t.TryGetValue<string>(out var s) ? s : where;
                    foreach (var (key, value) in o)
                    {
                        if (key == "expr" && value is JsonValue v && v.TryGetValue<string>(out var e)) exprs.Add(($"dashboard panel \"{title}\"", e));
                        else Walk(value, title);
                    }
                    break;
                case JsonArray a:
                    foreach (var item in a) Walk(item, where);
                    break;
            }
        }
        Walk(JsonNode.Parse(File.ReadAllText(file)), "dashboard");
        return exprs;
    }

    private static IEnumerable<(string Where, string Expr)> AlertExpressions()
    {
        var root = (YamlMappingNode)LoadYaml(Path.Combine(DeployDir, "prometheus", "alerts.yml")).Single().RootNode;
        foreach (var group in ((YamlSequenceNode)root["groups"]).Cast<YamlMappingNode>())
        foreach (var rule in ((YamlSequenceNode)group["rules"]).Cast<YamlMappingNode>())
        {
            var name = rule.Children.TryGetValue(new YamlScalarNode("alert"), out var a) ? a.ToString() : "record " + rule["record"];
            yield return ($"alert {name}", rule["expr"].ToString());
        }
    }

    [Fact]
    public async Task Every_metric_the_dashboard_and_the_alerts_query_is_exported_by_a_live_node()
    {
        var (exported, types) = await ExportedAsync();
        var expressions = DashboardExpressions().Concat(AlertExpressions()).ToList();
        Assert.True(expressions.Count >= 10, $"only {expressions.Count} expressions found");
        var failures = new List<string>();
        foreach (var (where, expr) in expressions)
        {
            var names = MetricNames(expr);
            if (names.Count == 0) failures.Add($"{where}: no metric name found in `{expr}`");
            failures.AddRange(names.Select(n => Unexported(n, exported, types)).OfType<string>().Select(p => $"{where}: {p} (`{expr}`)"));
        }
        Assert.True(failures.Count == 0, string.Join("\n", failures) + "\nexported: " + string.Join(", ", exported.Order()));
    }

    [Fact]
    public async Task A_misspelt_or_invented_metric_fails_the_check()
    {
        var (exported, types) = await ExportedAsync();
        var names = MetricNames("max by (reason) (increase(deadlock_detectd_total{job=\"deepline\",reason=~\"stale.*\"}[$__rate_interval])) " +
                                "/ on(instance) group_left rate(deadlock_detection_seconds_count[5m:1m]) > bool 0 or up == 0");
        Assert.Equal(["deadlock_detectd_total", "deadlock_detection_seconds_count", "up"], names);
        Assert.NotNull(Unexported("deadlock_detectd_total", exported, types));
        Assert.Null(Unexported("deadlock_detection_seconds_count", exported, types));
        // A summary has no buckets, and a gauge has no _sum.
        Assert.NotNull(Unexported("deadlock_detection_seconds_bucket", exported, types));
        Assert.NotNull(Unexported("run_index_projection_lag_sum", exported, types));
        Assert.NotNull(Unexported("cancel_propagation_seconds", exported, types));
    }

    // ---- environment variables ----

    private static readonly HashSet<string> NodeVariables =
        [.. ConfigLoader.Keys.Select(k => k.EnvironmentVariable), ConfigLoader.ConfigPathVariable, "DEEPLINE_KEY"];

    [Fact]
    public void Every_DEEPLINE_variable_the_deploy_files_set_is_one_the_node_reads()
    {
        var files = new[]
        {
            Path.Combine(DeployDir, "Dockerfile"),
            Path.Combine(DeployDir, "compose", "docker-compose.yml"),
            Path.Combine(DeployDir, "local", "cluster.sh"),
        }.Concat(Directory.EnumerateFiles(Path.Combine(DeployDir, "k8s"), "*.yaml")).ToList();
        var failures = new List<string>();
        foreach (var file in files)
        {
            var used = Variable().Matches(File.ReadAllText(file)).Select(m => m.Value).Distinct().ToList();
            if (used.Count == 0 && !file.EndsWith("secret.example.yaml", StringComparison.Ordinal))
                failures.Add($"{Rel(file)}: sets no DEEPLINE_* variable at all");
            failures.AddRange(used.Where(v => !NodeVariables.Contains(v)).Select(v => $"{Rel(file)}: {v} is not read by the node"));
        }
        Assert.Empty(failures);
        // The same pattern flags a plausible variable the node does not read.
        Assert.DoesNotContain(Variable().Match("export DEEPLINE_STORE_CONNECTION_FILE=/x").Value, NodeVariables);
    }

    // ---- Dockerfile ----

    [Fact]
    public void Dockerfile_builds_in_two_stages_and_runs_as_a_non_root_user()
    {
        // Continuation lines joined, so an instruction is one line.
        var lines = File.ReadAllText(Path.Combine(DeployDir, "Dockerfile")).Replace("\\\n", " ", StringComparison.Ordinal).Split('\n').Select(l => l.Trim()).Where(l => l.Length > 0 && l[0] != '#').ToList();
        var froms = lines.Select((l, i) => (l, i)).Where(x => x.l.StartsWith("FROM ", StringComparison.OrdinalIgnoreCase)).ToList();
        Assert.Equal(2, froms.Count);
        Assert.StartsWith("FROM mcr.microsoft.com/dotnet/sdk:10.0", froms[0].l, StringComparison.Ordinal);
        Assert.StartsWith("FROM mcr.microsoft.com/dotnet/aspnet:10.0", froms[1].l, StringComparison.Ordinal);
        var runtime = lines.Skip(froms[1].i).ToList();
        var user = runtime.LastOrDefault(l => l.StartsWith("USER ", StringComparison.OrdinalIgnoreCase));
        Assert.NotNull(user);
        var who = user[5..].Trim().Split(':')[0];
        Assert.DoesNotContain(who, new[] { "root", "0" });
        Assert.Contains(runtime, l => Regex.IsMatch(l, @"^EXPOSE\s+8001\s+4053\b"));
        Assert.Contains(runtime, l => l.StartsWith("HEALTHCHECK", StringComparison.Ordinal) && l.Contains("/health", StringComparison.Ordinal));
        // The node finds hocon/ beside its dll and config.yaml where DEEPLINE_CONFIG points.
        Assert.Contains(runtime, l => l.StartsWith("COPY hocon/ ./hocon/", StringComparison.Ordinal));
        Assert.Contains(runtime, l => l.StartsWith("COPY config.yaml ./config.yaml", StringComparison.Ordinal));
    }

    // ---- the configurations the files give a node ----

    /// <summary>The Dockerfile's ENV values, which every container starts with.</summary>
    private static Dictionary<string, string?> ImageEnvironment()
    {
        var text = File.ReadAllText(Path.Combine(DeployDir, "Dockerfile")).Replace("\\\n", " ");
        var env = new Dictionary<string, string?>(StringComparer.Ordinal);
        foreach (var line in text.Split('\n').Where(l => l.TrimStart().StartsWith("ENV ", StringComparison.Ordinal)))
            foreach (Match m in EnvAssignment().Matches(line.TrimStart()[4..]))
                env[m.Groups["k"].Value] = m.Groups["v"].Value;
        Assert.NotEmpty(env);
        return env;
    }

    /// <summary>Loads a node's configuration as the container would (the image's config.yaml is the repository's).</summary>
    private static DeeplineConfig LoadAsContainer(string configFile, Dictionary<string, string?> env) =>
        ConfigLoader.Load(configFile, env, Root);

    private static YamlMappingNode Map(YamlNode n, string key) => (YamlMappingNode)((YamlMappingNode)n)[key];

    /// <summary>A compose mapping with its YAML merge keys (&lt;&lt;: *anchor) applied; later keys win.</summary>
    private static Dictionary<string, YamlNode> Merged(YamlMappingNode map)
    {
        var result = new Dictionary<string, YamlNode>(StringComparer.Ordinal);
        if (map.Children.TryGetValue(new YamlScalarNode("<<"), out var merge))
            foreach (var (k, v) in Merged((YamlMappingNode)merge)) result[k] = v;
        foreach (var (k, v) in map.Children.Where(kv => kv.Key.ToString() != "<<")) result[k.ToString()] = v;
        return result;
    }

    [Fact]
    public void The_compose_nodes_configuration_loads_and_forms_one_cluster()
    {
        var root = (YamlMappingNode)LoadYaml(Path.Combine(DeployDir, "compose", "docker-compose.yml")).Single().RootNode;
        var services = Map(root, "services");
        var nodes = services.Children.Where(kv => kv.Key.ToString().StartsWith("node", StringComparison.Ordinal)).ToList();
        Assert.Equal(3, nodes.Count);
        var seeds = new HashSet<string>(StringComparer.Ordinal);
        var selves = new List<string>();
        foreach (var (name, service) in nodes)
        {
            var s = Merged((YamlMappingNode)service);
            var env = ImageEnvironment();
            foreach (var (k, v) in Merged((YamlMappingNode)s["environment"])) env[k] = v.ToString();
            // Set by the entrypoint from the postgres_password secret; a stand-in proves the rest loads.
            var entrypoint = string.Join(" ", ((YamlSequenceNode)s["entrypoint"]).Select(n => n.ToString()));
            Assert.Contains("DEEPLINE_STORE_CONNECTION=", entrypoint, StringComparison.Ordinal);
            env["DEEPLINE_STORE_CONNECTION"] = "Host=postgres;Port=5432;Database=deepline;Username=deepline;Password=x";
            var config = LoadAsContainer(Path.Combine(Root, "config.yaml"), env);
            Assert.Equal("0.0.0.0", config.Http.Host);
            Assert.True(config.Store.IsPostgreSql, $"{name}: store is not PostgreSQL");
            Assert.True(config.Auth.Enabled, $"{name}: no keys file");
            Assert.Equal(name.ToString(), config.Remoting.Host);
            selves.Add($"akka.tcp://{DeeplineNode.SystemName}@{config.Remoting.Host}:{config.Remoting.Port}");
            seeds.UnionWith(config.Remoting.SeedNodes);
            Assert.Equal(3, config.Remoting.SeedNodes.Count);
        }
        // Every node is a seed under exactly the address it advertises, and all share one seed list.
        Assert.Equal(seeds.Order(StringComparer.Ordinal), selves.Order(StringComparer.Ordinal));
    }

    [Fact]
    public void The_kubernetes_pods_configuration_loads_and_forms_one_cluster()
    {
        var docs = LoadYaml(Path.Combine(DeployDir, "k8s", "deepline.yaml")).Select(d => (YamlMappingNode)d.RootNode).ToList();
        YamlMappingNode Kind(string kind) => docs.Single(d => d["kind"].ToString() == kind);
        var configYaml = Map(Kind("ConfigMap"), "data")["config.yaml"].ToString();
        var statefulSet = Kind("StatefulSet");
        var spec = Map(statefulSet, "spec");
        var replicas = int.Parse(spec["replicas"].ToString(), System.Globalization.CultureInfo.InvariantCulture);
        var headless = spec["serviceName"].ToString();
        var podSpec = Map(Map(spec, "template"), "spec");
        var container = (YamlMappingNode)((YamlSequenceNode)podSpec["containers"]).Single();
        Assert.True(int.Parse(podSpec["terminationGracePeriodSeconds"].ToString(), System.Globalization.CultureInfo.InvariantCulture) > 30,
            "terminationGracePeriodSeconds must exceed the .NET host's 30 s shutdown timeout");
        Assert.Equal("/health", Map(Map(container, "readinessProbe"), "httpGet")["path"].ToString());
        Assert.Equal("/health", Map(Map(container, "livenessProbe"), "httpGet")["path"].ToString());
        Assert.Equal("2", Map(Kind("PodDisruptionBudget"), "spec")["minAvailable"].ToString());

        var dir = Directory.CreateTempSubdirectory("deepline-k8s-").FullName;
        try
        {
            var file = Path.Combine(dir, "config.yaml");
            File.WriteAllText(file, configYaml);
            const string ns = "deepline";
            var selves = new List<string>();
            IReadOnlyList<string> seeds = [];
            for (var i = 0; i < replicas; i++)
            {
                var pod = new Dictionary<string, string> { ["POD_NAME"] = $"{Map(statefulSet, "metadata")["name"]}-{i}", ["POD_NAMESPACE"] = ns };
                var env = ImageEnvironment();
                foreach (var entry in ((YamlSequenceNode)container["env"]).Cast<YamlMappingNode>())
                {
                    var name = entry["name"].ToString();
                    if (entry.Children.TryGetValue(new YamlScalarNode("value"), out var value))
                        env[name] = KubernetesReference().Replace(value.ToString(), m => pod[m.Groups[1].Value]);
                    else if (name == "DEEPLINE_STORE_CONNECTION")
                        env[name] = "Host=db;Database=deepline;Username=deepline;Password=x"; // from the Secret
                }
                var config = LoadAsContainer(env["DEEPLINE_CONFIG"]!.Replace("/etc/deepline/config/config.yaml", file, StringComparison.Ordinal), env);
                Assert.True(config.Store.IsPostgreSql);
                Assert.Equal("/etc/deepline/keys/keys.yaml", config.Auth.KeysFile);
                Assert.Equal($"{pod["POD_NAME"]}.{headless}.{ns}.svc.cluster.local", config.Remoting.Host);
                selves.Add($"akka.tcp://{DeeplineNode.SystemName}@{config.Remoting.Host}:{config.Remoting.Port}");
                if (i > 0) Assert.Equal(seeds, config.Remoting.SeedNodes);
                seeds = config.Remoting.SeedNodes;
            }
            Assert.Equal(selves, seeds);
        }
        finally
        {
            Directory.Delete(dir, true);
        }
    }

    [Fact]
    public async Task The_compose_secrets_script_writes_a_keys_file_the_node_accepts()
    {
        var dir = Directory.CreateTempSubdirectory("deepline-secrets-").FullName;
        try
        {
            File.Copy(Path.Combine(DeployDir, "compose", "make-secrets.sh"), Path.Combine(dir, "make-secrets.sh"));
            var info = new ProcessStartInfo("bash", [Path.Combine(dir, "make-secrets.sh")]) { RedirectStandardOutput = true, RedirectStandardError = true };
            using var process = Process.Start(info)!;
            var output = await process.StandardOutput.ReadToEndAsync();
            var error = await process.StandardError.ReadToEndAsync();
            await process.WaitForExitAsync();
            Assert.True(process.ExitCode == 0, error);
            var keys = KeysFile.Load(Path.Combine(dir, "secrets", "keys.yaml"));
            Assert.Equal(["admin", "operator", "submitter", "worker"], keys.Select(k => k.Role.ToString().ToLowerInvariant()).Order());
            // Prometheus's plaintext key is the operator key the file holds as a digest, printed once.
            var prometheusKey = File.ReadAllText(Path.Combine(dir, "secrets", "prometheus_key"));
            Assert.Matches("^[0-9a-f]{64}$", prometheusKey);
            Assert.Contains(prometheusKey, output, StringComparison.Ordinal);
            var digest = Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(System.Text.Encoding.UTF8.GetBytes(prometheusKey)));
            Assert.Contains($"name: prometheus, key_sha256: {digest}, role: operator", File.ReadAllText(Path.Combine(dir, "secrets", "keys.yaml")), StringComparison.Ordinal);
        }
        finally
        {
            Directory.Delete(dir, true);
        }
    }

    [GeneratedRegex(@"^# TYPE (?<name>[a-zA-Z_:][a-zA-Z0-9_:]*) (?<type>\w+)$", RegexOptions.Multiline)]
    private static partial Regex TypeLine();

    [GeneratedRegex(@"^[a-zA-Z_:][a-zA-Z0-9_:]*")]
    private static partial Regex SampleName();

    [GeneratedRegex(@"""(?:[^""\\]|\\.)*""|'(?:[^'\\]|\\.)*'|`[^`]*`")]
    private static partial Regex QuotedString();

    [GeneratedRegex(@"\{[^}]*\}")]
    private static partial Regex Braces();

    [GeneratedRegex(@"\[[^\]]*\]")]
    private static partial Regex Brackets();

    [GeneratedRegex(@"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", RegexOptions.IgnoreCase)]
    private static partial Regex Grouping();

    [GeneratedRegex(@"\$\{?\w+\}?")]
    private static partial Regex GrafanaVariable();

    [GeneratedRegex(@"(?<![\w.:$])[a-zA-Z_:][a-zA-Z0-9_:]*")]
    private static partial Regex Identifier();

    [GeneratedRegex(@"\bDEEPLINE_[A-Z0-9_]+")]
    private static partial Regex Variable();

    [GeneratedRegex(@"(?<k>[A-Z_][A-Z0-9_]*)=(?<v>\S*)")]
    private static partial Regex EnvAssignment();

    [GeneratedRegex(@"\$\(([A-Z_]+)\)")]
    private static partial Regex KubernetesReference();
}
