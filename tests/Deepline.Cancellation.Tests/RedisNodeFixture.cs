using System.Collections.Concurrent;
using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Deepline.Actors.Workers;
using Deepline.Node;
using Deepline.Node.Configuration;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.Logging;
using StackExchange.Redis;
using Deepline.Tests.Shared;

namespace Deepline.Cancellation.Tests;

/// <summary>Counts executions: a task of a run cancelled elsewhere must never get here.</summary>
public sealed class CountingHandler : ITaskHandler
{
    public string Type => "count";

    public ConcurrentBag<string> Executed { get; } = [];

    public Task<JsonElement?> ExecuteAsync(TaskContext context, CancellationToken cancellationToken)
    {
        Executed.Add(context.RunId + "/" + context.TaskId);
        return Task.FromResult<JsonElement?>(null);
    }
}

/// <summary>A real redis-server and the real node configured with it (DEEPLINE_REDIS), both on free loopback ports.</summary>
public sealed class RedisNodeFixture : IAsyncLifetime
{
    private WebApplication? _app;

    public string DataDir { get; } = Directory.CreateTempSubdirectory("deepline-redis-").FullName;

    public RedisServer Redis { get; private set; } = null!;

    /// <summary>The tests' own view of Redis; keeps reconnecting while the server is stopped.</summary>
    public ConnectionMultiplexer Client { get; private set; } = null!;

    public IDatabase Db => Client.GetDatabase();

    public HttpClient Http { get; private set; } = null!;

    public CountingHandler Counting { get; } = new();

    public async Task InitializeAsync()
    {
        Redis = await RedisServer.StartAsync();
        Client = await ConnectionMultiplexer.ConnectAsync(Redis.AdminConnection);
        var port = Loopback.FreePort();
        var d = DeeplineConfig.Defaults;
        var config = d with
        {
            Http = d.Http with { Port = port },
            Remoting = d.Remoting with { Port = 0 },
            Data = new DataConfig(DataDir),
            Workers = d.Workers with { Slots = 2 },
            Redis = new RedisConfig(Redis.Connection, 3600),
        };
        _app = DeeplineNode.Build(config, [Counting], l => l.ClearProviders().SetMinimumLevel(LogLevel.Warning));
        await _app.StartAsync();
        Http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{port}"), Timeout = TimeSpan.FromSeconds(30) };
        await Eventually.Until(async () =>
        {
            var health = await Http.GetAsync("/health");
            return health.StatusCode == HttpStatusCode.OK
                   && System.Text.Json.Nodes.JsonNode.Parse(await health.Content.ReadAsStringAsync())!["deadlock_monitor"]!["running"]!.GetValue<bool>();
        }, TimeSpan.FromSeconds(30), "node healthy, monitor running");
    }

    public async Task DisposeAsync()
    {
        Http.Dispose();
        if (_app is not null) await _app.DisposeAsync();
        await Client.DisposeAsync();
        await Redis.DisposeAsync();
        try { Directory.Delete(DataDir, true); } catch (IOException) { }
    }

    public async Task SubmitAsync(string runId, string tasksJson)
    {
        var response = await Http.PostAsync("/runs", Body($$"""{"run_id": "{{runId}}", "tasks": {{tasksJson}}}"""));
        Assert.Equal(HttpStatusCode.Created, response.StatusCode);
    }

    public async Task<JsonObject> CancelAsync(string runId, string reason)
    {
        var response = await Http.PutAsync($"/runs/{runId}/cancel", Body(JsonSerializer.Serialize(new { reason })));
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        return JsonNode.Parse(await response.Content.ReadAsStringAsync())!.AsObject();
    }

    public async Task<JsonObject> AwaitRunAsync(string runId, Func<JsonObject, bool> condition, string what)
    {
        JsonObject? last = null;
        try
        {
            await Eventually.Until(async () =>
            {
                last = await Http.GetFromJsonAsync<JsonObject>($"/runs/{runId}");
                return condition(last!);
            }, TimeSpan.FromSeconds(15), what);
        }
        catch (TimeoutException e)
        {
            throw new TimeoutException($"{e.Message}; last seen: {last?.ToJsonString()}", e);
        }
        return last!;
    }

    public static JsonObject Task(JsonObject run, string taskId) =>
        run["tasks"]!.AsArray().Single(t => t!["task_id"]!.GetValue<string>() == taskId)!.AsObject();

    public static StringContent Body(string json) => new(json, Encoding.UTF8, "application/json");
}
