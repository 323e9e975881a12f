using System.Net;
using Deepline.Tests.Shared;

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
        var port = Loopback.FreePort();
        await using (var first = new NodeProcess("first", port, 0, _dataDir))
        {
            first.Start();
            await first.AwaitHealthyAsync(TimeSpan.FromSeconds(60));
            for (var i = 0; i < 5; i++)
                Assert.Equal(HttpStatusCode.Created, (await first.Client.PostJson("/runs", $$"""{"run_id":"wal-{{i}}","tasks":[{"task_id":"h","type":"hang"}]}""")).StatusCode);
            var marker = DbFile + ".highwater";
            await Eventually.Until(() => Task.FromResult(File.Exists(marker) && long.Parse(File.ReadAllText(marker)) >= 5),
                TimeSpan.FromSeconds(15), "journal high-water mark recorded");
            await first.KillAsync();
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
        await using var node = new NodeProcess("damaged", port ?? Loopback.FreePort(), 0, _dataDir);
        node.Start();
        var exitCode = await node.AwaitExitAsync(TimeSpan.FromSeconds(60), "it is serving a damaged store");
        return (exitCode, node.StandardError);
    }
}
