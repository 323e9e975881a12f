using System.Diagnostics;
using System.Net;
using System.Text;
using Deepline.Tests.Shared;
using Microsoft.Playwright;
using Xunit.Abstractions;
using static Microsoft.Playwright.Assertions;

namespace Deepline.Ui.Tests;

/// <summary>The dashboard in a real browser against a real node: every check waits on what the page shows, never on a sleep.</summary>
[Collection(Dashboard.Name)]
public sealed class DashboardTests(DashboardNode node, ITestOutputHelper output)
{

    private static string Id(string prefix) => $"{prefix}-{Guid.NewGuid():N}"[..(prefix.Length + 13)];

    private static string Chain(string runId, string workflow, string middle = "hang") => $$$"""
        {"run_id":"{{{runId}}}","workflow_name":"{{{workflow}}}","tasks":[
          {"task_id":"extract","type":"noop"},
          {"task_id":"train","type":"{{{middle}}}","depends_on":["extract"]},
          {"task_id":"report","type":"noop","depends_on":["train"]},
          {"task_id":"audit","type":"noop","depends_on":["extract"]}]}
        """;

    private static ILocator Row(IPage page, string runId) => page.Locator($"#runs tr[data-run-id='{runId}']");

    [Fact]
    public async Task Lists_filters_and_opens_a_run_with_its_dag()
    {
        var wf = Id("etl");
        var a = await node.SubmitAsync(DashboardNode.TeamA, Chain(Id("list-a"), wf, "noop"));
        var b = await node.SubmitAsync(DashboardNode.TeamB, Chain(Id("list-b"), wf));
        var page = await node.SignedInPageAsync(DashboardNode.Operator);

        // The operator sees both clients' runs, newest first.
        await Expect(Row(page, a)).ToBeVisibleAsync(new() { Timeout = 15_000 });
        await Expect(Row(page, b)).ToBeVisibleAsync();
        var ids = await page.Locator("#runs tbody tr").EvaluateAllAsync<string[]>("rows => rows.map(r => r.dataset.runId)");
        Assert.True(Array.IndexOf(ids, b) < Array.IndexOf(ids, a), "newest first");

        // Filter by client, then by workflow and status.
        await page.GetByLabel("Client", new() { Exact = true }).FillAsync("team-a");
        await page.GetByRole(AriaRole.Button, new() { Name = "Apply filters" }).ClickAsync();
        await Expect(Row(page, a)).ToBeVisibleAsync();
        await Expect(Row(page, b)).ToHaveCountAsync(0);
        await page.GetByLabel("Client", new() { Exact = true }).FillAsync("");
        await page.GetByLabel("Workflow contains").FillAsync(wf.ToUpperInvariant());
        await page.GetByLabel("Status").SelectOptionAsync("SUCCEEDED");
        await page.GetByRole(AriaRole.Button, new() { Name = "Apply filters" }).ClickAsync();
        await Expect(Row(page, a)).ToBeVisibleAsync();
        await Expect(page.Locator("#runs tbody tr")).ToHaveCountAsync(1);

        // Open the running one: its DAG shows each task with its state.
        await page.GetByRole(AriaRole.Button, new() { Name = "Clear" }).ClickAsync();
        await Row(page, b).GetByRole(AriaRole.Link).ClickAsync();
        await Expect(page.Locator("#run-id")).ToHaveTextAsync(b);
        await Expect(page.Locator("#dag g.node")).ToHaveCountAsync(4, new() { Timeout = 15_000 });
        await Expect(page.Locator("#dag g[data-task-id='train']")).ToHaveAttributeAsync("data-state", "RUNNING", new() { Timeout = 15_000 });
        await Expect(page.Locator("#dag g[data-task-id='extract']")).ToHaveAttributeAsync("data-state", "SUCCEEDED");
        await Expect(page.Locator("#dag g[data-task-id='report'] text").Last).ToHaveTextAsync("○ PENDING");
        await Expect(page.Locator("#tasks tr[data-task-id='train'] td[data-label='Worker']")).Not.ToHaveTextAsync("—");
        await page.Context.CloseAsync();
    }

