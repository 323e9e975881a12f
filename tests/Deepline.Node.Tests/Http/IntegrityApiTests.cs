using System.Diagnostics;
using System.Net;
using Deepline.Domain;
using Microsoft.Data.Sqlite;
using Deepline.Tests.Shared;

namespace Deepline.Node.Tests.Http;

/// <summary>Issue 9: nothing acknowledged is ever lost, and no single event poisons a run or the run index.</summary>
public sealed class IntegrityApiTests(NodeFixture node) : IClassFixture<NodeFixture>
{
    private HttpClient Client => node.Client;

    private static string Nested(int depth) => new string('[', depth) + new string(']', depth);

    private string DbFile => Path.Combine(node.DataDir, "deepline.db");

    [Fact]
    public async Task Params_too_deep_for_the_journal_are_refused_and_nothing_is_half_stored()
    {
        // 61 levels pass the HTTP reader (depth 64 with the body around them), but not the journal's envelope.
        var deep = await Client.PostJson("/runs", $$"""{"run_id":"int-deep","tasks":[{"task_id":"a","type":"noop","params":{{Nested(61)}}}]}""");

        Assert.Equal(HttpStatusCode.UnprocessableEntity, deep.StatusCode);
        Assert.Equal("tasks[0].params", (await deep.ReadObject()).Str("field"));
        Assert.Equal(HttpStatusCode.NotFound, (await Client.GetAsync("/runs/int-deep")).StatusCode);
        // The same run_id is still free: nothing was acknowledged, nothing was stored.
        Assert.Equal(HttpStatusCode.Created, (await Client.PostJson("/runs", """{"run_id":"int-deep","tasks":[{"task_id":"a","type":"noop"}]}""")).StatusCode);
    }

    [Fact]
    public async Task Params_at_the_depth_limit_are_stored_and_read_back()
    {
        var created = await Client.PostJson("/runs", $$"""{"run_id":"int-limit","tasks":[{"task_id":"a","type":"noop","params":{{Nested(JsonLimits.MaxValueDepth)}}}]}""");

        Assert.Equal(HttpStatusCode.Created, created.StatusCode);
        var run = await Client.AwaitRun("int-limit", r => r.Str("status") == "SUCCEEDED", "run with deep params succeeds");
        Assert.Equal(Nested(JsonLimits.MaxValueDepth), run["tasks"]![0]!["params"]!.ToJsonString());
    }

    [Fact]
    public async Task A_result_too_deep_is_refused_and_the_run_and_the_index_stay_readable()
    {
        Assert.Equal(HttpStatusCode.Created, (await Client.PostJson("/runs", """{"run_id":"int-result","tasks":[{"task_id":"a","type":"x","pool":"external"}]}""")).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await Client.PostJson("/runs/int-result/tasks/a/events", """{"event":"TASK_STARTED","worker_id":"w1"}""")).StatusCode);

        var deep = await Client.PostJson("/runs/int-result/tasks/a/events", $$"""{"event":"TASK_SUCCEEDED","worker_id":"w1","result":{{Nested(63)}}}""");

