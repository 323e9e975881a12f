using System.Diagnostics;
using System.Net;

namespace Deepline.Node.Tests.Http;

/// <summary>External workers get their work from the node: long polls, leases, attempts and retries over HTTP.</summary>
public sealed class PollApiTests(NodeFixture node) : IClassFixture<NodeFixture>
{
    private HttpClient Client => node.Client;

    private static string Pool() => "ext-" + Guid.NewGuid().ToString("N")[..8];

    private Task<HttpResponseMessage> Poll(string pool, string worker, int waitS = 0, int maxTasks = 1) =>
        Client.PostJson($"/pools/{pool}/tasks/poll", $$"""{"worker_id":"{{worker}}","wait_s":{{waitS}},"max_tasks":{{maxTasks}}}""");

    [Fact]
    public async Task A_waiting_poll_is_answered_when_a_task_is_queued_with_its_params_and_its_dependencies_results()
    {
        var pool = Pool();
        var waiting = Poll(pool, "w1", waitS: 30);
        await Client.PostJson("/runs", $$"""
            {"run_id":"poll-{{pool}}","tasks":[{"task_id":"a","type":"etl","pool":"{{pool}}","params":{"n":1} },
             {"task_id":"b","type":"etl","pool":"{{pool}}","depends_on":["a"],"params":{"n":2} }]}
            """);

        var first = (await (await waiting).ReadObject())["tasks"]!.AsArray();

        var a = Assert.Single(first)!.AsObject();
        Assert.Equal(("a", 1, 1), (a.Str("task_id"), a["attempt"]!.GetValue<int>(), a["params"]!["n"]!.GetValue<int>()));
        Assert.True(DateTimeOffset.Parse(a.Str("lease_expires_at")) > DateTimeOffset.UtcNow);
        Assert.Equal("RUNNING", (await Client.GetRun($"poll-{pool}")).TaskState("a"));
        var done = await Client.PostJson($"/runs/poll-{pool}/tasks/a/events", """{"event":"TASK_SUCCEEDED","worker_id":"w1","attempt":1,"result":{"rows":7}}""");
        Assert.Equal(HttpStatusCode.OK, done.StatusCode);

        var b = Assert.Single((await (await Poll(pool, "w2", waitS: 10)).ReadObject())["tasks"]!.AsArray())!.AsObject();
        Assert.Equal("b", b.Str("task_id"));
        Assert.Equal(7, b["inputs"]!["a"]!["rows"]!.GetValue<int>());
    }

    [Fact]
    public async Task A_poll_that_finds_nothing_answers_an_empty_list_when_its_wait_is_over()
    {
        var watch = Stopwatch.StartNew();

        var answer = await (await Poll(Pool(), "w1", waitS: 1)).ReadObject();

        Assert.Empty(answer["tasks"]!.AsArray());
        Assert.True(watch.Elapsed >= TimeSpan.FromSeconds(0.9), $"answered after {watch.Elapsed}");
    }

    [Fact]
    public async Task A_failed_attempt_is_retried_and_the_earlier_attempts_late_result_is_refused()
    {
        var pool = Pool();
        var runId = "retry-" + pool;
        await Client.PostJson("/runs", $$"""
            {"run_id":"{{runId}}","tasks":[{"task_id":"a","type":"etl","pool":"{{pool}}","retry":{"max_attempts":3,"initial_interval_s":0.1} }]}
            """);
        Assert.Single((await (await Poll(pool, "w1", waitS: 10)).ReadObject())["tasks"]!.AsArray());

        var failed = await (await Client.PostJson($"/runs/{runId}/tasks/a/events",
            """{"event":"TASK_FAILED","worker_id":"w1","attempt":1,"error":"disk full","error_type":"IOError"}""")).ReadObject();
        Assert.Equal("QUEUED", failed.Str("state"));
        Assert.NotNull(failed["retry_at"]);

        var second = Assert.Single((await (await Poll(pool, "w2", waitS: 10)).ReadObject())["tasks"]!.AsArray())!.AsObject();
        Assert.Equal(2, second["attempt"]!.GetValue<int>());
        var stale = await Client.PostJson($"/runs/{runId}/tasks/a/events", """{"event":"TASK_SUCCEEDED","worker_id":"w2","attempt":1}""");
        Assert.Equal(HttpStatusCode.Conflict, stale.StatusCode);
        Assert.Equal(2, (await stale.ReadObject())["current_attempt"]!.GetValue<int>());
        Assert.Equal(HttpStatusCode.OK, (await Client.PostJson($"/runs/{runId}/tasks/a/events",
            """{"event":"TASK_SUCCEEDED","worker_id":"w2","attempt":2}""")).StatusCode);

        var run = await Client.GetRun(runId);
        Assert.Equal("SUCCEEDED", run.Str("status"));
        Assert.Equal(2, run["tasks"]![0]!["attempts"]!.GetValue<int>());
        Assert.Equal("IOError", run["tasks"]![0]!["error_type"]!.GetValue<string>());
        Assert.Equal(1, Assert.Single(run["ignored_events"]!.AsArray())!["attempt"]!.GetValue<int>());
    }

