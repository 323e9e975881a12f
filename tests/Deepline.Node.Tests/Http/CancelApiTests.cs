using System.Net;
using System.Text.Json.Nodes;

namespace Deepline.Node.Tests.Http;

public sealed class CancelApiTests(NodeFixture node) : IClassFixture<NodeFixture>
{
    private HttpClient Client => node.Client;

    private static readonly string[] SeedCancelFields = ["cancelled_at", "cancelled_tasks", "message", "reason", "run_id", "status"];
    private static readonly string[] SeedStatusFields = ["cancellation_reason", "cancelled_at", "cancelled_by", "deadlock_reason", "is_cancelled", "run_id", "status"];

    /// <summary>A run whose only task was claimed by an external worker that will never acknowledge a cancel.</summary>
    private async Task StartExternal(string runId, string extraTask = "")
    {
        var response = await Client.PostJson("/runs", $$"""
            {"run_id":"{{runId}}","tasks":[{"task_id":"ext","type":"python","pool":"gpu"}{{extraTask}}]}
            """);
        Assert.Equal(HttpStatusCode.Created, response.StatusCode);
        var claim = await Client.PostJson($"/runs/{runId}/tasks/ext/events", """{"event":"TASK_STARTED","worker_id":"py-1"}""");
        Assert.Equal(HttpStatusCode.OK, claim.StatusCode);
    }

    [Fact]
    public async Task Cancel_answers_the_seeds_shape_and_waits_for_running_workers()
    {
        await StartExternal("c-two-phase", """,{"task_id":"next","type":"noop","depends_on":["ext"]}""");

        var response = await Client.PutJson("/runs/c-two-phase/cancel", """{"reason":"user requested cancellation","force":false}""");

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var body = await response.ReadObject();
        Assert.Equal(SeedCancelFields, body.Keys());
        Assert.Equal("CANCELLING", body.Str("status"));
        Assert.Equal("Workflow cancellation initiated successfully", body.Str("message"));
        Assert.Equal(1, body["cancelled_tasks"]!.GetValue<int>());
        Assert.Equal("user requested cancellation", body.Str("reason"));

        var status = await (await Client.GetAsync("/runs/c-two-phase/cancel")).ReadObject();
        Assert.Equal(SeedStatusFields, status.Keys());
        Assert.True(status["is_cancelled"]!.GetValue<bool>());
        Assert.Equal("CANCELLING", status.Str("status"));
        Assert.Equal("api", status.Str("cancelled_by"));

        // The worker acknowledges: the run is CANCELLED, not forced.
        var ack = await Client.PostJson("/runs/c-two-phase/tasks/ext/events", """{"event":"TASK_CANCELLED","worker_id":"py-1"}""");
        Assert.Equal(HttpStatusCode.OK, ack.StatusCode);
        var run = await Client.GetRun("c-two-phase");
        Assert.Equal("CANCELLED", run.Str("status"));
        Assert.False(run["cancellation"]!["forced"]!.GetValue<bool>());
    }

    [Fact]
    public async Task Repeating_a_cancel_is_idempotent()
    {
        await StartExternal("c-repeat");
        var first = await (await Client.PutJson("/runs/c-repeat/cancel", """{"reason":"first"}""")).ReadObject();
        var second = await Client.PutJson("/runs/c-repeat/cancel", """{"reason":"second"}""");

        Assert.Equal(HttpStatusCode.OK, second.StatusCode);
        var again = await second.ReadObject();
        Assert.Equal(first.Str("cancelled_at"), again.Str("cancelled_at"));
        Assert.Equal("first", again.Str("reason"));
        Assert.Equal("Workflow cancellation already in progress", again.Str("message"));
    }

    [Fact]
    public async Task Force_finalises_at_once_and_a_late_success_is_refused_and_recorded()
    {
        await StartExternal("c-force");
        var body = await (await Client.PutJson("/runs/c-force/cancel", """{"reason":"stop","force":true}""")).ReadObject();
        Assert.Equal("CANCELLED", body.Str("status"));
        Assert.Contains("forced", body.Str("message"));

        var late = await Client.PostJson("/runs/c-force/tasks/ext/events", """{"event":"TASK_SUCCEEDED","worker_id":"py-1"}""");

        Assert.Equal(HttpStatusCode.Conflict, late.StatusCode);
        var run = await Client.GetRun("c-force");
        Assert.Equal("CANCELLED", run.TaskState("ext"));
        var ignored = run["ignored_events"]!.AsArray().Single()!.AsObject();
        Assert.Equal("TASK_SUCCEEDED", ignored.Str("event"));
        Assert.Equal("ext", ignored.Str("task_id"));
    }

