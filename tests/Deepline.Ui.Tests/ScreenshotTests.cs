using Microsoft.Playwright;
using Xunit.Abstractions;
using static Microsoft.Playwright.Assertions;
using Deepline.Tests.Shared;

namespace Deepline.Ui.Tests;

/// <summary>
/// The main pages at 1280 px and at phone width, photographed. The PNGs go to $DEEPLINE_UI_SCREENSHOTS when it is set
/// (the README's and docs/dashboard.md's docs/ui/*.png are made with DEEPLINE_UI_SCREENSHOTS=$PWD/docs/ui), else to a temporary directory, so
/// an ordinary test run never changes the source tree.
/// </summary>
[Collection(Dashboard.Name)]
public sealed class ScreenshotTests(DashboardNode node, ITestOutputHelper output)
{
    [Fact]
    public async Task Main_pages_render_at_desktop_and_phone_width()
    {
        var dir = Environment.GetEnvironmentVariable("DEEPLINE_UI_SCREENSHOTS") is { Length: > 0 } d ? d : Directory.CreateTempSubdirectory("deepline-ui-shots-").FullName;
        Directory.CreateDirectory(dir);
        var tag = Guid.NewGuid().ToString("N")[..6];
        var pipeline = await node.SubmitAsync(DashboardNode.TeamA, $$$"""
            {"run_id":"pipeline-{{{tag}}}","workflow_name":"Data Analysis Pipeline","tasks":[
              {"task_id":"extract","type":"noop"},
              {"task_id":"clean","type":"noop","depends_on":["extract"]},
              {"task_id":"features","type":"noop","depends_on":["clean"]},
              {"task_id":"train","type":"hang","depends_on":["features"]},
              {"task_id":"validate","type":"noop","depends_on":["clean"]},
              {"task_id":"report","type":"noop","depends_on":["train","validate"]},
              {"task_id":"publish","type":"noop","depends_on":["report"]}]}
            """);
        await node.SubmitAsync(DashboardNode.TeamB, $$$"""{"run_id":"nightly-{{{tag}}}","workflow_name":"Nightly ETL","tasks":[{"task_id":"a","type":"noop"},{"task_id":"b","type":"noop","depends_on":["a"]}]}""");
        await node.SubmitAsync(DashboardNode.TeamB, $$$"""{"run_id":"broken-{{{tag}}}","workflow_name":"Nightly ETL","tasks":[{"task_id":"a","type":"fail","params":{"message":"disk full"}},{"task_id":"b","type":"noop","depends_on":["a"]}]}""");
        var stuck = "{\"run_id\":\"gpu-queue-" + tag + "\",\"workflow_name\":\"GPU training\",\"tasks\":[{\"task_id\":\"train\",\"type\":\"x\",\"pool\":\"gpu\"}],\"deadlock\":{\"pending_stale_s\":1}}";
        var stuckId = await node.SubmitAsync(DashboardNode.TeamA, stuck);

        if (Environment.GetEnvironmentVariable("DEEPLINE_UI_SCREENSHOTS") is { Length: > 0 })
            await ChartActivityAsync(tag);

        var page = await node.SignedInPageAsync(DashboardNode.Operator);
        await Expect(page.Locator($"#runs tr[data-run-id='{stuckId}'] [data-status]")).ToHaveTextAsync("CANCELLED", new() { Timeout = 20_000 });
        await Expect(page.Locator($"#runs tr[data-run-id='broken-{tag}'] [data-status]")).ToHaveTextAsync("FAILED");
        await Shot(page, dir, "runs.png");

        await page.GotoAsync($"{node.Url}/ui#/run/{pipeline}");
        await Expect(page.Locator("#dag g[data-task-id='train']")).ToHaveAttributeAsync("data-state", "RUNNING");
        await Shot(page, dir, "run-dag.png");

        await page.GetByRole(AriaRole.Link, new() { Name = "Stuck & incidents" }).ClickAsync();
        await Expect(page.Locator($"#incident-table tr[data-run-id='{stuckId}']")).ToBeVisibleAsync();
        await page.GetByLabel("pending_stale_s").FillAsync("1");
        await page.GetByRole(AriaRole.Button, new() { Name = "Scan (dry run)" }).ClickAsync();
        await Expect(page.Locator("#scan-result")).ToContainTextAsync("Nothing was alerted or cancelled");
        await Shot(page, dir, "stuck.png");

        await page.GetByRole(AriaRole.Link, new() { Name = "Cluster" }).ClickAsync();
        await Expect(page.Locator("#charts figure")).ToHaveCountAsync(4);
        await Expect(page.Locator("#members-table tbody tr")).ToHaveCountAsync(1);
        await Shot(page, dir, "cluster.png");
        await page.Context.CloseAsync();

        // Phone width: the runs list and a run page fit without sideways scrolling of the page.
        var phone = await node.SignedInPageAsync(DashboardNode.TeamA, 390, 844);
        await Expect(phone.Locator($"#runs tr[data-run-id='{pipeline}']")).ToBeVisibleAsync();
        Assert.True(await phone.EvaluateAsync<bool>("document.documentElement.scrollWidth <= window.innerWidth"), "runs list overflows at 390 px");
        await Shot(phone, dir, "runs-phone.png");
        await phone.GotoAsync($"{node.Url}/ui#/run/{pipeline}");
        await Expect(phone.Locator("#dag g.node")).ToHaveCountAsync(7);
        Assert.True(await phone.EvaluateAsync<bool>("document.documentElement.scrollWidth <= window.innerWidth"), "run page overflows at 390 px");
        await phone.Context.CloseAsync();
        output.WriteLine($"screenshots in {dir}");
    }

    /// <summary>For the documentation's pictures only: a few sampling intervals with real cancels between them, so the charts have lines.</summary>
    private async Task ChartActivityAsync(string tag)
    {
        using var client = node.Client(DashboardNode.TeamA);
        for (var i = 0; i < 6; i++)
        {
            var before = (await node.GetJsonAsync(DashboardNode.Operator, "/ui/api/timeline"))["points"]!.AsArray().Count;
            var id = await node.SubmitAsync(DashboardNode.TeamA,
                "{\"run_id\":\"chart-" + tag + "-" + i + "\",\"workflow_name\":\"Chart demo\",\"tasks\":[{\"task_id\":\"work\",\"type\":\"hang\"}]}");
            await Eventually.Until(async () => (await node.GetJsonAsync(DashboardNode.TeamA, "/runs/" + id))["tasks"]![0]!["state"]!.GetValue<string>() == "RUNNING",
                TimeSpan.FromSeconds(15), "task running");
            (await client.PutAsync($"/runs/{id}/cancel", null)).EnsureSuccessStatusCode();
            await Eventually.Until(async () => (await node.GetJsonAsync(DashboardNode.Operator, "/ui/api/timeline"))["points"]!.AsArray().Count > before,
                TimeSpan.FromSeconds(20), "a new timeline sample");
        }
    }

    private static async Task Shot(IPage page, string dir, string name) =>
        await page.ScreenshotAsync(new() { Path = Path.Combine(dir, name), FullPage = true });
}
