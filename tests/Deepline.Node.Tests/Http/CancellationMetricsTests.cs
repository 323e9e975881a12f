using System.Globalization;
using System.Net;
using System.Text.RegularExpressions;

namespace Deepline.Node.Tests.Http;

/// <summary>The seed's Grafana queries and key metrics, read from a real node's /metrics after real cancellations.</summary>
public sealed class CancellationMetricsTests(NodeFixture node) : IClassFixture<NodeFixture>
{
    private HttpClient Client => node.Client;

    private async Task<double> Sample(string series)
    {
        var text = await Client.GetStringAsync("/metrics");
        var m = Regex.Match(text, "(?m)^" + Regex.Escape(series) + " (\\S+)$");
        Assert.True(m.Success, $"no sample {series} in /metrics:\n{text}");
        return double.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture);
    }

    private async Task External(string runId, bool started)
    {
        Assert.Equal(HttpStatusCode.Created, (await Client.PostJson("/runs",
            $$"""{"run_id":"{{runId}}","tasks":[{"task_id":"a","type":"x","pool":"ext"},{"task_id":"b","type":"x","pool":"ext","depends_on":["a"]}]}""")).StatusCode);
        if (started)
            Assert.Equal(HttpStatusCode.OK, (await Client.PostJson($"/runs/{runId}/tasks/a/events", """{"event":"TASK_STARTED","worker_id":"w1"}""")).StatusCode);
    }

    [Fact]
    public async Task Tasks_cancelled_are_counted_by_cause_and_cancellations_by_outcome()
    {
        var userBefore = await Sample("task_cancelled_total{cause=\"user\"}");
        var adminBefore = await Sample("task_cancelled_total{cause=\"admin\"}");
        var completedBefore = await Sample("run_cancellations_total{outcome=\"completed\"}");
        var forcedBefore = await Sample("run_cancellations_total{outcome=\"forced\"}");

        // A person cancels; the worker acknowledges its running task: both tasks cancelled by "user", completed.
        await External("m-user", started: true);
        await Client.PutJson("/runs/m-user/cancel", """{"reason":"metrics"}""");
        await Client.PostJson("/runs/m-user/tasks/a/events", """{"event":"TASK_CANCELLED","worker_id":"w1"}""");
        await Client.AwaitRun("m-user", r => r.Str("status") == "CANCELLED", "user cancel completed");

        // An admin force-completes a RUNNING run whose worker never answers: "admin", forced.
        await External("m-admin", started: true);
        Assert.Equal(HttpStatusCode.NoContent, (await Client.DeleteAsAdmin("/runs/m-admin/cancel")).StatusCode);

        Assert.Equal(userBefore + 2, await Sample("task_cancelled_total{cause=\"user\"}"));
        Assert.Equal(adminBefore + 2, await Sample("task_cancelled_total{cause=\"admin\"}"));
        Assert.Equal(completedBefore + 1, await Sample("run_cancellations_total{outcome=\"completed\"}"));
        Assert.Equal(forcedBefore + 1, await Sample("run_cancellations_total{outcome=\"forced\"}"));
    }

    [Fact]
    public async Task An_auto_cancel_counts_its_tasks_as_deadlock_and_avg_detection_duration_has_a_sample()
    {
        var before = await Sample("task_cancelled_total{cause=\"deadlock\"}");
        Assert.Equal(HttpStatusCode.Created, (await Client.PostJson("/runs", """
            {"run_id":"m-stuck","tasks":[{"task_id":"t","type":"x","pool":"nobody"}],"deadlock":{"pending_stale_s":1}}
            """)).StatusCode);
        await Client.AwaitRun("m-stuck", r => r.Str("status") == "CANCELLED", "auto-cancelled");

        Assert.Equal(before + 1, await Sample("task_cancelled_total{cause=\"deadlock\"}"));
        // avg(deadlock_detection_duration_seconds) in the seed's dashboard needs a plain sample, not only _sum/_count.
        var text = await Client.GetStringAsync("/metrics");
        Assert.Contains("# TYPE deadlock_detection_duration_seconds gauge\n", text);
        Assert.True(await Sample("deadlock_detection_duration_seconds") >= 0);
        Assert.True(await Sample("deadlock_detection_seconds_count") >= 1);
        Assert.Contains("deadlock_alert_response_seconds_count ", text);
    }
}