    [Fact]
    public async Task Cancel_from_the_run_page_ends_cancelled()
    {
        var id = await node.SubmitAsync(DashboardNode.TeamA, Chain(Id("page-cancel"), "cancel-me"));
        var page = await node.SignedInPageAsync(DashboardNode.Operator);
        await page.GotoAsync($"{node.Url}/ui#/run/{id}");
        await Expect(page.Locator("#dag g[data-task-id='train']")).ToHaveAttributeAsync("data-state", "RUNNING", new() { Timeout = 15_000 });
        await page.GetByLabel("Reason").FillAsync("wrong input <b>bold</b>");
        await page.GetByRole(AriaRole.Button, new() { Name = "Cancel run" }).ClickAsync();
        await Expect(page.Locator("#run-status")).ToHaveTextAsync("CANCELLED");
        await Expect(page.Locator("#cancellation")).ToContainTextAsync("wrong input <b>bold</b>");
        await Expect(page.Locator("#cancellation")).ToContainTextAsync("oncall");
        await Expect(page.Locator("#dag g[data-task-id='train']")).ToHaveAttributeAsync("data-state", "CANCELLED");
        // Nothing a caller wrote became markup.
        await Expect(page.Locator("#cancellation b")).ToHaveCountAsync(0);
        await page.Context.CloseAsync();
    }

    [Fact]
    public async Task A_cancel_made_through_the_api_shows_without_a_reload()
    {
        var page = await node.SignedInPageAsync(DashboardNode.Operator);
        var ids = new List<string>();
        for (var i = 0; i < 5; i++)
            ids.Add(await node.SubmitAsync(DashboardNode.TeamB, Chain(Id("api-cancel"), "live")));
        // New runs arrive by the event stream, then run.
        foreach (var id in ids)
            await Expect(Row(page, id).Locator("[data-status]")).ToHaveTextAsync("RUNNING");
        var navigations = 0;
        page.FrameNavigated += (_, _) => navigations++;

        using var client = node.Client(DashboardNode.TeamB);
        var seen = new List<double>();
        foreach (var id in ids)
        {
            var response = await client.PutAsync($"/runs/{id}/cancel", new StringContent("""{"reason":"from the api"}""", Encoding.UTF8, "application/json"));
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            var sw = Stopwatch.StartNew();
            await Expect(Row(page, id).Locator("[data-status]")).ToHaveTextAsync(new System.Text.RegularExpressions.Regex("^CANCELL(ING|ED)$"));
            seen.Add(sw.Elapsed.TotalMilliseconds);
            await Expect(Row(page, id).Locator("[data-status]")).ToHaveTextAsync("CANCELLED");
        }
        Assert.Equal(0, navigations);
        seen.Sort();
        output.WriteLine($"API cancel visible in the open runs list after the PUT returned: {string.Join(", ", seen.Select(ms => ms.ToString("0")))} ms");
        Assert.True(seen[^1] < 5_000, $"slowest {seen[^1]} ms");
        await page.Context.CloseAsync();
    }

