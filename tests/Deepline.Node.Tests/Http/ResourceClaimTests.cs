using System.Net;
using System.Text.Json.Nodes;
using Deepline.Tests.Shared;
using Deepline.Worker.Sdk;

namespace Deepline.Node.Tests.Http;

/// <summary>External workers claim resources through the worker SDK over loopback HTTP, in the same wait-for graph as runs.</summary>
public sealed class ResourceClaimTests(NodeFixture node) : IClassFixture<NodeFixture>
{
    private HttpClient Client => node.Client;

    private ResourceClaimsClient Worker(string id) => new(Client, id);

    [Fact]
    public async Task A_cycle_a_workers_claim_closes_refuses_that_claim_and_the_run_goes_on()
    {
        var worker = Worker("claim-w1");
        Assert.Equal(new ClaimResult.Granted("claim-db", 1), await worker.ClaimAsync("claim-db"));

        // The run keeps claim-gpu (first, held until second) and second waits for claim-db, which the worker holds.
        Assert.Equal(HttpStatusCode.Created, (await Client.PostJson("/runs", """
            {"run_id":"claim-run","tasks":[
              {"task_id":"first","type":"python","pool":"claim-external","resources":[{"name":"claim-gpu","count":1}],"hold_until":"second"},
              {"task_id":"second","type":"python","pool":"claim-external","depends_on":["first"],"resources":[{"name":"claim-db","count":1}]}]}
            """)).StatusCode);
        await Client.AwaitRun("claim-run", r => r["tasks"]![0]!["waiting_for"]!.AsArray().Count == 0, "the run holds claim-gpu");
        var events = new TaskEventsClient(Client, "ext-1");
        Assert.IsType<TaskEventResult.Accepted>(await events.StartedAsync("claim-run", "first"));
        Assert.IsType<TaskEventResult.Accepted>(await events.SucceededAsync("claim-run", "first"));
        var waiting = await Client.AwaitRun("claim-run", r => r["tasks"]![1]!["waiting_for"]!.AsArray().Count == 1, "second waits for claim-db");
        Assert.Equal("waits for claim-db (capacity 1, 1 used): held by worker claim-w1, which waits for nothing",
            waiting["resource_waits"]![0]!.AsObject().Str("explanation"));

        // The worker's wait for claim-gpu closes the cycle: the claim that closed it is refused, not the run cancelled.
        var refused = Assert.IsType<ClaimResult.Refused>(await worker.ClaimAsync("claim-gpu"));
        Assert.Contains("worker claim-w1 holds claim-db, waits for claim-gpu", refused.Explanation);
        Assert.Contains("run claim-run holds claim-gpu, waits for claim-db", refused.Explanation);
        Assert.Equal("RUNNING", (await Client.GetRun("claim-run")).Str("status"));

        // The worker lets go of claim-db: the run's second task gets it and the run ends well.
        Assert.True(await worker.ReleaseAsync("claim-db"));
        await Client.AwaitRun("claim-run", r => r["tasks"]![1]!["waiting_for"]!.AsArray().Count == 0, "second granted claim-db");
        Assert.IsType<TaskEventResult.Accepted>(await events.StartedAsync("claim-run", "second"));
        Assert.IsType<TaskEventResult.Accepted>(await events.SucceededAsync("claim-run", "second"));
        await Client.AwaitRun("claim-run", r => r.Str("status") == "SUCCEEDED", "the run succeeds");
        Assert.Equal(0, (await (await Client.GetAsync("/resources/claim-gpu")).ReadObject())["used"]!.GetValue<int>());
        Assert.True(await worker.ReleaseAsync("claim-gpu"));
    }

    [Fact]
    public async Task A_workers_wait_says_a_run_holds_the_resource_without_naming_the_run()
    {
        Assert.Equal(HttpStatusCode.Created, (await Client.PostJson("/runs", """
            {"run_id":"secret-run-of-team-a","tasks":[{"task_id":"t","type":"python","pool":"claim-hidden","resources":[{"name":"claim-hidden-db","count":1}]}]}
            """)).StatusCode);
        await Client.AwaitRun("secret-run-of-team-a", r => r["tasks"]![0]!["waiting_for"]!.AsArray().Count == 0, "the run holds claim-hidden-db");
        var worker = Worker("claim-curious");

        var wait = Assert.IsType<ClaimResult.Waiting>(await worker.ClaimAsync("claim-hidden-db"));
        Assert.Equal("waits for claim-hidden-db (capacity 1, 1 used): held by a run, which releases it when its task ends", wait.Explanation);
        Assert.DoesNotContain("secret-run-of-team-a", (await Client.GetStringAsync("/resources/claim-hidden-db/claims/claim-curious")));

        Assert.True(await worker.ReleaseAsync("claim-hidden-db"));
        Assert.Equal(HttpStatusCode.OK, (await Client.PutJson("/runs/secret-run-of-team-a/cancel", """{"reason":"done"}""")).StatusCode);
    }

