using System.Net;
using Deepline.Node.Configuration;
using Deepline.Node.Tests.Http;
using Deepline.Tests.Shared;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Deepline.Node.Tests.Cluster;

/// <summary>A cluster node in the test's process on free loopback ports, started and answering its management API.</summary>
public static class InProcessNode
{
    /// <param name="remoting">The node's remoting settings (the port is replaced: the OS picks a free one as it binds).</param>
    public static async Task<(WebApplication App, HttpClient Client, string Address)> StartAsync(
        string name, string dataRoot, StoreConfig store, RemotingConfig remoting, Func<DeeplineConfig, DeeplineConfig>? adjust = null)
    {
        var d = DeeplineConfig.Defaults;
        var http = Loopback.FreePort();
        var config = d with
        {
            Http = d.Http with { Port = http },
            // Port 0: a port picked beforehand can be taken by a parallel test before Akka.Remote binds it, and a failed
            // bind stops the node while it starts.
            Remoting = remoting with { Port = 0 },
            Data = new DataConfig(Path.Combine(dataRoot, name)),
            Store = store,
        };
        // Its log is kept: a start cancelled under load (the host stopped by a terminated actor system) says why.
        var captured = new CapturingLoggerProvider();
        var app = DeeplineNode.Build(adjust?.Invoke(config) ?? config, logging: l =>
        {
            l.ClearProviders();
            l.AddProvider(captured);
            l.SetMinimumLevel(LogLevel.Information);
        });
        try
        {
            await app.StartAsync();
        }
        catch (OperationCanceledException e)
        {
            await app.DisposeAsync();
            throw new InvalidOperationException($"{name} was stopped while starting; its last log lines:\n" + string.Join("\n", captured.Messages.TakeLast(40)), e);
        }
        var client = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{http}"), Timeout = TimeSpan.FromSeconds(10) };
        await Eventually.Until(async () => (await client.GetAsync("/cluster/members")).StatusCode == HttpStatusCode.OK, TimeSpan.FromSeconds(30), $"{name} answering");
        var port = Akka.Cluster.Cluster.Get(app.Services.GetRequiredService<Akka.Actor.ActorSystem>()).SelfAddress.Port;
        // Seeds are written akka.tcp (with TLS the members' own addresses read akka.ssl.tcp).
        return (app, client, $"akka.tcp://{DeeplineNode.SystemName}@127.0.0.1:{port}");
    }
}

/// <summary>Nodes of one test cluster on a throwaway PostgreSQL server (the only store a cluster may share), disposed together.</summary>
public sealed class PostgresCluster : IAsyncDisposable
{
    private readonly string _dir;
    private readonly PostgresServer _postgres;
    private readonly List<WebApplication> _apps = [];
    private readonly Dictionary<string, WebApplication> _byName = [];

    private PostgresCluster(string dir, PostgresServer postgres, StoreConfig store) => (_dir, _postgres, Store) = (dir, postgres, store);

    public StoreConfig Store { get; }

    /// <summary>Where the test may keep files (certificates, ...); removed with the cluster.</summary>
    public string Dir => _dir;

    public static async Task<PostgresCluster> StartAsync(string prefix)
    {
        var postgres = await PostgresServer.StartAsync();
        var store = new StoreConfig(StoreConfig.PostgreSql, await postgres.CreateDatabaseAsync("cluster"));
        return new PostgresCluster(Directory.CreateTempSubdirectory(prefix).FullName, postgres, store);
    }

    /// <summary>Starts one more node of the cluster; it is stopped when the cluster is disposed.</summary>
    public async Task<(HttpClient Client, string Address)> StartNodeAsync(string name, RemotingConfig remoting, Func<DeeplineConfig, DeeplineConfig>? adjust = null)
    {
        var (app, client, address) = await InProcessNode.StartAsync(name, _dir, Store, remoting, adjust);
        _apps.Add(app);
        _byName[name] = app;
        return (client, address);
    }

    /// <summary>The running node of that name (for its services and lifetime).</summary>
    public WebApplication App(string name) => _byName[name];

    /// <summary>Stops one node gracefully (it leaves the cluster, handing its singletons and shards over to the others).</summary>
    public async Task StopNodeAsync(string name)
    {
        var app = _byName[name];
        _byName.Remove(name);
        _apps.Remove(app);
        await app.StopAsync();
        await app.DisposeAsync();
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var app in _apps) await app.DisposeAsync();
        await _postgres.DisposeAsync();
        try { Directory.Delete(_dir, true); } catch (IOException) { }
    }
}
