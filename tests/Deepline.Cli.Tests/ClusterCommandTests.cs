using Deepline.Tests.Shared;

namespace Deepline.Cli.Tests;

[Collection(SingleNode.Name)]
public sealed class ClusterCommandTests(SingleNodeFixture fixture)
{
    private TestNode Node => fixture.Node;

    private Task<CliResult> Run(params string[] args) => Cli.Run(Node.Url, args);

    private Task<CliResult> Admin(params string[] args) => Cli.Run(Node.Url, [.. args, "--admin-key", TestNode.AdminKey]);

    [Fact]
    public async Task Cluster_show_lists_the_members_as_a_table_and_as_json()
    {
        var table = (await Run("cluster", "show")).Ok();
        var lines = table.Out.TrimEnd().Split('\n');
        Assert.Equal(["ADDRESS", "ROLES", "STATUS", "REACHABLE"], lines[0].Split('|', StringSplitOptions.TrimEntries));
        // Roles: the node's own (worker) and its store's identity (store-<cluster id>), which one cluster shares.
        var cells = lines[1].Split('|', StringSplitOptions.TrimEntries);
        Assert.Equal([$"{Node.RemotingAddress} (leader)", "up", "reachable"], [cells[0], cells[2], cells[3]]);
        Assert.Matches(@"^\[store-[0-9a-f]{12}, ?worker\]$", cells[1]);
        Assert.Equal("Count: 1 node", lines[^1]);

        var json = (await Run("cluster", "show", "--json")).Ok().Json;
        var member = Assert.Single(json["members"]!.AsArray())!;
        Assert.Equal(Node.RemotingAddress, member["address"]!.GetValue<string>());
        Assert.True(member["reachable"]!.GetValue<bool>());
        Assert.Equal(Node.RemotingAddress, json["leader"]!.GetValue<string>());
    }

    [Fact]
    public async Task Cluster_status_and_leader_name_this_node()
    {
        var status = (await Run("cluster", "status")).Ok();
        Assert.Contains($"address:", status.Out);
        Assert.Contains(Node.RemotingAddress, status.Out);
        Assert.Matches(@"is_leader:\s+yes", status.Out);
        Assert.Equal("up", (await Run("cluster", "status", "--json")).Ok().Json["status"]!.GetValue<string>());

        Assert.Equal(Node.RemotingAddress, (await Run("cluster", "leader")).Ok().Out.Trim());
        Assert.Equal(Node.RemotingAddress, (await Run("cluster", "leader", "--json")).Ok().Json["leader"]!.GetValue<string>());
    }

    [Fact]
    public async Task Mutating_commands_need_the_right_admin_key()
    {
        var missing = (await Run("cluster", "leave", Node.RemotingAddress)).Fails(ExitCodes.NodeError);
        Assert.Contains("needs the admin key: pass --admin-key (or --key with a key of role admin), or set DEEPLINE_ADMIN_KEY", missing);

        var wrong = (await Run("cluster", "down", Node.RemotingAddress, "--admin-key", "wrong-key-but-long-enough")).Fails(ExitCodes.NodeError);
        Assert.Contains("403 Forbidden", wrong);
        Assert.DoesNotContain(TestNode.AdminKey, wrong);

        // The key from the environment works like --admin-key: here it reaches the node and the address is checked.
        var viaEnv = (await Cli.RunWith(new() { ["DEEPLINE_URL"] = Node.Url, ["DEEPLINE_ADMIN_KEY"] = TestNode.AdminKey },
            "cluster", "leave", "akka.tcp://deepline@127.0.0.1:1")).Fails(ExitCodes.NodeError);
        Assert.Contains("404 Not found: akka.tcp://deepline@127.0.0.1:1 is not a member of this cluster", viaEnv);

        // Still a member: nothing above changed the cluster.
        Assert.Contains("Count: 1 node", (await Run("cluster", "show")).Ok().Out);
    }

    [Fact]
    public async Task Bad_addresses_and_impossible_joins_are_explained()
    {
        var bad = (await Admin("cluster", "down", "not-an-address")).Fails(ExitCodes.NodeError);
        Assert.Contains("400 Bad request: address must be exactly akka.tcp://deepline@<host>:<port> (no path, query or fragment)", bad);

        var join = (await Admin("cluster", "join", "akka.tcp://deepline@127.0.0.1:1")).Fails(ExitCodes.NodeError);
        Assert.Contains("409 Conflict: this node is already a member of a cluster", join);

        var none = (await Admin("cluster", "down-unreachable")).Ok();
        Assert.Equal("No unreachable members: nothing to down.", none.Out.Trim());
        Assert.Equal(0, (await Admin("cluster", "down-unreachable", "--json")).Ok().Json["count"]!.GetValue<int>());
    }

