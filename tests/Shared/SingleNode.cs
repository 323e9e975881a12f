using Deepline.Node;
using Deepline.Node.Configuration;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.Logging;

namespace Deepline.Tests.Shared;

/// <summary>
/// One real node for one test: the defaults on loopback (HTTP on a free port, Akka.Remote on port 0, a data directory
/// of its own), adjusted by the test, started, with a client; disposing stops it and removes the directory.
/// </summary>
public sealed class SingleNode : IAsyncDisposable
{
    private SingleNode(WebApplication app, HttpClient client, DeeplineConfig config, string dir) =>
        (App, Client, Config, Dir) = (app, client, config, dir);

    public WebApplication App { get; }

    public HttpClient Client { get; }

    public DeeplineConfig Config { get; }

    /// <summary>The node's own directory (its data directory, and room for the test's files); removed on dispose.</summary>
    public string Dir { get; }

    /// <summary>A node's settings on loopback: <paramref name="from"/> (the defaults) with the ports and data directory every test node needs.</summary>
    public static DeeplineConfig LoopbackConfig(string dataDir, int httpPort, DeeplineConfig? from = null)
    {
        var d = from ?? DeeplineConfig.Defaults;
        return d with
        {
            Http = d.Http with { Port = httpPort },
            Remoting = d.Remoting with { Port = 0 },
            Data = new DataConfig(dataDir),
        };
    }

    /// <summary>Starts a node on <see cref="LoopbackConfig"/> changed by <paramref name="adjust"/>; logs go nowhere unless <paramref name="logging"/> says.</summary>
    public static async Task<SingleNode> StartAsync(string prefix, Func<DeeplineConfig, DeeplineConfig>? adjust = null,
        Action<ILoggingBuilder>? logging = null, DeeplineConfig? from = null)
    {
        var dir = Directory.CreateTempSubdirectory(prefix).FullName;
        var config = LoopbackConfig(dir, Loopback.FreePort(), from);
        config = adjust?.Invoke(config) ?? config;
        var app = DeeplineNode.Build(config, logging: logging ?? (l => l.ClearProviders()));
        try
        {
            await app.StartAsync();
        }
        catch
        {
            await app.DisposeAsync();
            Delete(dir);
            throw;
        }
        var client = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{config.Http.Port}"), Timeout = TimeSpan.FromSeconds(30) };
        return new SingleNode(app, client, config, dir);
    }

    public async ValueTask DisposeAsync()
    {
        Client.Dispose();
        await App.DisposeAsync();
        Delete(Dir);
    }

    private static void Delete(string dir)
    {
        try { Directory.Delete(dir, true); } catch (IOException) { }
    }
}
