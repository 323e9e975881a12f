using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;
using Deepline.Tests.Shared;

namespace Deepline.Cancellation.Tests;

/// <summary>
/// A real redis-server child process on 127.0.0.1, without persistence unless a directory is given (then it loads
/// dump.rdb from there at start). Can be stopped and started again on the same port.
/// </summary>
public sealed class RedisServer : IAsyncDisposable
{
    private readonly string? _dir;
    private Process? _process;

    private RedisServer(int port, string? dir)
    {
        Port = port;
        _dir = dir;
    }

    public int Port { get; }

    public string Connection => $"127.0.0.1:{Port}";

    /// <summary>For the tests' own client: admin commands (FLUSHALL), and no giving up while the server is down.</summary>
    public string AdminConnection => $"{Connection},allowAdmin=true,abortConnect=false,connectTimeout=2000";

    public static async Task<RedisServer> StartAsync(int? port = null, string? dir = null)
    {
        var server = new RedisServer(port ?? Loopback.FreePort(), dir);
        await server.StartAsync();
        return server;
    }

    public async Task StartAsync()
    {
        if (_process is { HasExited: false }) throw new InvalidOperationException("already running");
        var info = new ProcessStartInfo(Binary())
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var arg in new[] { "--port", Port.ToString(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--protected-mode", "no" })
            info.ArgumentList.Add(arg);
        if (_dir is not null)
        {
            info.ArgumentList.Add("--dir");
            info.ArgumentList.Add(_dir);
        }
        var process = Process.Start(info) ?? throw new InvalidOperationException("redis-server did not start");
        process.OutputDataReceived += (_, _) => { };
        process.ErrorDataReceived += (_, _) => { };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        _process = process;

        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(10);
        while (!await PingAsync())
        {
            if (process.HasExited) throw new InvalidOperationException($"redis-server exited with {process.ExitCode} on port {Port}");
            if (DateTime.UtcNow > deadline) throw new TimeoutException($"redis-server on port {Port} did not answer PING within 10 s");
            await Task.Delay(20);
        }
    }

    /// <summary>Kills the server (as a crash would): without persistence it comes back empty.</summary>
    public async Task StopAsync()
    {
        if (_process is null) return;
        if (!_process.HasExited) _process.Kill(entireProcessTree: true);
        await _process.WaitForExitAsync();
        _process.Dispose();
        _process = null;
    }

    public async ValueTask DisposeAsync() => await StopAsync();

    private async Task<bool> PingAsync()
    {
        try
        {
            using var client = new TcpClient();
            await client.ConnectAsync(IPAddress.Loopback, Port);
            var stream = client.GetStream();
            await stream.WriteAsync("PING\r\n"u8.ToArray());
            var buffer = new byte[16];
            var n = await stream.ReadAsync(buffer).AsTask().WaitAsync(TimeSpan.FromSeconds(1));
            return Encoding.ASCII.GetString(buffer, 0, n).StartsWith("+PONG", StringComparison.Ordinal);
        }
        catch (Exception e) when (e is SocketException or IOException or TimeoutException)
        {
            return false;
        }
    }

    /// <summary>The redis-server on PATH, or null.</summary>
    public static string? FindBinary() =>
        (Environment.GetEnvironmentVariable("PATH") ?? "").Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries)
            .Select(dir => Path.Combine(dir, "redis-server"))
            .FirstOrDefault(File.Exists);

    private static string Binary() =>
        FindBinary() ?? throw new InvalidOperationException(
            "redis-server not found on PATH. These tests start their own Redis servers: install it with " +
            "`apt-get install -y redis-server` (.ci/run does this on a fresh Debian machine).");
}

