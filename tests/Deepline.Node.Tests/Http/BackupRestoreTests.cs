using System.Net;
using Deepline.Tests.Shared;

namespace Deepline.Node.Tests.Http;

/// <summary>
/// An online backup of the SQLite store, taken while the node runs, and a restore that is only putting the file in
/// place: every run acknowledged before the backup comes back as it was, and the node says what the backup lacks.
/// </summary>
public sealed class BackupRestoreTests : IDisposable
{
    private readonly string _dataDir = Directory.CreateTempSubdirectory("deepline-backup-").FullName;
    private readonly string _keep = Directory.CreateTempSubdirectory("deepline-backup-kept-").FullName;

    private string DbFile => Path.Combine(_dataDir, "deepline.db");

    public void Dispose()
    {
        foreach (var dir in new[] { _dataDir, _keep })
            try { Directory.Delete(dir, true); } catch (IOException) { }
    }

    private NodeProcess Node(int port) => new("backup", port, 0, _dataDir, new Dictionary<string, string> { ["DEEPLINE_LOGGING_DIR"] = "logs" });

    [Fact]
    public async Task A_node_restored_from_a_backup_has_every_run_acknowledged_before_it_and_says_what_came_after()
    {
        var port = Loopback.FreePort();
        var before = new Dictionary<string, string>();
        var backup = Path.Combine(_keep, "store.db");
        long ordering;
        await using (var node = Node(port))
        {
            node.Start();
            await node.AwaitHealthyAsync(TimeSpan.FromSeconds(60));
            var client = node.Client;
            // Two hang tasks stay RUNNING: the default pool's other two slots are left for the run after the restore.
            for (var i = 0; i < 10; i++)
            {
                var type = i < 6 ? "noop" : "hang";
                Assert.Equal(HttpStatusCode.Created, (await client.PostJson("/runs", $$"""{"run_id":"bk-{{i}}","tasks":[{"task_id":"t","type":"{{type}}"}]}""")).StatusCode);
            }
            for (var i = 8; i < 10; i++)
                Assert.Equal(HttpStatusCode.OK, (await client.PutJson($"/runs/bk-{i}/cancel", """{"reason":"before the backup"}""")).StatusCode);
            for (var i = 0; i < 10; i++)
            {
                var expected = i < 6 ? "SUCCEEDED" : i < 8 ? "RUNNING" : "CANCELLED";
                await client.AwaitRun($"bk-{i}", r => r.Str("status") == expected, $"bk-{i} {expected}");
                before[$"bk-{i}"] = expected;
            }

            // Taken while the node runs and keeps writing.
            using var response = await client.GetAsync("/store/backup");
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            Assert.Equal("application/vnd.sqlite3", response.Content.Headers.ContentType!.MediaType);
            ordering = long.Parse(response.Headers.GetValues("X-Deepline-Journal-Ordering").Single());
            await using (var file = File.Create(backup))
                await response.Content.CopyToAsync(file);
            Assert.Equal("SQLite format 3\0", System.Text.Encoding.ASCII.GetString(File.ReadAllBytes(backup), 0, 16));
            Assert.Empty(Directory.EnumerateFiles(Path.Combine(_dataDir, "backups"))); // the node's copy went with the stream

            // Written after the backup: not in it.
            for (var i = 0; i < 3; i++)
                Assert.Equal(HttpStatusCode.Created, (await client.PostJson("/runs", $$"""{"run_id":"after-{{i}}","tasks":[{"task_id":"t","type":"noop"}]}""")).StatusCode);
            var marker = DbFile + ".highwater";
            await Eventually.Until(() => Task.FromResult(File.Exists(marker) && long.Parse(File.ReadAllText(marker)) > ordering),
                TimeSpan.FromSeconds(15), "the later writes recorded in the high-water mark");
            // A crash: its -wal stays beside the file the backup replaces.
            await node.KillAsync();
        }
        Assert.True(File.Exists(DbFile + "-wal"));

        File.Copy(backup, DbFile, overwrite: true);

        await using (var restored = Node(port))
        {
            restored.Start();
            await restored.AwaitHealthyAsync(TimeSpan.FromSeconds(60));
            foreach (var (runId, status) in before)
                Assert.Equal(status, (await restored.Client.GetRun(runId)).Str("status"));
            for (var i = 0; i < 3; i++)
                Assert.Equal(HttpStatusCode.NotFound, (await restored.Client.GetAsync($"/runs/after-{i}")).StatusCode);
            Assert.Equal(HttpStatusCode.Created, (await restored.Client.PostJson("/runs", """{"run_id":"after-restore","tasks":[{"task_id":"t","type":"noop"}]}""")).StatusCode);
            await restored.Client.AwaitRun("after-restore", r => r.Str("status") == "SUCCEEDED", "a new run completes on the restored store");

            var log = await File.ReadAllTextAsync(Path.Combine(_dataDir, "logs", "orchestrator.log"));
            Assert.Contains($"was restored from a backup taken at", log);
            Assert.Contains($"(journal ordering {ordering})", log);
            Assert.Contains("written after that backup are not in it", log);
            Assert.Contains("was not its own and was moved to", log);
        }
        Assert.True(File.Exists(DbFile + "-wal.before-restore"));
    }

    [Fact]
    public async Task Backup_is_refused_on_a_postgresql_store_naming_what_to_use_instead()
    {
        await using var postgres = await PostgresServer.StartAsync();
        var port = Loopback.FreePort();
        await using var node = new NodeProcess("pg-backup", port, 0, _dataDir, new Dictionary<string, string>
        {
            ["DEEPLINE_STORE_PROVIDER"] = "postgresql",
            ["DEEPLINE_STORE_CONNECTION"] = await postgres.CreateDatabaseAsync("backup"),
        });
        node.Start();
        await node.AwaitHealthyAsync(TimeSpan.FromSeconds(60));

        var response = await node.Client.GetAsync("/store/backup");
        Assert.Equal(HttpStatusCode.Conflict, response.StatusCode);
        Assert.Contains("pg_dump", (await response.ReadObject()).Str("detail"));
    }
}
