using System.Diagnostics;
using System.Net;

namespace Deepline.Node.Tests.Http;

/// <summary>
/// The node process against a damaged store: it stops at start-up with one line naming the file and what is wrong,
/// and a non-zero exit code; it never serves a history that went backwards as if it were complete.
/// </summary>
public sealed class StoreCheckTests : IDisposable
{
    private readonly string _dataDir = Directory.CreateTempSubdirectory("deepline-store-").FullName;

    private string DbFile => Path.Combine(_dataDir, "deepline.db");

    public void Dispose()
    {
        try { Directory.Delete(_dataDir, true); } catch (IOException) { }
    }

    [Fact]
    public async Task A_file_that_is_not_a_database_stops_start_up_with_one_clear_line()
    {
        await File.WriteAllBytesAsync(DbFile, [.. Enumerable.Range(0, 8192).Select(i => (byte)(i * 37 % 251))]);

        var (exitCode, stderr) = await RunToExit();

        Assert.Equal(3, exitCode);
        var lines = stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        var line = Assert.Single(lines);
        Assert.Contains(DbFile, line);
        Assert.Contains("store check failed", line);
    }

    [Fact]
    public async Task A_journal_that_went_backwards_after_its_WAL_was_deleted_stops_start_up()
    {
        var port = NodeFixture.FreePort();
        using var client = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{port}"), Timeout = TimeSpan.FromSeconds(30) };
        var first = Start(port);
        first.ErrorDataReceived += (_, _) => { };
        first.BeginErrorReadLine();
        try
        {
            await Eventually.Until(async () =>
            {
                Assert.False(first.HasExited, "node exited");
                try { return (await client.GetAsync("/health")).StatusCode == HttpStatusCode.OK; }
                catch (HttpRequestException) { return false; }
            }, TimeSpan.FromSeconds(60), "node healthy");
            for (var i = 0; i < 5; i++)
                Assert.Equal(HttpStatusCode.Created, (await client.PostJson("/runs", $$"""{"run_id":"wal-{{i}}","tasks":[{"task_id":"h","type":"hang"}]}""")).StatusCode);
            var marker = DbFile + ".highwater";
            await Eventually.Until(() => Task.FromResult(File.Exists(marker) && long.Parse(File.ReadAllText(marker)) >= 5),
                TimeSpan.FromSeconds(15), "journal high-water mark recorded");
        }
        finally
        {
            first.Kill(entireProcessTree: true);
            await first.WaitForExitAsync();
        }
        Assert.True(File.Exists(DbFile + "-wal"), "the runs should still be in the WAL after SIGKILL");
        File.Delete(DbFile + "-wal");
        File.Delete(DbFile + "-shm");

        var (exitCode, stderr) = await RunToExit(port);

        Assert.Equal(3, exitCode);
        var line = Assert.Single(stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries));
        Assert.Contains("went backwards", line);
        Assert.Contains(DbFile, line);
    }

    private async Task<(int ExitCode, string Stderr)> RunToExit(int? port = null)
    {
        using var process = Start(port ?? NodeFixture.FreePort());
        var stderr = new System.Text.StringBuilder();
        process.ErrorDataReceived += (_, e) => { if (e.Data is not null) lock (stderr) stderr.AppendLine(e.Data); };
        process.BeginErrorReadLine();
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        try
        {
            await process.WaitForExitAsync(cts.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException("the node did not stop on a damaged store; it is serving it");
        }
        process.WaitForExit();
        lock (stderr) return (process.ExitCode, stderr.ToString());
    }

    private Process Start(int port)
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
        process.BeginOutputReadLine();
        return process;
    }
}
