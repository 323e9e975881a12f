using System.Net;
using Deepline.Node.Configuration;
using Deepline.Node.Http;
using Microsoft.Extensions.Logging;
using Deepline.Tests.Shared;

namespace Deepline.Node.Tests.Http;

/// <summary>/health reports each dependency; only what stops the node from serving makes it 503.</summary>
public sealed class HealthDependencyTests
{
    [Fact]
    public async Task Redis_down_is_reported_as_a_down_dependency_while_the_node_keeps_serving()
    {
        await using var node = await SingleNode.StartAsync("deepline-health-", c => c with
        {
            // Nothing listens on this loopback port: Redis is down for the whole test.
            Redis = new RedisConfig($"127.0.0.1:{Loopback.FreePort()},connectTimeout=500", 3600),
        });
        var client = node.Client;
        await Eventually.Until(() => Json.ServingWithMonitor(client), TimeSpan.FromSeconds(30), "node serving");

        var response = await client.GetAsync("/health");

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var health = await response.ReadObject();
        Assert.Equal("degraded", health.Str("status"));
        var deps = health["dependencies"]!.AsObject();
        Assert.Equal("down", deps["redis"]!["state"]!.GetValue<string>());
        Assert.Equal("ok", deps["store"]!["state"]!.GetValue<string>());
        Assert.Equal("ok", deps["cluster"]!["state"]!.GetValue<string>());
        Assert.Equal("ok", deps["deadlock_monitor"]!["state"]!.GetValue<string>());
        Assert.NotNull(deps["run_index"]!["state"]);
        // The seed's block is still there.
        Assert.True(health["deadlock_monitor"]!["running"]!.GetValue<bool>());
    }

    [Fact]
    public void The_run_index_is_degraded_when_it_lags_too_far_or_stops_moving()
    {
        var stalled = TimeSpan.FromSeconds(30);
        var t0 = DateTimeOffset.UnixEpoch;
        var progress = new RunIndexProgress(stalled, lagDegradedEvents: 1000);

        Assert.Equal(DependencyState.ok, progress.Observe(offset: 10, lag: 5, t0).State);
        Assert.Equal(DependencyState.ok, progress.Observe(offset: 10, lag: 5, t0 + TimeSpan.FromSeconds(29)).State);
        var (state, reason) = progress.Observe(offset: 10, lag: 5, t0 + TimeSpan.FromSeconds(31));
        Assert.Equal(DependencyState.degraded, state);
        Assert.Contains("stalled", reason);
        // Moving again clears it; an idle index (nothing to apply) is never stalled.
        Assert.Equal(DependencyState.ok, progress.Observe(offset: 12, lag: 3, t0 + TimeSpan.FromSeconds(32)).State);
        Assert.Equal(DependencyState.ok, progress.Observe(offset: 15, lag: 0, t0 + TimeSpan.FromSeconds(100)).State);
        Assert.Equal(DependencyState.ok, progress.Observe(offset: 15, lag: 0, t0 + TimeSpan.FromSeconds(200)).State);
        Assert.Equal(DependencyState.degraded, progress.Observe(offset: 16, lag: 1001, t0 + TimeSpan.FromSeconds(201)).State);
    }
}
