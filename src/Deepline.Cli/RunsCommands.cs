using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Text.Json.Nodes;

namespace Deepline.Cli;

/// <summary>Workflow runs: submit, inspect, cancel, watch.</summary>
public static class RunsCommands
{
    private static readonly HashSet<string> TerminalRunStates = ["SUCCEEDED", "FAILED", "CANCELLED"];
    private static readonly HashSet<string> DoneTaskStates = ["SUCCEEDED", "FAILED", "CANCELLED", "SKIPPED"];

    public static Command Build(DeeplineCli.Env env)
    {
        var runs = new Command("runs", "Workflow runs");

        var file = new Argument<FileInfo>("file") { Description = "The run as JSON: {run_id?, workflow_name?, client_id?, tasks: [...]}" };
        runs.Subcommands.Add(env.Leaf("submit", "Submit a run from a JSON file", c => Submit(c, c.Get(file)), file));

        var statusId = RunId();
        runs.Subcommands.Add(env.Leaf("status", "A run with its tasks", c => Status(c, c.Get(statusId)), statusId));

        var cancelId = RunId();
        var reason = new Option<string?>("--reason") { Description = "Why (recorded with the cancel)" };
        var force = new Option<bool>("--force") { Description = "Finalise at once, without waiting for running tasks to acknowledge" };
        runs.Subcommands.Add(env.Leaf("cancel", "Cancel a run", c => Cancel(c, c.Get(cancelId), c.Parse.GetValue(reason), c.Get(force)),
            cancelId, reason, force));

        var historyId = RunId();
        runs.Subcommands.Add(env.Leaf("history", "A run's timeline: every journalled event with its time, task, attempt, cause and who",
            c => History(c, c.Get(historyId)), historyId));

        var archiveId = RunId();
        var archiveDir = ArchiveOption(required: true);
        runs.Subcommands.Add(env.Leaf("show", "A run removed by retention, from the node's archive directory (no node needed)",
            c => ShowArchived(c, c.Get(archiveDir)!, c.Get(archiveId)), archiveId, archiveDir));

        var exportDir = ArchiveOption(required: true);
        var exportOut = new Option<FileInfo?>("--out") { Description = "Write the JSON lines to this file instead of standard output" };
        runs.Subcommands.Add(env.Leaf("export", "Every run in an archive directory, one JSON line each (its last copy), uncompressed",
            c => Export(c, c.Get(exportDir)!, c.Parse.GetValue(exportOut)), exportDir, exportOut));

        var bulkClient = new Option<string?>("--client") { Description = "Only runs of this client_id" };
        var bulkWorkflow = new Option<string?>("--workflow") { Description = "Only runs of this workflow_name (exact)" };
        var bulkAfter = new Option<string?>("--created-after") { Description = "Only runs created after this ISO-8601 time" };
        var bulkBefore = new Option<string?>("--created-before") { Description = "Only runs created before this ISO-8601 time" };
        var bulkIds = new Option<string[]>("--run-id") { Description = "Only these runs (repeat the option; at most 500)", AllowMultipleArgumentsPerToken = true };
        var bulkReason = new Option<string?>("--reason") { Description = "Why (recorded with every cancel)" };
        var dryRun = new Option<bool>("--dry-run") { Description = "Only count the matching runs and show some of them" };
        var confirm = new Option<bool>("--confirm") { Description = "Needed when no filter is given: cancel every RUNNING run" };
        var wait = new Option<bool>("--wait") { Description = "Follow the operation's progress until it is done" };
        runs.Subcommands.Add(env.Leaf("cancel-many", "Cancel every RUNNING run a filter matches, as one operation that survives node loss",
            c => CancelMany(c, new JsonObject
            {
                ["client_id"] = c.Parse.GetValue(bulkClient), ["workflow_name"] = c.Parse.GetValue(bulkWorkflow),
                ["created_after"] = c.Parse.GetValue(bulkAfter), ["created_before"] = c.Parse.GetValue(bulkBefore),
                ["run_ids"] = c.Parse.GetValue(bulkIds) is { Length: > 0 } ids ? new JsonArray([.. ids.Select(i => (JsonNode)i)]) : null,
            }, c.Parse.GetValue(bulkReason), c.Get(dryRun), c.Get(confirm), c.Get(wait)),
            bulkClient, bulkWorkflow, bulkAfter, bulkBefore, bulkIds, bulkReason, dryRun, confirm, wait));

        var operationId = new Argument<string>("operation-id") { Description = "The operation_id a cancel-many printed" };
        runs.Subcommands.Add(env.Leaf("operation", "A bulk operation's progress", c => Operation(c, c.Get(operationId)), operationId));

        var retryId = RunId();
        runs.Subcommands.Add(env.Leaf("retry", "Re-run a FAILED run's failed, cancelled and skipped tasks", c => Retry(c, c.Get(retryId)), retryId));

        var forceId = RunId();
        runs.Subcommands.Add(env.Leaf("force-complete", "Finalise a CANCELLING run now (admin)", c => ForceComplete(c, c.Get(forceId)), forceId));

        var client = new Option<string?>("--client") { Description = "Only runs of this client_id" };
        var limit = new Option<int>("--limit") { Description = "How many (1..500)", DefaultValueFactory = _ => 50 };
        var offset = new Option<int>("--offset") { Description = "How many to skip", DefaultValueFactory = _ => 0 };
        runs.Subcommands.Add(env.Leaf("cancelled", "Recently cancelled runs",
            c => Cancelled(c, c.Parse.GetValue(client), c.Get(limit), c.Get(offset)), client, limit, offset));

        var listStatus = new Option<string?>("--status") { Description = "Only runs in this status (RUNNING, SUCCEEDED, FAILED, CANCELLING, CANCELLED)" };
        var listClient = new Option<string?>("--client") { Description = "Only runs of this client_id (a submitter key sees its own client's only)" };
        var listWorkflow = new Option<string?>("--workflow") { Description = "Only runs whose workflow_name contains this text" };
        var listLimit = new Option<int>("--limit") { Description = "How many (1..200)", DefaultValueFactory = _ => 50 };
        var listOffset = new Option<int>("--offset") { Description = "How many to skip", DefaultValueFactory = _ => 0 };
        runs.Subcommands.Add(env.Leaf("list", "Runs, newest first, filtered by status, client and workflow",
            c => List(c, c.Parse.GetValue(listStatus), c.Parse.GetValue(listClient), c.Parse.GetValue(listWorkflow), c.Get(listLimit), c.Get(listOffset)),
            listStatus, listClient, listWorkflow, listLimit, listOffset));

        var watchId = RunId();
        var interval = new Option<double>("--interval") { Description = "Seconds between polls", DefaultValueFactory = _ => 0.5 };
        var giveUp = new Option<double?>("--give-up-after") { Description = "Stop watching (exit 1) after this many seconds" };
        runs.Subcommands.Add(env.Leaf("watch", "Follow a run's tasks live until the run is terminal",
            c => Watch(c, c.Get(watchId), c.Get(interval), c.Parse.GetValue(giveUp)), watchId, interval, giveUp));
        return runs;
    }

