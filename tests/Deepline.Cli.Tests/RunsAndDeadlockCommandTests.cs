using System.Net;
using System.Text;
using System.Text.Json.Nodes;
using Deepline.Tests.Shared;

namespace Deepline.Cli.Tests;

[Collection(SingleNode.Name)]
public sealed class RunsAndDeadlockCommandTests(SingleNodeFixture fixture)
{
    private TestNode Node => fixture.Node;

    private Task<CliResult> Run(params string[] args) => Cli.Run(Node.Url, args);

    private async Task Submit(string json) =>
        Assert.Equal(HttpStatusCode.Created, (await Node.Client.PostAsync("/runs", new StringContent(json, Encoding.UTF8, "application/json"))).StatusCode);

    private async Task AwaitTaskState(string runId, string taskId, string state) =>
        await Eventually.Until(async () =>
        {
            var run = JsonNode.Parse(await Node.Client.GetStringAsync($"/runs/{runId}"))!;
            return run["tasks"]!.AsArray().Any(t => t!["task_id"]!.GetValue<string>() == taskId && t["state"]!.GetValue<string>() == state);
        }, TimeSpan.FromSeconds(15), $"{runId}/{taskId} {state}");

    [Fact]
    public async Task Runs_submit_reads_a_file_and_refuses_what_the_node_refuses()
    {
        var file = fixture.WriteRun("""{"run_id":"cli-submit","workflow_name":"ETL","tasks":[{"task_id":"a","type":"noop"}]}""");
        var ok = (await Run("runs", "submit", file)).Ok();
        Assert.Equal("Submitted run cli-submit (1 tasks): RUNNING", ok.Out.Trim());

        var again = (await Run("runs", "submit", fixture.WriteRun("""{"tasks":[{"task_id":"a","type":"noop"}]}"""), "--json")).Ok().Json;
        Assert.Equal(1, again["task_count"]!.GetValue<int>());
        Assert.False(string.IsNullOrEmpty(again["run_id"]!.GetValue<string>()));

        var cycle = (await Run("runs", "submit", fixture.WriteRun(
            """{"tasks":[{"task_id":"a","type":"noop","depends_on":["b"]},{"task_id":"b","type":"noop","depends_on":["a"]}]}"""))).Fails(ExitCodes.NodeError);
        Assert.Equal("deepline: 422 Dependency cycle: dependency cycle: a -> b -> a (field: tasks)", cycle);

        Assert.Contains("file not found:", (await Run("runs", "submit", "/nonexistent/run.json")).Fails(ExitCodes.Usage));
        Assert.Contains("is not valid JSON", (await Run("runs", "submit", fixture.WriteRun("{tasks:"))).Fails(ExitCodes.Usage));
    }

    [Fact]
    public async Task Pools_list_shows_a_queue_nobody_polls_and_runs_retry_re_runs_a_failed_run()
    {
        await Submit("""{"run_id":"cli-pool","tasks":[{"task_id":"q1","type":"etl","pool":"cli-ext"},{"task_id":"q2","type":"etl","pool":"cli-ext"}]}""");

        var list = (await Run("pools", "list")).Ok();
        Assert.Matches(@"\ncli-ext\s+\| 2\s+\|", list.Out);
        // Named once nobody has polled it for 5 s.
        await Eventually.Until(async () => (await Run("pools", "list")).Ok().Out.Contains("queued tasks and no worker polling: cli-ext"),
            TimeSpan.FromSeconds(20), "pools list names cli-ext as unpolled");

        await Submit("""{"run_id":"cli-rerun","tasks":[{"task_id":"f","type":"fail","retry":{"max_attempts":1} }]}""");
        await AwaitTaskState("cli-rerun", "f", "FAILED");
        var rerun = (await Run("runs", "retry", "cli-rerun")).Ok();
        Assert.StartsWith("Run cli-rerun: RUNNING again", rerun.Out.Trim());
        await AwaitTaskState("cli-rerun", "f", "FAILED");
        var status = (await Run("runs", "status", "cli-rerun", "--json")).Ok().Json;
        Assert.Equal(2, status["tasks"]![0]!["attempts"]!.GetValue<int>());
        Assert.Contains("404", (await Run("runs", "retry", "cli-no-such-run")).Fails(ExitCodes.NodeError));
    }

