using System.Net;
using System.Net.Sockets;
using System.Text.Json.Nodes;
using Deepline.Node;
using Deepline.Node.Configuration;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.Logging;
using Deepline.Tests.Shared;

namespace Deepline.Cli.Tests;

/// <summary>The result of one in-process CLI invocation.</summary>
public sealed record CliResult(int Code, string Out, string Err)
{
    public JsonNode Json => JsonNode.Parse(Out)!;

    public override string ToString() => $"exit {Code}\n--- stdout\n{Out}\n--- stderr\n{Err}";
}

public static class Cli
{
    /// <summary>Runs `deepline args` through its real entry point against <paramref name="url"/> (as DEEPLINE_URL).</summary>
    public static async Task<CliResult> Run(string url, params string[] args) => await RunWith(new() { ["DEEPLINE_URL"] = url }, args);

    public static async Task<CliResult> RunWith(Dictionary<string, string?> env, params string[] args)
    {
        var output = new StringWriter();
        var error = new StringWriter();
        var code = await DeeplineCli.RunAsync(args, output, error, env);
        return new CliResult(code, output.ToString(), error.ToString());
    }

    public static CliResult Ok(this CliResult r)
    {
        Assert.True(r.Code == 0, r.ToString());
        return r;
    }

    /// <summary>A failure: the exit code, one readable line on stderr, nothing half-printed on stdout.</summary>
    public static string Fails(this CliResult r, int code)
    {
        Assert.True(r.Code == code, $"expected exit {code}: {r}");
        var line = Assert.Single(r.Err.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries));
        Assert.StartsWith("deepline: ", line);
        Assert.Equal("", r.Out);
        return line;
    }
}

/// <summary>A real node (web host + actor system + SQLite file) on free loopback ports.</summary>
public sealed class TestNode : IAsyncDisposable
{
    public const string AdminKey = "cli-tests-admin-key-0123456789";

    private readonly WebApplication _app;

    private TestNode(WebApplication app, DeeplineConfig config)
    {
        _app = app;
        Config = config;
        Url = $"http://127.0.0.1:{config.Http.Port}";
        Client = new HttpClient { BaseAddress = new Uri(Url), Timeout = TimeSpan.FromSeconds(30) };
    }

    public DeeplineConfig Config { get; }

    public string Url { get; }

    public HttpClient Client { get; }

    /// <summary>Completes when the node left a cluster whose store is not its own.</summary>
    public Task LeftForeignCluster { get; private init; } = Task.CompletedTask;

    public Task ActorSystemTerminated => Microsoft.Extensions.DependencyInjection.ServiceProviderServiceExtensions
        .GetRequiredService<Akka.Actor.ActorSystem>(_app.Services).WhenTerminated;

    public string RemotingAddress => $"akka.tcp://{DeeplineNode.SystemName}@127.0.0.1:{Config.Remoting.Port}";

    /// <param name="joined">false: the node is not expected to be in a cluster yet (its seeds are down); wait only for its API.</param>
    /// <param name="keysFile">An API keys file; null: the open API of the embedded default.</param>
    /// <param name="store">The store; null: the embedded SQLite file under <paramref name="dataDir"/>.</param>
    /// <param name="configure">Any other setting the test needs.</param>
    public static async Task<TestNode> Start(string dataDir, string adminKey = AdminKey, IReadOnlyList<string>? seeds = null, bool joined = true,
        string? keysFile = null, StoreConfig? store = null, Func<DeeplineConfig, DeeplineConfig>? configure = null)
    {
        var d = DeeplineConfig.Defaults;
        var config = d with
        {
            Http = d.Http with { Port = Loopback.FreePort() },
            Remoting = new RemotingConfig("127.0.0.1", Loopback.FreePort(), seeds ?? []),
            Data = new DataConfig(dataDir),
            Workers = d.Workers with { Slots = 2 },
            Admin = new AdminConfig(adminKey),
            Auth = new AuthConfig(keysFile ?? ""),
            Store = store ?? StoreConfig.Embedded,
        };
        config = configure?.Invoke(config) ?? config;
        var foreign = new TaskCompletionSource();
        var app = DeeplineNode.Build(config, logging: l => l.ClearProviders().SetMinimumLevel(LogLevel.Warning),
            onForeignStore: () => foreign.TrySetResult());
        try
        {
            await app.StartAsync();
        }
        catch (Exception e) when (!joined && (e is OperationCanceledException ||
                                              e is InvalidOperationException && e.Message.Contains("terminat", StringComparison.Ordinal)))
        {
            // A node refused by the cluster it joins (its store is not the cluster's) stops itself, which can cancel
            // its own host start, or end its actor system while the host still creates its singletons ("Cannot create
            // child while terminating or terminated"); the caller looks at how it ended.
            return new TestNode(app, config) { LeftForeignCluster = foreign.Task };
        }
        var node = new TestNode(app, config) { LeftForeignCluster = foreign.Task };
        await Eventually.Until(async () =>
        {
            var response = await node.Client.GetAsync(joined ? "/health" : "/cluster/members");
            if (response.StatusCode != HttpStatusCode.OK) return false;
            // /health answers 200 before the monitor is reachable (it is reported as a dependency); tests need it up.
            return !joined || System.Text.Json.Nodes.JsonNode.Parse(await response.Content.ReadAsStringAsync())!["deadlock_monitor"]!["running"]!.GetValue<bool>();
        }, TimeSpan.FromSeconds(30), joined ? "node healthy" : "node answering");
        return node;
    }

    public async ValueTask DisposeAsync()
    {
        Client.Dispose();
        await _app.DisposeAsync();
    }
}

/// <summary>One node shared by the single-node test classes (they run one after the other in this collection).</summary>
public sealed class SingleNodeFixture : IAsyncLifetime
{
    public string DataDir { get; } = Directory.CreateTempSubdirectory("deepline-cli-").FullName;

    public TestNode Node { get; private set; } = null!;

    public async Task InitializeAsync() => Node = await TestNode.Start(DataDir);

    public async Task DisposeAsync()
    {
        await Node.DisposeAsync();
        try { Directory.Delete(DataDir, true); } catch (IOException) { }
    }

    /// <summary>A run file in the data directory, for `runs submit`.</summary>
    public string WriteRun(string json)
    {
        var path = Path.Combine(DataDir, Guid.NewGuid().ToString("N") + ".json");
        File.WriteAllText(path, json);
        return path;
    }
}

[CollectionDefinition(Name)]
public sealed class SingleNode : ICollectionFixture<SingleNodeFixture>
{
    public const string Name = "single node";
}
