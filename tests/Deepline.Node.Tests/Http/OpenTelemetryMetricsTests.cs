using System.Diagnostics.Metrics;
using System.Net;
using System.Text.RegularExpressions;
using Deepline.Node.Observability;

namespace Deepline.Node.Tests.Http;

/// <summary>/metrics through OpenTelemetry's exporter: every documented name, in the form the node always wrote.</summary>
public sealed class OpenTelemetryMetricsTests(NodeFixture node) : IClassFixture<NodeFixture>
{
    /// <summary>The documented /metrics list (docs/http-api.md, "Deadlock monitor endpoints", and docs/operations.md, "Metrics and queries").</summary>
    public static readonly string[] Documented =
    [
        "deadlock_monitor_up", "deadlock_detected_total", "workflows_cancelled_total", "deadlock_alerts_sent_total", "deadlock_alerts_failed_total",
        "deadlock_scan_errors_total", "deadlock_detection_duration_seconds", "deadlock_detection_seconds_sum", "deadlock_detection_seconds_count",
        "deadlock_alert_response_seconds_sum", "deadlock_alert_response_seconds_count", "deadlock_last_scan_duration_seconds",
        "deadlock_open_incidents", "deadlock_incidents_closed_total", "deadlock_alerts_dead_letter", "deadlock_alerts_expired_total",
        "run_index_projection_lag", "run_index_quarantined_events_total", "task_cancelled_total", "run_cancellations_total",
        "journal_commits_total", "journal_rows_total", "run_cancel_propagation_seconds_bucket", "run_cancel_propagation_seconds_sum",
        "run_cancel_propagation_seconds_count", "run_status_transitions_total", "resource_claims_expired_total",
    ];

    [Fact]
    public async Task Every_documented_metric_name_is_exported_with_its_seed_name()
    {
        // A completed cancel makes the propagation histogram and the journal counters appear.
        Assert.Equal(HttpStatusCode.Created, (await node.Client.PostJson("/runs",
            """{"run_id":"otel-1","tasks":[{"task_id":"a","type":"x","pool":"ext"}]}""")).StatusCode);
        await node.Client.PutJson("/runs/otel-1/cancel", "{}");
        await node.Client.AwaitRun("otel-1", r => r.Str("status") == "CANCELLED", "cancelled");

        var text = await node.Client.GetStringAsync("/metrics");
        var samples = text.Split('\n').Where(l => l.Length > 0 && l[0] != '#').Select(l => Regex.Match(l, "^[A-Za-z_:][A-Za-z0-9_:]*").Value).ToHashSet();
        var missing = Documented.Where(n => !samples.Contains(n)).ToList();
        Assert.True(missing.Count == 0, "not exported: " + string.Join(", ", missing) + "\n" + text);
        Assert.Contains("# TYPE run_cancel_propagation_seconds histogram\n", text);
        Assert.Matches("(?m)^run_cancel_propagation_seconds_count\\{outcome=\"completed\"\\} [1-9]", text);
        Assert.Matches("(?m)^run_status_transitions_total\\{status=\"CANCELLED\"\\} [1-9]", text);
        // Unlabelled samples keep the node's historic form (no "{}"), and no scope label is added to every series.
        Assert.DoesNotContain("{}", text);
        Assert.DoesNotContain("otel_scope_name", text);
        // ASP.NET Core's and the runtime's instruments come along.
        Assert.Contains("http_server_request_duration_seconds_bucket", text);
        Assert.Contains("dotnet_gc_collections_total", text);
    }

    /// <summary>
    /// The list above is the reference's list: the /metrics row of docs/http-api.md names exactly these, apart from the
    /// pool gauges (they have series only once a pool queued a task; DeployFilesTests exports and checks them) and the
    /// ASP.NET Core and runtime families. A name added to either without the other fails here.
    /// </summary>
    [Fact]
    public void Documented_is_the_list_the_HTTP_reference_gives()
    {
        var root = new DirectoryInfo(AppContext.BaseDirectory);
        while (!File.Exists(Path.Combine(root.FullName, "Deepline.Actors.sln"))) root = root.Parent!;
        var row = File.ReadLines(Path.Combine(root.FullName, "docs", "http-api.md")).Single(l => l.StartsWith("| `GET /metrics` |", StringComparison.Ordinal));
        var named = Regex.Matches(row, @"`([a-z][a-z0-9_]*)(?:\{[^}`]*\})?`").Select(m => m.Groups[1].Value)
            .Concat(Regex.Matches(row, @"`([a-z0-9_]+)_sum`/`_count`").Select(m => m.Groups[1].Value + "_count"))
            .Where(n => !n.StartsWith("pool_", StringComparison.Ordinal)).ToHashSet();
        // A histogram is documented by its name and checked by the series it writes.
        static string Base(string n) => Regex.Replace(n, "_(bucket|sum|count)$", "");
        var undocumented = Documented.Where(n => !named.Contains(n) && !named.Contains(Base(n))).ToList();
        var notChecked = named.Where(n => !Documented.Contains(n) && !Documented.Any(d => Base(d) == n)).ToList();
        Assert.True(undocumented.Count == 0, "checked here but not in docs/http-api.md's /metrics row: " + string.Join(", ", undocumented));
        Assert.True(notChecked.Count == 0, "in docs/http-api.md's /metrics row but not checked here: " + string.Join(", ", notChecked));
    }

    [Fact]
    public void Another_nodes_instruments_in_the_same_process_are_dropped()
    {
        var mine = new Telemetry.NodeScope();
        var other = new Telemetry.NodeScope();
        using var ours = new Meter(new MeterOptions(Deepline.Actors.Monitoring.NodeMeter.MeterName) { Scope = mine });
        using var theirs = new Meter(new MeterOptions(Deepline.Actors.Monitoring.NodeMeter.MeterName) { Scope = other });
        using var runtime = new Meter("System.Runtime");

        Assert.False(mine.IsForeign(ours.CreateCounter<long>("c")));
        Assert.True(mine.IsForeign(theirs.CreateCounter<long>("c")));
        Assert.False(mine.IsForeign(runtime.CreateCounter<long>("c")));
    }

    [Theory]
    [InlineData("deadlock_monitor_up{} 1\nx{a=\"1\"} 2\n", "deadlock_monitor_up 1\nx{a=\"1\"} 2\n")]
    [InlineData("# HELP a_total {} is kept in help\na_total{} 3\n", "# HELP a_total {} is kept in help\na_total 3\n")]
    public void Empty_label_sets_are_written_as_a_bare_name(string exporter, string served) =>
        Assert.Equal(served, Telemetry.WithoutEmptyLabelSets(exporter));
}
