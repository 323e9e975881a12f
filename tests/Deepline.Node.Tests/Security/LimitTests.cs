using Deepline.Tests.Shared;
using System.Net;
using System.Net.Sockets;
using System.Text;
using Deepline.Node.Tests.Http;

namespace Deepline.Node.Tests.Security;

/// <summary>Each limit answers with its own 4xx and names the setting; none of them is ever a 500.</summary>
public sealed class LimitTests(SecuredNode node) : IClassFixture<SecuredNode>
{
    private HttpClient Submitter() => node.Client(SecuredNode.TeamA);

    private static string Tasks(int n, Func<int, string>? dependsOn = null) =>
        string.Join(",", Enumerable.Range(0, n).Select(i => $$"""{"task_id":"t{{i}}","type":"x","pool":"cpu"{{(dependsOn?.Invoke(i) is { } d ? $",\"depends_on\":[{d}]" : "")}}}"""));

    [Fact]
    public async Task More_tasks_than_max_tasks_per_run_is_422_naming_the_setting()
    {
        using var client = Submitter();
        var ok = await client.PostJson("/runs", $$"""{"tasks":[{{Tasks(20)}}]}""");
        var over = await client.PostJson("/runs", $$"""{"tasks":[{{Tasks(21)}}]}""");

        Assert.Equal(HttpStatusCode.Created, ok.StatusCode);
        Assert.Equal(422, (int)over.StatusCode);
        var problem = await over.ReadObject();
        Assert.Equal("tasks", problem.Str("field"));
        Assert.Contains("orchestrator.limits.max_tasks_per_run", problem.Str("detail"));
    }

    [Fact]
    public async Task More_dependency_edges_than_max_edges_per_run_is_422()
    {
        using var client = Submitter();
        // 10 roots and 10 tasks that each depend on 4 of them: 40 edges over the limit of 30, well within 20 tasks.
        var body = $$"""{"tasks":[{{Tasks(10)}},{{string.Join(",", Enumerable.Range(10, 10).Select(i => $$"""{"task_id":"t{{i}}","type":"x","pool":"cpu","depends_on":["t0","t1","t2","t3"]}"""))}}]}""";
        var response = await client.PostJson("/runs", body);
        Assert.Equal(422, (int)response.StatusCode);
        Assert.Contains("orchestrator.limits.max_edges_per_run", (await response.ReadObject()).Str("detail"));
    }

    [Fact]
    public async Task Params_and_results_over_max_value_bytes_are_422_naming_the_field()
    {
        using var client = Submitter();
        var big = new string('x', 1100);
        var response = await client.PostJson("/runs", $$$"""{"tasks":[{"task_id":"a","type":"x","pool":"cpu","params":{"blob":"{{{big}}}"}}]}""");
        Assert.Equal(422, (int)response.StatusCode);
        Assert.Equal("tasks[0].params", (await response.ReadObject()).Str("field"));

        var runId = "lim-result-" + Guid.NewGuid().ToString("N")[..8];
        await client.PostJson("/runs", $$"""{"run_id":"{{runId}}","tasks":[{"task_id":"a","type":"x","pool":"cpu"}]}""");
        using var worker = node.Client(SecuredNode.Worker);
        await worker.PostJson($"/runs/{runId}/tasks/a/events", """{"event":"TASK_STARTED","worker_id":"w"}""");
        var result = await worker.PostJson($"/runs/{runId}/tasks/a/events", $$$"""{"event":"TASK_SUCCEEDED","worker_id":"w","result":{"blob":"{{{big}}}"}}""");
        Assert.Equal(422, (int)result.StatusCode);
        Assert.Equal("result", (await result.ReadObject()).Str("field"));
        Assert.Equal("RUNNING", (await client.GetRun(runId)).TaskState("a"));
    }

    [Fact]
    public async Task A_body_over_max_body_bytes_is_413_problem_json_not_500()
    {
        using var client = Submitter();
        var body = $$"""{"workflow_name":"{{new string('n', 70_000)}}","tasks":[]}""";
        var response = await client.PostJson("/runs", body);
        Assert.Equal(HttpStatusCode.RequestEntityTooLarge, response.StatusCode);
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        Assert.Contains("orchestrator.limits.max_body_bytes", (await response.ReadObject()).Str("detail"));
    }

