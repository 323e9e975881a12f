using System.Net;
using Deepline.Node.Configuration;
using Microsoft.Extensions.Logging;
using Deepline.Tests.Shared;

namespace Deepline.Node.Tests.Http;

/// <summary>/healthz/live and /healthz/ready: ASP.NET Core health checks, with the monitor and Redis only degrading.</summary>
public sealed class ProbeTests(NodeFixture node) : IClassFixture<NodeFixture>
{
    [Fact]
    public async Task Live_and_ready_answer_200_without_a_key_and_name_their_checks()
    {
        using var anonymous = new HttpClient { BaseAddress = node.Client.BaseAddress };
        var live = await anonymous.GetAsync("/healthz/live");
        Assert.Equal(HttpStatusCode.OK, live.StatusCode);
        var liveBody = await live.ReadObject();
        Assert.Equal("Healthy", liveBody.Str("status"));
        Assert.NotEmpty(liveBody["checks"]!.AsObject());

        JsonObjectAssert ready = null!;
        await Eventually.Until(async () =>
        {
            var response = await anonymous.GetAsync("/healthz/ready");
            ready = new(response.StatusCode, await response.ReadObject());
            return ready.Body.Str("status") == "Healthy";
        }, TimeSpan.FromSeconds(20), "ready and healthy");
        Assert.Equal(HttpStatusCode.OK, ready.Status);
        var checks = ready.Body["checks"]!.AsObject();
        Assert.Contains("store", checks.Keys());
        Assert.Contains("deadlock_monitor", checks.Keys());
        Assert.True(checks.Count >= 3, "the cluster readiness check of Akka.Cluster.Hosting is there too: " + checks.ToJsonString());
        Assert.DoesNotContain("redis", checks.Keys());
    }

    private sealed record JsonObjectAssert(HttpStatusCode Status, System.Text.Json.Nodes.JsonObject Body);
}

public sealed class ProbeDegradationTests
{
    [Fact]
    public async Task A_node_without_the_monitor_and_without_redis_is_ready_but_degraded_and_exports_no_monitor_totals()
    {
        await using var node = await SingleNode.StartAsync("deepline-probe-", c => c with
        {
            // No node carries the monitor role: the supervisor singleton never starts.
            Deadlock = c.Deadlock with { MonitorRole = "monitor" },
            Redis = new RedisConfig($"127.0.0.1:{Loopback.FreePort()},connectTimeout=500", 3600),
        });
        var client = node.Client;
        System.Text.Json.Nodes.JsonObject body = null!;
        HttpStatusCode status = 0;
        await Eventually.Until(async () =>
        {
            var response = await client.GetAsync("/healthz/ready");
            status = response.StatusCode;
            body = await response.ReadObject();
            return body["checks"]!.AsObject().Where(kv => kv.Key != "deadlock_monitor" && kv.Key != "redis")
                .All(kv => kv.Value!["status"]!.GetValue<string>() == "Healthy");
        }, TimeSpan.FromSeconds(30), "cluster and store ready");

        Assert.Equal(HttpStatusCode.OK, status);
        Assert.Equal("Degraded", body.Str("status"));
        Assert.Equal("Degraded", body["checks"]!["deadlock_monitor"]!["status"]!.GetValue<string>());
        Assert.Equal("Degraded", body["checks"]!["redis"]!["status"]!.GetValue<string>());
        Assert.Equal(HttpStatusCode.OK, (await client.GetAsync("/healthz/live")).StatusCode);

        // This node does not host the supervisor: it says it cannot reach it, and exports none of its totals (only the
        // host does, so that sum() over the cluster counts each incident once). Its own counters are there.
        var metrics = await client.GetStringAsync("/metrics");
        Assert.Contains("deadlock_monitor_up 0\n", metrics);
        Assert.DoesNotContain("deadlock_detected_total", metrics);
        Assert.DoesNotContain("run_index_projection_lag", metrics);
        Assert.Contains("task_cancelled_total{cause=\"user\"} 0\n", metrics);
    }
}
