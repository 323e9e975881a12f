using System.Net;
using System.Text.Json.Nodes;
using Deepline.Tests.Shared;

namespace Deepline.Node.Tests.Http;

public sealed class RunApiTests(NodeFixture node) : IClassFixture<NodeFixture>
{
    private HttpClient Client => node.Client;

    [Fact]
    public async Task Submit_answers_201_and_the_run_completes_with_the_documented_fields()
    {
        var response = await Client.PostJson("/runs", """
            {"run_id":"api-ok","workflow_name":"Data Analysis Pipeline","client_id":"analytics_team",
             "tasks":[{"task_id":"a","type":"noop"},{"task_id":"b","type":"delay","params":{"ms":20},"depends_on":["a"]}]}
            """);

        Assert.Equal(HttpStatusCode.Created, response.StatusCode);
        Assert.Equal("/runs/api-ok", response.Headers.Location!.ToString());
        var created = await response.ReadObject();
        Assert.Equal("api-ok", created.Str("run_id"));
        Assert.Equal("RUNNING", created.Str("status"));
        Assert.Equal(2, created["task_count"]!.GetValue<int>());
        Assert.EndsWith("Z", created.Str("created_at"));

        var run = await Client.AwaitRun("api-ok", r => r.Str("status") == "SUCCEEDED", "run succeeds");
        foreach (var key in new[] { "run_id", "workflow_name", "client_id", "status", "created_at", "updated_at", "tasks" })
            Assert.Contains(key, run.Keys());
        Assert.Equal("analytics_team", run.Str("client_id"));
        var task = run["tasks"]!.AsArray()[1]!.AsObject();
        foreach (var key in new[] { "task_id", "type", "pool", "state", "depends_on", "updated_at", "worker_id" })
            Assert.Contains(key, task.Keys());
        Assert.Equal("default", task.Str("pool"));
        Assert.Equal("a", task["depends_on"]!.AsArray().Single()!.GetValue<string>());
    }

    [Fact]
    public async Task A_run_id_is_generated_when_none_is_given()
    {
        var created = await (await Client.PostJson("/runs", """{"tasks":[{"task_id":"a","type":"noop"}]}""")).ReadObject();
        Assert.StartsWith("run-", created.Str("run_id"));
        await Client.GetRun(created.Str("run_id"));
    }