    [Fact]
    public async Task Sharding_commands_see_the_workflow_region_and_its_entities()
    {
        var submitted = await Node.Client.PostAsync("/runs", new StringContent(
            """{"run_id":"shard-a","tasks":[{"task_id":"t","type":"noop"}]}""", System.Text.Encoding.UTF8, "application/json"));
        Assert.Equal(System.Net.HttpStatusCode.Created, submitted.StatusCode);

        var regions = (await Run("cluster", "sharding", "regions")).Ok();
        var row = regions.Out.Split('\n')[1].Split('|', StringSplitOptions.TrimEntries);
        Assert.Equal("workflow", row[0]);
        Assert.Equal(Node.RemotingAddress, row[1]);
        Assert.Contains("Count: 1 region", regions.Out);

        var stats = (await Run("cluster", "sharding", "region-stats", "-r", "workflow", "--json")).Ok().Json;
        Assert.Equal(Node.RemotingAddress, stats["node"]!.GetValue<string>());
        Assert.True(stats["entity_count"]!.GetValue<int>() >= 1);
        var table = (await Run("cluster", "sharding", "region-stats", "-r", "workflow")).Ok();
        Assert.StartsWith($"Region \"workflow\" on {Node.RemotingAddress}", table.Out);
        Assert.Matches(@"Count: \d+ shards, \d+ entities", table.Out);

        var shards = (await Run("cluster", "sharding", "shard-stats", "-r", "workflow")).Ok();
        Assert.Equal(["NODE", "SHARD", "ENTITIES"], shards.Out.Split('\n')[0].Split('|', StringSplitOptions.TrimEntries));
        Assert.Contains(Node.RemotingAddress, shards.Out);

        var unknown = (await Run("cluster", "sharding", "shard-stats", "-r", "nope")).Fails(ExitCodes.NodeError);
        Assert.Contains("404 Not found: no shard region of type \"nope\" on this node (known: workflow)", unknown);
        Assert.Equal(ExitCodes.Usage, (await Run("cluster", "sharding", "region-stats")).Code);
    }

    [Fact]
    public async Task Actor_hierarchy_shows_the_tree_to_the_requested_depth()
    {
        var tree = (await Run("actor", "hierarchy", "-d", "2")).Ok();
        Assert.Contains("\n/user\n", tree.Out);
        Assert.Contains("\n  /user/store-guard", tree.Out); // was /user/http-bridge, removed (it only forwarded to the shard region)
        Assert.Contains("\n  /system/sharding", tree.Out);
        Assert.DoesNotContain("/system/sharding/workflow", tree.Out); // depth 2 stops above it
        Assert.Matches(@"Count: \d+ actors", tree.Out);

        var deeper = (await Run("actor", "hierarchy", "-d", "3", "--json")).Ok().Json;
        Assert.Contains("/system/sharding/workflow", deeper.ToJsonString());

        var bad = (await Run("actor", "hierarchy", "-d", "99")).Fails(ExitCodes.NodeError);
        Assert.Contains("depth must be from 1 to 10", bad);
    }

    [Fact]
    public async Task An_unreachable_node_is_exit_3_and_a_bad_command_line_is_exit_2()
    {
        var down = (await Cli.Run($"http://127.0.0.1:{Loopback.FreePort()}", "cluster", "show")).Fails(ExitCodes.Unreachable);
        Assert.Contains("cannot reach the node at http://127.0.0.1:", down);
        Assert.Contains("connection refused", down);

        // --url wins over DEEPLINE_URL.
        var overridden = await Cli.Run($"http://127.0.0.1:{Loopback.FreePort()}", "cluster", "leader", "--url", Node.Url);
        Assert.Equal(Node.RemotingAddress, overridden.Ok().Out.Trim());

        Assert.Contains("--url must be an absolute http(s) URL", (await Run("cluster", "show", "--url", "ftp://x")).Fails(ExitCodes.Usage));
        Assert.Contains("--timeout must be more than 0 and at most 3600 seconds, got 0", (await Run("cluster", "show", "--timeout", "0")).Fails(ExitCodes.Usage));
        Assert.Equal(ExitCodes.Usage, (await Run("cluster")).Code);
        Assert.Equal(ExitCodes.Usage, (await Run("cluster", "frobnicate")).Code);
        Assert.Equal(ExitCodes.Usage, (await Run("runs", "status")).Code);
    }
}