    [Fact]
    public async Task A_deadlock_appears_live_on_the_stuck_page()
    {
        var page = await node.SignedInPageAsync(DashboardNode.Operator);
        await page.GetByRole(AriaRole.Link, new() { Name = "Stuck & incidents" }).ClickAsync();
        await Expect(page.GetByRole(AriaRole.Heading, new() { Name = "Stuck runs and incidents" })).ToBeVisibleAsync();
        await Expect(page.Locator("#monitor .card").First).ToBeVisibleAsync(new() { Timeout = 15_000 });

        // A task for a pool nobody serves, with a 1 s pending threshold: stale_pending within seconds.
        var id = await node.SubmitAsync(DashboardNode.TeamA, "{\"run_id\":\"" + Id("stuck") + "\",\"workflow_name\":\"nobody-serves-this\"," +
            "\"tasks\":[{\"task_id\":\"t\",\"type\":\"x\",\"pool\":\"nobody\"}],\"deadlock\":{\"pending_stale_s\":1}}");
        var row = page.Locator($"#incident-table tr[data-run-id='{id}']");
        await Expect(row).ToBeVisibleAsync(new() { Timeout = 20_000 });
        await Expect(row.Locator("td[data-label='Reason']")).ToHaveTextAsync("stale_pending");
        await Expect(row.Locator("td[data-label='Stuck tasks']")).ToHaveTextAsync("t");
        await Expect(row.Locator("td[data-label='Cancelled']")).ToHaveTextAsync("yes");
        await Expect(page.Locator($"#auto-cancel-table tr[data-run-id='{id}']")).ToBeVisibleAsync(new() { Timeout = 15_000 });

        // The what-if scan runs over the form, as a dry run.
        await page.GetByLabel("pending_stale_s").FillAsync("1");
        await page.GetByRole(AriaRole.Button, new() { Name = "Scan (dry run)" }).ClickAsync();
        await Expect(page.Locator("#scan-result")).ToContainTextAsync("Nothing was alerted or cancelled");
        await page.Context.CloseAsync();
    }

    [Fact]
    public async Task The_stuck_page_draws_the_resource_wait_for_graph_and_says_who_waits_for_whom()
    {
        using var worker = node.Client(DashboardNode.Worker);
        async Task<HttpStatusCode> Claim(string w, string r) => (await worker.PutAsync($"/resources/{r}/claims/{w}",
            new StringContent("""{"count":1}""", Encoding.UTF8, "application/json"))).StatusCode;
        var (w1, w2, db) = (Id("uiw1"), Id("uiw2"), Id("ui-db"));
        Assert.Equal(HttpStatusCode.OK, await Claim(w1, db));
        // A run waits for db behind the worker that holds it; a second worker waits behind the run.
        var run = await node.SubmitAsync(DashboardNode.TeamA, "{\"run_id\":\"" + Id("wfg") + "\",\"tasks\":[{\"task_id\":\"t\",\"type\":\"x\",\"pool\":\"nobody\"," +
            "\"resources\":[{\"name\":\"" + db + "\",\"count\":1}]}]}");
        await Eventually.Until(async () => (await node.GetJsonAsync(DashboardNode.Operator, $"/resources/{db}"))["waiter_count"]!.GetValue<int>() == 1,
            TimeSpan.FromSeconds(15), "the run waits for db");
        Assert.Equal(HttpStatusCode.Accepted, await Claim(w2, db));

        var page = await node.SignedInPageAsync(DashboardNode.Operator);
        await page.GotoAsync($"{node.Url}/ui#/stuck");
        var graph = page.Locator("#wait-graph");
        await Expect(graph.Locator($"g.node[data-id='{db}'][data-kind='resource']")).ToBeVisibleAsync();
        await Expect(graph.Locator($"g.node[data-id='worker/{w1}']")).ToContainTextAsync($"worker {w1}");
        await Expect(graph.Locator($"path[data-edge='hold'][data-party='worker/{w1}'][data-resource='{db}']")).ToHaveCountAsync(1);
        await Expect(graph.Locator($"path[data-edge='wait'][data-party='{run}'][data-resource='{db}']")).ToHaveCountAsync(1);
        await Expect(graph.Locator($"path[data-edge='wait'][data-party='worker/{w2}'][data-resource='{db}']")).ToHaveCountAsync(1);
        // The same in words, for a screen reader or a copy into a ticket.
        await Expect(page.Locator($"#wait-list li[data-waiter='{run}']"))
            .ToHaveTextAsync($"run {run} waits for {db} (capacity 1, 1 used): held by worker {w1}, which waits for nothing");

        // The worker releases: the run (first in line) holds db, and the second worker now waits for the run.
        Assert.Equal(HttpStatusCode.NoContent, (await worker.DeleteAsync($"/resources/{db}/claims/{w1}")).StatusCode);
        await Eventually.Until(async () => (await node.GetJsonAsync(DashboardNode.Operator, $"/resources/{db}"))["holders"]!.AsArray().FirstOrDefault()?["run_id"]?.GetValue<string>() == run,
            TimeSpan.FromSeconds(15), "the run granted db");
        await page.ReloadAsync();
        await Expect(page.Locator($"#wait-graph path[data-edge='hold'][data-party='{run}'][data-resource='{db}']")).ToHaveCountAsync(1);
        await Expect(page.Locator($"#wait-list li[data-waiter='worker/{w2}']"))
            .ToHaveTextAsync($"worker {w2} waits for {db} (capacity 1, 1 used): held by run {run}, which releases it when its task ends");
        Assert.Equal(HttpStatusCode.NoContent, (await worker.DeleteAsync($"/resources/{db}/claims/{w2}")).StatusCode);
        using (var a = node.Client(DashboardNode.TeamA)) await a.PutAsync($"/runs/{run}/cancel", null);
        await page.Context.CloseAsync();
    }