    private static Argument<string> RunId() => new("run-id") { Description = "The run's run_id" };

    private static Option<DirectoryInfo?> ArchiveOption(bool required) => new("--archive")
    {
        Description = "The node's orchestrator.retention.archive_dir (read from disk)",
        Required = required,
    };

    private static string RunPath(string runId) => "/runs/" + Uri.EscapeDataString(runId);

    private static async Task<int> Submit(CommandContext c, FileInfo file)
    {
        if (!file.Exists)
            throw new CliException(ExitCodes.Usage, $"file not found: {file.FullName}");
        var text = await File.ReadAllTextAsync(file.FullName, c.Cancellation);
        try
        {
            JsonNode.Parse(text);
        }
        catch (System.Text.Json.JsonException ex)
        {
            throw new CliException(ExitCodes.Usage, $"{file.Name} is not valid JSON: {ex.Message.Split(" Path:")[0]}");
        }
        var body = await c.Node.RequireAsync(HttpMethod.Post, "/runs", text, ct: c.Cancellation);
        if (c.Out.Json) c.Out.WriteJson(body);
        else c.Out.Line($"Submitted run {Output.Str(body, "run_id")} ({Output.Int(body, "task_count")} tasks): {Output.Str(body, "status")}");
        return ExitCodes.Ok;
    }

