using System.Net;
using System.Text.Json.Nodes;

namespace Deepline.Node.Tests.Http;

public sealed class ResourceApiTests(NodeFixture node) : IClassFixture<NodeFixture>
{
    private HttpClient Client => node.Client;

    private static string[] Strings(JsonNode? array) => [.. array!.AsArray().Select(x => x!.GetValue<string>())];

    [Fact]
    public async Task A_declared_capacity_is_answered_after_it_is_stored_and_listed()
    {
        var put = await Client.PutJson("/resources/api-warehouse", """{"capacity": 2}""");
        Assert.Equal(HttpStatusCode.OK, put.StatusCode);
        var view = await put.ReadObject();
        Assert.Equal((2, true, 0), (view["capacity"]!.GetValue<int>(), view["declared"]!.GetValue<bool>(), view["used"]!.GetValue<int>()));

        var one = await (await Client.GetAsync("/resources/api-warehouse")).ReadObject();
        Assert.Equal(2, one["capacity"]!.GetValue<int>());
        var list = await (await Client.GetAsync("/resources?limit=500")).ReadObject();
        Assert.Contains(list["resources"]!.AsArray(), r => r!["name"]!.GetValue<string>() == "api-warehouse");

        // Nobody declared it: the node's default capacity.
        var undeclared = await (await Client.GetAsync("/resources/never-declared")).ReadObject();
        Assert.Equal((1, false), (undeclared["capacity"]!.GetValue<int>(), undeclared["declared"]!.GetValue<bool>()));
    }

    [Theory]
    [InlineData("/resources/bad%20name", """{"capacity": 1}""", 400, "name")]
    [InlineData("/resources/x", """{"capacity": 0}""", 422, "capacity")]
    [InlineData("/resources/x", """{"capacity": 1000001}""", 422, "capacity")]
    [InlineData("/resources/x", """{}""", 422, "capacity")]
    [InlineData("/resources/x", """{"capacity": 1, "owner": "me"}""", 400, "owner")]
    [InlineData("/resources/x", """{"capacity": "lots"}""", 400, "capacity")]
    public async Task Bad_declarations_are_refused_naming_the_field(string url, string body, int status, string field)
    {
        var response = await Client.PutJson(url, body);
        Assert.Equal(status, (int)response.StatusCode);
        Assert.Equal(field, (await response.ReadObject()).Str("field"));
    }

    [Theory]
    [InlineData("/resources?limit=0", "limit")]
    [InlineData("/resources?limit=501", "limit")]
    [InlineData("/resources?offset=-1", "offset")]
    [InlineData("/resources/x?limit=abc", "limit")]
    public async Task Bad_queries_are_400(string url, string field)
    {
        var response = await Client.GetAsync(url);
        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Equal(field, (await response.ReadObject()).Str("field"));
    }

    [Theory]
    [InlineData("""{"tasks":[{"task_id":"a","type":"noop","resources":[{"name":"db","count":0}]}]}""", "tasks[0].resources[0].count")]
    [InlineData("""{"tasks":[{"task_id":"a","type":"noop","resources":[{"name":"no way","count":1}]}]}""", "tasks[0].resources[0].name")]
    [InlineData("""{"tasks":[{"task_id":"a","type":"noop","resources":[{"name":"db"}]}]}""", "tasks[0].resources[0]")]
    [InlineData("""{"tasks":[{"task_id":"a","type":"noop"},{"task_id":"b","type":"noop","depends_on":["a"],"resources":[{"name":"db","count":1}],"hold_until":"a"}]}""", "tasks[1].hold_until")]
    [InlineData("""{"priority":2000000,"tasks":[{"task_id":"a","type":"noop"}]}""", "priority")]
    public async Task Bad_resource_declarations_in_a_run_are_422_naming_the_field(string body, string field)
    {
        var response = await Client.PostJson("/runs", body);
        Assert.Equal(422, (int)response.StatusCode);
        Assert.Equal(field, (await response.ReadObject()).Str("field"));
    }

    [Fact]
    public async Task A_task_whose_resource_is_held_waits_visibly_cannot_be_started_and_proceeds_when_the_holder_is_cancelled()
    {
        // External pools: nobody runs these tasks, so the holder keeps its grant until it is cancelled.
        const string Task = """{"task_id":"t","type":"python","pool":"api-external","resources":[{"name":"api-lock","count":1}]}""";
        Assert.Equal(HttpStatusCode.Created, (await Client.PostJson("/runs", $$"""{"run_id":"api-holder","priority":5,"tasks":[{{Task}}]}""")).StatusCode);
        var holder = await Client.AwaitRun("api-holder", r => Strings(r["tasks"]![0]!["waiting_for"]).Length == 0, "holder granted");
        Assert.Equal(["api-lock"], Strings(holder["resources_held"]));
        Assert.Equal(HttpStatusCode.Created, (await Client.PostJson("/runs", $$"""{"run_id":"api-waiter","tasks":[{{Task}}]}""")).StatusCode);

        var waiting = await Client.AwaitRun("api-waiter", r => Strings(r["tasks"]![0]!["waiting_for"]).Length == 1, "waiter waits");
        Assert.Equal("QUEUED", waiting["tasks"]![0]!.AsObject().Str("state"));
        Assert.Equal(["api-lock"], Strings(waiting["tasks"]![0]!["waiting_for"]));
        var resource = await (await Client.GetAsync("/resources/api-lock")).ReadObject();
        Assert.Equal(["api-holder"], resource["holders"]!.AsArray().Select(h => h!.AsObject().Str("run_id")));
        Assert.Equal(["api-waiter"], resource["waiters"]!.AsArray().Select(h => h!.AsObject().Str("run_id")));
        Assert.Empty(resource["holders"]![0]!["waits_for"]!.AsArray());
        Assert.False(resource["holders_all_wait"]!.GetValue<bool>());
        // The waiting run says who holds what it waits for.
        var wait = Assert.Single(waiting["resource_waits"]!.AsArray())!.AsObject();
        Assert.Equal("waits for api-lock (capacity 1, 1 used): held by run api-holder, which releases it when its task ends", wait.Str("explanation"));
        Assert.Equal("api-holder", wait["holders"]![0]!.AsObject().Str("run_id"));

        // An external worker may not start it before the grant.
        var early = await Client.PostJson("/runs/api-waiter/tasks/t/events", """{"event":"TASK_STARTED","worker_id":"w1"}""");
        Assert.Equal(HttpStatusCode.Conflict, early.StatusCode);

        Assert.Equal(HttpStatusCode.OK, (await Client.PutJson("/runs/api-holder/cancel", """{"reason":"make room"}""")).StatusCode);
        await Client.AwaitRun("api-waiter", r => Strings(r["tasks"]![0]!["waiting_for"]).Length == 0, "waiter granted once the holder is cancelled");
        var started = await Client.PostJson("/runs/api-waiter/tasks/t/events", """{"event":"TASK_STARTED","worker_id":"w1"}""");
        Assert.Equal(HttpStatusCode.OK, started.StatusCode);
    }

    [Fact]
    public async Task The_dry_run_scan_reports_resource_deadlocks_and_the_victim_policy()
    {
        var response = await Client.PostAsync("/deadlock/scan", null);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var block = (await response.ReadObject())["resource_deadlocks"]!.AsObject();
        Assert.Equal("youngest", block.Str("victim_policy"));
        Assert.NotNull(block["cycles"]);
    }
}