    [Fact]
    public async Task A_submitter_sees_only_its_client_and_no_operator_pages()
    {
        var own = await node.SubmitAsync(DashboardNode.TeamA, Chain(Id("own"), "mine"));
        var other = await node.SubmitAsync(DashboardNode.TeamB, Chain(Id("other"), "theirs"));
        var page = await node.SignedInPageAsync(DashboardNode.TeamA);
        await Expect(page.Locator("#who")).ToContainTextAsync("client team-a");
        await Expect(Row(page, own)).ToBeVisibleAsync(new() { Timeout = 15_000 });
        await Expect(Row(page, other)).ToHaveCountAsync(0);
        await Expect(page.GetByLabel("Client", new() { Exact = true })).ToBeDisabledAsync();
        await Expect(page.GetByRole(AriaRole.Link, new() { Name = "Stuck & incidents" })).ToBeHiddenAsync();
        await Expect(page.GetByRole(AriaRole.Link, new() { Name = "Cluster" })).ToBeHiddenAsync();

        // Live events of another client never reach this page: cancel the other run and the own one.
        using (var b = node.Client(DashboardNode.TeamB))
            await b.PutAsync($"/runs/{other}/cancel", null);
        using (var a = node.Client(DashboardNode.TeamA))
            await a.PutAsync($"/runs/{own}/cancel", null);
        await Expect(Row(page, own).Locator("[data-status]")).ToHaveTextAsync("CANCELLED");
        await Expect(Row(page, other)).ToHaveCountAsync(0);

        // Another client's run is "not found", and operator pages are not offered even by URL.
        await page.GotoAsync($"{node.Url}/ui#/run/{other}");
        await Expect(page.Locator("main [role=alert]")).ToContainTextAsync("Not found");
        await page.GotoAsync($"{node.Url}/ui#/cluster");
        await Expect(page.GetByRole(AriaRole.Heading, new() { Name = "Not available" })).ToBeVisibleAsync();

        // Its own running run offers the cancel button; an operator-only page never loaded.
        var mine = await node.SubmitAsync(DashboardNode.TeamA, Chain(Id("mine2"), "mine"));
        await page.GotoAsync($"{node.Url}/ui#/run/{mine}");
        await Expect(page.GetByRole(AriaRole.Button, new() { Name = "Cancel run" })).ToBeVisibleAsync();
        await page.Context.CloseAsync();
    }

