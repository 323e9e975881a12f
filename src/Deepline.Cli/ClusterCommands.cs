using System.CommandLine;
using System.Text.Json.Nodes;

namespace Deepline.Cli;

/// <summary>pbm's <c>cluster</c> and <c>cluster sharding</c> palettes.</summary>
public static class ClusterCommands
{
    public static Command Build(DeeplineCli.Env env)
    {
        var cluster = new Command("cluster", "Cluster membership and sharding (pbm's cluster palette)");
        cluster.Subcommands.Add(env.Leaf("show", "List the members: address | roles | status | reachable", Show));
        cluster.Subcommands.Add(env.Leaf("status", "This node's membership status", Status));
        cluster.Subcommands.Add(env.Leaf("leader", "The current cluster leader", Leader));

        var leaveAddress = AddressArgument();
        var wait = new Option<bool>("--wait") { Description = "Follow the member until it is removed from the cluster" };
        var waitFor = new Option<double>("--wait-timeout") { Description = "Give up waiting (exit 1) after this many seconds (1..3600)", DefaultValueFactory = _ => 120 };
        cluster.Subcommands.Add(env.Leaf("leave", "Ask a member to leave gracefully (admin)",
            c => Leave(c, c.Get(leaveAddress), c.Get(wait), c.Get(waitFor)), leaveAddress, wait, waitFor));
        var downAddress = AddressArgument();
        cluster.Subcommands.Add(env.Leaf("down", "Mark a member down (admin)",
            c => OnMember(c, "down", c.Get(downAddress)), downAddress));
        cluster.Subcommands.Add(env.Leaf("down-unreachable", "Mark every unreachable member down (admin)", DownUnreachable));
        var joinAddress = AddressArgument();
        cluster.Subcommands.Add(env.Leaf("join", "Make the node join the cluster at this address (admin)",
            c => OnMember(c, "join", c.Get(joinAddress)), joinAddress));

        var sharding = new Command("sharding", "Shard regions and their shards (pbm's cluster sharding palette)");
        sharding.Subcommands.Add(env.Leaf("regions", "Shard regions per type and node, with shard and entity counts", Regions));
        var regionType = TypeOption();
        sharding.Subcommands.Add(env.Leaf("region-stats", "Shards and entity counts of this node's region of a type",
            c => RegionStats(c, c.Get(regionType)), regionType));
        var shardType = TypeOption();
        sharding.Subcommands.Add(env.Leaf("shard-stats", "Every shard of a type in the cluster, with its node and entity count",
            c => ShardStats(c, c.Get(shardType)), shardType));
        cluster.Subcommands.Add(sharding);
        return cluster;
    }

    private static Argument<string> AddressArgument() => new("address")
    {
        Description = "Member address, e.g. akka.tcp://deepline@127.0.0.1:4053",
    };

    private static Option<string> TypeOption() => new("--type-name", "-r")
    {
        Description = "Sharding type name (the node's runs are \"workflow\")",
        Required = true,
    };

    private static async Task<int> Show(CommandContext c)
    {
        var body = await c.Node.RequireAsync(HttpMethod.Get, "/cluster/members", ct: c.Cancellation);
        if (c.Out.Json)
        {
            c.Out.WriteJson(body);
            return ExitCodes.Ok;
        }
        var members = body?["members"]?.AsArray() ?? [];
        c.Out.Table(["ADDRESS", "ROLES", "STATUS", "REACHABLE"], members.Select(m => (IReadOnlyList<string>)
        [
            Output.Str(m, "address") + (m?["leader"]?.GetValue<bool>() == true ? " (leader)" : ""),
            "[" + string.Join(",", (m?["roles"]?.AsArray() ?? []).Select(Output.Show)) + "]",
            Output.Str(m, "status"),
            m?["reachable"]?.GetValue<bool>() == true ? "reachable" : "UNREACHABLE",
        ]));
        c.Out.Line($"Count: {members.Count} {(members.Count == 1 ? "node" : "nodes")}");
        return ExitCodes.Ok;
    }

    private static async Task<int> Status(CommandContext c)
    {
        var body = await c.Node.RequireAsync(HttpMethod.Get, "/cluster/status", ct: c.Cancellation);
        if (c.Out.Json) c.Out.WriteJson(body);
        else c.Out.KeyValues(body!.AsObject());
        return ExitCodes.Ok;
    }

