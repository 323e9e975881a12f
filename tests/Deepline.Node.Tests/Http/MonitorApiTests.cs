using System.Net;
using Deepline.Tests.Shared;

namespace Deepline.Node.Tests.Http;

public sealed class MonitorApiTests(NodeFixture node) : IClassFixture<NodeFixture>
{
    private HttpClient Client => node.Client;

    [Fact]
    public async Task Health_has_the_seeds_deadlock_monitor_block()
    {
        var health = await (await Client.GetAsync("/health")).ReadObject();

        var block = health["deadlock_monitor"]!.AsObject();
        Assert.Equal(["alert_webhook_configured", "cancel_on_deadlock", "check_interval_s", "last_scan", "pending_stale_s", "running"], block.Keys());
        Assert.True(block["running"]!.GetValue<bool>());
        Assert.Equal(node.Config.Deadlock.CheckIntervalS, block["check_interval_s"]!.GetValue<int>());
        Assert.False(block["alert_webhook_configured"]!.GetValue<bool>());
    }

    [Fact]
    public async Task Stats_has_the_seeds_counters_plus_reasons_and_projection_lag()
    {
        var response = await Client.GetAsync("/stats");

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var block = (await response.ReadObject())["deadlock_monitor"]!.AsObject();
        foreach (var key in new[] { "deadlocks_detected", "workflows_cancelled", "alerts_sent", "avg_detection_time_s", "scan_errors", "by_reason", "projection_lag", "last_scan_duration_ms",
                     "avg_alert_response_time_s", "incidents_closed", "false_positives", "false_positive_rate", "alerts_dead_letter", "alerts_expired", "dead_letters" })
            Assert.Contains(key, block.Keys());
        Assert.Equal(["no_heartbeat", "no_runnable_task", "resource_deadlock", "run_timeout", "stale_pending"], block["by_reason"]!.AsObject().Keys());
    }

    [Fact]
    public async Task Metrics_show_the_journal_writers_commits_and_rows()
    {
        var created = await Client.PostJson("/runs", """{"run_id":"metrics-journal","tasks":[{"task_id":"a","type":"noop"}]}""");
        Assert.Equal(HttpStatusCode.Created, created.StatusCode);
        await Client.AwaitRun("metrics-journal", r => r.Str("status") == "SUCCEEDED", "run done");

        var text = await Client.GetStringAsync("/metrics");
        long Sample(string name) => long.Parse(text.Split('\n').Single(l => l.StartsWith(name + " ", StringComparison.Ordinal))[(name.Length + 1)..]);
        Assert.Contains("# TYPE journal_commits_total counter\n", text);
        Assert.InRange(Sample("journal_commits_total"), 1, Sample("journal_rows_total"));
    }

    [Fact]
    public async Task Metrics_are_prometheus_text_with_the_seeds_names()
    {
        var response = await Client.GetAsync("/metrics");

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("text/plain", response.Content.Headers.ContentType!.MediaType);
        var text = await response.Content.ReadAsStringAsync();
        Assert.Contains("deadlock_monitor_up 1\n", text);
        Assert.Contains("# TYPE deadlock_detected_total counter\n", text);
        Assert.Contains("deadlock_detected_total{reason=\"stale_pending\"} ", text);
        Assert.Contains("deadlock_detection_duration_seconds ", text);
        Assert.Contains("deadlock_detection_seconds_count ", text);
        Assert.Contains("run_index_projection_lag ", text);
        Assert.Contains("deadlock_incidents_closed_total{outcome=\"recovered\"} ", text);
        Assert.Contains("deadlock_alerts_dead_letter 0\n", text);
    }

    [Fact]
    public async Task Cancelled_runs_are_listed_newest_first_with_the_seeds_fields_and_filtered_by_client()
    {
        foreach (var (id, client) in new[] { ("lc-1", "team_a"), ("lc-2", "team_b"), ("lc-3", "team_a") })
        {
            await Client.PostJson("/runs", $$"""{"run_id":"{{id}}","workflow_name":"WF {{id}}","client_id":"{{client}}","tasks":[{"task_id":"t","type":"x","pool":"ext"}]}""");
            await Client.PutJson($"/runs/{id}/cancel", """{"reason":"listing test"}""");
        }

        List<System.Text.Json.Nodes.JsonObject> listed = [];
        await Eventually.Until(async () =>
        {
            listed = [.. (System.Text.Json.Nodes.JsonNode.Parse(await Client.GetStringAsync("/runs/cancelled?client_id=team_a&limit=10"))!.AsArray()).Select(n => n!.AsObject())];
            return listed.Count == 2;
        }, TimeSpan.FromSeconds(10), "index has both team_a cancels");

        Assert.Equal(["lc-3", "lc-1"], listed.Select(r => r.Str("run_id")));
        Assert.Equal(["cancellation_reason", "cancelled_at", "cancelled_by", "client_id", "deadlock_reason", "run_id", "status", "task_count", "workflow_name"], listed[0].Keys());
        Assert.Equal("listing test", listed[0].Str("cancellation_reason"));
        Assert.Equal("WF lc-3", listed[0].Str("workflow_name"));
        Assert.Equal(1, listed[0]["task_count"]!.GetValue<int>());
        var page = System.Text.Json.Nodes.JsonNode.Parse(await Client.GetStringAsync("/runs/cancelled?client_id=team_a&limit=1&offset=1"))!.AsArray();
        Assert.Equal("lc-1", page.Single()!["run_id"]!.GetValue<string>());
    }