    [Fact]
    public async Task A_body_that_trickles_in_is_408_after_body_timeout_s()
    {
        using var tcp = new TcpClient();
        await tcp.ConnectAsync(IPAddress.Loopback, node.BaseAddress.Port);
        var stream = tcp.GetStream();
        var head = $"POST /runs HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {SecuredNode.TeamA}\r\nContent-Type: application/json\r\nContent-Length: 500\r\n\r\n{{\"tasks\":";
        await stream.WriteAsync(Encoding.ASCII.GetBytes(head));

        // Never send the rest: the node must answer on its own, within body_timeout_s (2 s) plus slack.
        using var deadline = new CancellationTokenSource(TimeSpan.FromSeconds(15));
        var buffer = new byte[4096];
        var read = await stream.ReadAsync(buffer, deadline.Token);
        var answer = Encoding.ASCII.GetString(buffer, 0, read);

        Assert.StartsWith("HTTP/1.1 408", answer);
        Assert.Contains("orchestrator.limits.body_timeout_s", answer);
    }

    [Fact]
    public async Task A_reason_with_control_characters_is_stored_without_them()
    {
        using var client = Submitter();
        var runId = "lim-reason-" + Guid.NewGuid().ToString("N")[..8];
        await client.PostJson("/runs", $$"""{"run_id":"{{runId}}","tasks":[{"task_id":"a","type":"x","pool":"cpu"}]}""");
        await client.PutJson($"/runs/{runId}/cancel", """{"reason":"line one\nFAKE LOG LINE\u001b[31m"}""");
        var status = await (await client.GetAsync($"/runs/{runId}/cancel")).ReadObject();
        Assert.Equal("line one FAKE LOG LINE [31m", status.Str("cancellation_reason"));
    }

    [Fact]
    public async Task Per_run_thresholds_outside_the_nodes_bounds_are_422_naming_the_bound()
    {
        using var client = Submitter();
        var tooLong = await client.PostJson("/runs", """{"tasks":[{"task_id":"a","type":"x","pool":"cpu"}],"deadlock":{"workflow_stale_s":2147483647}}""");
        var tooEager = await client.PostJson("/runs", """{"tasks":[{"task_id":"a","type":"x","pool":"cpu"}],"deadlock":{"heartbeat_timeout_s":2}}""");

        Assert.Equal(422, (int)tooLong.StatusCode);
        Assert.Contains("orchestrator.limits.run_threshold_max_s", (await tooLong.ReadObject()).Str("detail"));
        Assert.Equal(422, (int)tooEager.StatusCode);
        Assert.Equal("deadlock.heartbeat_timeout_s", (await tooEager.ReadObject()).Str("field"));
    }
}

/// <summary>A node whose keys may send 5 requests at once and 5 per second.</summary>
public sealed class RateLimitedNode : SecuredNode
{
    protected override Deepline.Node.Configuration.LimitsConfig Limits(Deepline.Node.Configuration.LimitsConfig d) =>
        base.Limits(d) with { RatePerSecond = 5, RateBurst = 5 };
}

public sealed class RateLimitTests(RateLimitedNode node) : IClassFixture<RateLimitedNode>
{
    [Fact]
    public async Task A_key_over_its_rate_gets_429_with_retry_after_while_other_keys_and_health_are_served()
    {
        using var flooder = node.Client(SecuredNode.Operator);
        // All at once: sent one after the other on a slow machine, the bucket would refill between them.
        var statuses = await Task.WhenAll(Enumerable.Range(0, 20).Select(_ => flooder.GetAsync("/cluster/status")));

        var limited = statuses.Where(r => r.StatusCode == HttpStatusCode.TooManyRequests).ToList();
        Assert.NotEmpty(limited);
        Assert.True(limited[0].Headers.RetryAfter?.Delta is { } after && after >= TimeSpan.FromSeconds(1), "Retry-After header");
        Assert.Equal("application/problem+json", limited[0].Content.Headers.ContentType?.MediaType);

        using var other = node.Client(SecuredNode.Admin);
        Assert.Equal(HttpStatusCode.OK, (await other.GetAsync("/cluster/status")).StatusCode);
        using var balancer = node.Client(null);
        for (var i = 0; i < 10; i++) Assert.Equal(HttpStatusCode.OK, (await balancer.GetAsync("/health")).StatusCode);
    }
}

/// <summary>A node where a client may keep 3 runs and 10 unfinished tasks open.</summary>
public sealed class QuotaNode : SecuredNode
{
    protected override Deepline.Node.Configuration.LimitsConfig Limits(Deepline.Node.Configuration.LimitsConfig d) =>
        base.Limits(d) with { MaxOpenRunsPerClient = 3, MaxOpenTasksPerClient = 10 };

