using System.Net;
using Deepline.Node.Configuration;
using Deepline.Node.Tests.Http;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.Logging;

namespace Deepline.Node.Tests.Cluster;

/// <summary>A cluster node in the test's process on free loopback ports, started and answering its management API.</summary>
public static class InProcessNode
{
    /// <param name="remoting">The node's remoting settings (the port is replaced by a free one).</param>
    public static async Task<(WebApplication App, HttpClient Client, string Address)> StartAsync(
        string name, string dataRoot, StoreConfig store, RemotingConfig remoting, Func<DeeplineConfig, DeeplineConfig>? adjust = null)
    {
        var d = DeeplineConfig.Defaults;
        var (http, port) = (NodeFixture.FreePort(), NodeFixture.FreePort());
        var config = d with
        {
            Http = d.Http with { Port = http },
            Remoting = remoting with { Port = port },
            Data = new DataConfig(Path.Combine(dataRoot, name)),
            Store = store,
        };
        var app = DeeplineNode.Build(adjust?.Invoke(config) ?? config, logging: l => l.ClearProviders());
        await app.StartAsync();
        var client = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{http}"), Timeout = TimeSpan.FromSeconds(10) };
        await Eventually.Until(async () => (await client.GetAsync("/cluster/members")).StatusCode == HttpStatusCode.OK, TimeSpan.FromSeconds(30), $"{name} answering");
        // Seeds are written akka.tcp (with TLS the members' own addresses read akka.ssl.tcp).
        return (app, client, $"akka.tcp://{DeeplineNode.SystemName}@127.0.0.1:{port}");
    }
}
