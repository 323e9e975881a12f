using System.IO.Compression;
using System.Net;
using System.Text.Json.Nodes;
using Deepline.Tests.Shared;
using Microsoft.Data.Sqlite;

namespace Deepline.Node.Tests.Http;

/// <summary>
/// Finished runs older than their state's retention go with their whole history; open runs and states kept forever stay.
/// A node process on its own store, with retention of 1 s for SUCCEEDED and CANCELLED runs and forever for FAILED ones,
/// and an archive directory that every removed run is written to first.
/// </summary>
public sealed class RetentionTests : IDisposable
{
    private readonly string _dataDir = Directory.CreateTempSubdirectory("deepline-retention-").FullName;

    public void Dispose()
    {
        try { Directory.Delete(_dataDir, true); } catch (IOException) { }
    }

    private string Archive => Path.Combine(_dataDir, "archive");

    /// <summary>Every run in the archive (its last copy), read as the manifest says: file, offset and length of a gzip member.</summary>
    private Dictionary<string, JsonObject> ArchivedRuns()
    {
        var runs = new Dictionary<string, JsonObject>();
        foreach (var line in File.ReadAllLines(Path.Combine(Archive, "manifest.jsonl")))
        {
            var entry = JsonNode.Parse(line)!;
            using var file = File.OpenRead(Path.Combine(Archive, entry["file"]!.GetValue<string>()));
            file.Seek(entry["offset"]!.GetValue<long>(), SeekOrigin.Begin);
            var member = new byte[entry["length"]!.GetValue<long>()];
            file.ReadExactly(member);
            using var reader = new StreamReader(new GZipStream(new MemoryStream(member), CompressionMode.Decompress));
            while (reader.ReadLine() is { } run)
                if (JsonNode.Parse(run) is JsonObject o) runs[o["run_id"]!.GetValue<string>()] = o;
        }
        return runs;
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
        await using var redis = await Deepline.Cancellation.Tests.RedisServer.StartAsync();
        await using var node = new NodeProcess("retention", Loopback.FreePort(), 0, _dataDir, new Dictionary<string, string>
        {
            ["DEEPLINE_RETENTION_SUCCEEDED"] = "1",
            ["DEEPLINE_RETENTION_CANCELLED"] = "1",
            ["DEEPLINE_RETENTION_FAILED"] = "0",
            ["DEEPLINE_RETENTION_ARCHIVE_DIR"] = Archive,
            ["DEEPLINE_REDIS"] = redis.Connection,
        });
        node.Start();
        await node.AwaitHealthyAsync(TimeSpan.FromSeconds(60));
        var client = node.Client;
        await using var workers = await StackExchange.Redis.ConnectionMultiplexer.ConnectAsync(redis.Connection);
        var db = workers.GetDatabase();
        Assert.Equal(HttpStatusCode.Created, (await client.PostJson("/runs", """{"run_id":"ret-ok","tasks":[{"task_id":"a","type":"noop"},{"task_id":"b","type":"noop","depends_on":["a"]}]}""")).StatusCode);
        Assert.Equal(HttpStatusCode.Created, (await client.PostJson("/runs", """{"run_id":"ret-cancelled","tasks":[{"task_id":"h","type":"hang"}]}""")).StatusCode);
        Assert.Equal(HttpStatusCode.Created, (await client.PostJson("/runs", """{"run_id":"ret-failed","tasks":[{"task_id":"f","type":"fail","retry":{"max_attempts":1} }]}""")).StatusCode);
        Assert.Equal(HttpStatusCode.Created, (await client.PostJson("/runs", """{"run_id":"ret-open","tasks":[{"task_id":"h","type":"hang"}]}""")).StatusCode);
        await client.AwaitRun("ret-cancelled", r => r.TaskState("h") == "RUNNING", "hang runs");
        Assert.Equal(HttpStatusCode.OK, (await client.PutJson("/runs/ret-cancelled/cancel", """{"reason":"to be forgotten"}""")).StatusCode);
        await Eventually.Until(() => db.SetContainsAsync("cancelled_runs", "ret-cancelled"), TimeSpan.FromSeconds(15),
            "workers see the cancel while the run exists");
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

        // Workers' copy goes with it: the set, the time index and the hash.
        await Eventually.Until(async () => !await db.SetContainsAsync("cancelled_runs", "ret-cancelled")
                                           && !await db.KeyExistsAsync("cancelled_run:ret-cancelled")
                                           && await db.SortedSetScoreAsync("cancelled_runs:by_time", "ret-cancelled") is null,
            TimeSpan.FromSeconds(15), "the removed run's Redis entries gone");

        // Archived first: each removed run's whole journal, with its timeline, in the gzip member the manifest points at.
        var archived = ArchivedRuns();
        Assert.Equal(["run_submitted", "task_started", "task_succeeded", "task_started", "task_succeeded"],
            archived["ret-ok"]["events"]!.AsArray().Select(e => e!["type"]!.GetValue<string>()));
        Assert.Equal("to be forgotten", archived["ret-cancelled"]["events"]!.AsArray()
            .Single(e => e!["type"]!.GetValue<string>() == "run_cancel_requested")!["event"]!["Reason"]!.GetValue<string>());
        Assert.DoesNotContain("ret-failed", archived.Keys);
        Assert.DoesNotContain("ret-open", archived.Keys);

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

    [Fact]
    public async Task A_node_killed_during_a_sweep_removes_only_what_was_due_and_the_rest_after_its_restart()
    {
        const int Due = 600;
        var environment = new Dictionary<string, string>
        {
            ["DEEPLINE_RETENTION_SUCCEEDED"] = "2",
            ["DEEPLINE_RETENTION_CANCELLED"] = "0",
            ["DEEPLINE_RETENTION_FAILED"] = "0",
            ["DEEPLINE_RETENTION_ARCHIVE_DIR"] = Archive,
            ["DEEPLINE_LIMITS_RATE_PER_SECOND"] = "0",
        };
        var port = Loopback.FreePort();
        await using (var first = new NodeProcess("sweep-crash", port, 0, _dataDir, environment))
        {
            first.Start();
            await first.AwaitHealthyAsync(TimeSpan.FromSeconds(60));
            foreach (var kept in new[] { "keep-open-1", "keep-open-2" })
                Assert.Equal(HttpStatusCode.Created, (await first.Client.PostJson("/runs", $$"""{"run_id":"{{kept}}","tasks":[{"task_id":"h","type":"hang"}]}""")).StatusCode);
            Assert.Equal(HttpStatusCode.Created, (await first.Client.PostJson("/runs",
                """{"run_id":"keep-failed","tasks":[{"task_id":"f","type":"fail","retry":{"max_attempts":1} }]}""")).StatusCode);
            await Parallel.ForEachAsync(Enumerable.Range(0, Due), new ParallelOptions { MaxDegreeOfParallelism = 16 }, async (i, _) =>
                Assert.Equal(HttpStatusCode.Created, (await first.Client.PostJson("/runs", $$"""{"run_id":"due-{{i:D4}}","tasks":[{"task_id":"a","type":"noop"}]}""")).StatusCode));

            // SIGKILL as soon as the sweeper has removed some of them and not all.
            await Eventually.Until(() => Task.FromResult(Count("SELECT COUNT(*) FROM run_index WHERE run_id LIKE 'due-%'") < Due),
                TimeSpan.FromSeconds(60), "the sweep under way");
            await first.KillAsync();
        }
        var left = Count("SELECT COUNT(*) FROM run_index WHERE run_id LIKE 'due-%'");
        Assert.True(left > 0, "the node was killed after the sweep had removed every due run; the test proves nothing then");

        await using var second = new NodeProcess("sweep-crash", port, 0, _dataDir, environment);
        second.Start();
        await second.AwaitHealthyAsync(TimeSpan.FromSeconds(60));
        await Eventually.Until(() => Task.FromResult(Count("SELECT COUNT(*) FROM run_index WHERE run_id LIKE 'due-%'") == 0
                                                     && Count("SELECT COUNT(*) FROM journal WHERE persistence_id LIKE 'run-due-%'") == 0
                                                     && Count("SELECT COUNT(*) FROM snapshot WHERE persistence_id LIKE 'run-due-%'") == 0),
            TimeSpan.FromSeconds(60), $"the {left} due runs left at the kill removed after the restart");
        foreach (var i in new[] { 0, Due / 2, Due - 1 })
            Assert.Equal(HttpStatusCode.NotFound, (await second.Client.GetAsync($"/runs/due-{i:D4}")).StatusCode);

        // Nothing that was not due: the open runs and the FAILED one (kept forever) whole, with their history.
        Assert.Equal("RUNNING", (await second.Client.GetRun("keep-open-1")).Str("status"));
        Assert.Equal("RUNNING", (await second.Client.GetRun("keep-open-2")).Str("status"));
        Assert.Equal("FAILED", (await second.Client.GetRun("keep-failed")).Str("status"));
        var history = JsonNode.Parse(await second.Client.GetStringAsync("/runs/keep-failed/history"))!["events"]!.AsArray();
        Assert.Equal("run_submitted", history[0]!["type"]!.GetValue<string>());
        Assert.Equal("task_failed", history[^1]!["type"]!.GetValue<string>());

        // Nothing lost for compliance: every removed run is in the archive (some twice: archived before the kill,
        // removed after it), and none that was kept.
        var archived = ArchivedRuns();
        Assert.All(Enumerable.Range(0, Due), i => Assert.True(archived.ContainsKey($"due-{i:D4}"), $"due-{i:D4} archived"));
        Assert.DoesNotContain(archived.Keys, k => k.StartsWith("keep-", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Beyond_max_finished_runs_the_runs_that_finished_first_go_whatever_their_age()
    {
        await using var node = new NodeProcess("retention-cap", Loopback.FreePort(), 0, _dataDir, new Dictionary<string, string>
        {
            ["DEEPLINE_RETENTION_SUCCEEDED"] = "0",
            ["DEEPLINE_RETENTION_FAILED"] = "0",
            ["DEEPLINE_RETENTION_CANCELLED"] = "0",
            ["DEEPLINE_RETENTION_MAX_FINISHED_RUNS"] = "2",
        });
        node.Start();
        await node.AwaitHealthyAsync(TimeSpan.FromSeconds(60));
        var client = node.Client;
        Assert.Equal(HttpStatusCode.Created, (await client.PostJson("/runs", """{"run_id":"cap-open","tasks":[{"task_id":"h","type":"hang"}]}""")).StatusCode);
        for (var i = 0; i < 5; i++)
        {
            Assert.Equal(HttpStatusCode.Created, (await client.PostJson("/runs", $$"""{"run_id":"cap-{{i}}","tasks":[{"task_id":"a","type":"noop"}]}""")).StatusCode);
            await client.AwaitRun($"cap-{i}", r => r.Str("status") == "SUCCEEDED", "finishes");
        }

        await Eventually.Until(async () => (await client.GetAsync("/runs/cap-0")).StatusCode == HttpStatusCode.NotFound
                                           && (await client.GetAsync("/runs/cap-1")).StatusCode == HttpStatusCode.NotFound
                                           && (await client.GetAsync("/runs/cap-2")).StatusCode == HttpStatusCode.NotFound,
            TimeSpan.FromSeconds(45), "the three runs that finished first removed");
        Assert.Equal("SUCCEEDED", (await client.GetRun("cap-3")).Str("status"));
        Assert.Equal("SUCCEEDED", (await client.GetRun("cap-4")).Str("status"));
        Assert.Equal("RUNNING", (await client.GetRun("cap-open")).Str("status"));
        // The index rows go after the batch's runs have deleted their journals (404 above comes first).
        await Eventually.Until(() => Task.FromResult(Count("SELECT COUNT(*) FROM run_index WHERE status = 'SUCCEEDED'") == 2),
            TimeSpan.FromSeconds(15), "two finished runs left in the index");
        Assert.Equal(2, Count("SELECT COUNT(*) FROM run_index WHERE status = 'SUCCEEDED'"));
    }

    [Fact]
    public async Task An_archive_directory_the_node_cannot_write_stops_it_at_start_with_one_line()
    {
        await using var node = new NodeProcess("archive-refused", Loopback.FreePort(), 0, _dataDir, new Dictionary<string, string>
        {
            ["DEEPLINE_RETENTION_SUCCEEDED"] = "60",
            ["DEEPLINE_RETENTION_ARCHIVE_DIR"] = "/dev/null/archive",
        });
        node.Start();
        Assert.Equal(2, await node.AwaitExitAsync(TimeSpan.FromSeconds(60), "its archive directory cannot be written"));
        Assert.Contains("orchestrator.retention.archive_dir (DEEPLINE_RETENTION_ARCHIVE_DIR): cannot write to '/dev/null/archive'", node.StandardError);
    }
}