    protected override Deepline.Node.Configuration.ResourcesConfig Resources(Deepline.Node.Configuration.ResourcesConfig d) => d with { MaxClaimsPerKey = 3 };
}

public sealed class QuotaTests(QuotaNode node) : IClassFixture<QuotaNode>
{
    [Fact]
    public async Task A_client_at_its_open_runs_quota_gets_429_naming_it_while_another_client_submits_and_it_may_again_once_one_ends()
    {
        using var teamA = node.Client(SecuredNode.TeamA);
        using var teamB = node.Client(SecuredNode.TeamB);
        for (var i = 0; i < 3; i++)
            Assert.Equal(HttpStatusCode.Created, (await teamA.PostJson("/runs", $$"""{"run_id":"qa-{{i}}","tasks":[{"task_id":"x","type":"x","pool":"ext"}]}""")).StatusCode);

        // Sent at once after the third: the index may not have them yet, what this node admitted counts.
        var refused = await teamA.PostJson("/runs", """{"run_id":"qa-3","tasks":[{"task_id":"x","type":"x","pool":"ext"}]}""");
        Assert.Equal((HttpStatusCode)429, refused.StatusCode);
        Assert.True(refused.Headers.RetryAfter is not null);
        var problem = await refused.ReadObject();
        Assert.Equal("Quota exceeded", problem.Str("title"));
        Assert.Contains("orchestrator.limits.max_open_runs_per_client", problem.Str("detail"));
        Assert.Contains("client 'team-a'", problem.Str("detail"));
        Assert.Equal(HttpStatusCode.NotFound, (await teamA.GetAsync("/runs/qa-3")).StatusCode); // nothing stored

        Assert.Equal(HttpStatusCode.Created, (await teamB.PostJson("/runs", """{"run_id":"qb-0","tasks":[{"task_id":"x","type":"x","pool":"ext"}]}""")).StatusCode);

        // A cancelled run no longer counts once the index has it.
        Assert.Equal(HttpStatusCode.OK, (await teamA.PutJson("/runs/qa-0/cancel", """{"reason":"make room"}""")).StatusCode);
        await Eventually.Until(async () =>
            (await teamA.PostJson("/runs", """{"run_id":"qa-3","tasks":[{"task_id":"x","type":"x","pool":"ext"}]}""")).StatusCode == HttpStatusCode.Created,
            TimeSpan.FromSeconds(30), "a run accepted again after one was cancelled");
    }

    [Fact]
    public async Task A_run_that_would_take_a_client_past_its_open_tasks_quota_is_refused_naming_it()
    {
        using var teamB = node.Client(SecuredNode.TeamB);
        var tasks = string.Join(",", Enumerable.Range(0, 8).Select(i => $$"""{"task_id":"t{{i}}","type":"x","pool":"ext"}"""));
        Assert.Equal(HttpStatusCode.Created, (await teamB.PostJson("/runs", $$"""{"run_id":"qt-0","tasks":[{{tasks}}]}""")).StatusCode);

        var refused = await teamB.PostJson("/runs", """{"run_id":"qt-1","tasks":[{"task_id":"a","type":"x","pool":"ext"},{"task_id":"b","type":"x","pool":"ext"},{"task_id":"c","type":"x","pool":"ext"}]}""");
        Assert.Equal((HttpStatusCode)429, refused.StatusCode);
        Assert.Contains("orchestrator.limits.max_open_tasks_per_client", (await refused.ReadObject()).Str("detail"));
    }

    [Fact]
    public async Task A_worker_key_at_its_claims_quota_gets_429_with_made_up_worker_ids_while_another_key_claims()
    {
        using var worker = node.Client(SecuredNode.Worker);
        using var cpuWorker = node.Client(SecuredNode.CpuWorker);
        static string Claim(string resource, string workerId) => $"/resources/{resource}/claims/{workerId}";
        const string One = """{"count":1}""";
        Assert.Equal(HttpStatusCode.OK, (await worker.PutJson(Claim("qc-r1", "qc-w1"), One)).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await worker.PutJson(Claim("qc-r2", "qc-w1"), One)).StatusCode);
        // A wait counts as a claim too: qc-r1 is held, so this one waits.
        Assert.Equal(HttpStatusCode.Accepted, (await worker.PutJson(Claim("qc-r1", "qc-w2"), One)).StatusCode);

