using System.Net;
using System.Text.Json.Nodes;
using Deepline.Node.Tests.Security;
using Deepline.Tests.Shared;

namespace Deepline.Node.Tests.Http;

/// <summary>POST /runs/cancel: count what a filter matches, then cancel exactly those runs as one journalled operation.</summary>
public sealed class BulkCancelApiTests(NodeFixture node) : IClassFixture<NodeFixture>
{
    private HttpClient Client => node.Client;

    private static string Id(string prefix) => $"{prefix}-{Guid.NewGuid():N}"[..(prefix.Length + 13)];

    private async Task Submit(string runId, string client, string workflow) =>
        Assert.Equal(HttpStatusCode.Created, (await Client.PostJson("/runs", $$"""
            {"run_id":"{{runId}}","client_id":"{{client}}","workflow_name":"{{workflow}}","tasks":[{"task_id":"x","type":"etl","pool":"bulk-nobody"}]}
            """)).StatusCode);

    private async Task<JsonObject> AwaitDone(string operationId)
    {
        JsonObject op = [];
        await Eventually.Until(async () =>
        {
            var response = await Client.GetAsync($"/operations/{operationId}");
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            op = await response.ReadObject();
            return op.Str("state") == "done";
        }, TimeSpan.FromSeconds(30), $"operation {operationId} done");
        return op;
    }

    [Fact]
    public async Task A_dry_run_counts_the_matching_runs_and_the_operation_cancels_exactly_those()
    {
        var wf = Id("bulk-wf");
        var targets = Enumerable.Range(0, 12).Select(i => Id($"bulk-t{i}")).ToList();
        var others = new List<string>();
        foreach (var id in targets) await Submit(id, "bulk-a", wf);
        for (var i = 0; i < 3; i++) { var id = Id("bulk-ob"); others.Add(id); await Submit(id, "bulk-b", wf); }
        for (var i = 0; i < 2; i++) { var id = Id("bulk-ow"); others.Add(id); await Submit(id, "bulk-a", wf + "-other"); }
        var filter = $$"""{"client_id":"bulk-a","workflow_name":"{{wf}}"}""";

        // The run index trails the journal: the dry run counts all twelve once it has them.
        JsonObject dry = [];
        await Eventually.Until(async () =>
        {
            var response = await Client.PostJson("/runs/cancel", $$"""{"filter":{{filter}},"dry_run":true}""");
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            dry = await response.ReadObject();
            return dry["matched"]!.GetValue<long>() == targets.Count;
        }, TimeSpan.FromSeconds(15), "dry run matches the twelve");
        Assert.Equal(targets.Order(StringComparer.Ordinal), dry["sample"]!.AsArray().Select(s => s!.GetValue<string>()).Order(StringComparer.Ordinal));
        foreach (var id in targets) Assert.Equal("RUNNING", (await Client.GetRun(id)).Str("status")); // a dry run changes nothing

        var started = await Client.PostJson("/runs/cancel", $$"""{"filter":{{filter}},"reason":"bad deploy of the ETL image"}""");
        Assert.Equal(HttpStatusCode.Accepted, started.StatusCode);
        var accepted = await started.ReadObject();
        var operationId = accepted.Str("operation_id");
        Assert.Equal($"/operations/{operationId}", started.Headers.Location!.ToString());
        Assert.Equal(12, accepted["matched"]!.GetValue<long>());

        var done = await AwaitDone(operationId);
        Assert.Equal((12L, 0L, 0L), (done["cancelled"]!.GetValue<long>(), done["skipped"]!.GetValue<long>(), done["failed"]!.GetValue<long>()));
        foreach (var id in targets)
        {
            var run = await Client.AwaitRun(id, r => r.Str("status") == "CANCELLED", $"{id} cancelled");
            Assert.Equal("bad deploy of the ETL image", run["cancellation"]!.AsObject().Str("reason"));
        }
        foreach (var id in others) Assert.Equal("RUNNING", (await Client.GetRun(id)).Str("status"));

        // Once the index has caught up, nothing matches any more: the runs are cancelled.
        await Eventually.Until(async () =>
            (await (await Client.PostJson("/runs/cancel", $$"""{"filter":{{filter}},"dry_run":true}""")).ReadObject())["matched"]!.GetValue<long>() == 0,
            TimeSpan.FromSeconds(15), "nothing left to match");
    }