    [Fact]
    public async Task The_pools_page_shows_a_queue_nobody_polls_and_then_its_poller()
    {
        var pool = Id("ext");
        await node.SubmitAsync(DashboardNode.TeamA, $$"""{"run_id":"{{Id("pooled")}}","tasks":[{"task_id":"a","type":"etl","pool":"{{pool}}"},{"task_id":"b","type":"etl","pool":"{{pool}}"}]}""");
        var page = await node.SignedInPageAsync(DashboardNode.Operator);

        await page.GotoAsync($"{node.Url}/ui#/pools");

        var row = page.Locator($"#pools-table tr[data-pool='{pool}']");
        await Expect(row.Locator("td[data-label='Queued']")).ToHaveTextAsync("2", new() { Timeout = 15_000 });
        await Expect(row.Locator("td[data-label='Status']")).ToContainTextAsync("no worker polling");
        // A worker polls (the admin key may poll any pool): the page follows within its refresh.
        using (var admin = node.Client(DashboardNode.Admin))
        {
            var poll = await admin.PostAsync($"/pools/{pool}/tasks/poll",
                new StringContent("""{"worker_id":"ui-worker","max_tasks":1}""", Encoding.UTF8, "application/json"));
            Assert.Equal(HttpStatusCode.OK, poll.StatusCode);
        }
        await Expect(row.Locator("td[data-label='Queued']")).ToHaveTextAsync("1", new() { Timeout = 15_000 });
        await Expect(row.Locator("td[data-label='Pollers']")).ToHaveTextAsync("1");
        await page.Context.CloseAsync();
    }

    [Fact]
    public async Task Cancel_many_counts_first_then_cancels_the_matching_runs_and_shows_progress()
    {
        var wf = Id("ui-bulk");
        var ids = new List<string>();
        for (var i = 0; i < 3; i++)
            ids.Add(await node.SubmitAsync(DashboardNode.TeamA, $$"""{"run_id":"{{Id("uib")}}","workflow_name":"{{wf}}","tasks":[{"task_id":"x","type":"etl","pool":"ui-bulk-nobody"}]}"""));
        var spared = await node.SubmitAsync(DashboardNode.TeamA, $$"""{"run_id":"{{Id("uis")}}","workflow_name":"{{wf}}-not","tasks":[{"task_id":"x","type":"etl","pool":"ui-bulk-nobody"}]}""");
        var page = await node.SignedInPageAsync(DashboardNode.TeamA);
        await page.GetByText("Cancel many runs").ClickAsync();
        await page.GetByLabel("Workflow to cancel (exact)").FillAsync(wf);
        await page.GetByLabel("Cancel reason").FillAsync("from the dashboard");

        // The run index may trail: count until it shows all three.
        await Eventually.Until(async () =>
        {
            await page.GetByRole(AriaRole.Button, new() { Name = "Count matching runs" }).ClickAsync();
            return (await page.Locator("#bulk-status").InnerTextAsync()).StartsWith("3 RUNNING run(s) match");
        }, TimeSpan.FromSeconds(15), "three runs counted");
        await page.GetByRole(AriaRole.Button, new() { Name = "Cancel 3 run(s)" }).ClickAsync();
        await Expect(page.Locator("#bulk-status")).ToContainTextAsync("done, 3 cancelled, 0 skipped, 0 failed of 3", new() { Timeout = 20_000 });

        foreach (var id in ids)
            await Eventually.Until(async () => (await node.GetJsonAsync(DashboardNode.TeamA, $"/runs/{id}"))["status"]!.GetValue<string>() == "CANCELLED",
                TimeSpan.FromSeconds(15), $"{id} cancelled");
        Assert.Equal("RUNNING", (await node.GetJsonAsync(DashboardNode.TeamA, $"/runs/{spared}"))["status"]!.GetValue<string>());
        await page.Context.CloseAsync();
    }