    private static async Task<int> Status(CommandContext c, string runId)
    {
        var run = await c.Node.RequireAsync(HttpMethod.Get, RunPath(runId), ct: c.Cancellation);
        if (c.Out.Json)
        {
            c.Out.WriteJson(run);
            return ExitCodes.Ok;
        }
        c.Out.Line($"Run:      {Output.Str(run, "run_id")}");
        c.Out.Line($"Workflow: {Output.Str(run, "workflow_name")}");
        c.Out.Line($"Client:   {Output.Str(run, "client_id")}");
        c.Out.Line($"Status:   {Output.Str(run, "status")}");
        c.Out.Line($"Created:  {Output.Str(run, "created_at")}");
        c.Out.Line($"Updated:  {Output.Str(run, "updated_at")}");
        if (run?["cancellation"] is JsonObject cancel)
            c.Out.Line($"Cancel:   {Output.Str(cancel, "reason")} (by {Output.Str(cancel, "cancelled_by")} at {Output.Str(cancel, "cancelled_at")}{(cancel["forced"]?.GetValue<bool>() == true ? ", forced" : "")})");
        c.Out.Line();
        var tasks = run?["tasks"]?.AsArray() ?? [];
        c.Out.Table(["TASK", "TYPE", "POOL", "STATE", "ATTEMPTS", "WORKER", "UPDATED", "RETRY AT"], tasks.Select(t => (IReadOnlyList<string>)
        [
            Output.Str(t, "task_id"), Output.Str(t, "type"), Output.Str(t, "pool"), Output.Str(t, "state"),
            t?["max_attempts"] is null ? Output.Str(t, "attempts") : $"{Output.Str(t, "attempts")}/{Output.Str(t, "max_attempts")}",
            Output.Str(t, "worker_id"), Output.Str(t, "updated_at"), Output.Str(t, "retry_at"),
        ]));
        c.Out.Line($"Tasks: {tasks.Count} ({Counts(tasks)})");
        return ExitCodes.Ok;
    }

    /// <summary>Every page of the run's history, printed as a timeline measured from its submission.</summary>
    private static async Task<int> History(CommandContext c, string runId)
    {
        var events = new List<JsonNode?>();
        long? after = 0;
        while (after is { } a)
        {
            var page = await c.Node.RequireAsync(HttpMethod.Get, $"{RunPath(runId)}/history?after={a}&limit=1000", ct: c.Cancellation);
            events.AddRange(page?["events"]?.AsArray() ?? []);
            after = page?["next_after"]?.GetValue<long>();
        }
        if (c.Out.Json)
        {
            c.Out.WriteJson(new JsonObject { ["run_id"] = runId, ["events"] = new JsonArray([.. events.Select(e => e?.DeepClone())]) });
            return ExitCodes.Ok;
        }
        PrintTimeline(c, events);
        return ExitCodes.Ok;
    }

    /// <summary>A removed run's last archived copy: its timeline, as <c>runs history</c> prints a live one.</summary>
    private static Task<int> ShowArchived(CommandContext c, DirectoryInfo dir, string runId)
    {
        var archive = new ArchiveReader(dir.FullName);
        var run = archive.Find(runId)
                  ?? throw new CliException(ExitCodes.NodeError, $"run '{runId}' is not in the archive at {dir.FullName}" +
                                                                 (archive.Skipped > 0 ? $" ({archive.Skipped} unreadable manifest line(s) skipped)" : ""));
        if (c.Out.Json)
        {
            c.Out.WriteJson(run);
            return Task.FromResult(ExitCodes.Ok);
        }
        c.Out.Line($"Run:      {Output.Str(run, "run_id")} (archived {Output.Str(run, "archived_at")}, created {Output.Str(run, "created_at")})");
        c.Out.Line();
        PrintTimeline(c, [.. run["events"]?.AsArray() ?? []]);
        return Task.FromResult(ExitCodes.Ok);
    }

    private static async Task<int> Export(CommandContext c, DirectoryInfo dir, FileInfo? output)
    {
        var archive = new ArchiveReader(dir.FullName);
        var n = 0;
        await using (var writer = output is null ? null : new StreamWriter(output.FullName, append: false))
        {
            foreach (var run in archive.All())
            {
                var line = run.ToJsonString();
                if (writer is null) c.Out.Line(line);
                else await writer.WriteLineAsync(line.AsMemory(), c.Cancellation);
                n++;
            }
        }
        c.Error.WriteLine($"deepline: exported {n} run(s) from {dir.FullName}" + (output is null ? "" : $" to {output.FullName}") +
                          (archive.Skipped > 0 ? $"; {archive.Skipped} unreadable manifest line(s) skipped" : ""));
        return ExitCodes.Ok;
    }

