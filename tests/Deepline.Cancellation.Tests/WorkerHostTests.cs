using System.Collections.Concurrent;
using System.Net.Http.Json;
using System.Text.Json;
using System.Text.Json.Nodes;
using Deepline.Tests.Shared;
using Deepline.Worker.Sdk;

namespace Deepline.Cancellation.Tests;

/// <summary>The .NET SDK's worker host against a real node and Redis: it drains its pool, its failures are retried, a cancel stops it.</summary>
public sealed class WorkerHostTests(RedisNodeFixture node) : IClassFixture<RedisNodeFixture>
{
    private static string Pool() => "dotnet-" + Guid.NewGuid().ToString("N")[..8];

    private DeeplineWorker Worker(string pool, Dictionary<string, TaskHandler> handlers, CancellationSignals? signals = null)
    {
        var options = new DeeplineWorkerOptions { Node = node.Http.BaseAddress!, Pool = pool, PollWait = TimeSpan.FromSeconds(2), Signals = signals };
        foreach (var (type, handler) in handlers) options.Handlers[type] = handler;
        return new DeeplineWorker(options);
    }

    private async Task<JsonObject> Run(string runId) =>
        JsonNode.Parse(await node.Http.GetStringAsync($"/runs/{runId}"))!.AsObject();

    private async Task Submit(string json)
    {
        using var response = await node.Http.PostAsync("/runs", new StringContent(json, System.Text.Encoding.UTF8, "application/json"));
        Assert.True(response.IsSuccessStatusCode, await response.Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task The_worker_host_drains_its_pool_and_a_failed_attempt_is_retried_by_the_node()
    {
        var pool = Pool();
        var runId = "host-" + pool;
        var executions = new ConcurrentDictionary<string, int>();
        using var worker = Worker(pool, new()
        {
            ["sum"] = (task, _) => Task.FromResult<JsonElement?>(JsonSerializer.SerializeToElement(
                task.Params!.Value.GetProperty("xs").EnumerateArray().Sum(x => x.GetInt32()))),
            ["flaky"] = (task, _) => executions.AddOrUpdate(task.TaskId, 1, (_, n) => n + 1) == 1
                ? throw new TimeoutException("first attempt times out")
                : Task.FromResult<JsonElement?>(JsonSerializer.SerializeToElement(task.Inputs["s"]!.Value.GetInt32() * 2)),
        });
        await Submit($$"""
            {"run_id":"{{runId}}","tasks":[
              {"task_id":"s","type":"sum","pool":"{{pool}}","params":{"xs":[1,2,3]} },
              {"task_id":"f","type":"flaky","pool":"{{pool}}","depends_on":["s"],"retry":{"max_attempts":2,"initial_interval_s":0} }]}
            """);

        await worker.StartAsync(CancellationToken.None);
        await Eventually.Until(async () => (await Run(runId))["status"]!.GetValue<string>() != "RUNNING", TimeSpan.FromSeconds(30), "run finished");
        await worker.StopAsync(CancellationToken.None);

        var run = await Run(runId);
        Assert.Equal("SUCCEEDED", run["status"]!.GetValue<string>());
        var f = run["tasks"]![1]!;
        Assert.Equal((12, 2), (f["result"]!.GetValue<int>(), f["attempts"]!.GetValue<int>()));
        Assert.Equal("TimeoutException", f["error_type"]!.GetValue<string>());
        Assert.Equal((2, 1), (worker.Counts.Succeeded, worker.Counts.Failed));
    }

    [Fact]
    public async Task A_cancel_fires_the_handlers_token_through_Redis_and_the_host_acknowledges_it()
    {
        var pool = Pool();
        var runId = "host-cancel-" + pool;
        var started = new TaskCompletionSource();
        await using var signals = await CancellationSignals.ConnectAsync(node.Redis.Connection);
        using var worker = Worker(pool, new()
        {
            ["wait"] = async (_, token) =>
            {
                started.TrySetResult();
                await Task.Delay(Timeout.Infinite, token);
                return null;
            },
        }, signals);
        await Submit($$"""{"run_id":"{{runId}}","tasks":[{"task_id":"w","type":"wait","pool":"{{pool}}"}]}""");
        await worker.StartAsync(CancellationToken.None);
        await started.Task.WaitAsync(TimeSpan.FromSeconds(30));

        using (var cancel = await node.Http.PutAsJsonAsync($"/runs/{runId}/cancel", new { reason = "operator stop" }))
            Assert.True(cancel.IsSuccessStatusCode);

        // Acknowledged by the worker (not forced by the cancel timeout): the run closes as soon as the handler returned.
        await Eventually.Until(async () => (await Run(runId))["status"]!.GetValue<string>() == "CANCELLED", TimeSpan.FromSeconds(15), "run CANCELLED");
        await worker.StopAsync(CancellationToken.None);
        var run = await Run(runId);
        Assert.False(run["cancellation"]!["forced"]!.GetValue<bool>());
        Assert.Equal(1, worker.Counts.Cancelled);
    }
}