    private static async Task<int> Leader(CommandContext c)
    {
        var body = await c.Node.RequireAsync(HttpMethod.Get, "/cluster/leader", ct: c.Cancellation);
        if (c.Out.Json) c.Out.WriteJson(body);
        else c.Out.Line(Output.Str(body, "leader"));
        return ExitCodes.Ok;
    }

    private static async Task<int> OnMember(CommandContext c, string action, string address)
    {
        var request = new JsonObject { ["address"] = address.Trim() }.ToJsonString();
        var body = await c.Node.RequireAsync(HttpMethod.Post, $"/cluster/{action}", request, admin: true, c.Cancellation);
        if (c.Out.Json) c.Out.WriteJson(body);
        else c.Out.Line($"{action} {Output.Str(body, "address")}: {Output.Str(body, "message")}");
        return ExitCodes.Ok;
    }

    /// <summary>
    /// Leave, then (with --wait) follow the member's status until the cluster no longer lists it. A node asked through its
    /// own address stops answering once it is removed (it shuts down): after Leaving or Exiting was seen, that is the end.
    /// </summary>
    private static async Task<int> Leave(CommandContext c, string address, bool wait, double waitTimeoutS)
    {
        if (wait && waitTimeoutS is < 1 or > 3600) throw new CliException(ExitCodes.Usage, $"--wait-timeout must be from 1 to 3600 seconds, got {waitTimeoutS}");
        var done = await OnMember(c, "leave", address);
        if (!wait) return done;
        var target = address.Trim();
        var clock = System.Diagnostics.Stopwatch.StartNew();
        string? last = null;
        while (true)
        {
            JsonNode? body;
            try
            {
                body = await c.Node.RequireAsync(HttpMethod.Get, "/cluster/members", ct: c.Cancellation);
            }
            catch (CliException e) when (e.ExitCode == ExitCodes.Unreachable && last is "Leaving" or "Exiting")
            {
                c.Out.Line($"{target}: removed (the node stopped answering after {last}, as a removed node does)");
                return ExitCodes.Ok;
            }
            var member = (body?["members"]?.AsArray() ?? []).FirstOrDefault(m => Output.Str(m, "address") == target);
            if (member is null || Output.Str(member, "status") == "Removed")
            {
                c.Out.Line($"{target}: removed from the cluster after {clock.Elapsed.TotalSeconds:0.#} s");
                return ExitCodes.Ok;
            }
            var status = Output.Str(member, "status");
            if (status != last) c.Out.Line($"{target}: {status}");
            last = status;
            if (clock.Elapsed.TotalSeconds > waitTimeoutS)
                throw new CliException(ExitCodes.NodeError, $"{target} is still a member ({status}) after {waitTimeoutS:0.#} s");
            await Task.Delay(TimeSpan.FromMilliseconds(500), c.Cancellation);
        }
    }

    private static async Task<int> DownUnreachable(CommandContext c)
    {
        var body = await c.Node.RequireAsync(HttpMethod.Post, "/cluster/down-unreachable", "{}", admin: true, c.Cancellation);
        if (c.Out.Json)
        {
            c.Out.WriteJson(body);
            return ExitCodes.Ok;
        }
        var downed = body?["downed"]?.AsArray() ?? [];
        if (downed.Count == 0) c.Out.Line("No unreachable members: nothing to down.");
        foreach (var address in downed) c.Out.Line($"down {Output.Show(address)}");
        if (downed.Count > 0) c.Out.Line($"Downed: {downed.Count} {(downed.Count == 1 ? "node" : "nodes")}");
        return ExitCodes.Ok;
    }

    private static async Task<int> Regions(CommandContext c)
    {
        var body = await c.Node.RequireAsync(HttpMethod.Get, "/cluster/sharding/regions", ct: c.Cancellation);
        if (c.Out.Json)
        {
            c.Out.WriteJson(body);
            return ExitCodes.Ok;
        }
        var rows = (body?["types"]?.AsArray() ?? [])
            .SelectMany(t => (t?["regions"]?.AsArray() ?? []).Select(r => (IReadOnlyList<string>)
            [
                Output.Str(t, "type_name"), Output.Str(r, "node"), Output.Str(r, "shards"), Output.Str(r, "entities"),
            ]))
            .ToList();
        c.Out.Table(["TYPE", "NODE", "SHARDS", "ENTITIES"], rows);
        c.Out.Line($"Count: {rows.Count} {(rows.Count == 1 ? "region" : "regions")}");
        return ExitCodes.Ok;
    }