    [Fact]
    public async Task Runs_history_prints_one_line_per_event_with_no_terminal_escape_a_worker_sent()
    {
        await Submit("""{"run_id":"cli-hist","tasks":[{"task_id":"f","type":"fail","params":{"message":"line one\nline two \u001b[31mred"},"retry":{"max_attempts":1} }]}""");
        await AwaitTaskState("cli-hist", "f", "FAILED");

        var json = (await Run("runs", "history", "cli-hist", "--json")).Ok().Json;
        var events = json["events"]!.AsArray();
        Assert.Equal(Enumerable.Range(1, events.Count).Select(i => (long)i), events.Select(e => e!["seq"]!.GetValue<long>()));

        var table = (await Run("runs", "history", "cli-hist")).Ok().Out;
        var lines = table.TrimEnd().Split('\n');
        Assert.Equal($"Events: {events.Count}", lines[^1]);
        Assert.Equal(events.Count + 2, lines.Length); // header, one line per event, the count
        Assert.Contains(lines, l => l.Contains("| run_submitted ") && l.Contains("| 0.000 "));
        Assert.Contains(lines, l => l.Contains("| task_failed ") && l.Contains("line one line two") && l.Contains("red"));
        Assert.DoesNotContain('\u001b', table);
        Assert.Contains("404", (await Run("runs", "history", "cli-no-such-run")).Fails(ExitCodes.NodeError));
    }

    [Fact]
    public async Task Runs_status_shows_the_tasks_or_says_the_run_is_unknown()
    {
        await Submit("""{"run_id":"cli-status","client_id":"team-a","tasks":[{"task_id":"x","type":"noop"},{"task_id":"y","type":"noop","depends_on":["x"]}]}""");
        await AwaitTaskState("cli-status", "y", "SUCCEEDED");

        var table = (await Run("runs", "status", "cli-status")).Ok();
        Assert.Contains("Run:      cli-status", table.Out);
        Assert.Contains("Client:   team-a", table.Out);
        Assert.Contains("Status:   SUCCEEDED", table.Out);
        Assert.Matches(@"\nx\s+\| noop\s+\| default \| SUCCEEDED \| 1/\d+ ", table.Out);
        Assert.Contains("Tasks: 2 (SUCCEEDED 2)", table.Out);

        var json = (await Run("runs", "status", "cli-status", "--json")).Ok().Json;
        Assert.Equal("SUCCEEDED", json["status"]!.GetValue<string>());
        Assert.Equal(2, json["tasks"]!.AsArray().Count);

        var unknown = (await Run("runs", "status", "no-such-run")).Fails(ExitCodes.NodeError);
        Assert.StartsWith("deepline: 404 Not found:", unknown);
        Assert.Contains("no-such-run", unknown);
    }

    [Fact]
    public async Task Runs_cancel_many_counts_then_cancels_the_matching_runs_and_follows_the_operation()
    {
        var wf = "cli-bulk-" + Guid.NewGuid().ToString("N")[..8];
        for (var i = 0; i < 3; i++)
            await Submit($$"""{"run_id":"{{wf}}-{{i}}","workflow_name":"{{wf}}","tasks":[{"task_id":"x","type":"etl","pool":"cli-bulk-nobody"}]}""");

        await Eventually.Until(async () => (await Run("runs", "cancel-many", "--workflow", wf, "--dry-run")).Ok().Out.StartsWith("3 RUNNING runs match"),
            TimeSpan.FromSeconds(15), "the dry run counts the three runs");
        Assert.Contains("--confirm", (await Run("runs", "cancel-many")).Fails(ExitCodes.Usage));

        var followed = (await Run("runs", "cancel-many", "--workflow", wf, "--reason", "cli bulk", "--wait")).Ok().Out.TrimEnd().Split('\n');
        Assert.Matches(@"^Operation op-[0-9a-f]+: done, 3 cancelled, 0 skipped, 0 failed of 3 matched \(reason: cli bulk, by .+\)$", followed[^1]);
        for (var i = 0; i < 3; i++) await AwaitRunStatus($"{wf}-{i}", "CANCELLED");

        var id = followed[^1].Split(':')[0]["Operation ".Length..];
        Assert.Contains("done, 3 cancelled", (await Run("runs", "operation", id)).Ok().Out);
        Assert.Contains("404", (await Run("runs", "operation", "op-unknown")).Fails(ExitCodes.NodeError));
    }

