using System.Diagnostics;
using System.Net;

namespace Deepline.Node.Tests.Http;

/// <summary>
/// The node as operators run it, in its own process, killed with SIGKILL: every accepted run and every
/// cancel answered before the kill must be there when it starts again on the same data directory.
/// </summary>
public sealed class CrashRecoveryTests : IDisposable
{
    private readonly string _dataDir = Directory.CreateTempSubdirectory("deepline-crash-").FullName;

    public void Dispose()
    {
        try { Directory.Delete(_dataDir, true); } catch (IOException) { }
    }

    [Fact]
    public async Task Runs_and_cancels_survive_SIGKILL()
    {
        var port = NodeFixture.FreePort();
        using var client = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{port}"), Timeout = TimeSpan.FromSeconds(30) };

        var first = await StartNode(port, client);
        const int runs = 20;
        for (var i = 0; i < runs; i++)
        {
            var created = await client.PostJson("/runs", $$"""{"run_id":"crash-{{i}}","tasks":[{"task_id":"h","type":"hang"},{"task_id":"after","type":"noop","depends_on":["h"]}]}""");
            Assert.Equal(HttpStatusCode.Created, created.StatusCode);
        }
        var cancelledAt = new Dictionary<string, string>();
        for (var i = 0; i < runs; i += 2)
        {
            var cancel = await (await client.PutJson($"/runs/crash-{i}/cancel", """{"reason":"before the crash","force":true}""")).ReadObject();
            cancelledAt[$"crash-{i}"] = cancel.Str("cancelled_at");
        }
        first.Kill(entireProcessTree: true);
        await first.WaitForExitAsync();

        using var second = await StartNode(port, client);
        try
        {
            for (var i = 0; i < runs; i++)
            {
                var run = await client.GetRun($"crash-{i}");
                if (cancelledAt.TryGetValue($"crash-{i}", out var at))
                {
                    Assert.Equal("CANCELLED", run.Str("status"));
                    Assert.Equal(at, run["cancellation"]!["cancelled_at"]!.GetValue<string>());
                    Assert.Equal("before the crash", run["cancellation"]!["reason"]!.GetValue<string>());
                }
                else
                {
                    Assert.Equal("RUNNING", run.Str("status"));
                    Assert.Equal("PENDING", run.TaskState("after"));
                }
            }
        }
        finally
        {
            second.Kill(entireProcessTree: true);
        }
    }

    private async Task<Process> StartNode(int port, HttpClient client)
    {
        var dll = Path.Combine(AppContext.BaseDirectory, "Deepline.Node.dll");
        var info = new ProcessStartInfo("dotnet", [dll])
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            WorkingDirectory = _dataDir,
        };
        info.Environment["DEEPLINE_DATA_DIR"] = _dataDir;
        info.Environment["DEEPLINE_HTTP_PORT"] = port.ToString();
        info.Environment["DEEPLINE_REMOTING_PORT"] = "0";
        info.Environment["DEEPLINE_CONFIG"] = "";
        var process = Process.Start(info)!;
        process.OutputDataReceived += (_, _) => { };
        process.ErrorDataReceived += (_, _) => { };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        await Eventually.Until(async () =>
        {
            Assert.False(process.HasExited, $"node exited with {(process.HasExited ? process.ExitCode : 0)}");
            try { return (await client.GetAsync("/health")).StatusCode == HttpStatusCode.OK; }
            catch (HttpRequestException) { return false; }
        }, TimeSpan.FromSeconds(60), "node process healthy");
        return process;
    }
}
