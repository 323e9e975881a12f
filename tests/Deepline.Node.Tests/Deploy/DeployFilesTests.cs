using System.Text.Json;
using System.Text.RegularExpressions;
using Deepline.Node.Configuration;
using Deepline.Node.Tests.Http;
using YamlDotNet.RepresentationModel;

namespace Deepline.Node.Tests.Deploy;

/// <summary>
/// Docker cannot run here, so what can be checked about deploy/ is checked: every file parses, every metric the
/// dashboard or an alert rule queries is one a live node exports, every DEEPLINE_* variable set is one the node reads,
/// and the image runs as a non-root user after a separate build stage.
/// </summary>
public sealed partial class DeployFilesTests(NodeFixture node) : IClassFixture<NodeFixture>
{
    private static readonly string Deploy = Path.Combine(RepoRoot(), "deploy");

    private static string RepoRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "Deepline.Actors.sln"))) return dir.FullName;
        throw new InvalidOperationException("repository root not found");
    }

    private static IEnumerable<string> Files(params string[] extensions) =>
        Directory.EnumerateFiles(Deploy, "*", SearchOption.AllDirectories).Where(f => extensions.Contains(Path.GetExtension(f)));

    [Fact]
    public void Every_yaml_and_json_file_parses()
    {
        var yaml = Files(".yml", ".yaml").ToList();
        var json = Files(".json").ToList();
        Assert.NotEmpty(yaml);
        Assert.NotEmpty(json);
        foreach (var file in yaml)
        {
            var stream = new YamlStream();
            var e = Record.Exception(() => stream.Load(new StringReader(File.ReadAllText(file))));
            Assert.True(e is null, $"{file}: {e?.Message}");
            Assert.NotEmpty(stream.Documents);
        }
        foreach (var file in json)
        {
            var e = Record.Exception(() => JsonDocument.Parse(File.ReadAllText(file)).Dispose());
            Assert.True(e is null, $"{file}: {e?.Message}");
        }
    }

    [Fact]
    public async Task Every_metric_the_dashboard_and_the_alerts_query_is_exported_by_a_live_node()
    {
        var exported = (await (await node.Client.GetAsync("/metrics")).Content.ReadAsStringAsync())
            .Split('\n', StringSplitOptions.RemoveEmptyEntries)
            .Where(l => !l.StartsWith('#'))
            .Select(l => MetricName().Match(l).Value)
            .ToHashSet(StringComparer.Ordinal);
        exported.Add("up"); // Prometheus' own, per scrape target

        var expressions = new List<string>();
        using (var dashboard = JsonDocument.Parse(File.ReadAllText(Path.Combine(Deploy, "grafana", "deepline-dashboard.json"))))
            foreach (var panel in dashboard.RootElement.GetProperty("panels").EnumerateArray())
                foreach (var target in panel.GetProperty("targets").EnumerateArray())
                    expressions.Add(target.GetProperty("expr").GetString()!);
        var rules = new YamlStream();
        rules.Load(new StringReader(File.ReadAllText(Path.Combine(Deploy, "prometheus", "alerts.yml"))));
        foreach (var group in (YamlSequenceNode)((YamlMappingNode)rules.Documents[0].RootNode)["groups"])
            foreach (var rule in (YamlSequenceNode)((YamlMappingNode)group)["rules"])
                expressions.Add(((YamlScalarNode)((YamlMappingNode)rule)["expr"]).Value!);

        Assert.True(expressions.Count >= 10, $"only {expressions.Count} expressions found");
        var used = expressions.SelectMany(e => Selector().Matches(e).Select(m => m.Groups[1].Value)).ToHashSet(StringComparer.Ordinal);
        var missing = used.Where(m => !exported.Contains(m) && !exported.Contains(SummaryBase().Replace(m, ""))).ToList();
        Assert.True(missing.Count == 0, $"queried but not exported: {string.Join(", ", missing)}");
        Assert.Contains("deadlock_detected_total", used);
    }

    [Fact]
    public void Every_DEEPLINE_variable_the_deploy_files_set_is_one_the_node_reads()
    {
        var known = ConfigLoader.Keys.Select(k => k.EnvironmentVariable).Append(ConfigLoader.ConfigPathVariable).Append("DEEPLINE_KEY")
            .ToHashSet(StringComparer.Ordinal);
        var files = Files(".yml", ".yaml", ".sh").Append(Path.Combine(Deploy, "Dockerfile")).ToList();
        var set = files.SelectMany(f => Variable().Matches(File.ReadAllText(f)).Select(m => (File: Path.GetFileName(f), Name: m.Value))).ToList();

        Assert.Contains(set, v => v.Name == "DEEPLINE_STORE_CONNECTION");
        var unknown = set.Where(v => !known.Contains(v.Name)).Select(v => $"{v.File}: {v.Name}").Distinct().ToList();
        Assert.True(unknown.Count == 0, $"not read by the node: {string.Join(", ", unknown)}");
    }

    [Fact]
    public void The_image_is_built_in_its_own_stage_and_runs_as_a_non_root_user()
    {
        var lines = File.ReadAllLines(Path.Combine(Deploy, "Dockerfile")).Select(l => l.Trim()).ToList();
        Assert.Equal(2, lines.Count(l => l.StartsWith("FROM ", StringComparison.Ordinal)));
        var user = lines.Last(l => l.StartsWith("USER ", StringComparison.Ordinal))["USER ".Length..].Trim();
        Assert.DoesNotContain(user, new[] { "root", "0", "0:0" });
        Assert.Contains(lines, l => l.StartsWith("HEALTHCHECK", StringComparison.Ordinal) && l.Contains("/health"));
    }

    [GeneratedRegex(@"^[a-zA-Z_:][a-zA-Z0-9_:]*")]
    private static partial Regex MetricName();

    /// <summary>A metric name right before a label selector or a range, as every query here writes them.</summary>
    [GeneratedRegex(@"\b([a-z_][a-z0-9_]*)\{")]
    private static partial Regex Selector();

    [GeneratedRegex(@"_(sum|count|bucket)$")]
    private static partial Regex SummaryBase();

    [GeneratedRegex(@"DEEPLINE_[A-Z0-9_]+")]
    private static partial Regex Variable();
}
