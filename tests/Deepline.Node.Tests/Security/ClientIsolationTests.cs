using System.Net;
using System.Text.Json.Nodes;
using Deepline.Node.Tests.Http;
using Deepline.Tests.Shared;

namespace Deepline.Node.Tests.Security;

/// <summary>Team A's key cannot read, list, or cancel team B's runs, and cannot even learn that they exist.</summary>
public sealed class ClientIsolationTests(SecuredNode node) : IClassFixture<SecuredNode>
{
    private static string NewId(string prefix) => prefix + "-" + Guid.NewGuid().ToString("N")[..8];

    [Fact]
    public async Task A_submitter_sees_another_clients_run_exactly_as_a_run_that_does_not_exist()
    {
        using var a = node.Client(SecuredNode.TeamA);
        using var b = node.Client(SecuredNode.TeamB);
        var runId = NewId("iso-b");
        Assert.Equal(HttpStatusCode.Created, (await b.PostJson("/runs", $$"""{"run_id":"{{runId}}","tasks":[{"task_id":"t","type":"x","pool":"cpu"}]}""")).StatusCode);

        var read = await a.GetAsync($"/runs/{runId}");
        var readCancel = await a.GetAsync($"/runs/{runId}/cancel");
        var cancel = await a.PutJson($"/runs/{runId}/cancel", """{"reason":"not yours"}""");
        var nowhere = await a.GetAsync("/runs/iso-never-submitted");

        foreach (var response in new[] { read, readCancel, cancel })
        {
            Assert.Equal(HttpStatusCode.NotFound, response.StatusCode);
            Assert.Equal($"run '{runId}' not found", (await response.ReadObject()).Str("detail"));
        }
        Assert.Equal(HttpStatusCode.NotFound, nowhere.StatusCode);
        // B's run was not touched by A's cancel.
        Assert.Equal("RUNNING", (await b.GetRun(runId)).Str("status"));
    }

    [Fact]
    public async Task A_submitters_runs_belong_to_its_keys_client_whatever_the_body_says_and_the_cancel_names_the_key()
    {
        using var a = node.Client(SecuredNode.TeamA);
        using var b = node.Client(SecuredNode.TeamB);
        var runId = NewId("iso-a");
        var created = await (await a.PostJson("/runs", $$"""{"run_id":"{{runId}}","client_id":"team-b","tasks":[{"task_id":"t","type":"x","pool":"cpu"}]}""")).ReadObject();
        Assert.Equal("team-a", created.Str("client_id"));
        Assert.Equal(HttpStatusCode.NotFound, (await b.GetAsync($"/runs/{runId}")).StatusCode);

        var forged = await a.PutJson($"/runs/{runId}/cancel", """{"reason":"x","cancelled_by":"system"}""");
        Assert.Equal(HttpStatusCode.BadRequest, forged.StatusCode);
        Assert.Equal("cancelled_by", (await forged.ReadObject()).Str("field"));

        Assert.Equal(HttpStatusCode.OK, (await a.PutJson($"/runs/{runId}/cancel", """{"reason":"done with it"}""")).StatusCode);
        var status = await (await a.GetAsync($"/runs/{runId}/cancel")).ReadObject();
        Assert.Equal("team-a-ci", status.Str("cancelled_by"));
    }

    [Fact]
    public async Task The_cancelled_list_shows_a_submitter_only_its_own_clients_runs()
    {
        using var a = node.Client(SecuredNode.TeamA);
        using var b = node.Client(SecuredNode.TeamB);
        using var ops = node.Client(SecuredNode.Operator);
        var mine = NewId("iso-list-a");
        var theirs = NewId("iso-list-b");
        await a.PostJson("/runs", $$"""{"run_id":"{{mine}}","tasks":[{"task_id":"t","type":"x","pool":"cpu"}]}""");
        await b.PostJson("/runs", $$"""{"run_id":"{{theirs}}","tasks":[{"task_id":"t","type":"x","pool":"cpu"}]}""");
        await a.PutJson($"/runs/{mine}/cancel", "{}");
        await b.PutJson($"/runs/{theirs}/cancel", "{}");

        // The operator sees both once the index has them; then ask as team A, even for team B's list.
        await Eventually.Until(async () =>
        {
            var all = JsonNode.Parse(await ops.GetStringAsync("/runs/cancelled?limit=500"))!.AsArray();
            return all.Any(r => r!["run_id"]!.GetValue<string>() == mine) && all.Any(r => r!["run_id"]!.GetValue<string>() == theirs);
        }, TimeSpan.FromSeconds(15), "both cancels indexed");
        var asA = JsonNode.Parse(await a.GetStringAsync("/runs/cancelled?limit=500&client_id=team-b"))!.AsArray();

        Assert.Contains(asA, r => r!["run_id"]!.GetValue<string>() == mine);
        Assert.All(asA, r => Assert.Equal("team-a", r!["client_id"]!.GetValue<string>()));
    }

