using System.CommandLine;
using System.Text.Json.Nodes;

namespace Deepline.Cli;

/// <summary>Named resources runs hold and wait for (GET /resources, GET /resources/{name}): who holds, who waits.</summary>
public static class ResourceCommands
{
    public static Command Build(DeeplineCli.Env env)
    {
        var resources = new Command("resources", "Resources runs hold and wait for (operator)");
        var limit = new Option<int>("--limit") { Description = "How many (1..500)", DefaultValueFactory = _ => 100 };
        var offset = new Option<int>("--offset") { Description = "How many to skip", DefaultValueFactory = _ => 0 };
        resources.Subcommands.Add(env.Leaf("list", "Each resource's capacity, use, holders and waiters", c => List(c, c.Get(limit), c.Get(offset)), limit, offset));
        var name = new Argument<string>("name") { Description = "The resource's name" };
        resources.Subcommands.Add(env.Leaf("show", "One resource: its holders (and what each waits for) and its waiters in order",
            c => Show(c, c.Get(name)), name));
        return resources;
    }

    private static async Task<int> List(CommandContext c, int limit, int offset)
    {
        if (limit is < 1 or > 500) throw new CliException(ExitCodes.Usage, $"--limit must be from 1 to 500, got {limit}");
        if (offset < 0) throw new CliException(ExitCodes.Usage, $"--offset must be 0 or more, got {offset}");
        var body = await c.Node.RequireAsync(HttpMethod.Get, $"/resources?limit={limit}&offset={offset}", ct: c.Cancellation);
        if (c.Out.Json)
        {
            c.Out.WriteJson(body);
            return ExitCodes.Ok;
        }
        var items = body?["resources"] as JsonArray ?? [];
        c.Out.Table(["RESOURCE", "CAPACITY", "USED", "HOLDERS", "WAITERS", "DECLARED"], items.Select(r => (IReadOnlyList<string>)
        [
            Output.Str(r, "name"), Output.Str(r, "capacity"), Output.Str(r, "used"), Output.Str(r, "holder_count"),
            Output.Str(r, "waiter_count"), Output.Str(r, "declared"),
        ]));
        c.Out.Line($"Resources: {items.Count} of {Output.Str(body, "total")}");
        return ExitCodes.Ok;
    }

    private static async Task<int> Show(CommandContext c, string name)
    {
        var body = await c.Node.RequireAsync(HttpMethod.Get, "/resources/" + Uri.EscapeDataString(name.Trim()), ct: c.Cancellation);
        if (c.Out.Json)
        {
            c.Out.WriteJson(body);
            return ExitCodes.Ok;
        }
        c.Out.Line($"{Output.Str(body, "name")}: {Output.Str(body, "used")} of {Output.Str(body, "capacity")} held" +
                   (body?["declared"]?.GetValue<bool>() == false ? " (capacity not declared: the default)" : ""));
        var holders = body?["holders"] as JsonArray ?? [];
        c.Out.Table(["HOLDER RUN", "COUNT", "WAITS FOR"], holders.Select(h => (IReadOnlyList<string>)
            [Output.Str(h, "run_id"), Output.Str(h, "count"), Output.Str(h, "waits_for")]));
        var waiters = body?["waiters"] as JsonArray ?? [];
        if (waiters.Count > 0)
            c.Out.Table(["WAITING RUN", "COUNT", "SINCE"], waiters.Select(w => (IReadOnlyList<string>)
                [Output.Str(w, "run_id"), Output.Str(w, "count"), Output.Str(w, "since")]));
        c.Out.Line($"Holders: {Output.Str(body, "holder_count")}, waiters: {Output.Str(body, "waiter_count")}");
        return ExitCodes.Ok;
    }
}
