using System.Diagnostics;
using System.Net;
using Deepline.Node.Tests.Http;
using Deepline.Tests.Shared;

namespace Deepline.Node.Tests;

/// <summary>A node as operators run it: its own `dotnet Deepline.Node.dll` process, configured by DEEPLINE_* variables only.</summary>
public sealed class NodeProcess : IAsyncDisposable
{
    private readonly Dictionary<string, string> _environment;
    private readonly string _dataDir;
    private readonly System.Text.StringBuilder _stderr = new();
    private readonly System.Text.StringBuilder _stdout = new();
    private Process? _process;

    /// <param name="remotingPort">0: any free port (a node on its own needs no known address).</param>
    public NodeProcess(string name, int httpPort, int remotingPort, string dataDir, IReadOnlyDictionary<string, string>? environment = null)
    {
        Name = name;
        HttpPort = httpPort;
        RemotingPort = remotingPort;
        _dataDir = dataDir;
        Directory.CreateDirectory(dataDir);
        _environment = new Dictionary<string, string>(environment ?? new Dictionary<string, string>())
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
        _process.OutputDataReceived += (_, e) => { if (e.Data is not null) lock (_stdout) _stdout.AppendLine(e.Data); };
        _process.ErrorDataReceived += (_, e) => { if (e.Data is not null) lock (_stderr) _stderr.AppendLine(e.Data); };
        _process.BeginOutputReadLine();
        _process.BeginErrorReadLine();
    }

    /// <summary>What the process wrote to stdout so far (the console log).</summary>
    public string StandardOutput
    {
        get { lock (_stdout) return _stdout.ToString(); }
    }

    /// <summary>What the process wrote to stderr so far (start-up refusals are one line there).</summary>
    public string StandardError
    {
        get { lock (_stderr) return _stderr.ToString(); }
    }

    /// <summary>Waits for the process to end on its own and returns its exit code; a node still running then fails the test.</summary>
    public async Task<int> AwaitExitAsync(TimeSpan within, string whyItShouldStop)
    {
        using var cts = new CancellationTokenSource(within);
        try
        {
            await _process!.WaitForExitAsync(cts.Token);
        }
        catch (OperationCanceledException)
        {
            _process!.Kill(entireProcessTree: true);
            throw new TimeoutException($"{Name} did not stop within {within.TotalSeconds} s: {whyItShouldStop}");
        }
        _process.WaitForExit(); // drains the redirected streams
        return _process.ExitCode;
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
