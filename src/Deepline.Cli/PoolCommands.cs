using System.CommandLine;
using System.Text.Json.Nodes;

namespace Deepline.Cli;

/// <summary>Task queues of external pools (GET /pools): what is queued, for how long, and who polls.</summary>
public static class PoolCommands
{
    public static Command Build(DeeplineCli.Env env)
    {
        var pools = new Command("pools", "Task queues of external worker pools on the node");
        pools.Subcommands.Add(env.Leaf("list", "Each pool's queue depth, oldest queued age and pollers", List));
        return pools;
    }

    private static async Task<int> List(CommandContext c)
    {
        var body = await c.Node.RequireAsync(HttpMethod.Get, "/pools", ct: c.Cancellation);
        if (c.Out.Json)
        {
            c.Out.WriteJson(body);
            return ExitCodes.Ok;
        }
        var items = body as JsonArray ?? [];
        c.Out.Table(["POOL", "QUEUED", "OLDEST (S)", "POLLERS", "WAITING POLLS", "LAST POLL", "NO POLLER FOR (S)"], items.Select(p => (IReadOnlyList<string>)
        [
            Output.Str(p, "pool"), Output.Str(p, "queue_depth"), Output.Str(p, "oldest_queued_age_s"), Output.Str(p, "pollers"),
            Output.Str(p, "waiting_polls"), Output.Str(p, "last_poll_at"), Output.Str(p, "no_poller_for_s"),
        ]));
        var unpolled = items.Where(p => p?["no_poller_for_s"] is not null).Select(p => Output.Str(p, "pool")).ToList();
        c.Out.Line(unpolled.Count == 0
            ? $"Pools: {items.Count}"
            : $"Pools: {items.Count}; queued tasks and no worker polling: {string.Join(", ", unpolled)}");
        return ExitCodes.Ok;
    }
}