    [Theory]
    [InlineData("""{"reason":"no filter"}""", 400, "filter")]
    [InlineData("""{"filter":{}}""", 400, "confirm")]
    [InlineData("""{"filter":{"status":"FAILED"}}""", 422, "filter.status")]
    [InlineData("""{"filter":{"created_after":"2026-12-02T00:00:00Z","created_before":"2026-12-01T00:00:00Z"}}""", 422, "filter.created_after")]
    [InlineData("""{"filter":{"created_before":"1970-01-01T00:00:00Z"}}""", 422, "filter.created_before")]
    [InlineData("""{"filter":{"created_before":"yesterday"}}""", 400, "filter.created_before")]
    [InlineData("""{"filter":{"run_ids":[]}}""", 400, "filter.run_ids")]
    [InlineData("""{"filter":{"run_ids":["ok-1","not ok"]}}""", 400, "filter.run_ids[1]")]
    [InlineData("""{"filter":{"client_id":""}}""", 400, "filter.client_id")]
    [InlineData("""{"filter":{"client_id":"a"},"reason":"x","surprise":1}""", 400, "surprise")]
    public async Task Bad_requests_are_4xx_naming_the_field(string body, int status, string field)
    {
        var response = await Client.PostJson("/runs/cancel", body);
        Assert.Equal(status, (int)response.StatusCode);
        Assert.Equal(field, (await response.ReadObject()).Str("field"));
    }

    [Fact]
    public async Task Too_many_run_ids_and_unknown_operations_are_refused()
    {
        var ids = string.Join(",", Enumerable.Range(0, 501).Select(i => $"\"r{i}\""));
        var tooMany = await Client.PostJson("/runs/cancel", $$"""{"filter":{"run_ids":[{{ids}}]} }""");
        Assert.Equal(HttpStatusCode.BadRequest, tooMany.StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await Client.GetAsync("/operations/op-never-started")).StatusCode);
        Assert.Equal(HttpStatusCode.BadRequest, (await Client.GetAsync("/operations/bad%20id")).StatusCode);
        // A run may not take the route's name.
        Assert.Equal(HttpStatusCode.UnprocessableEntity, (await Client.PostJson("/runs", """{"run_id":"cancel","tasks":[{"task_id":"a","type":"noop"}]}""")).StatusCode);
    }
}

/// <summary>A submitter's bulk cancel reaches only its own client's runs, and its operations are its own.</summary>
public sealed class BulkCancelIsolationTests(SecuredNode node) : IClassFixture<SecuredNode>
{
    [Fact]
    public async Task A_submitter_cancels_only_its_client_and_cannot_see_another_clients_operation()
    {
        using var a = node.Client(SecuredNode.TeamA);
        using var b = node.Client(SecuredNode.TeamB);
        var wf = $"iso-bulk-{Guid.NewGuid():N}"[..20];
        var mine = $"bulk-a-{Guid.NewGuid():N}"[..20];
        var theirs = $"bulk-b-{Guid.NewGuid():N}"[..20];
        Assert.Equal(HttpStatusCode.Created, (await a.PostJson("/runs", $$"""{"run_id":"{{mine}}","workflow_name":"{{wf}}","tasks":[{"task_id":"t","type":"x","pool":"cpu"}]}""")).StatusCode);
        Assert.Equal(HttpStatusCode.Created, (await b.PostJson("/runs", $$"""{"run_id":"{{theirs}}","workflow_name":"{{wf}}","tasks":[{"task_id":"t","type":"x","pool":"cpu"}]}""")).StatusCode);

        var other = await a.PostJson("/runs/cancel", """{"filter":{"client_id":"team-b"}}""");
        Assert.Equal(HttpStatusCode.Forbidden, other.StatusCode);
        Assert.Equal("filter.client_id", (await other.ReadObject()).Str("field"));

        // No client named: the submitter's own, so no confirm is needed and B's run is never matched.
        await Eventually.Until(async () => (await (await a.PostJson("/runs/cancel", $$"""{"filter":{"workflow_name":"{{wf}}"},"dry_run":true}""")).ReadObject())["matched"]!.GetValue<long>() == 1,
            TimeSpan.FromSeconds(15), "A's run indexed");
        var started = await a.PostJson("/runs/cancel", $$"""{"filter":{"workflow_name":"{{wf}}"} }""");
        Assert.Equal(HttpStatusCode.Accepted, started.StatusCode);
        var operation = (await started.ReadObject()).Str("operation_id");

        await Eventually.Until(async () => (await (await a.GetAsync($"/operations/{operation}")).ReadObject()).Str("state") == "done",
            TimeSpan.FromSeconds(30), "A's operation done");
        Assert.Equal(HttpStatusCode.NotFound, (await b.GetAsync($"/operations/{operation}")).StatusCode);
        await a.AwaitRun(mine, r => r.Str("status") == "CANCELLED", "A's run cancelled");
        Assert.Equal("RUNNING", (await b.GetRun(theirs)).Str("status"));
    }
}