    [Theory]
    [InlineData("limit=0", "limit")]
    [InlineData("limit=501", "limit")]
    [InlineData("limit=abc", "limit")]
    [InlineData("offset=-1", "offset")]
    public async Task Bad_list_parameters_are_400_naming_the_parameter(string query, string field)
    {
        var response = await Client.GetAsync("/runs/cancelled?" + query);

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Equal(field, (await response.ReadObject()).Str("field"));
    }

    [Fact]
    public async Task A_per_run_threshold_submitted_with_the_run_wins_over_the_nodes()
    {
        // The node's pending_stale_s is 900 s; this run asks for 1 s and is cancelled as stale within seconds.
        var created = await Client.PostJson("/runs", """
            {"run_id":"own-threshold","tasks":[{"task_id":"t","type":"x","pool":"nobody"}],"deadlock":{"pending_stale_s":1}}
            """);
        Assert.Equal(HttpStatusCode.Created, created.StatusCode);

        var run = await Client.AwaitRun("own-threshold", r => r["cancellation"] is not null, "auto-cancel at the run's own threshold");

        Assert.Equal("auto-cancel: deadlock detected", run["cancellation"]!["reason"]!.GetValue<string>());
        Assert.Equal("stale_pending", run["cancellation"]!["deadlock_reason"]!.GetValue<string>());
        Assert.Equal("system", run["cancellation"]!["cancelled_by"]!.GetValue<string>());

        // The seed's status endpoint and list carry the same exact reason, and the detector beside it.
        var status = await (await Client.GetAsync("/runs/own-threshold/cancel")).ReadObject();
        Assert.Equal("auto-cancel: deadlock detected", status.Str("cancellation_reason"));
        Assert.Equal("stale_pending", status.Str("deadlock_reason"));
        System.Text.Json.Nodes.JsonNode? listed = null;
        await Eventually.Until(async () =>
        {
            var list = System.Text.Json.Nodes.JsonNode.Parse(await Client.GetStringAsync("/runs/cancelled?limit=500"))!.AsArray();
            listed = list.FirstOrDefault(r => r!["run_id"]!.GetValue<string>() == "own-threshold");
            return listed is not null;
        }, TimeSpan.FromSeconds(10), "auto-cancelled run listed");
        Assert.Equal("auto-cancel: deadlock detected", listed!["cancellation_reason"]!.GetValue<string>());
        Assert.Equal("stale_pending", listed["deadlock_reason"]!.GetValue<string>());
    }

    [Fact]
    public async Task The_dry_run_scan_flags_under_what_if_thresholds_without_cancelling()
    {
        await Client.PostJson("/runs", """{"run_id":"scan-me","tasks":[{"task_id":"t","type":"x","pool":"ext"}]}""");

        System.Text.Json.Nodes.JsonObject? result = null;
        await Eventually.Until(async () =>
        {
            result = await (await Client.PostJson("/deadlock/scan", """{"pending_stale_s":1}""")).ReadObject();
            return result["flagged"]!.AsArray().Any(f => f!["run_id"]!.GetValue<string>() == "scan-me");
        }, TimeSpan.FromSeconds(10), "what-if scan flags the run");

        var flagged = result!["flagged"]!.AsArray().Single(f => f!["run_id"]!.GetValue<string>() == "scan-me")!.AsObject();
        Assert.Equal("stale_pending", flagged.Str("reason"));
        Assert.Contains("pool 'ext'", flagged.Str("explanation"));
        Assert.Equal(1, result["thresholds"]!["pending_stale_s"]!.GetValue<int>());
        Assert.Null((await Client.GetRun("scan-me"))["cancellation"]);
        var bad = await Client.PostJson("/deadlock/scan", """{"pending_stale_s":0}""");
        Assert.Equal(HttpStatusCode.BadRequest, bad.StatusCode);
        Assert.Equal("pending_stale_s", (await bad.ReadObject()).Str("field"));
    }
}
