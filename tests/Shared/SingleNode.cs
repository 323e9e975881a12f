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

    /// <summary>
    /// Builds and starts a node on a free loopback port. A port is only free when chosen: a parallel test can bind it
    /// before this node does, so a port found taken means another one (up to five), never a failed test.
    /// </summary>
    public static async Task<(WebApplication App, DeeplineConfig Config)> StartOnFreePortAsync(Func<int, DeeplineConfig> configFor,
        Action<ILoggingBuilder> logging)
    {
        for (var attempt = 1; ; attempt++)
        {
            var config = configFor(Loopback.FreePort());
            var app = DeeplineNode.Build(config, logging: logging);
            try
            {
                await app.StartAsync();
                return (app, config);
            }
            catch (IOException e) when (e.InnerException is Microsoft.AspNetCore.Connections.AddressInUseException && attempt < 5)
            {
                await app.DisposeAsync();
            }
            catch
            {
                await app.DisposeAsync();
                throw;
            }
        }
    }

    /// <summary>Starts a node on <see cref="LoopbackConfig"/> changed by <paramref name="adjust"/>; logs go nowhere unless <paramref name="logging"/> says.</summary>
    public static async Task<SingleNode> StartAsync(string prefix, Func<DeeplineConfig, DeeplineConfig>? adjust = null,
        Action<ILoggingBuilder>? logging = null, DeeplineConfig? from = null)
    {
        var dir = Directory.CreateTempSubdirectory(prefix).FullName;
        WebApplication app;
        DeeplineConfig config;
        try
        {
            (app, config) = await StartOnFreePortAsync(port =>
            {
                var c = LoopbackConfig(dir, port, from);
                return adjust?.Invoke(c) ?? c;
            }, logging ?? (l => l.ClearProviders()));
        }
        catch
        {
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