    private async Task AwaitRunStatus(string runId, string status) =>
        await Eventually.Until(async () => JsonNode.Parse(await Node.Client.GetStringAsync($"/runs/{runId}"))!["status"]!.GetValue<string>() == status,
            TimeSpan.FromSeconds(15), $"{runId} {status}");

    [Fact]
    public async Task Store_backup_writes_a_copy_holding_the_runs_and_never_replaces_a_file_without_force()
    {
        await Submit("""{"run_id":"cli-backup","tasks":[{"task_id":"a","type":"noop"}]}""");
        await AwaitTaskState("cli-backup", "a", "SUCCEEDED");
        var path = Path.Combine(fixture.DataDir, $"copy-{Guid.NewGuid():N}.db");

        Assert.Contains("needs the admin key", (await Run("store", "backup", path)).Fails(ExitCodes.NodeError));
        Assert.False(File.Exists(path) || File.Exists(path + ".partial"));

        var ok = (await Run("store", "backup", path, "--admin-key", TestNode.AdminKey)).Ok();
        Assert.Matches(@"^Backup written to .+: [\d,]+ bytes, journal ordering [1-9]\d*, in [\d.]+ s", ok.Out);
        await using (var copy = new Microsoft.Data.Sqlite.SqliteConnection($"Data Source={path};Mode=ReadOnly;Pooling=False"))
        {
            await copy.OpenAsync();
            await using var count = copy.CreateCommand();
            count.CommandText = "SELECT COUNT(*) FROM journal WHERE persistence_id = 'run-cli-backup'";
            Assert.True((long)(await count.ExecuteScalarAsync())! >= 3); // submitted, started, succeeded
        }

        Assert.Contains("exists; pass --force", (await Run("store", "backup", path, "--admin-key", TestNode.AdminKey)).Fails(ExitCodes.Usage));
        var json = (await Run("store", "backup", path, "--force", "--admin-key", TestNode.AdminKey, "--json")).Ok().Json;
        Assert.Equal(new FileInfo(path).Length, json["bytes"]!.GetValue<long>());
        Assert.True(json["journal_ordering"]!.GetValue<long>() > 0);
    }

    [Fact]
    public async Task Runs_cancel_then_force_complete_with_the_admin_key()
    {
        // An external worker holds the task and never acknowledges: the run stays CANCELLING until forced.
        await Submit("""{"run_id":"cli-cancel","tasks":[{"task_id":"ext","type":"python","pool":"gpu"}]}""");
        var claim = await Node.Client.PostAsync("/runs/cli-cancel/tasks/ext/events",
            new StringContent("""{"event":"TASK_STARTED","worker_id":"py-1"}""", Encoding.UTF8, "application/json"));
        Assert.Equal(HttpStatusCode.OK, claim.StatusCode);

        var cancel = (await Run("runs", "cancel", "cli-cancel", "--reason", "operator said so")).Ok();
        Assert.Equal("Run cli-cancel: CANCELLING: Workflow cancellation initiated successfully (0 tasks cancelled, reason: operator said so)", cancel.Out.Trim());
        var repeat = (await Run("runs", "cancel", "cli-cancel", "--json")).Ok().Json;
        Assert.Equal("operator said so", repeat["reason"]!.GetValue<string>());

        var noKey = (await Run("runs", "force-complete", "cli-cancel")).Fails(ExitCodes.NodeError);
        Assert.Contains("needs the admin key", noKey);

        var forced = (await Run("runs", "force-complete", "cli-cancel", "--admin-key", TestNode.AdminKey)).Ok();
        Assert.Equal("Run cli-cancel: cancellation finalised (forced), status CANCELLED", forced.Out.Trim());

        var notCancelling = (await Run("runs", "force-complete", "cli-cancel", "--admin-key", TestNode.AdminKey)).Fails(ExitCodes.NodeError);
        Assert.StartsWith("deepline: 409 Conflict", notCancelling);
        Assert.StartsWith("deepline: 404", (await Run("runs", "cancel", "cli-nothing")).Fails(ExitCodes.NodeError));
    }