    [Fact]
    public async Task Admin_delete_finalises_a_cancelling_run_and_conflicts_otherwise()
    {
        await StartExternal("c-admin");
        await Client.PutJson("/runs/c-admin/cancel", "{}");

        var response = await Client.DeleteAsAdmin("/runs/c-admin/cancel");

        Assert.Equal(HttpStatusCode.NoContent, response.StatusCode);
        var run = await Client.GetRun("c-admin");
        Assert.Equal("CANCELLED", run.Str("status"));
        Assert.True(run["cancellation"]!["forced"]!.GetValue<bool>());
        Assert.Equal("admin", run["cancellation"]!["finalised_by"]!.GetValue<string>());
        Assert.Equal(HttpStatusCode.Conflict, (await Client.DeleteAsAdmin("/runs/c-admin/cancel")).StatusCode);
    }

    [Fact]
    public async Task Admin_delete_of_a_running_run_forces_the_cancel_and_completes_it()
    {
        await StartExternal("c-admin-running");

        var response = await Client.DeleteAsAdmin("/runs/c-admin-running/cancel");

        Assert.Equal(HttpStatusCode.NoContent, response.StatusCode);
        var run = await Client.GetRun("c-admin-running");
        Assert.Equal("CANCELLED", run.Str("status"));
        Assert.True(run["cancellation"]!["forced"]!.GetValue<bool>());
        Assert.Equal("force-completed by admin", run["cancellation"]!["reason"]!.GetValue<string>());
        Assert.Equal("admin", run["cancellation"]!["cancelled_by"]!.GetValue<string>());
    }

    [Fact]
    public async Task Cancelling_a_finished_or_unknown_run_is_refused()
    {
        await Client.PostJson("/runs", """{"run_id":"c-done","tasks":[{"task_id":"a","type":"noop"}]}""");
        await Client.AwaitRun("c-done", r => r.Str("status") == "SUCCEEDED", "run succeeds");

        Assert.Equal(HttpStatusCode.Conflict, (await Client.PutJson("/runs/c-done/cancel", "{}")).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await Client.PutJson("/runs/c-unknown/cancel", "{}")).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await Client.GetAsync("/runs/c-unknown/cancel")).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await Client.DeleteAsAdmin("/runs/c-unknown/cancel")).StatusCode);
        var status = await (await Client.GetAsync("/runs/c-done/cancel")).ReadObject();
        Assert.False(status["is_cancelled"]!.GetValue<bool>());
        Assert.Null(status["cancellation_reason"]);
    }

    [Fact]
    public async Task An_in_cluster_hang_task_is_stopped_by_cancel()
    {
        await Client.PostJson("/runs", """{"run_id":"c-hang","tasks":[{"task_id":"h","type":"hang"}]}""");
        await Client.AwaitRun("c-hang", r => r.TaskState("h") == "RUNNING", "hang task runs");

        await Client.PutJson("/runs/c-hang/cancel", """{"reason":"enough"}""");

        var run = await Client.AwaitRun("c-hang", r => r.Str("status") == "CANCELLED", "worker acknowledges");
        Assert.False(run["cancellation"]!["forced"]!.GetValue<bool>());
        Assert.Equal("CANCELLED", run.TaskState("h"));
    }

    [Fact]
    public async Task Admin_delete_needs_the_admin_key()
    {
        await StartExternal("c-auth");
        await Client.PutJson("/runs/c-auth/cancel", "{}");

        var missing = await Client.DeleteAsAdmin("/runs/c-auth/cancel", key: "");
        var wrong = await Client.DeleteAsAdmin("/runs/c-auth/cancel", key: "not-the-admin-key-0123456789");

        Assert.Equal(HttpStatusCode.Unauthorized, missing.StatusCode);
        Assert.Equal("application/problem+json", missing.Content.Headers.ContentType?.MediaType);
        Assert.Contains("X-Deepline-Admin-Key", (await missing.ReadObject()).Str("detail"));
        Assert.Equal(HttpStatusCode.Forbidden, wrong.StatusCode);
        Assert.DoesNotContain(NodeFixture.AdminKey, await wrong.Content.ReadAsStringAsync());
        // Neither attempt finalised the run.
        Assert.Equal("CANCELLING", (await Client.GetRun("c-auth")).Str("status"));
    }
}