    private static void PrintTimeline(CommandContext c, IReadOnlyList<JsonNode?> events)
    {
        DateTimeOffset? start = null;
        c.Out.Table(["SEQ", "AT", "+S", "EVENT", "TASK", "ATTEMPT", "BY", "CAUSE", "DETAIL"], events.Select(e =>
        {
            var at = e?["at"]?.GetValue<DateTimeOffset>();
            start ??= at;
            return (IReadOnlyList<string>)
            [
                Output.Str(e, "seq"), Output.Str(e, "at"),
                at is { } t && start is { } s0 ? (t - s0).TotalSeconds.ToString("0.000", CultureInfo.InvariantCulture) : "",
                Output.Str(e, "type"), Output.Str(e, "task_id"), Output.Str(e, "attempt"), Output.Str(e, "by"), Output.Str(e, "cause"),
                OneLine(Output.Str(e, "detail")),
            ];
        }));
        c.Out.Line($"Events: {events.Count}");
    }

    private static async Task<int> CancelMany(CommandContext c, JsonObject filter, string? reason, bool dryRun, bool confirm, bool wait)
    {
        foreach (var key in filter.Where(kv => kv.Value is null).Select(kv => kv.Key).ToList()) filter.Remove(key);
        if (filter.Count == 0 && !confirm && !dryRun)
            throw new CliException(ExitCodes.Usage, "no filter given: this would cancel every RUNNING run (of every client, for an operator key); pass --confirm, or --dry-run to count them");
        var request = new JsonObject { ["filter"] = filter, ["dry_run"] = dryRun };
        if (confirm) request["confirm"] = true;
        if (!string.IsNullOrWhiteSpace(reason)) request["reason"] = reason;
        var body = await c.Node.RequireAsync(HttpMethod.Post, "/runs/cancel", request.ToJsonString(), ct: c.Cancellation);
        if (dryRun)
        {
            if (c.Out.Json) c.Out.WriteJson(body);
            else
            {
                var sample = body?["sample"]?.AsArray().Select(n => n?.GetValue<string>()).ToList() ?? [];
                c.Out.Line($"{Output.Str(body, "matched")} RUNNING runs match" + (sample.Count == 0 ? "." : $"; the first {sample.Count}: {string.Join(", ", sample)}"));
            }
            return ExitCodes.Ok;
        }
        var id = Output.Str(body, "operation_id");
        if (!wait)
        {
            if (c.Out.Json) c.Out.WriteJson(body);
            else c.Out.Line($"Operation {id} started: {Output.Str(body, "matched")} runs to cancel; follow it with: deepline runs operation {id}");
            return ExitCodes.Ok;
        }
        while (true)
        {
            var op = await c.Node.RequireAsync(HttpMethod.Get, "/operations/" + Uri.EscapeDataString(id), ct: c.Cancellation);
            if (c.Out.Json) c.Out.WriteJsonLine(op);
            else c.Out.Line(Progress(op));
            await c.Out.Writer.FlushAsync(c.Cancellation);
            if (Output.Str(op, "state") == "done") return Output.Int(op, "failed") == 0 ? ExitCodes.Ok : ExitCodes.NodeError;
            await Task.Delay(TimeSpan.FromSeconds(1), c.Cancellation);
        }
    }

    private static async Task<int> Operation(CommandContext c, string operationId)
    {
        var op = await c.Node.RequireAsync(HttpMethod.Get, "/operations/" + Uri.EscapeDataString(operationId), ct: c.Cancellation);
        if (c.Out.Json) c.Out.WriteJson(op);
        else c.Out.Line(Progress(op));
        return ExitCodes.Ok;
    }

    private static string Progress(JsonNode? op) =>
        $"Operation {Output.Str(op, "operation_id")}: {Output.Str(op, "state")}, {Output.Str(op, "cancelled")} cancelled, {Output.Str(op, "skipped")} skipped, " +
        $"{Output.Str(op, "failed")} failed of {Output.Str(op, "matched")} matched (reason: {OneLine(Output.Str(op, "reason"))}, by {Output.Str(op, "by")})";

    /// <summary>A worker's error may span lines or carry terminal escapes: one line of printable text per event.</summary>
    private static string OneLine(string text) => string.Concat(text.Select(ch => char.IsControl(ch) ? ' ' : ch));