    [Fact]
    public async Task Runs_watch_follows_the_tasks_until_the_run_is_terminal()
    {
        await Submit("""{"run_id":"cli-watch","tasks":[{"task_id":"first","type":"delay","params":{"ms":300}},{"task_id":"second","type":"delay","params":{"ms":300},"depends_on":["first"]}]}""");

        var watch = (await Run("runs", "watch", "cli-watch", "--interval", "0.05")).Ok();

        var lines = watch.Out.TrimEnd().Split('\n');
        Assert.True(lines.Length >= 3, watch.Out); // at least: first running, second running, finished
        Assert.Contains(lines, l => l.Contains("first:RUNNING") && l.Contains("second:PENDING"));
        Assert.Contains(lines, l => l.Contains("1/2 done") && l.Contains("second:RUNNING"));
        Assert.Contains("SUCCEEDED  2/2 done  first:SUCCEEDED  second:SUCCEEDED", lines[^2]);
        Assert.Equal("Run cli-watch is SUCCEEDED (SUCCEEDED 2).", lines[^1]);

        var json = (await Run("runs", "watch", "cli-watch", "--json")).Ok();
        var last = JsonNode.Parse(json.Out.Trim().Split('\n')[^1])!;
        Assert.Equal("SUCCEEDED", last["status"]!.GetValue<string>());
        Assert.Equal(2, last["done"]!.GetValue<int>());

        Assert.StartsWith("deepline: 404", (await Run("runs", "watch", "cli-watch-unknown")).Fails(ExitCodes.NodeError));
    }

    [Fact]
    public async Task Runs_watch_gives_up_when_asked()
    {
        await Submit("""{"run_id":"cli-hang","tasks":[{"task_id":"h","type":"hang"}]}""");
        var r = await Run("runs", "watch", "cli-hang", "--interval", "0.05", "--give-up-after", "0.3");
        Assert.Equal(ExitCodes.NodeError, r.Code);
        Assert.Contains("run cli-hang is still RUNNING after 0.3 s; stopped watching", r.Err);
        Assert.Contains("h:RUNNING", r.Out); // progress was shown before giving up
        await Run("runs", "cancel", "cli-hang", "--force");
    }

    /// <summary>
    /// The listing and the monitor arrive with the deadlock monitor: against a node without them the CLI says so
    /// plainly; against a node with them it shows what they answer.
    /// </summary>
    [Fact]
    public async Task Runs_cancelled_lists_cancellations_or_says_it_is_not_available()
    {
        await Submit("""{"run_id":"cli-listed","client_id":"team-z","tasks":[{"task_id":"h","type":"hang"}]}""");
        (await Run("runs", "cancel", "cli-listed", "--force")).Ok();

        // The list comes from the run index, a projection of the journal: wait for it to catch up.
        var deadline = DateTime.UtcNow.AddSeconds(15);
        var r = await Run("runs", "cancelled", "--client", "team-z", "--limit", "5");
        while (!r.Out.Contains("cli-listed") && DateTime.UtcNow < deadline)
        {
            await Task.Delay(100);
            r = await Run("runs", "cancelled", "--client", "team-z", "--limit", "5");
        }
        r.Ok();
        Assert.Contains("cli-listed", r.Out);
        Assert.Contains("Count: 1 run", r.Out);
        Assert.Contains("--limit must be from 1 to 500", (await Run("runs", "cancelled", "--limit", "0")).Fails(ExitCodes.Usage));
    }

    [Theory]
    [InlineData("status", "/health")]
    [InlineData("stats", "/stats")]
    public async Task Deadlock_status_and_stats_show_the_monitor_block(string command, string path)
    {
        var response = await Node.Client.GetAsync(path);
        var block = JsonNode.Parse(await response.Content.ReadAsStringAsync())!["deadlock_monitor"]!;

        var table = await Run("deadlock", command);
        var json = await Run("deadlock", command, "--json");
        table.Ok();
        foreach (var (key, _) in block.AsObject()) Assert.Contains(key + ":", table.Out);
        Assert.Equal(block.AsObject().Select(kv => kv.Key), json.Ok().Json.AsObject().Select(kv => kv.Key));
    }

