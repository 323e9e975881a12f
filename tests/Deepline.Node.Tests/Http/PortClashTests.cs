using System.Net;
using System.Net.Sockets;
using Deepline.Tests.Shared;

namespace Deepline.Node.Tests.Http;

/// <summary>A port another process holds stops the node at once with one line naming the port and the setting that moves it.</summary>
public sealed class PortClashTests : IDisposable
{
    private readonly string _dataDir = Directory.CreateTempSubdirectory("deepline-ports-").FullName;
    private readonly TcpListener _holder = new(IPAddress.Loopback, 0);

    public PortClashTests() => _holder.Start();

    private int Held => ((IPEndPoint)_holder.LocalEndpoint).Port;

    public void Dispose()
    {
        _holder.Stop();
        try { Directory.Delete(_dataDir, true); } catch (IOException) { }
    }

    [Fact]
    public async Task An_http_port_in_use_is_one_line_naming_it_and_exit_5()
    {
        var line = await RefusedLine(httpPort: Held, remotingPort: 0);
        Assert.Equal($"deepline: not starting: HTTP port {Held} on 127.0.0.1 is in use by another process; free it or move this node with orchestrator.http.port (DEEPLINE_HTTP_PORT)", line);
    }

    [Fact]
    public async Task A_cluster_port_in_use_is_one_line_naming_it_and_exit_5()
    {
        var line = await RefusedLine(httpPort: Loopback.FreePort(), remotingPort: Held);
        Assert.Contains($"Cluster (Akka.Remote) port {Held} on 127.0.0.1 is in use by another process", line);
        Assert.Contains("orchestrator.remoting.port (DEEPLINE_REMOTING_PORT)", line);
    }

    private async Task<string> RefusedLine(int httpPort, int remotingPort)
    {
        await using var node = new NodeProcess("clash", httpPort, remotingPort, _dataDir);
        node.Start();
        var exitCode = await node.AwaitExitAsync(TimeSpan.FromSeconds(60), "its port is held by another process");
        Assert.Equal(5, exitCode);
        return Assert.Single(node.StandardError.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries));
    }
}