    [Theory]
    [InlineData("""{"tasks":[{"task_id":"a","type":"noop","depends_on":["a"]}]}""", 422, "tasks", "a -> a")]
    [InlineData("""{"tasks":[{"task_id":"a","type":"noop","depends_on":["b"]},{"task_id":"b","type":"noop","depends_on":["a"]}]}""", 422, "tasks", "a -> b -> a")]
    [InlineData("""{"tasks":[{"task_id":"a","type":"noop","depends_on":["ghost"]}]}""", 422, "tasks[0].depends_on", "unknown task 'ghost'")]
    [InlineData("""{"tasks":[{"task_id":"a","type":"noop"},{"task_id":"a","type":"noop"}]}""", 422, "tasks[1].task_id", "duplicate task_id 'a'")]
    [InlineData("""{"tasks":[{"task_id":"a","type":"teleport"}]}""", 422, "tasks[0].type", "unknown task type 'teleport'")]
    [InlineData("""{"tasks":[]}""", 400, "tasks", "at least one task")]
    [InlineData("""{"workflow_name":"x"}""", 400, "tasks", "at least one task")]
    [InlineData("""{"run_id":"bad id!","tasks":[{"task_id":"a","type":"noop"}]}""", 422, "run_id", "run_id must be")]
    [InlineData("""{"tasks":[{"task_id":"a","type":"noop","depends_on":"b"}]}""", 400, "tasks[0].depends_on", "must be a list of strings")]
    [InlineData("""{"tasks":[{"task_id":"a","type":"noop","retries":3}]}""", 400, "tasks[0].retries", "unknown field")]
    [InlineData("""{"tasks":[""", 400, "tasks[0]", "not valid JSON")]
    [InlineData("""{"tasks":[{"task_id":"a","type":"noop"}],"deadlock":{"pending_stale_s":0}}""", 422, "deadlock.pending_stale_s", "positive number of seconds")]
    [InlineData("""{"run_id":"cancelled","tasks":[{"task_id":"a","type":"noop"}]}""", 422, "run_id", "reserved")]
    [InlineData("""{"tasks":[{"task_id":"a","type":"process","params":{"command":"env"}}]}""", 422, "tasks[0].params.command", "process tasks are off on this node: orchestrator.workers.process.allowed_commands")]
    [InlineData("""{"run_id":5,"tasks":[{"task_id":"a","type":"noop"}]}""", 400, "run_id", "'run_id' must be a string")]
    [InlineData("""{"run_id":"a","run_id":"b","tasks":[{"task_id":"a","type":"noop"}]}""", 400, "run_id", "duplicate")]
    [InlineData("""{"tasks":[{"task_id":"a","type":"noop"}],"deadlock":{"workflow_stale_s":2147483647}}""", 422, "deadlock.workflow_stale_s", "at most 86400")]
    [InlineData("""{"tasks":[{"task_id":"a","type":"noop"}],"deadlock":{"heartbeat_timeout_s":2}}""", 422, "deadlock.heartbeat_timeout_s", "at least 60")]
    [InlineData("""{"client_id":"team\nx","tasks":[{"task_id":"a","type":"noop"}]}""", 422, "client_id", "client_id must be")]
    [InlineData("""{"workflow_name":"a\u001b[31mred","tasks":[{"task_id":"a","type":"noop"}]}""", 422, "workflow_name", "control characters")]
    [InlineData("""{"tasks":[{"task_id":"a","type":"noop"}],"deadlock":{"stale":5}}""", 400, "deadlock.stale", "unknown field")]
    [InlineData("""[1,2]""", 400, null, "must be an object")]
    [InlineData("""{"tasks":[{"task_id":"a","type":"noop","params":{"k":"\ud800"}}]}""", 400, "k", "lone UTF-16 surrogate")]
    [InlineData("""{"tasks":[{"task_id":"a","type":"noop","params":{"\udc00x":1}}]}""", 400, "params", "lone UTF-16 surrogate")]
    [InlineData("""{"workflow_name":"\ud83d","tasks":[{"task_id":"a","type":"noop"}]}""", 400, "workflow_name", "lone UTF-16 surrogate")]
    [InlineData("""{"tasks":[{"task_id":"a","type":"noop","params":{"k":1e999}}]}""", 400, "k", "beyond the range of a double")]
    [InlineData("""{"tasks":[{"task_id":"a","type":"noop","params":{"k":-1E400}}]}""", 400, "k", "beyond the range of a double")]
    [InlineData("""{"RUN_ID":"x","tasks":[{"task_id":"a","type":"noop"}]}""", 400, "RUN_ID", "unknown field")]
    [InlineData("""{"Tasks":[{"task_id":"a","type":"noop"}]}""", 400, "Tasks", "unknown field")]
    public async Task Invalid_submissions_get_a_problem_naming_the_field(string body, int status, string? field, string detail)
    {
        var response = await Client.PostJson("/runs", body);

        Assert.Equal(status, (int)response.StatusCode);
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType!.MediaType);
        var problem = await response.ReadObject();
        Assert.Equal(field, problem["field"]?.GetValue<string>());
        Assert.Contains(detail, problem.Str("detail"));
    }

    [Fact]
    public async Task A_cycle_is_returned_as_its_path()
    {
        var response = await Client.PostJson("/runs", """
            {"tasks":[{"task_id":"start","type":"noop"},{"task_id":"a","type":"noop","depends_on":["start","c"]},
                      {"task_id":"b","type":"noop","depends_on":["a"]},{"task_id":"c","type":"noop","depends_on":["b"]}]}
            """);

        Assert.Equal(HttpStatusCode.UnprocessableEntity, response.StatusCode);
        var cycle = (await response.ReadObject())["cycle"]!.AsArray().Select(n => n!.GetValue<string>()).ToList();
        Assert.Equal(cycle[0], cycle[^1]);
        Assert.Equal(["a", "b", "c"], cycle.Take(3).Order());
    }

    [Fact]
    public async Task A_chain_deeper_than_max_dependency_depth_is_refused()
    {
        // The fixture sets max_dependency_depth to 5: a chain of 7 tasks has depth 6.
        var tasks = string.Join(",", Enumerable.Range(0, 7).Select(i =>
            i == 0 ? """{"task_id":"t0","type":"noop"}""" : $$"""{"task_id":"t{{i}}","type":"noop","depends_on":["t{{i - 1}}"]}"""));
        var response = await Client.PostJson("/runs", $$"""{"tasks":[{{tasks}}]}""");

        Assert.Equal(HttpStatusCode.UnprocessableEntity, response.StatusCode);
        Assert.Contains("max_dependency_depth 5", (await response.ReadObject()).Str("detail"));
    }

    [Fact]
    public async Task Duplicate_run_id_conflicts_and_unknown_runs_are_404()
    {
        Assert.Equal(HttpStatusCode.Created, (await Client.PostJson("/runs", """{"run_id":"api-dup","tasks":[{"task_id":"a","type":"noop"}]}""")).StatusCode);
        Assert.Equal(HttpStatusCode.Conflict, (await Client.PostJson("/runs", """{"run_id":"api-dup","tasks":[{"task_id":"a","type":"noop"}]}""")).StatusCode);
        var missing = await Client.GetAsync("/runs/api-never-submitted");
        Assert.Equal(HttpStatusCode.NotFound, missing.StatusCode);
        Assert.Equal("application/problem+json", missing.Content.Headers.ContentType!.MediaType);
        Assert.Equal(HttpStatusCode.BadRequest, (await Client.GetAsync("/runs/bad%20id")).StatusCode);
    }

    [Fact]
    public async Task Health_reports_the_cluster_member_and_the_store()
    {
        // The other tests of this class share the node: a burst of theirs may leave the run index briefly behind
        // (degraded, rightly), so "ok" is awaited; the message carries the last body to say which block was not ok.
        JsonObject health = [];
        var last = "";
        try
        {
            await Eventually.Until(async () =>
            {
                var response = await Client.GetAsync("/health");
                last = await response.Content.ReadAsStringAsync();
                Assert.Equal(HttpStatusCode.OK, response.StatusCode);
                health = JsonNode.Parse(last)!.AsObject();
                return health.Str("status") == "ok";
            }, TimeSpan.FromSeconds(30), "health ok");
        }
        catch (TimeoutException ex)
        {
            Assert.Fail($"{ex.Message}; last /health: {last}");
        }
        Assert.Equal("Up", health["cluster"]!["status"]!.GetValue<string>());
        Assert.True(health["persistence"]!["reachable"]!.GetValue<bool>());
    }
}
