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

/// <summary>What start-up says about a store it cannot open: a full disk is a full disk, not a file to restore.</summary>
public sealed class StoreUnusableMessageTests
{
    [Fact]
    public void A_full_disk_is_named_with_its_free_space_and_a_damaged_file_is_sent_to_its_backup()
    {
        var full = Deepline.Actors.Hosting.SqliteStore.Unusable("/data/deepline.db", new Microsoft.Data.Sqlite.SqliteException("database or disk is full", 13), 4096);
        Assert.Contains("the disk holding /data/deepline.db is full (4,096 bytes free", full);
        Assert.DoesNotContain("backup", full);

        // An I/O error with almost no space left is the disk too; with room left it is the file.
        Assert.Contains("is full", Deepline.Actors.Hosting.SqliteStore.Unusable("/d/x.db", new Microsoft.Data.Sqlite.SqliteException("disk I/O error", 10), 0));
        var damaged = Deepline.Actors.Hosting.SqliteStore.Unusable("/d/x.db", new Microsoft.Data.Sqlite.SqliteException("file is not a database", 26), 10L << 30);
        Assert.Contains("is not a readable SQLite database", damaged);
        Assert.Contains("restore it from a backup", damaged);
        Assert.NotNull(Deepline.Actors.Hosting.SqliteStore.FreeBytes(Path.GetTempPath()));
    }
}