    [Fact]
    public async Task Deadlock_scan_is_a_dry_run_with_what_if_thresholds()
    {
        await Submit("""{"run_id":"cli-scanned","tasks":[{"task_id":"t","type":"x","pool":"nobody"}]}""");

        // The scan reads the run index (a projection of the journal) and then asks the run: poll until it shows.
        var deadline = DateTime.UtcNow.AddSeconds(15);
        var r = await Run("deadlock", "scan", "--pending-stale", "1", "--workflow-stale", "3600");
        while (!r.Out.Contains("cli-scanned") && DateTime.UtcNow < deadline)
        {
            await Task.Delay(200);
            r = await Run("deadlock", "scan", "--pending-stale", "1", "--workflow-stale", "3600");
        }
        r.Ok();
        Assert.Contains("cli-scanned", r.Out);
        Assert.Contains("stale_pending", r.Out);
        Assert.Matches(@"Flagged: \d+ runs? \(dry run", r.Out);
        Assert.NotNull((await Run("deadlock", "scan", "--json")).Ok().Json["flagged"]);
        // A dry run cancels nothing.
        Assert.Equal("RUNNING", JsonNode.Parse(await Node.Client.GetStringAsync("/runs/cli-scanned"))!["status"]!.GetValue<string>());
        Assert.Contains("--pending-stale must be a positive number of seconds", (await Run("deadlock", "scan", "--pending-stale", "0")).Fails(ExitCodes.Usage));
    }

    [Fact]
    public async Task Runs_list_filters_by_status_client_and_workflow_and_refuses_a_bad_filter()
    {
        var wf = "cli-list-" + Guid.NewGuid().ToString("N")[..8];
        await Submit($$"""{"run_id":"{{wf}}-done","workflow_name":"{{wf}}","client_id":"team-l","tasks":[{"task_id":"a","type":"noop"}]}""");
        await Submit($$"""{"run_id":"{{wf}}-open","workflow_name":"{{wf}}","client_id":"team-l","tasks":[{"task_id":"a","type":"hang"}]}""");
        await Submit($$"""{"run_id":"{{wf}}-other","workflow_name":"{{wf}}","client_id":"team-m","tasks":[{"task_id":"a","type":"hang"}]}""");
        await AwaitTaskState($"{wf}-done", "a", "SUCCEEDED");

        // The list reads the run index, which trails the journal by a moment.
        await Eventually.Until(async () => (await Run("runs", "list", "--workflow", wf, "--json")).Ok().Json["runs"]!.AsArray().Count == 3,
            TimeSpan.FromSeconds(15), "three runs listed");
        var running = (await Run("runs", "list", "--workflow", wf, "--status", "running", "--client", "team-l")).Ok().Out;
        Assert.Contains($"{wf}-open", running);
        Assert.DoesNotContain($"{wf}-done", running);
        Assert.DoesNotContain($"{wf}-other", running);
        Assert.EndsWith("Count: 1 run", running.TrimEnd());
        var page = (await Run("runs", "list", "--workflow", wf, "--limit", "2")).Ok().Out;
        Assert.EndsWith("Count: 2 runs; more with --offset 2", page.TrimEnd());

        Assert.Contains("--status must be one of", (await Run("runs", "list", "--status", "STUCK")).Fails(ExitCodes.Usage));
        Assert.Contains("--limit must be from 1 to 200", (await Run("runs", "list", "--limit", "0")).Fails(ExitCodes.Usage));
        await Run("runs", "cancel", $"{wf}-open");
        await Run("runs", "cancel", $"{wf}-other");
    }

    [Fact]
    public async Task Resources_list_and_show_name_the_holder_and_the_waiter()
    {
        var res = "cli-res-" + Guid.NewGuid().ToString("N")[..8];
        await Submit($$"""{"run_id":"{{res}}-holder","tasks":[{"task_id":"h","type":"hang","resources":[{"name":"{{res}}","count":1}]}]}""");
        await AwaitTaskState($"{res}-holder", "h", "RUNNING");
        await Submit($$"""{"run_id":"{{res}}-waiter","tasks":[{"task_id":"w","type":"noop","resources":[{"name":"{{res}}","count":1}]}]}""");

        await Eventually.Until(async () => (await Run("resources", "show", res, "--json")).Ok().Json["waiter_count"]!.GetValue<int>() == 1,
            TimeSpan.FromSeconds(15), "the second run waits");
        var show = (await Run("resources", "show", res)).Ok().Out;
        Assert.StartsWith($"{res}: 1 of 1 held", show);
        Assert.Matches($@"\n{res}-holder\s+\| 1 ", show);
        Assert.Matches($@"\n{res}-waiter\s+\| 1 ", show);
        Assert.Contains("Holders: 1, waiters: 1", show);
        Assert.Contains(res, (await Run("resources", "list", "--limit", "500")).Ok().Out);

        await Run("runs", "cancel", $"{res}-holder");
        await AwaitTaskState($"{res}-waiter", "w", "SUCCEEDED");
    }
}
