using System.Net;
using System.Text.Json.Nodes;
using Deepline.Node.Tests.Security;

namespace Deepline.Node.Tests.Http;

/// <summary>GET /runs/{id}/history: a run's journal as a timeline an operator can read.</summary>
public sealed class RunHistoryApiTests(NodeFixture node) : IClassFixture<NodeFixture>
{
    private HttpClient Client => node.Client;

    private async Task<JsonArray> History(string runId, string query = "")
    {
        var response = await Client.GetAsync($"/runs/{runId}/history{query}");
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var body = await response.ReadObject();
        Assert.Equal(runId, body.Str("run_id"));
        return body["events"]!.AsArray();
    }

    [Fact]
    public async Task Every_attempt_its_worker_and_its_end_are_in_order_with_their_causes()
    {
        Assert.Equal(HttpStatusCode.Created, (await Client.PostJson("/runs", """
            {"run_id":"hist-retry","client_id":"hist-team","tasks":[{"task_id":"a","type":"noop"},
             {"task_id":"b","type":"fail","params":{"message":"disk on fire"},"depends_on":["a"],"retry":{"max_attempts":2,"initial_interval_s":0.05}}]}
            """)).StatusCode);
        await Client.AwaitRun("hist-retry", r => r.Str("status") == "FAILED", "run fails after b's two attempts");

        var events = await History("hist-retry");
        var seqs = events.Select(e => e!["seq"]!.GetValue<long>()).ToList();
        Assert.Equal(Enumerable.Range(1, seqs.Count).Select(i => (long)i), seqs);
        var times = events.Select(e => DateTimeOffset.Parse(e!["at"]!.GetValue<string>())).ToList();
        Assert.Equal(times.Order(), times);

        var first = events[0]!.AsObject();
        Assert.Equal(("run_submitted", "hist-team"), (first.Str("type"), first.Str("by")));
        var b = events.Where(e => e!["task_id"]?.GetValue<string>() == "b").Select(e => e!.AsObject()).ToList();
        Assert.Equal(["task_started", "task_attempt_failed", "task_started", "task_failed"],
            b.Where(e => e.Str("type") != "task_retry_released").Select(e => e.Str("type")));
        var started = b.Where(e => e.Str("type") == "task_started").ToList();
        Assert.Equal([1, 2], started.Select(e => e["attempt"]!.GetValue<int>()));
        Assert.All(started, e => Assert.False(string.IsNullOrEmpty(e.Str("by")))); // the worker that ran it
        var attemptFailed = b.Single(e => e.Str("type") == "task_attempt_failed");
        Assert.Equal(1, attemptFailed["attempt"]!.GetValue<int>());
        Assert.Equal("failed", attemptFailed.Str("cause"));
        Assert.Contains("disk on fire", attemptFailed.Str("detail"));
        Assert.Contains("disk on fire", b.Last().Str("detail"));
    }

    [Fact]
    public async Task A_cancel_names_who_and_why_and_pages_follow_each_other()
    {
        Assert.Equal(HttpStatusCode.Created, (await Client.PostJson("/runs", """
            {"run_id":"hist-cancel","tasks":[{"task_id":"h","type":"hang"}]}
            """)).StatusCode);
        await Client.AwaitRun("hist-cancel", r => r.TaskState("h") == "RUNNING", "h runs");
        Assert.Equal(HttpStatusCode.OK, (await Client.PutJson("/runs/hist-cancel/cancel", """{"reason":"wrong input file"}""")).StatusCode);
        await Client.AwaitRun("hist-cancel", r => r.Str("status") == "CANCELLED", "run cancelled");

        var all = await History("hist-cancel");
        var cancel = all.Single(e => e!["type"]!.GetValue<string>() == "run_cancel_requested")!.AsObject();
        Assert.Equal("wrong input file", cancel.Str("detail"));
        Assert.False(string.IsNullOrEmpty(cancel.Str("by")));
        Assert.Contains(all, e => e!["type"]!.GetValue<string>() == "task_cancelled");

        // Two at a time: each page starts where the last one's next_after says, and together they are the whole history.
        var paged = new List<long>();
        long? after = 0;
        while (after is { } a)
        {
            var page = await (await Client.GetAsync($"/runs/hist-cancel/history?after={a}&limit=2")).ReadObject();
            var events = page["events"]!.AsArray();
            Assert.True(events.Count <= 2);
            paged.AddRange(events.Select(e => e!["seq"]!.GetValue<long>()));
            after = page["next_after"]?.GetValue<long>();
        }
        Assert.Equal(all.Select(e => e!["seq"]!.GetValue<long>()), paged);
    }

    [Theory]
    [InlineData("?limit=0", "limit")]
    [InlineData("?limit=1001", "limit")]
    [InlineData("?limit=ten", "limit")]
    [InlineData("?after=-1", "after")]
    [InlineData("?after=99999999999999999999", "after")]
    public async Task Bad_paging_is_400_naming_the_parameter(string query, string field)
    {
        await Client.PostJson("/runs", """{"run_id":"hist-bad","tasks":[{"task_id":"a","type":"noop"}]}""");
        var response = await Client.GetAsync("/runs/hist-bad/history" + query);
        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Equal(field, (await response.ReadObject()).Str("field"));
    }

    [Fact]
    public async Task An_unknown_run_is_404_and_a_bad_id_400()
    {
        Assert.Equal(HttpStatusCode.NotFound, (await Client.GetAsync("/runs/hist-never-submitted/history")).StatusCode);
        Assert.Equal(HttpStatusCode.BadRequest, (await Client.GetAsync("/runs/bad%20id/history")).StatusCode);
    }
}

/// <summary>A run's history is its client's: another client's key cannot read it, even knowing the id.</summary>
public sealed class RunHistoryIsolationTests(SecuredNode node) : IClassFixture<SecuredNode>
{
    [Fact]
    public async Task Another_clients_run_history_is_404_as_the_run_itself_is()
    {
        using var a = node.Client(SecuredNode.TeamA);
        using var b = node.Client(SecuredNode.TeamB);
        using var op = node.Client(SecuredNode.Operator);
        var created = await a.PostJson("/runs", """{"run_id":"hist-team-a","tasks":[{"task_id":"t","type":"x","pool":"cpu"}]}""");
        Assert.True(created.StatusCode is HttpStatusCode.Created or HttpStatusCode.Conflict);

        Assert.Equal(HttpStatusCode.OK, (await a.GetAsync("/runs/hist-team-a/history")).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await op.GetAsync("/runs/hist-team-a/history")).StatusCode);
        var other = await b.GetAsync("/runs/hist-team-a/history");
        Assert.Equal((await b.GetAsync("/runs/hist-team-a")).StatusCode, other.StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, other.StatusCode);
        Assert.DoesNotContain("run_submitted", await other.Content.ReadAsStringAsync());
    }
}
