using System.Net;

namespace Deepline.Node.Tests.Http;

public sealed class TaskEventApiTests(NodeFixture node) : IClassFixture<NodeFixture>
{
    private HttpClient Client => node.Client;

    [Fact]
    public async Task An_external_worker_claims_heartbeats_and_completes_its_task()
    {
        await Client.PostJson("/runs", """
            {"run_id":"ev-ok","tasks":[{"task_id":"x","type":"python","pool":"cpu"},{"task_id":"y","type":"python","pool":"cpu","depends_on":["x"]}]}
            """);
        Assert.Equal("QUEUED", (await Client.GetRun("ev-ok")).TaskState("x"));

        var claim = await (await Client.PostJson("/runs/ev-ok/tasks/x/events", """{"event":"TASK_STARTED","worker_id":"py-7"}""")).ReadObject();
        Assert.Equal("RUNNING", claim.Str("state"));
        Assert.Equal(node.Config.Deadlock.HeartbeatTimeoutS, claim["heartbeat_timeout_s"]!.GetValue<int>());
        Assert.Equal(HttpStatusCode.OK, (await Client.PostJson("/runs/ev-ok/tasks/x/events", """{"event":"TASK_HEARTBEAT","worker_id":"py-7"}""")).StatusCode);
        // Another worker may not report on a task it does not hold.
        Assert.Equal(HttpStatusCode.Conflict, (await Client.PostJson("/runs/ev-ok/tasks/x/events", """{"event":"TASK_SUCCEEDED","worker_id":"py-8"}""")).StatusCode);
        var done = await (await Client.PostJson("/runs/ev-ok/tasks/x/events", """{"event":"TASK_SUCCEEDED","worker_id":"py-7","result":{"rows":3}}""")).ReadObject();
        Assert.Equal("SUCCEEDED", done.Str("state"));

        var run = await Client.GetRun("ev-ok");
        Assert.Equal("QUEUED", run.TaskState("y"));
        Assert.Equal("py-7", run["tasks"]![0]!["worker_id"]!.GetValue<string>());
        Assert.Equal(3, run["tasks"]![0]!["result"]!["rows"]!.GetValue<int>());
    }

    [Theory]
    [InlineData("x", """{"event":"TASK_SUCCEEDED"}""", 400)] // no worker_id: it could complete a task another worker holds
    [InlineData("y", """{"event":"TASK_STARTED","worker_id":"w"}""", 409)]
    [InlineData("x", """{"event":"TASK_STARTED"}""", 400)]
    [InlineData("x", """{"event":"TASK_EXPLODED","worker_id":"w"}""", 400)]
    [InlineData("nope", """{"event":"TASK_STARTED","worker_id":"w"}""", 404)]
    // Exact names only: enum parsing would read these as TASK_FAILED (flags), TASK_STARTED, TASK_STARTED, TASK_STARTED.
    [InlineData("x", """{"event":"TASK_HEARTBEAT, TASK_SUCCEEDED","worker_id":"w"}""", 400)]
    [InlineData("x", """{"event":"0","worker_id":"w"}""", 400)]
    [InlineData("x", """{"event":" TASK_STARTED","worker_id":"w"}""", 400)]
    [InlineData("x", """{"event":"task_started","worker_id":"w"}""", 400)]
    // Strict JSON: a duplicate key, a number for a string.
    [InlineData("x", """{"event":"TASK_HEARTBEAT","event":"TASK_STARTED","worker_id":"w"}""", 400)]
    [InlineData("x", """{"event":"TASK_STARTED","worker_id":7}""", 400)]
    // A worker id no operator can read: a zero-width space alone, a lone surrogate.
    [InlineData("x", """{"event":"TASK_STARTED","worker_id":"\u200b"}""", 400)]
    [InlineData("x", """{"event":"TASK_STARTED","worker_id":"w\ud800"}""", 400)]
    [InlineData("x", """{"event":"TASK_STARTED","Worker_Id":"w"}""", 400)]
    public async Task Impossible_events_are_refused(string task, string body, int status)
    {
        var runId = "ev-bad-" + Guid.NewGuid().ToString("N")[..8];
        await Client.PostJson("/runs", $$"""
            {"run_id":"{{runId}}","tasks":[{"task_id":"x","type":"python","pool":"cpu"},{"task_id":"y","type":"python","pool":"cpu","depends_on":["x"]}]}
            """);

        var response = await Client.PostJson($"/runs/{runId}/tasks/{task}/events", body);

        Assert.Equal(status, (int)response.StatusCode);
        Assert.Equal("QUEUED", (await Client.GetRun(runId)).TaskState("x"));
    }

    [Fact]
    public async Task Events_for_an_unknown_run_are_404()
    {
        var response = await Client.PostJson("/runs/ev-missing/tasks/x/events", """{"event":"TASK_STARTED","worker_id":"w"}""");
        Assert.Equal(HttpStatusCode.NotFound, response.StatusCode);
    }

    [Fact]
    public async Task An_event_without_worker_id_cannot_complete_a_task_another_worker_holds()
    {
        var runId = "ev-own-" + Guid.NewGuid().ToString("N")[..8];
        await Client.PostJson("/runs", $$"""{"run_id":"{{runId}}","tasks":[{"task_id":"x","type":"python","pool":"cpu"}]}""");
        Assert.Equal(HttpStatusCode.OK, (await Client.PostJson($"/runs/{runId}/tasks/x/events", """{"event":"TASK_STARTED","worker_id":"w1"}""")).StatusCode);

        var stolen = await Client.PostJson($"/runs/{runId}/tasks/x/events", """{"event":"TASK_SUCCEEDED","result":{"stolen":true}}""");
        var other = await Client.PostJson($"/runs/{runId}/tasks/x/events", """{"event":"TASK_SUCCEEDED","worker_id":"w2","result":{"stolen":true}}""");

        Assert.Equal(HttpStatusCode.BadRequest, stolen.StatusCode);
        Assert.Equal("worker_id", (await stolen.ReadObject()).Str("field"));
        Assert.Equal(HttpStatusCode.Conflict, other.StatusCode);
        var run = await Client.GetRun(runId);
        Assert.Equal("RUNNING", run.TaskState("x"));
        Assert.Equal("w1", run["tasks"]![0]!["worker_id"]!.GetValue<string>());
        Assert.Null(run["tasks"]![0]!["result"]);
    }

    [Fact]
    public async Task Wrong_types_are_named_as_what_the_field_should_hold()
    {
        var response = await Client.PostJson("/runs/ev-x/tasks/x/events", """{"event":"TASK_STARTED","worker_id":7}""");
        var problem = await response.ReadObject();
        Assert.Equal("worker_id", problem.Str("field"));
        Assert.Equal("'worker_id' must be a string", problem.Str("detail"));
    }
}
