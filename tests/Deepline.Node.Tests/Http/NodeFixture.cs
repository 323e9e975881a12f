using System.Net;
using System.Net.Http.Json;
using System.Net.Sockets;
using System.Text.Json;
using System.Text.Json.Nodes;
using Deepline.Node.Configuration;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.Logging;
using Deepline.Tests.Shared;

namespace Deepline.Node.Tests.Http;

/// <summary>The real node (web host + actor system + SQLite file) on free loopback ports, shared by a test class.</summary>
public sealed class NodeFixture : IAsyncLifetime
{
    private WebApplication? _app;
    private Deepline.Tests.Shared.TestStore? _store;

    public string DataDir { get; } = Directory.CreateTempSubdirectory("deepline-node-").FullName;

    public HttpClient Client { get; private set; } = null!;

    public DeeplineConfig Config { get; private set; } = null!;

    /// <summary>The running host, for tests that look at what it mapped.</summary>
    public WebApplication App => _app!;

    public const string AdminKey = "node-fixture-admin-key-0123456789";

    public async Task InitializeAsync()
    {
        _store = await Deepline.Tests.Shared.TestStore.CreateAsync();
        (_app, Config) = await SingleNode.StartOnFreePortAsync(port =>
        {
            var d = SingleNode.LoopbackConfig(DataDir, port);
            return d with
            {
                Store = _store.Config,
                Deadlock = d.Deadlock with { MaxDependencyDepth = 5, CancelTimeoutS = 30 },
                Workers = d.Workers with { Slots = 2 },
                Admin = new AdminConfig(AdminKey),
                // Per-run thresholds of a second are how tests see a run go stale quickly.
                Limits = d.Limits with { RunThresholdMinS = 1 },
            };
        }, l => l.ClearProviders().SetMinimumLevel(LogLevel.Warning));
        Client = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{Config.Http.Port}"), Timeout = TimeSpan.FromSeconds(30) };
        // 200 alone no longer means the monitor is up (it is a dependency, reported, not a reason for 503).
        await Eventually.Until(async () => await Json.ServingWithMonitor(Client), TimeSpan.FromSeconds(30), "node healthy, monitor running");
    }

    public async Task DisposeAsync()
    {
        Client.Dispose();
        if (_app is not null) await _app.DisposeAsync();
        if (_store is not null) await _store.DisposeAsync();
        try { Directory.Delete(DataDir, true); } catch (IOException) { }
    }
}

public static class Json
{
    public static StringContent Body(string json) => new(json, System.Text.Encoding.UTF8, "application/json");

    public static async Task<JsonObject> ReadObject(this HttpResponseMessage response) =>
        JsonNode.Parse(await response.Content.ReadAsStringAsync())!.AsObject();

    public static IReadOnlyList<string> Keys(this JsonObject o) => [.. o.Select(kv => kv.Key).Order()];

    public static async Task<JsonObject> GetRun(this HttpClient client, string runId)
    {
        var response = await client.GetAsync($"/runs/{runId}");
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        return await response.ReadObject();
    }

    public static async Task<JsonObject> AwaitRun(this HttpClient client, string runId, Func<JsonObject, bool> condition, string what,
        TimeSpan? within = null)
    {
        JsonObject? last = null;
        await Eventually.Until(async () => condition(last = await client.GetRun(runId)), within ?? TimeSpan.FromSeconds(15), what);
        return last!;
    }

    public static string Str(this JsonObject o, string key) => o[key]!.GetValue<string>();

    public static string TaskState(this JsonObject run, string taskId) =>
        run["tasks"]!.AsArray().Single(t => t!["task_id"]!.GetValue<string>() == taskId)!["state"]!.GetValue<string>();

    public static Task<HttpResponseMessage> PostJson(this HttpClient c, string url, string json) => c.PostAsync(url, Body(json));

    /// <summary>DELETE with the admin key (or the given one; "" sends no header).</summary>
    public static Task<HttpResponseMessage> DeleteAsAdmin(this HttpClient c, string url, string key = NodeFixture.AdminKey)
    {
        var request = new HttpRequestMessage(HttpMethod.Delete, url);
        if (key.Length > 0) request.Headers.Add(Deepline.Node.Security.KeyAuthentication.AdminHeader, key);
        return c.SendAsync(request);
    }

    public static Task<HttpResponseMessage> PutJson(this HttpClient c, string url, string json) => c.PutAsync(url, Body(json));

    public static JsonSerializerOptions Options { get; } = new(JsonSerializerDefaults.Web);

    /// <summary>The node serves (200) and the deadlock monitor answers.</summary>
    public static async Task<bool> ServingWithMonitor(HttpClient client)
    {
        try
        {
            var response = await client.GetAsync("/health");
            return response.StatusCode == HttpStatusCode.OK && (await response.ReadObject())["deadlock_monitor"]!["running"]!.GetValue<bool>();
        }
        catch (HttpRequestException)
        {
            return false;
        }
    }
}
