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

/// <summary>
/// Readiness follows the run requests, not only a <c>SELECT 1</c>: while another process holds the SQLite store's write
/// lock, the store still answers a query but no run can be written, and the node says so until writes go through again.
/// </summary>
public sealed class ReadinessFollowsRunsTests
{
    [Fact]
    public async Task A_node_whose_run_requests_time_out_is_not_ready_until_they_are_answered_again()
    {
        await using var node = await SingleNode.StartAsync("deepline-ready-");
        var client = node.Client;
        Assert.Equal(HttpStatusCode.Created, (await client.PostJson("/runs", """{"run_id":"r-0","tasks":[{"task_id":"x","type":"x","pool":"ext"}]}""")).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await client.GetAsync("/healthz/ready")).StatusCode);

        await using (var holder = new Microsoft.Data.Sqlite.SqliteConnection($"Data Source={Path.Combine(node.Dir, Deepline.Actors.Hosting.SqliteStore.FileName)}"))
        {
            await holder.OpenAsync();
            await using var tx = await holder.BeginTransactionAsync(System.Data.IsolationLevel.Serializable); // BEGIN IMMEDIATE: the write lock
            await using (var touch = holder.CreateCommand())
            {
                touch.Transaction = (Microsoft.Data.Sqlite.SqliteTransaction)tx;
                touch.CommandText = "CREATE TABLE IF NOT EXISTS readiness_test_lock (x INTEGER)";
                await touch.ExecuteNonQueryAsync();
            }

            using var patient = new HttpClient { BaseAddress = client.BaseAddress, Timeout = TimeSpan.FromSeconds(30) };
            var refused = await patient.PostJson("/runs", """{"run_id":"r-1","tasks":[{"task_id":"x","type":"x","pool":"ext"}]}""");
            Assert.Equal(HttpStatusCode.ServiceUnavailable, refused.StatusCode);

            var ready = await patient.GetAsync("/healthz/ready");
            var body = await ready.ReadObject();
            Assert.Equal(HttpStatusCode.ServiceUnavailable, ready.StatusCode);
            Assert.Equal("Unhealthy", body["checks"]!["runs"]!["status"]!.GetValue<string>());
            Assert.Equal("Healthy", body["checks"]!["store"]!["status"]!.GetValue<string>()); // SELECT 1 alone would have said ready
            var health = await patient.GetAsync("/health");
            Assert.Equal(HttpStatusCode.ServiceUnavailable, health.StatusCode);
            Assert.Equal("down", (await health.ReadObject())["dependencies"]!["runs"]!["state"]!.GetValue<string>());
            await tx.RollbackAsync();
        }

        // Nothing is sent to the node but the probes: readiness finds out by itself that runs are answered again.
        await Eventually.Until(async () => (await client.GetAsync("/healthz/ready")).StatusCode == HttpStatusCode.OK, TimeSpan.FromSeconds(60), "ready again");
        Assert.Equal(HttpStatusCode.Created, (await client.PostJson("/runs", """{"run_id":"r-2","tasks":[{"task_id":"x","type":"x","pool":"ext"}]}""")).StatusCode);
    }
}