    private static async Task<int> RegionStats(CommandContext c, string typeName)
    {
        var body = await c.Node.RequireAsync(HttpMethod.Get, $"/cluster/sharding/{Uri.EscapeDataString(typeName)}/region-stats", ct: c.Cancellation);
        if (c.Out.Json)
        {
            c.Out.WriteJson(body);
            return ExitCodes.Ok;
        }
        c.Out.Line($"Region \"{Output.Str(body, "type_name")}\" on {Output.Str(body, "node")}");
        c.Out.Table(["SHARD", "ENTITIES"], (body?["shards"]?.AsArray() ?? [])
            .Select(s => (IReadOnlyList<string>)[Output.Str(s, "shard_id"), Output.Str(s, "entities")]));
        c.Out.Line($"Count: {Output.Int(body, "shard_count")} shards, {Output.Int(body, "entity_count")} entities");
        if (body?["failed_shards"] is JsonArray { Count: > 0 } failed)
            c.Out.Line($"Failed shards: {Output.Show(failed)}");
        return ExitCodes.Ok;
    }

    private static async Task<int> ShardStats(CommandContext c, string typeName)
    {
        var body = await c.Node.RequireAsync(HttpMethod.Get, $"/cluster/sharding/{Uri.EscapeDataString(typeName)}/shard-stats", ct: c.Cancellation);
        if (c.Out.Json)
        {
            c.Out.WriteJson(body);
            return ExitCodes.Ok;
        }
        c.Out.Table(["NODE", "SHARD", "ENTITIES"], (body?["shards"]?.AsArray() ?? [])
            .Select(s => (IReadOnlyList<string>)[Output.Str(s, "node"), Output.Str(s, "shard_id"), Output.Str(s, "entities")]));
        c.Out.Line($"Count: {Output.Int(body, "shard_count")} shards, {Output.Int(body, "entity_count")} entities");
        foreach (var f in body?["failed_shards"]?.AsArray() ?? [])
            c.Out.Line($"Failed shard {Output.Str(f, "shard_id")} on {Output.Str(f, "node")}");
        return ExitCodes.Ok;
    }
}

/// <summary>pbm's <c>actor hierarchy</c>.</summary>
public static class ActorCommands
{
    public static Command Build(DeeplineCli.Env env)
    {
        var actor = new Command("actor", "Actors of the node");
        var depth = new Option<int>("--depth", "-d") { Description = "How many levels below / to show (1..10)", DefaultValueFactory = _ => 3 };
        actor.Subcommands.Add(env.Leaf("hierarchy", "The node's actor tree to a depth", c => Hierarchy(c, c.Get(depth)), depth));
        return actor;
    }

    private static async Task<int> Hierarchy(CommandContext c, int depth)
    {
        var body = await c.Node.RequireAsync(HttpMethod.Get, $"/actors/hierarchy?depth={depth}", ct: c.Cancellation);
        if (c.Out.Json)
        {
            c.Out.WriteJson(body);
            return ExitCodes.Ok;
        }
        c.Out.Line($"{Output.Str(body, "node")} (depth {Output.Int(body, "depth")})");
        foreach (var child in body?["root"]?["children"]?.AsArray() ?? [])
            Print(c.Out, child, "");
        c.Out.Line($"Count: {Output.Int(body, "actors")} actors{(body?["truncated"]?.GetValue<bool>() == true ? " (the node lists at most this many; use a smaller --depth)" : "")}");
        return ExitCodes.Ok;
    }

    private static void Print(Output o, JsonNode? node, string indent)
    {
        var children = node?["children"]?.AsArray() ?? [];
        var total = Output.Int(node, "child_count");
        var hidden = total - children.Count;
        o.Line($"{indent}{Output.Str(node, "path")}{(hidden > 0 ? $"  (+{hidden} more)" : "")}");
        foreach (var child in children) Print(o, child, indent + "  ");
    }
}