    [Fact]
    public async Task A_worker_key_bound_to_pools_cannot_report_on_a_task_of_another_pool()
    {
        using var a = node.Client(SecuredNode.TeamA);
        using var cpu = node.Client(SecuredNode.CpuWorker);
        var runId = NewId("iso-pool");
        await a.PostJson("/runs", $$"""{"run_id":"{{runId}}","tasks":[{"task_id":"c","type":"x","pool":"cpu"},{"task_id":"g","type":"x","pool":"gpu"}]}""");

        var own = await cpu.PostJson($"/runs/{runId}/tasks/c/events", """{"event":"TASK_STARTED","worker_id":"cpu-1"}""");
        var other = await cpu.PostJson($"/runs/{runId}/tasks/g/events", """{"event":"TASK_STARTED","worker_id":"cpu-1"}""");

        Assert.Equal(HttpStatusCode.OK, own.StatusCode);
        Assert.Equal(HttpStatusCode.Forbidden, other.StatusCode);
        var run = await a.GetRun(runId);
        Assert.Equal("RUNNING", run.TaskState("c"));
        Assert.Equal("QUEUED", run.TaskState("g"));
    }

    [Fact]
    public async Task A_worker_key_cannot_report_for_an_in_cluster_pool_nor_for_an_attempt_another_key_leased()
    {
        using var a = node.Client(SecuredNode.TeamA);
        using var any = node.Client(SecuredNode.Worker);
        using var cpu = node.Client(SecuredNode.CpuWorker);
        var runId = NewId("iso-lease");
        await a.PostJson("/runs", $$"""{"run_id":"{{runId}}","tasks":[{"task_id":"h","type":"hang"},{"task_id":"c","type":"x","pool":"cpu"}]}""");
        await Eventually.Until(async () => (await a.GetRun(runId)).TaskState("h") == "RUNNING", TimeSpan.FromSeconds(15), "in-cluster task running");
        var inCluster = (await a.GetRun(runId))["tasks"]![0]!;

        // The in-cluster worker's id is shown in GET /runs: forging it over HTTP changes nothing.
        var forged = await any.PostJson($"/runs/{runId}/tasks/h/events",
            $$"""{"event":"TASK_SUCCEEDED","worker_id":"{{inCluster["worker_id"]}}","attempt":1,"result":{"forged":true} }""");
        Assert.Equal(HttpStatusCode.Forbidden, forged.StatusCode);

        // The cpu key leases the cpu task; the any-pool key, naming the same worker id and attempt, may not complete it.
        var leased = (await (await cpu.PostJson("/pools/cpu/tasks/poll", """{"worker_id":"cpu-1","wait_s":10}""")).ReadObject())["tasks"]!.AsArray();
        Assert.Equal("c", Assert.Single(leased)!["task_id"]!.GetValue<string>());
        var stolen = await any.PostJson($"/runs/{runId}/tasks/c/events", """{"event":"TASK_SUCCEEDED","worker_id":"cpu-1","attempt":1,"result":{"stolen":true} }""");
        Assert.Equal(HttpStatusCode.Forbidden, stolen.StatusCode);

        var run = await a.GetRun(runId);
        Assert.Equal(("RUNNING", "RUNNING"), (run.TaskState("h"), run.TaskState("c")));
        Assert.Equal(HttpStatusCode.OK, (await cpu.PostJson($"/runs/{runId}/tasks/c/events", """{"event":"TASK_SUCCEEDED","worker_id":"cpu-1","attempt":1}""")).StatusCode);
    }
}
