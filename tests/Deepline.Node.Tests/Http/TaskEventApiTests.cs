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
    [InlineData("x", """{"event":"TASK_SUCCEEDED"}""", 409)]
    [InlineData("y", """{"event":"TASK_STARTED","worker_id":"w"}""", 409)]
    [InlineData("x", """{"event":"TASK_STARTED"}""", 400)]
    [InlineData("x", """{"event":"TASK_EXPLODED","worker_id":"w"}""", 400)]
    [InlineData("nope", """{"event":"TASK_STARTED","worker_id":"w"}""", 404)]
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
}