/// <summary>A bulk cancel killed with its node (SIGKILL) resumes where it was when the node starts again.</summary>
public sealed class BulkCancelCrashTests : IDisposable
{
    private readonly string _dataDir = Directory.CreateTempSubdirectory("deepline-bulk-crash-").FullName;

    public void Dispose()
    {
        try { Directory.Delete(_dataDir, true); } catch (IOException) { }
    }

    [Fact]
    public async Task An_operation_interrupted_by_SIGKILL_resumes_and_cancels_every_matched_run_once()
    {
        const int runs = 240;
        var port = Loopback.FreePort();
        // 40 runs a second: about six seconds of work, so the kill lands in the middle of it.
        var environment = new Dictionary<string, string> { ["DEEPLINE_LIMITS_BULK_CANCEL_RATE"] = "40" };
        string operationId;
        long cancelledBeforeKill;
        await using (var first = new NodeProcess("bulk-first", port, 0, _dataDir, environment))
        {
            first.Start();
            await first.AwaitHealthyAsync(TimeSpan.FromSeconds(60));
            await Parallel.ForEachAsync(Enumerable.Range(0, runs), new ParallelOptions { MaxDegreeOfParallelism = 8 }, async (i, _) =>
                Assert.Equal(HttpStatusCode.Created, (await first.Client.PostJson("/runs", $$"""
                    {"run_id":"bc-{{i}}","client_id":"bulk-crash","tasks":[{"task_id":"x","type":"etl","pool":"nobody-polls"}]}
                    """)).StatusCode));
            await Eventually.Until(async () => (await (await first.Client.PostJson("/runs/cancel", """{"filter":{"client_id":"bulk-crash"},"dry_run":true}""")).ReadObject())
                ["matched"]!.GetValue<long>() == runs, TimeSpan.FromSeconds(30), "all runs indexed");

            var started = await first.Client.PostJson("/runs/cancel", """{"filter":{"client_id":"bulk-crash"},"reason":"crash test"}""");
            Assert.Equal(HttpStatusCode.Accepted, started.StatusCode);
            operationId = (await started.ReadObject()).Str("operation_id");
            JsonObject op = [];
            await Eventually.Until(async () =>
            {
                op = await (await first.Client.GetAsync($"/operations/{operationId}")).ReadObject();
                return op["cancelled"]!.GetValue<long>() >= 40;
            }, TimeSpan.FromSeconds(30), "some progress journalled");
            cancelledBeforeKill = op["cancelled"]!.GetValue<long>();
            Assert.Equal("running", op.Str("state"));
            await first.KillAsync();
        }

        await using var second = new NodeProcess("bulk-second", port, 0, _dataDir, environment);
        second.Start();
        await second.AwaitHealthyAsync(TimeSpan.FromSeconds(60));
        JsonObject done = [];
        await Eventually.Until(async () =>
        {
            var response = await second.Client.GetAsync($"/operations/{operationId}");
            if (response.StatusCode != HttpStatusCode.OK) return false; // the singleton may still be starting
            done = await response.ReadObject();
            return done.Str("state") == "done";
        }, TimeSpan.FromSeconds(60), "the operation resumed and finished");
        Assert.True(done["cancelled"]!.GetValue<long>() > cancelledBeforeKill, "it went on after the restart");
        Assert.Equal(runs, done["cancelled"]!.GetValue<long>() + done["skipped"]!.GetValue<long>());
        Assert.Equal(0, done["failed"]!.GetValue<long>());

        // Every run cancelled, and cancelled once: one cancel in its history.
        for (var i = 0; i < runs; i++)
        {
            var run = await second.Client.AwaitRun($"bc-{i}", r => r.Str("status") == "CANCELLED", $"bc-{i} cancelled");
            Assert.Equal("crash test", run["cancellation"]!.AsObject().Str("reason"));
            var history = await (await second.Client.GetAsync($"/runs/bc-{i}/history")).ReadObject();
            Assert.Single(history["events"]!.AsArray(), e => e!["type"]!.GetValue<string>() == "run_cancel_requested");
        }
    }
}