        Assert.Equal(HttpStatusCode.UnprocessableEntity, deep.StatusCode);
        Assert.Equal("result", (await deep.ReadObject()).Str("field"));
        Assert.Equal("RUNNING", (await Client.GetRun("int-result")).TaskState("a"));
        // The worker can still report a storable outcome, and the index follows it.
        Assert.Equal(HttpStatusCode.OK, (await Client.PostJson("/runs/int-result/tasks/a/events", """{"event":"TASK_SUCCEEDED","worker_id":"w1","result":{"rows":1}}""")).StatusCode);
        Assert.Equal("SUCCEEDED", (await Client.GetRun("int-result")).Str("status"));
        await Eventually.Until(async () => (await Stats())["run_index"]!["projection_lag"]!.GetValue<long>() == 0, TimeSpan.FromSeconds(15), "index caught up");
        Assert.DoesNotContain("int-result", (await Stats())["run_index"]!["quarantined"]!.ToJsonString());
    }

    [Fact]
    [Trait("Store", "sqlite")] // reads or damages the SQLite file itself
    public async Task A_corrupt_event_is_answered_at_once_as_unreadable_shown_in_health_and_quarantined_by_the_index()
    {
        Assert.Equal(HttpStatusCode.Created, (await Client.PostJson("/runs", """{"run_id":"int-template","tasks":[{"task_id":"a","type":"noop"}]}""")).StatusCode);
        await Client.AwaitRun("int-template", r => r.Str("status") == "SUCCEEDED", "template run done");
        CopyFirstEventWithGarbagePayload("run-int-template", "run-int-corrupt");

        var clock = Stopwatch.StartNew();
        var response = await Client.GetAsync("/runs/int-corrupt");
        clock.Stop();

        Assert.Equal(HttpStatusCode.InternalServerError, response.StatusCode);
        var problem = await response.ReadObject();
        Assert.Equal("Run history unreadable", problem.Str("title"));
        Assert.Contains("will not help", problem.Str("detail"));
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(5), $"answered after {clock.Elapsed}");
        Assert.False(response.Headers.Contains("Retry-After"));

        // /health names the run; the node still serves (200), degraded.
        var health = await (await Client.GetAsync("/health")).ReadObject();
        Assert.Equal("degraded", health["dependencies"]!["store"]!["state"]!.GetValue<string>());
        Assert.Contains("int-corrupt", health["dependencies"]!["store"]!["unreadable"]!.ToJsonString());

        // The index sets the event aside and goes on: a run submitted afterwards is indexed (its cancel is listed).
        await Eventually.Until(async () => (await Stats())["run_index"]!["quarantined"]!.AsArray()
            .Any(q => q!["run_id"]!.GetValue<string>() == "int-corrupt" && q["sequence_nr"]!.GetValue<long>() == 1),
            TimeSpan.FromSeconds(15), "event quarantined");
        Assert.Equal(HttpStatusCode.Created, (await Client.PostJson("/runs", """{"run_id":"int-after","tasks":[{"task_id":"h","type":"hang"}]}""")).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await Client.PutJson("/runs/int-after/cancel", """{"reason":"after the corrupt event","force":true}""")).StatusCode);
        await Eventually.Until(async () => (await Client.GetStringAsync("/runs/cancelled")).Contains("int-after"), TimeSpan.FromSeconds(15), "index flows on");
        var metrics = await Client.GetStringAsync("/metrics");
        Assert.Matches(@"(?m)^run_index_quarantined_events_total [1-9]", metrics);
    }

    [Fact]
    [Trait("Store", "sqlite")] // reads or damages the SQLite file itself
    public async Task Rejected_events_on_a_finished_run_are_counted_but_journalled_only_up_to_the_bound()
    {
        Assert.Equal(HttpStatusCode.Created, (await Client.PostJson("/runs", """{"run_id":"int-ignored","tasks":[{"task_id":"a","type":"x","pool":"external"}]}""")).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await Client.PostJson("/runs/int-ignored/tasks/a/events", """{"event":"TASK_STARTED","worker_id":"w1"}""")).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await Client.PostJson("/runs/int-ignored/tasks/a/events", """{"event":"TASK_SUCCEEDED","worker_id":"w1"}""")).StatusCode);
        var rowsBefore = JournalRows("run-int-ignored");

        const int sent = 300;
        for (var i = 0; i < sent; i++)
            Assert.Equal(HttpStatusCode.Conflict, (await Client.PostJson("/runs/int-ignored/tasks/a/events", """{"event":"TASK_SUCCEEDED","worker_id":"w1"}""")).StatusCode);

        var run = await Client.GetRun("int-ignored");
        Assert.Equal(sent, run["ignored_events_total"]!.GetValue<long>());
        Assert.Equal(WorkflowState.IgnoredKept, run["ignored_events"]!.AsArray().Count);
        Assert.True(JournalRows("run-int-ignored") - rowsBefore <= WorkflowState.IgnoredKept,
            $"{JournalRows("run-int-ignored") - rowsBefore} rows journalled for {sent} rejected events");
    }

    private async Task<System.Text.Json.Nodes.JsonObject> Stats() => await (await Client.GetAsync("/stats")).ReadObject();

    private SqliteConnection Open()
    {
        var db = new SqliteConnection($"Data Source={DbFile};Pooling=False");
        db.Open();
        using var busy = db.CreateCommand();
        busy.CommandText = "PRAGMA busy_timeout=30000;";
        busy.ExecuteNonQuery();
        return db;
    }

    private long JournalRows(string persistenceId)
    {
        using var db = Open();
        using var cmd = db.CreateCommand();
        cmd.CommandText = "SELECT COUNT(*) FROM journal WHERE persistence_id = @p";
        cmd.Parameters.AddWithValue("@p", persistenceId);
        return (long)cmd.ExecuteScalar()!;
    }

    /// <summary>
    /// A journal row whose payload bytes are damaged, as a bad disk or a stray write would leave it: the template's
    /// first event under a new persistence id, its payload replaced by bytes that are not JSON (run events carry no
    /// tags: the run index reads all events).
    /// </summary>
    private void CopyFirstEventWithGarbagePayload(string fromPid, string toPid)
    {
        using var db = Open();
        using var tx = db.BeginTransaction();
        string[] Columns(string table)
        {
            using var info = db.CreateCommand();
            info.Transaction = tx;
            info.CommandText = $"PRAGMA table_info({table})";
            using var r = info.ExecuteReader();
            var cols = new List<string>();
            while (r.Read()) cols.Add(r.GetString(1));
            return [.. cols];
        }
        void Exec(string sql)
        {
            using var cmd = db.CreateCommand();
            cmd.Transaction = tx;
            cmd.CommandText = sql;
            cmd.Parameters.AddWithValue("@from", fromPid);
            cmd.Parameters.AddWithValue("@to", toPid);
            cmd.Parameters.AddWithValue("@garbage", "\u0001not json at all {{{"u8.ToArray());
            cmd.ExecuteNonQuery();
        }
        var journal = Columns("journal").Where(c => c != "ordering").ToArray();
        var select = string.Join(", ", journal.Select(c => c switch { "persistence_id" => "@to", "message" => "@garbage", _ => c }));
        Exec($"INSERT INTO journal ({string.Join(", ", journal)}) SELECT {select} FROM journal WHERE persistence_id = @from AND sequence_number = 1");
        tx.Commit();
    }
}
