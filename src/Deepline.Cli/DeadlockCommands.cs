using System.CommandLine;
using System.Net;
using System.Text.Json.Nodes;

namespace Deepline.Cli;

/// <summary>
/// The deadlock monitor: its status (GET /health), counters (GET /stats) and a dry-run scan with what-if thresholds
/// (POST /deadlock/scan). A node without the monitor answers 404 or leaves the block out: that is said plainly.
/// </summary>
public static class DeadlockCommands
{
    public const string NotAvailable = "deadlock monitor not available on this node";

    public static Command Build(DeeplineCli.Env env)
    {
        var deadlock = new Command("deadlock", "The deadlock monitor");
        deadlock.Subcommands.Add(env.Leaf("status", "Whether the monitor runs, its thresholds and last scan", c => Block(c, "/health")));
        deadlock.Subcommands.Add(env.Leaf("stats", "Deadlocks detected, runs cancelled, alerts sent", c => Block(c, "/stats")));

        var pending = new Option<int?>("--pending-stale") { Description = "What-if pending_stale_s (seconds)" };
        var workflow = new Option<int?>("--workflow-stale") { Description = "What-if workflow_stale_s (seconds)" };
        var heartbeat = new Option<int?>("--heartbeat-timeout") { Description = "What-if heartbeat_timeout_s (seconds)" };
        deadlock.Subcommands.Add(env.Leaf("scan", "Dry run: which runs would be flagged now (nothing is cancelled)",
            c => Scan(c, c.Parse.GetValue(pending), c.Parse.GetValue(workflow), c.Parse.GetValue(heartbeat)), pending, workflow, heartbeat));
        var limit = new Option<int>("--limit") { Description = "How many (1..500)", DefaultValueFactory = _ => 100 };
        deadlock.Subcommands.Add(env.Leaf("incidents", "Open incidents, newest first: the run, its detector, since when, alerted, cancelled",
            c => Incidents(c, c.Get(limit)), limit));
        return deadlock;
    }

    private static async Task<int> Incidents(CommandContext c, int limit)
    {
        if (limit is < 1 or > 500) throw new CliException(ExitCodes.Usage, $"--limit must be from 1 to 500, got {limit}");
        var response = await c.Node.SendAsync(HttpMethod.Get, $"/deadlock/incidents?limit={limit}", ct: c.Cancellation);
        if (response.Status == HttpStatusCode.NotFound) throw new CliException(ExitCodes.NodeError, NotAvailable);
        if (!response.IsSuccess) throw NodeClient.NodeError(response);
        if (c.Out.Json)
        {
            c.Out.WriteJson(response.Body);
            return ExitCodes.Ok;
        }
        var items = response.Body?["incidents"] as JsonArray ?? [];
        c.Out.Table(["RUN", "WORKFLOW", "DETECTOR", "STUCK SINCE", "DETECTED AT", "ALERTED", "CANCELLED", "EXPLANATION"], items.Select(i => (IReadOnlyList<string>)
        [
            Output.Str(i, "run_id"), Output.Str(i, "workflow_name"), Output.Str(i, "reason"), Output.Str(i, "stuck_since"),
            Output.Str(i, "detected_at"), Output.Str(i, "alerted"), Output.Str(i, "cancelled"), Output.Str(i, "explanation"),
        ]));
        c.Out.Line($"Open incidents: {Output.Str(response.Body, "open_incidents")}");
        return ExitCodes.Ok;
    }

    private static async Task<int> Block(CommandContext c, string path)
    {
        var response = await c.Node.SendAsync(HttpMethod.Get, path, ct: c.Cancellation);
        // /health answers 503 with a full body when the node is degraded: the monitor block is still worth showing.
        if (response.Status == HttpStatusCode.NotFound || response.Body?["deadlock_monitor"] is not JsonObject block)
        {
            if (!response.IsSuccess && response.Status is not (HttpStatusCode.NotFound or HttpStatusCode.ServiceUnavailable))
                throw NodeClient.NodeError(response);
            throw new CliException(ExitCodes.NodeError, NotAvailable);
        }
        if (c.Out.Json) c.Out.WriteJson(block);
        else c.Out.KeyValues(block);
        return ExitCodes.Ok;
    }

    private static async Task<int> Scan(CommandContext c, int? pendingStale, int? workflowStale, int? heartbeatTimeout)
    {
        foreach (var (name, value) in new[] { ("--pending-stale", pendingStale), ("--workflow-stale", workflowStale), ("--heartbeat-timeout", heartbeatTimeout) })
        {
            if (value is <= 0) throw new CliException(ExitCodes.Usage, $"{name} must be a positive number of seconds, got {value}");
        }
        var request = new JsonObject();
        if (pendingStale is { } p) request["pending_stale_s"] = p;
        if (workflowStale is { } w) request["workflow_stale_s"] = w;
        if (heartbeatTimeout is { } h) request["heartbeat_timeout_s"] = h;
        var response = await c.Node.SendAsync(HttpMethod.Post, "/deadlock/scan", request.ToJsonString(), ct: c.Cancellation);
        if (response.Status is HttpStatusCode.NotFound or HttpStatusCode.MethodNotAllowed)
            throw new CliException(ExitCodes.NodeError, NotAvailable);
        if (!response.IsSuccess) throw NodeClient.NodeError(response);
        if (c.Out.Json)
        {
            c.Out.WriteJson(response.Body);
            return ExitCodes.Ok;
        }
        var flagged = response.Body?["flagged"]?.AsArray() ?? [];
        c.Out.Table(["RUN", "REASON", "EXPLANATION"], flagged.Select(f => (IReadOnlyList<string>)
            [Output.Str(f, "run_id"), Output.Str(f, "reason"), Output.Str(f, "explanation")]));
        c.Out.Line($"Flagged: {flagged.Count} {(flagged.Count == 1 ? "run" : "runs")} (dry run: nothing was cancelled or alerted)");
        return ExitCodes.Ok;
    }
}