    [Fact]
    public async Task The_run_page_shows_the_timeline_and_each_tasks_start_and_duration()
    {
        var id = await node.SubmitAsync(DashboardNode.TeamA, $$"""
            {"run_id":"{{Id("timeline")}}","tasks":[{"task_id":"wait","type":"delay","params":{"ms":400} },{"task_id":"after","type":"noop","depends_on":["wait"]} ]}
            """);
        var page = await node.SignedInPageAsync(DashboardNode.TeamA);
        await page.GotoAsync($"{node.Url}/ui#/run/{id}");
        await Expect(page.Locator("#run-status")).ToContainTextAsync("SUCCEEDED", new() { Timeout = 15_000 });

        var timeline = page.Locator("#timeline tbody tr");
        await Expect(timeline.First).ToHaveAttributeAsync("data-type", "run_submitted", new() { Timeout = 15_000 });
        await Expect(page.Locator("#timeline tr[data-type='task_succeeded']")).ToHaveCountAsync(2, new() { Timeout = 15_000 });
        await Expect(page.Locator("#timeline tr[data-type='task_started'] td[data-label='By']").First).Not.ToHaveTextAsync("—");
        // The delay task took its 400 ms; a finished task's duration is not "so far". .NET's timers tick on a
        // millisecond clock and may fire up to a tick early, and both ends are kept to the millisecond: 398 is 400.
        var duration = await page.Locator("#tasks tr[data-task-id='wait'] td[data-label='Duration']").InnerTextAsync();
        var shown = System.Text.RegularExpressions.Regex.Match(duration, @"^(\d+) ms$|^(\d+\.\d) s$");
        Assert.True(shown.Success, $"duration '{duration}' is not a finished duration");
        var ms = shown.Groups[1].Success ? double.Parse(shown.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture)
            : double.Parse(shown.Groups[2].Value, System.Globalization.CultureInfo.InvariantCulture) * 1000;
        Assert.InRange(ms, 398, 60_000);
        await Expect(page.Locator("#tasks tr[data-task-id='after'] td[data-label='Started']")).Not.ToHaveTextAsync("—");
        await page.Context.CloseAsync();
    }

    [Fact]
    public async Task A_failed_run_offers_a_re_run_that_runs_its_failed_task_again()
    {
        var id = await node.SubmitAsync(DashboardNode.TeamA, $$"""{"run_id":"{{Id("rerun")}}","tasks":[{"task_id":"f","type":"fail","retry":{"max_attempts":1} }]}""");
        var page = await node.SignedInPageAsync(DashboardNode.TeamA);
        await page.GotoAsync($"{node.Url}/ui#/run/{id}");
        await Expect(page.Locator("#run-status")).ToContainTextAsync("FAILED", new() { Timeout = 15_000 });

        await page.GetByRole(AriaRole.Button, new() { Name = "Re-run failed tasks" }).ClickAsync();

        // The fail handler fails again: the run is FAILED once more, after a second attempt.
        await Expect(page.Locator("#dag g[data-task-id='f']")).ToHaveAttributeAsync("data-state", "FAILED", new() { Timeout = 15_000 });
        using var client = node.Client(DashboardNode.TeamA);
        await Eventually.Until(async () => System.Text.Json.Nodes.JsonNode.Parse(await client.GetStringAsync($"/runs/{id}"))!["tasks"]![0]!["attempts"]!.GetValue<int>() == 2,
            TimeSpan.FromSeconds(15), "attempt 2 ran");
        await page.Context.CloseAsync();
    }