    [Fact]
    public async Task A_cycle_of_external_workers_alone_refuses_the_youngest_workers_wait_and_the_other_proceeds_once_it_releases()
    {
        var older = Worker("claim-old");
        var younger = Worker("claim-young");
        Assert.IsType<ClaimResult.Granted>(await older.ClaimAsync("claim-a"));
        Assert.IsType<ClaimResult.Granted>(await younger.ClaimAsync("claim-b"));
        var wait = await older.ClaimAsync("claim-b");
        Assert.Equal("waits for claim-b (capacity 1, 1 used): held by worker claim-young, which waits for nothing",
            Assert.IsType<ClaimResult.Waiting>(wait).Explanation);

        var refused = Assert.IsType<ClaimResult.Refused>(await younger.ClaimAsync("claim-a"));
        Assert.Contains("worker claim-young holds claim-b, waits for claim-a", refused.Explanation);
        Assert.Contains("worker claim-old holds claim-a, waits for claim-b", refused.Explanation);
        Assert.IsType<ClaimResult.Refused>(await younger.StatusAsync("claim-a"));
        Assert.IsType<ClaimResult.Waiting>(await older.StatusAsync("claim-b"));

        // Told to release what it holds, the refused worker does: the other is granted.
        Assert.True(await younger.ReleaseAsync("claim-b"));
        Assert.IsType<ClaimResult.Granted>(await older.StatusAsync("claim-b"));
        Assert.True(await older.ReleaseAsync("claim-a"));
        Assert.True(await older.ReleaseAsync("claim-b"));
        Assert.True(await younger.ReleaseAsync("claim-a"));
    }

    [Theory]
    [InlineData("PUT", "/resources/claim-x/claims/bad%20worker", """{"count":1}""", 400, "worker_id")]
    [InlineData("PUT", "/resources/bad%20name/claims/w", """{"count":1}""", 400, "name")]
    [InlineData("PUT", "/resources/claim-x/claims/w", """{"count":0}""", 422, "count")]
    [InlineData("PUT", "/resources/claim-x/claims/w", """{"count":1000001}""", 422, "count")]
    [InlineData("PUT", "/resources/claim-x/claims/w", """{"count":1,"lease":"forever"}""", 400, "lease")]
    [InlineData("GET", "/resources/claim-x/claims/bad%20worker", null, 400, "worker_id")]
    [InlineData("DELETE", "/resources/bad%20name/claims/w", null, 400, "name")]
    public async Task Bad_claims_are_refused_naming_the_field(string method, string url, string? body, int status, string field)
    {
        using var request = new HttpRequestMessage(new HttpMethod(method), url);
        if (body is not null) request.Content = Json.Body(body);
        var response = await Client.SendAsync(request);
        Assert.Equal(status, (int)response.StatusCode);
        Assert.Equal(field, (await response.ReadObject()).Str("field"));
    }

    [Fact]
    public async Task A_second_claim_with_another_count_is_409_and_a_worker_cannot_claim_more_than_its_limit()
    {
        var worker = Worker("claim-many");
        Assert.IsType<ClaimResult.Granted>(await worker.ClaimAsync("claim-n"));
        Assert.Equal(new ClaimResult.Granted("claim-n", 1), await worker.ClaimAsync("claim-n"));
        Assert.Equal(409, Assert.IsType<ClaimResult.Rejected>(await worker.ClaimAsync("claim-n", 2)).Status);
        for (var i = 1; i < 16; i++) Assert.IsType<ClaimResult.Granted>(await worker.ClaimAsync($"claim-n{i}"));
        Assert.Equal(422, Assert.IsType<ClaimResult.Rejected>(await worker.ClaimAsync("claim-n16")).Status);
        Assert.True(await worker.ReleaseAsync("claim-n"));
        for (var i = 1; i < 16; i++) Assert.True(await worker.ReleaseAsync($"claim-n{i}"));
    }
}
