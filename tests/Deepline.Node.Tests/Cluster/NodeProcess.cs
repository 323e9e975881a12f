using System.Diagnostics;
using System.Net;
using Deepline.Node.Tests.Http;

namespace Deepline.Node.Tests.Cluster;

/// <summary>A node as operators run it: its own `dotnet Deepline.Node.dll` process, configured by DEEPLINE_* variables only.</summary>
public sealed class NodeProcess : IAsyncDisposable
{
    private readonly Dictionary<string, string> _environment;
    private readonly string _dataDir;
    private Process? _process;

    public NodeProcess(string name, int httpPort, int remotingPort, string dataDir, IReadOnlyDictionary<string, string> environment)
    {
        Name = name;
        HttpPort = httpPort;
        RemotingPort = remotingPort;
        _dataDir = dataDir;
        Directory.CreateDirectory(dataDir);
        _environment = new Dictionary<string, string>(environment)
        {
            ["DEEPLINE_CONFIG"] = "",
            ["DEEPLINE_DATA_DIR"] = dataDir,
            ["DEEPLINE_HTTP_PORT"] = httpPort.ToString(),
            ["DEEPLINE_REMOTING_HOST"] = "127.0.0.1",
            ["DEEPLINE_REMOTING_PORT"] = remotingPort.ToString(),
        };
        Client = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{httpPort}"), Timeout = TimeSpan.FromSeconds(15) };
    }

    public string Name { get; }
    public int HttpPort { get; }
    public int RemotingPort { get; }
    public HttpClient Client { get; }
    public string Address => $"akka.tcp://deepline@127.0.0.1:{RemotingPort}";
    public int? Pid => _process is { HasExited: false } p ? p.Id : null;

    public void Start()
    {
        var dll = Path.Combine(AppContext.BaseDirectory, "Deepline.Node.dll");
        var info = new ProcessStartInfo("dotnet", [dll])
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            WorkingDirectory = _dataDir,
        };
        foreach (var (k, v) in _environment) info.Environment[k] = v;
        _process = Process.Start(info)!;
        _process.OutputDataReceived += (_, _) => { };
        _process.ErrorDataReceived += (_, _) => { };
        _process.BeginOutputReadLine();
        _process.BeginErrorReadLine();
    }

    public async Task AwaitHealthyAsync(TimeSpan within)
    {
        await Eventually.Until(async () =>
        {
            if (_process is { HasExited: true } p) throw new InvalidOperationException($"{Name} exited with {p.ExitCode}");
            try { return (await Client.GetAsync("/health")).StatusCode == HttpStatusCode.OK; }
            catch (Exception e) when (e is HttpRequestException or TaskCanceledException) { return false; }
        }, within, $"{Name} healthy");
    }

    /// <summary>SIGKILL: no leave, no handover, as a crashed machine.</summary>
    public async Task KillAsync()
    {
        if (_process is null || _process.HasExited) return;
        _process.Kill(entireProcessTree: true);
        await _process.WaitForExitAsync();
    }

    /// <summary>SIGTERM: the host stops, coordinated shutdown leaves the cluster and hands shards and singletons over.</summary>
    public async Task StopAsync(TimeSpan within)
    {
        if (_process is null || _process.HasExited) return;
        Signal(_process.Id, 15);
        using var cts = new CancellationTokenSource(within);
        await _process.WaitForExitAsync(cts.Token);
    }

    public void Freeze() => Signal(_process!.Id, 19);  // SIGSTOP

    public void Thaw() => Signal(_process!.Id, 18);    // SIGCONT

    public bool HasExited => _process?.HasExited ?? true;

    public async ValueTask DisposeAsync()
    {
        if (_process is { HasExited: false } p)
        {
            Signal(p.Id, 18);
            p.Kill(entireProcessTree: true);
            await p.WaitForExitAsync();
        }
        _process?.Dispose();
        Client.Dispose();
    }

    [System.Runtime.InteropServices.DllImport("libc", EntryPoint = "kill", SetLastError = true)]
    private static extern int Signal(int pid, int signal);
}