    [Fact]
    public async Task Keyboard_alone_cancels_a_run_and_every_control_has_a_label()
    {
        var id = await node.SubmitAsync(DashboardNode.TeamA, Chain(Id("keyboard"), "keys-only"));
        var page = await node.SignedInPageAsync(DashboardNode.TeamA);
        await page.GotoAsync($"{node.Url}/ui#/run/{id}");
        await Expect(page.Locator("#dag g[data-task-id='train']")).ToHaveAttributeAsync("data-state", "RUNNING");
        const string unlabelled = "[...document.querySelectorAll('input,select,textarea')].filter(e => e.labels.length === 0 && !e.getAttribute('aria-label')).map(e => e.id)";
        Assert.Empty(await page.EvaluateAsync<string[]>(unlabelled));
        // Tab from the top of the page to the reason field, type, tab to the button, press Enter.
        await page.Locator("body").FocusAsync();
        for (var i = 0; i < 30 && await page.EvaluateAsync<string>("document.activeElement.id") != "cancel-reason"; i++)
            await page.Keyboard.PressAsync("Tab");
        Assert.Equal("cancel-reason", await page.EvaluateAsync<string>("document.activeElement.id"));
        await page.Keyboard.TypeAsync("typed on a keyboard");
        await page.Keyboard.PressAsync("Tab"); // the force checkbox
        await page.Keyboard.PressAsync("Tab"); // the cancel button
        Assert.Equal("cancel-run", await page.EvaluateAsync<string>("document.activeElement.id"));
        await page.Keyboard.PressAsync("Enter");
        await Expect(page.Locator("#run-status")).ToHaveTextAsync("CANCELLED");
        await Expect(page.Locator("#cancellation")).ToContainTextAsync("typed on a keyboard");
        await page.GotoAsync($"{node.Url}/ui#/runs");
        await Expect(page.Locator("#runs")).ToBeVisibleAsync();
        Assert.Empty(await page.EvaluateAsync<string[]>(unlabelled));
        await page.Context.CloseAsync();
    }

    [Fact]
    public async Task A_worker_key_or_a_bad_key_gets_no_data_pages()
    {
        var context = await node.Browser.NewContextAsync();
        var page = await context.NewPageAsync();
        await page.GotoAsync(node.Url + "/ui");
        await page.GetByLabel("API key", new() { Exact = true }).FillAsync("not-a-valid-key-0000000");
        await page.GetByRole(AriaRole.Button, new() { Name = "Sign in" }).ClickAsync();
        await Expect(page.GetByRole(AriaRole.Alert)).ToHaveTextAsync("That key was not accepted.");
        await page.GetByLabel("API key", new() { Exact = true }).FillAsync(DashboardNode.Worker);
        await page.GetByRole(AriaRole.Button, new() { Name = "Sign in" }).ClickAsync();
        await Expect(page.GetByRole(AriaRole.Heading, new() { Name = "Nothing to show for this key" })).ToBeVisibleAsync();
        await Expect(page.Locator("#who")).ToContainTextAsync("worker");
        // The key never appears in the address bar.
        Assert.DoesNotContain(DashboardNode.Worker, page.Url);
        await context.CloseAsync();
    }

    [Fact]
    public async Task Caller_text_is_shown_as_text_and_the_page_runs_under_its_csp()
    {
        const string hostile = "<img src=x onerror=\"document.title='pwned'\"><script>document.title='pwned'</script>";
        var id = await node.SubmitAsync(DashboardNode.TeamA, System.Text.Json.JsonSerializer.Serialize(new
        {
            run_id = Id("xss"), workflow_name = hostile,
            tasks = new[] { new { task_id = "t", type = "noop", @params = new { html = hostile } } },
        }));
        var page = await node.SignedInPageAsync(DashboardNode.Operator);
        var violations = new List<string>();
        page.Console += (_, m) => { if (m.Text.Contains("Content Security Policy", StringComparison.Ordinal)) violations.Add(m.Text); };
        await Expect(Row(page, id).Locator("td[data-label='Workflow']")).ToHaveTextAsync(hostile);
        await page.GotoAsync($"{node.Url}/ui#/run/{id}");
        await Expect(page.Locator("#run-facts")).ToContainTextAsync(hostile);
        await page.GetByText("params").ClickAsync();
        await Expect(page.Locator("#tasks pre")).ToContainTextAsync("<script>");
        Assert.Equal(0, await page.Locator("main img, main script").CountAsync());
        Assert.DoesNotContain("pwned", await page.TitleAsync());
        Assert.Empty(violations);
        await page.Context.CloseAsync();
    }

