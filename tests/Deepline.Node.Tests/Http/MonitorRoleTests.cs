using System.Net;
using Deepline.Node.Configuration;
using Microsoft.Extensions.Logging;
using Deepline.Tests.Shared;

namespace Deepline.Node.Tests.Http;

/// <summary>monitor_role keeps the deadlock supervisor off nodes without that role (and health says so).</summary>
public sealed class MonitorRoleTests
{
    [Theory]
    [InlineData(new string[0], false)]
    [InlineData(new[] { "monitor" }, true)]
    public async Task The_monitor_runs_only_on_nodes_with_the_monitor_role(string[] roles, bool runs)
    {
        await using var node = await SingleNode.StartAsync("deepline-role-", c => c with
        {
            Deadlock = c.Deadlock with { MonitorRole = "monitor" },
            Remoting = c.Remoting with { Roles = roles },
        });
        var client = node.Client;
        // Fully up either way (a run goes through the shard coordinator, itself a singleton started with the
        // monitor's); only the monitor differs.
        await Eventually.Until(async () =>
            (await client.PostJson("/runs", """{"run_id":"probe","tasks":[{"task_id":"a","type":"noop"}]}""")).StatusCode == HttpStatusCode.Created,
            TimeSpan.FromSeconds(30), "node accepts runs");
        await client.AwaitRun("probe", r => r.Str("status") == "SUCCEEDED", "probe run succeeds");
        System.Text.Json.Nodes.JsonObject health = null!;
        await Eventually.Until(async () =>
        {
            health = await (await client.GetAsync("/health")).ReadObject();
            return health["cluster"]!["status"]!.GetValue<string>() == "Up"
                   && health["deadlock_monitor"]!["running"]!.GetValue<bool>() == runs;
        }, TimeSpan.FromSeconds(30), $"monitor running = {runs}");

        // A node without the monitor still serves runs: 200, with the monitor reported down and the node degraded.
        var response = await client.GetAsync("/health");
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        health = await response.ReadObject();
        Assert.Equal(runs ? "ok" : "down", health["dependencies"]!["deadlock_monitor"]!["state"]!.GetValue<string>());
        if (!runs) Assert.Equal("degraded", health.Str("status"));
        Assert.Equal(roles.Append("worker").Order(), health["cluster"]!["roles"]!.AsArray().Select(r => r!.GetValue<string>()).Where(r => !r.StartsWith("store-", StringComparison.Ordinal)).Order());
    }
}