        // A made-up worker id does not get around the key's quota, and nothing is created for it.
        var refused = await worker.PutJson(Claim("qc-r3", "qc-made-up"), One);
        Assert.Equal((HttpStatusCode)429, refused.StatusCode);
        var problem = await refused.ReadObject();
        Assert.Equal("Claim quota reached", problem.Str("title"));
        Assert.Contains("orchestrator.resources.max_claims_per_key", problem.Str("detail"));
        using var ops = node.Client(SecuredNode.Operator);
        Assert.Equal(0, (await (await ops.GetAsync("/resources/qc-r3")).ReadObject())["waiter_count"]!.GetValue<int>());
        Assert.Equal("none", (await (await worker.GetAsync(Claim("qc-r3", "qc-made-up"))).ReadObject()).Str("state"));

        // A repeated claim is no new one; another key has a quota of its own.
        Assert.Equal(HttpStatusCode.OK, (await worker.PutJson(Claim("qc-r1", "qc-w1"), One)).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await cpuWorker.PutJson(Claim("qc-r3", "qc-cpu-1"), One)).StatusCode);

        // A release makes room.
        Assert.Equal(HttpStatusCode.NoContent, (await worker.DeleteAsync(Claim("qc-r2", "qc-w1"))).StatusCode);
        Assert.Equal(HttpStatusCode.Accepted, (await worker.PutJson(Claim("qc-r3", "qc-made-up"), One)).StatusCode);
    }
}

/// <summary>
/// With Redis the rate limit is the cluster's, not each node's: three nodes behind a load balancer grant a caller one
/// bucket, not three. Three single nodes share one Redis here (the limit needs Redis, not a cluster); while Redis is
/// away each node's own bucket decides and nothing fails.
/// </summary>
public sealed class SharedRateLimitTests
{
    [Fact]
    public async Task Three_nodes_on_one_redis_grant_a_caller_one_bucket_and_serve_on_their_own_while_redis_is_away()
    {
        await using var redis = await Deepline.Cancellation.Tests.RedisServer.StartAsync();
        var nodes = new List<SingleNode>();
        try
        {
            for (var i = 0; i < 3; i++)
                nodes.Add(await SingleNode.StartAsync("deepline-rate-", c => c with
                {
                    Redis = new Deepline.Node.Configuration.RedisConfig(redis.Connection, 3600),
                    Limits = c.Limits with { RatePerSecond = 2, RateBurst = 6 },
                }));
            await Eventually.Until(async () =>
            {
                foreach (var n in nodes)
                    if ((await (await n.Client.GetAsync("/health")).ReadObject())["dependencies"]!["redis"]!["state"]!.GetValue<string>() != "ok") return false;
                return true;
            }, TimeSpan.FromSeconds(30), "every node connected to Redis");
            var burst = System.Diagnostics.Stopwatch.StartNew();
            var statuses = await Task.WhenAll(Enumerable.Range(0, 30).Select(i => nodes[i % 3].Client.GetAsync("/stats")));
            burst.Stop();
            var served = statuses.Count(r => r.StatusCode == HttpStatusCode.OK);
            var refused = statuses.Where(r => (int)r.StatusCode == 429).ToList();
            // One bucket: its 6, plus what 2/s refilled while the 30 were answered (a loaded machine answers slowly); three
            // buckets would have served 18 at once.
            var refill = (int)Math.Ceiling(2 * burst.Elapsed.TotalSeconds);
            Assert.InRange(served, 6, 6 + refill);
            Assert.True(served < 18, $"{served} of 30 served in {burst.Elapsed.TotalSeconds:F1} s");
            Assert.Equal(30 - served, refused.Count);
            Assert.Contains("to the cluster", (await refused[0].ReadObject()).Str("detail"));
            Assert.NotNull(refused[0].Headers.RetryAfter);

            await redis.StopAsync();
            await Eventually.Until(async () => (await nodes[0].Client.GetAsync("/health")).StatusCode == HttpStatusCode.OK &&
                                               (await (await nodes[0].Client.GetAsync("/health")).ReadObject())["dependencies"]!["redis"]!["state"]!.GetValue<string>() == "down",
                TimeSpan.FromSeconds(30), "Redis seen down");
            // Each node's own bucket (untouched while Redis answered, so full) serves; no request fails for Redis being away.
            var alone = await Task.WhenAll(nodes.Select(n => n.Client.GetAsync("/stats")));
            Assert.All(alone, r => Assert.Equal(HttpStatusCode.OK, r.StatusCode));
        }
        finally
        {
            foreach (var n in nodes) await n.DisposeAsync();
        }
    }
}