    [Fact]
    public async Task Cluster_page_shows_members_shards_counters_and_charts()
    {
        var page = await node.SignedInPageAsync(DashboardNode.Admin);
        await page.GetByRole(AriaRole.Link, new() { Name = "Cluster" }).ClickAsync();
        await Expect(page.Locator("#members-table tbody tr")).ToHaveCountAsync(1);
        await Expect(page.Locator("#members-table td[data-label='This node']")).ToHaveTextAsync("this node");
        await Expect(page.Locator("#members-table td[data-label='Leader']")).ToHaveTextAsync("leader");
        await Expect(page.Locator("#shards table").First).ToContainTextAsync("workflow");
        await Expect(page.Locator("#counters .card").First).ToBeVisibleAsync();
        await Expect(page.Locator("#charts figure")).ToHaveCountAsync(4);
        await page.Context.CloseAsync();
    }

    [Fact]
    public async Task The_api_reference_shows_how_to_send_a_key_and_calls_nothing_outside_the_node()
    {
        var context = await node.Browser.NewContextAsync();
        var page = await context.NewPageAsync();
        var foreign = new List<string>();
        page.Request += (_, r) => { if (!r.Url.StartsWith(node.Url, StringComparison.Ordinal) && !r.Url.StartsWith("data:", StringComparison.Ordinal)) foreign.Add(r.Url); };
        await page.GotoAsync($"{node.Url}/scalar/v1");
        // The description's header text, with its <key> shown, not taken for markup.
        await Expect(page.GetByText("Authorization: Bearer <key>").First).ToBeVisibleAsync(new() { Timeout = 15_000 });
        Assert.True(foreign.Count == 0, "requests outside the node: " + string.Join(", ", foreign));
        await context.CloseAsync();
    }

    [Fact]
    public async Task A_task_waiting_for_a_resource_names_it_and_the_run_that_holds_it_and_the_dag_stays_on_screen()
    {
        var gpu = Id("ui-gpu");
        var holder = await node.SubmitAsync(DashboardNode.TeamA,
            $$"""{"run_id":"{{Id("holder")}}","tasks":[{"task_id":"h","type":"hang","resources":[{"name":"{{gpu}}","count":1}]}]}""");
        var waiter = await node.SubmitAsync(DashboardNode.TeamA,
            $$"""{"run_id":"{{Id("waiter")}}","tasks":[{"task_id":"w","type":"noop","resources":[{"name":"{{gpu}}","count":1}]}]}""");
        var page = await node.SignedInPageAsync(DashboardNode.TeamA);
        await page.GotoAsync($"{node.Url}/ui#/run/{waiter}");

        await Expect(page.Locator("#tasks tr[data-task-id='w'] td[data-label='State']"))
            .ToContainTextAsync($"waits for {gpu}, held by run {holder}", new() { Timeout = 15_000 });
        // The cancel form is shown (the run is RUNNING) and the DAG still starts within the first screenful (1280 x 900).
        await Expect(page.Locator("#cancel-run")).ToBeVisibleAsync();
        var dag = await page.Locator("#dag").BoundingBoxAsync();
        Assert.True(dag is not null && dag.Y < 900, $"the DAG starts at y = {dag?.Y}, below the fold");

        using (var client = node.Client(DashboardNode.TeamA))
            await client.PutAsync($"/runs/{holder}/cancel", new StringContent("""{"reason":"free the gpu"}""", Encoding.UTF8, "application/json"));
        await Expect(page.Locator("#run-status")).ToContainTextAsync("SUCCEEDED", new() { Timeout = 15_000 });
        await page.Context.CloseAsync();
    }
}