    private static async Task<int> Cancel(CommandContext c, string runId, string? reason, bool force)
    {
        var request = new JsonObject { ["force"] = force };
        if (!string.IsNullOrWhiteSpace(reason)) request["reason"] = reason;
        var body = await c.Node.RequireAsync(HttpMethod.Put, RunPath(runId) + "/cancel", request.ToJsonString(), ct: c.Cancellation);
        if (c.Out.Json) c.Out.WriteJson(body);
        else c.Out.Line($"Run {Output.Str(body, "run_id")}: {Output.Str(body, "status")}: {Output.Str(body, "message")} " +
                        $"({Output.Int(body, "cancelled_tasks")} tasks cancelled, reason: {Output.Str(body, "reason")})");
        return ExitCodes.Ok;
    }

    private static async Task<int> Retry(CommandContext c, string runId)
    {
        var run = await c.Node.RequireAsync(HttpMethod.Post, RunPath(runId) + "/retry", ct: c.Cancellation);
        if (c.Out.Json) c.Out.WriteJson(run);
        else c.Out.Line($"Run {Output.Str(run, "run_id")}: {Output.Str(run, "status")} again ({Counts(run?["tasks"]?.AsArray() ?? [])})");
        return ExitCodes.Ok;
    }

    private static async Task<int> ForceComplete(CommandContext c, string runId)
    {
        await c.Node.RequireAsync(HttpMethod.Delete, RunPath(runId) + "/cancel", admin: true, ct: c.Cancellation);
        var status = await c.Node.RequireAsync(HttpMethod.Get, RunPath(runId) + "/cancel", ct: c.Cancellation);
        if (c.Out.Json) c.Out.WriteJson(status);
        else c.Out.Line($"Run {runId}: cancellation finalised (forced), status {Output.Str(status, "status")}");
        return ExitCodes.Ok;
    }

    private static readonly string[] Statuses = ["RUNNING", "SUCCEEDED", "FAILED", "CANCELLING", "CANCELLED"];

    private static async Task<int> List(CommandContext c, string? status, string? client, string? workflow, int limit, int offset)
    {
        if (limit is < 1 or > 200) throw new CliException(ExitCodes.Usage, $"--limit must be from 1 to 200, got {limit}");
        if (offset < 0) throw new CliException(ExitCodes.Usage, $"--offset must be 0 or more, got {offset}");
        if (status is not null && !Statuses.Contains(status.Trim().ToUpperInvariant()))
            throw new CliException(ExitCodes.Usage, $"--status must be one of {string.Join(", ", Statuses)}");
        var query = new List<string> { $"limit={limit}", $"offset={offset}" };
        if (status is not null) query.Add("status=" + status.Trim().ToUpperInvariant());
        if (!string.IsNullOrWhiteSpace(client)) query.Add("client_id=" + Uri.EscapeDataString(client.Trim()));
        if (!string.IsNullOrEmpty(workflow)) query.Add("workflow=" + Uri.EscapeDataString(workflow));
        var body = await c.Node.RequireAsync(HttpMethod.Get, "/runs?" + string.Join('&', query), ct: c.Cancellation);
        if (c.Out.Json)
        {
            c.Out.WriteJson(body);
            return ExitCodes.Ok;
        }
        var items = body?["runs"] as JsonArray ?? [];
        c.Out.Table(["RUN", "WORKFLOW", "CLIENT", "STATUS", "TASKS", "CREATED AT", "UPDATED AT"], items.Select(r => (IReadOnlyList<string>)
        [
            Output.Str(r, "run_id"), Output.Str(r, "workflow_name"), Output.Str(r, "client_id"), Output.Str(r, "status"),
            Output.Str(r, "task_count"), Output.Str(r, "created_at"), Output.Str(r, "updated_at"),
        ]));
        var more = body?["has_more"]?.GetValue<bool>() == true;
        c.Out.Line($"Count: {items.Count} {(items.Count == 1 ? "run" : "runs")}" + (more ? $"; more with --offset {offset + items.Count}" : ""));
        return ExitCodes.Ok;
    }