    [Fact]
    public async Task A_non_retryable_error_fails_the_task_at_once()
    {
        var pool = Pool();
        var runId = "nonretry-" + pool;
        await Client.PostJson("/runs", $$"""
            {"run_id":"{{runId}}","tasks":[{"task_id":"a","type":"etl","pool":"{{pool}}","retry":{"max_attempts":5,"non_retryable_errors":["ValueError"]} }]}
            """);
        Assert.Single((await (await Poll(pool, "w1", waitS: 10)).ReadObject())["tasks"]!.AsArray());

        var failed = await (await Client.PostJson($"/runs/{runId}/tasks/a/events",
            """{"event":"TASK_FAILED","worker_id":"w1","attempt":1,"error":"bad input","error_type":"ValueError"}""")).ReadObject();

        Assert.Equal(("FAILED", "FAILED"), (failed.Str("state"), failed.Str("run_status")));
    }

    [Fact]
    public async Task One_clients_queued_tasks_do_not_starve_anothers()
    {
        var pool = Pool();
        var many = string.Join(",", Enumerable.Range(0, 40).Select(i => $$"""{"task_id":"t{{i}}","type":"etl","pool":"{{pool}}"}"""));
        await Client.PostJson("/runs", $$"""{"run_id":"big-{{pool}}","client_id":"big","tasks":[{{many}}]}""");
        await Client.PostJson("/runs", $$"""{"run_id":"small-{{pool}}","client_id":"small","tasks":[{"task_id":"only","type":"etl","pool":"{{pool}}"}]}""");

        var taken = (await (await Poll(pool, "w1", waitS: 10, maxTasks: 4)).ReadObject())["tasks"]!.AsArray();

        Assert.Contains(taken, t => t!.AsObject().Str("run_id") == $"small-{pool}");
        var pools = System.Text.Json.Nodes.JsonNode.Parse(await Client.GetStringAsync("/pools"))!.AsArray();
        var stat = pools.Single(p => p!.AsObject().Str("pool") == pool)!;
        Assert.Equal(37, stat["queue_depth"]!.GetValue<int>());
        Assert.True(stat["pollers"]!.GetValue<int>() >= 1);
    }

    [Fact]
    public async Task A_failed_run_is_re_run_on_request_and_its_task_polled_again()
    {
        var pool = Pool();
        var runId = "rerun-" + pool;
        await Client.PostJson("/runs", $$"""{"run_id":"{{runId}}","tasks":[{"task_id":"a","type":"etl","pool":"{{pool}}","retry":{"max_attempts":1} }]}""");
        Assert.Single((await (await Poll(pool, "w1", waitS: 10)).ReadObject())["tasks"]!.AsArray());
        await Client.PostJson($"/runs/{runId}/tasks/a/events", """{"event":"TASK_FAILED","worker_id":"w1","attempt":1,"error":"bug"}""");
        Assert.Equal("FAILED", (await Client.GetRun(runId)).Str("status"));

        var rerun = await Client.PostAsync($"/runs/{runId}/retry", null);

        Assert.Equal(HttpStatusCode.OK, rerun.StatusCode);
        Assert.Equal("RUNNING", (await rerun.ReadObject()).Str("status"));
        var again = Assert.Single((await (await Poll(pool, "w2", waitS: 10)).ReadObject())["tasks"]!.AsArray())!.AsObject();
        Assert.Equal(2, again["attempt"]!.GetValue<int>());
        await Client.PostJson($"/runs/{runId}/tasks/a/events", """{"event":"TASK_SUCCEEDED","worker_id":"w2","attempt":2}""");
        Assert.Equal("SUCCEEDED", (await Client.GetRun(runId)).Str("status"));
        // A run that is not FAILED is not re-run; an unknown one is 404.
        Assert.Equal(HttpStatusCode.Conflict, (await Client.PostAsync($"/runs/{runId}/retry", null)).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await Client.PostAsync($"/runs/no-such-{pool}/retry", null)).StatusCode);
    }

    [Theory]
    [InlineData("""{"worker_id":"w","wait_s":61}""", 422, "wait_s")]
    [InlineData("""{"worker_id":"w","wait_s":-1}""", 422, "wait_s")]
    [InlineData("""{"worker_id":"w","max_tasks":0}""", 422, "max_tasks")]
    [InlineData("""{"worker_id":"w","max_tasks":101}""", 422, "max_tasks")]
    [InlineData("""{"wait_s":1}""", 400, "worker_id")]
    [InlineData("""{"worker_id":"has space"}""", 400, "worker_id")]
    [InlineData("""{"worker_id":"w","wait_s":"soon"}""", 400, null)]
    [InlineData("""not json""", 400, null)]
    public async Task Absurd_polls_are_refused_with_the_field_at_fault(string body, int status, string? field)
    {
        var response = await Client.PostJson($"/pools/{Pool()}/tasks/poll", body);

        Assert.Equal(status, (int)response.StatusCode);
        if (field is not null) Assert.Equal(field, (await response.ReadObject()).Str("field"));
    }

    [Fact]
    public async Task An_attempt_out_of_range_is_refused()
    {
        var response = await Client.PostJson("/runs/whatever/tasks/x/events", """{"event":"TASK_SUCCEEDED","worker_id":"w","attempt":0}""");

        Assert.Equal(422, (int)response.StatusCode);
        Assert.Equal("attempt", (await response.ReadObject()).Str("field"));
    }
}
