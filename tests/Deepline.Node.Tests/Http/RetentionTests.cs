using System.Net;
using Deepline.Tests.Shared;
using Microsoft.Data.Sqlite;

namespace Deepline.Node.Tests.Http;

/// <summary>
/// Finished runs older than their state's retention go with their whole history; open runs and states kept forever stay.
/// A node process on its own store, with retention of 1 s for SUCCEEDED and CANCELLED runs and forever for FAILED ones.
/// </summary>
public sealed class RetentionTests : IDisposable
{
    private readonly string _dataDir = Directory.CreateTempSubdirectory("deepline-retention-").FullName;

    public void Dispose()
    {
        try { Directory.Delete(_dataDir, true); } catch (IOException) { }
    }

    private long Count(string sql)
    {
        using var db = new SqliteConnection($"Data Source={Path.Combine(_dataDir, "deepline.db")};Mode=ReadOnly;Pooling=False");
        db.Open();
        using var cmd = db.CreateCommand();
        cmd.CommandText = sql;
        return (long)cmd.ExecuteScalar()!;
    }

    [Fact]
    public async Task Finished_runs_past_retention_are_removed_with_their_history_and_nothing_else_is()
    {
        await using var node = new NodeProcess("retention", Loopback.FreePort(), 0, _dataDir, new Dictionary<string, string>
        {
            ["DEEPLINE_RETENTION_SUCCEEDED"] = "1",
            ["DEEPLINE_RETENTION_CANCELLED"] = "1",
            ["DEEPLINE_RETENTION_FAILED"] = "0",
        });
        node.Start();
        await node.AwaitHealthyAsync(TimeSpan.FromSeconds(60));
        var client = node.Client;
        Assert.Equal(HttpStatusCode.Created, (await client.PostJson("/runs", """{"run_id":"ret-ok","tasks":[{"task_id":"a","type":"noop"},{"task_id":"b","type":"noop","depends_on":["a"]}]}""")).StatusCode);
        Assert.Equal(HttpStatusCode.Created, (await client.PostJson("/runs", """{"run_id":"ret-cancelled","tasks":[{"task_id":"h","type":"hang"}]}""")).StatusCode);
        Assert.Equal(HttpStatusCode.Created, (await client.PostJson("/runs", """{"run_id":"ret-failed","tasks":[{"task_id":"f","type":"fail","retry":{"max_attempts":1} }]}""")).StatusCode);
        Assert.Equal(HttpStatusCode.Created, (await client.PostJson("/runs", """{"run_id":"ret-open","tasks":[{"task_id":"h","type":"hang"}]}""")).StatusCode);
        await client.AwaitRun("ret-cancelled", r => r.TaskState("h") == "RUNNING", "hang runs");
        Assert.Equal(HttpStatusCode.OK, (await client.PutJson("/runs/ret-cancelled/cancel", """{"reason":"to be forgotten"}""")).StatusCode);
        await client.AwaitRun("ret-failed", r => r.Str("status") == "FAILED", "fails");

        // Removed: the run, its history, its journal rows and its index row.
        await Eventually.Until(async () => (await client.GetAsync("/runs/ret-ok")).StatusCode == HttpStatusCode.NotFound
                                           && (await client.GetAsync("/runs/ret-cancelled")).StatusCode == HttpStatusCode.NotFound,
            TimeSpan.FromSeconds(45), "the SUCCEEDED and the CANCELLED run removed");
        Assert.Equal(HttpStatusCode.NotFound, (await client.GetAsync("/runs/ret-ok/history")).StatusCode);
        await Eventually.Until(() => Task.FromResult(
                Count("SELECT COUNT(*) FROM journal WHERE persistence_id IN ('run-ret-ok', 'run-ret-cancelled')") == 0
                && Count("SELECT COUNT(*) FROM run_index WHERE run_id IN ('ret-ok', 'ret-cancelled')") == 0
                && Count("SELECT COUNT(*) FROM snapshot WHERE persistence_id IN ('run-ret-ok', 'run-ret-cancelled')") == 0),
            TimeSpan.FromSeconds(30), "their rows gone from the store");

        // Kept: a state kept forever, and a run still open however old.
        Assert.Equal("FAILED", (await client.GetRun("ret-failed")).Str("status"));
        Assert.Equal("RUNNING", (await client.GetRun("ret-open")).Str("status"));
        Assert.True(Count("SELECT COUNT(*) FROM journal WHERE persistence_id = 'run-ret-failed'") > 0);
        Assert.Equal(1, Count("SELECT COUNT(*) FROM run_index WHERE run_id = 'ret-open' AND status = 'RUNNING'"));

        // The id is free again: a new run under it runs and is indexed as a new run.
        Assert.Equal(HttpStatusCode.Created, (await client.PostJson("/runs", """{"run_id":"ret-ok","tasks":[{"task_id":"again","type":"hang"}]}""")).StatusCode);
        var again = await client.AwaitRun("ret-ok", r => r.TaskState("again") == "RUNNING", "the new run under the old id runs");
        Assert.Single(again["tasks"]!.AsArray());
        await Eventually.Until(() => Task.FromResult(Count("SELECT COUNT(*) FROM run_index WHERE run_id = 'ret-ok' AND status = 'RUNNING'") == 1),
            TimeSpan.FromSeconds(15), "the new run indexed");
    }
}