    private static async Task<int> Cancelled(CommandContext c, string? client, int limit, int offset)
    {
        if (limit is < 1 or > 500) throw new CliException(ExitCodes.Usage, $"--limit must be from 1 to 500, got {limit}");
        if (offset < 0) throw new CliException(ExitCodes.Usage, $"--offset must be 0 or more, got {offset}");
        var query = $"/runs/cancelled?limit={limit}&offset={offset}" + (string.IsNullOrWhiteSpace(client) ? "" : "&client_id=" + Uri.EscapeDataString(client.Trim()));
        var response = await c.Node.SendAsync(HttpMethod.Get, query, ct: c.Cancellation);
        if (response.Status == HttpStatusCode.NotFound)
            throw new CliException(ExitCodes.NodeError, "listing cancelled runs is not available on this node (GET /runs/cancelled arrives with the deadlock monitor)");
        if (!response.IsSuccess) throw NodeClient.NodeError(response);
        if (c.Out.Json)
        {
            c.Out.WriteJson(response.Body);
            return ExitCodes.Ok;
        }
        // The seed answers a bare array; accept a wrapped page too.
        var items = response.Body as JsonArray ?? response.Body?["runs"] as JsonArray ?? response.Body?["items"] as JsonArray ?? [];
        c.Out.Table(["RUN", "WORKFLOW", "CLIENT", "STATUS", "CANCELLED AT", "BY", "REASON"], items.Select(r => (IReadOnlyList<string>)
        [
            Output.Str(r, "run_id"), Output.Str(r, "workflow_name"), Output.Str(r, "client_id"), Output.Str(r, "status"),
            Output.Str(r, "cancelled_at"), Output.Str(r, "cancelled_by"), Output.Str(r, "cancellation_reason"),
        ]));
        c.Out.Line($"Count: {items.Count} {(items.Count == 1 ? "run" : "runs")}");
        return ExitCodes.Ok;
    }

    /// <summary>Polls the run and prints a line whenever a task moved, until the run is terminal.</summary>
    private static async Task<int> Watch(CommandContext c, string runId, double intervalS, double? giveUpAfterS)
    {
        if (intervalS is < 0.05 or > 60) throw new CliException(ExitCodes.Usage, "--interval must be from 0.05 to 60 seconds");
        if (giveUpAfterS is <= 0) throw new CliException(ExitCodes.Usage, "--give-up-after must be positive");
        var clock = Stopwatch.StartNew();
        string? last = null;
        while (true)
        {
            var run = await c.Node.RequireAsync(HttpMethod.Get, RunPath(runId), ct: c.Cancellation);
            var status = Output.Str(run, "status");
            var tasks = run?["tasks"]?.AsArray() ?? [];
            var snapshot = status + "|" + string.Join(",", tasks.Select(t => Output.Str(t, "task_id") + "=" + Output.Str(t, "state")));
            if (snapshot != last)
            {
                last = snapshot;
                if (c.Out.Json)
                {
                    c.Out.WriteJsonLine(new JsonObject
                    {
                        ["at"] = DateTimeOffset.UtcNow.ToString("yyyy-MM-dd'T'HH:mm:ss.fff'Z'", CultureInfo.InvariantCulture),
                        ["run_id"] = runId,
                        ["status"] = status,
                        ["done"] = tasks.Count(t => DoneTaskStates.Contains(Output.Str(t, "state"))),
                        ["total"] = tasks.Count,
                        ["tasks"] = new JsonObject(tasks.Select(t => KeyValuePair.Create(Output.Str(t, "task_id"), (JsonNode?)Output.Str(t, "state")))),
                    });
                }
                else
                {
                    var done = tasks.Count(t => DoneTaskStates.Contains(Output.Str(t, "state")));
                    c.Out.Line($"[{clock.Elapsed.TotalSeconds,6:0.0}s] {status,-10} {done}/{tasks.Count} done  " +
                               string.Join("  ", tasks.Select(t => $"{Output.Str(t, "task_id")}:{Output.Str(t, "state")}")));
                }
                await c.Out.Writer.FlushAsync(c.Cancellation);
            }
            if (TerminalRunStates.Contains(status))
            {
                if (!c.Out.Json) c.Out.Line($"Run {runId} is {status} ({Counts(tasks)}).");
                return ExitCodes.Ok;
            }
            if (giveUpAfterS is { } limit && clock.Elapsed.TotalSeconds >= limit)
                throw new CliException(ExitCodes.NodeError, $"run {runId} is still {status} after {limit:0.#} s; stopped watching");
            await Task.Delay(TimeSpan.FromSeconds(intervalS), c.Cancellation);
        }
    }

    private static string Counts(JsonArray tasks) =>
        string.Join(", ", tasks.GroupBy(t => Output.Str(t, "state")).OrderBy(g => g.Key, StringComparer.Ordinal).Select(g => $"{g.Key} {g.Count()}"));
}
