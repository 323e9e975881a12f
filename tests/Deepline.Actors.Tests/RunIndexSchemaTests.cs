using Deepline.Actors.Hosting;
using Deepline.Actors.Index;
using Deepline.Domain;
using Microsoft.Data.Sqlite;

namespace Deepline.Actors.Tests;

/// <summary>The run index schema is versioned: an older index is migrated in place, keeping its rows; a newer one is refused.</summary>
public sealed class RunIndexSchemaTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("deepline-index-schema-").FullName;
    private readonly string _connection;

    public RunIndexSchemaTests() => _connection = SqliteStore.Prepare(_dir).ConnectionString;

    public void Dispose()
    {
        SqliteConnection.ClearAllPools();
        try { Directory.Delete(_dir, true); } catch (IOException) { }
    }

    [Fact]
    public async Task An_index_from_before_schema_versions_is_migrated_and_keeps_its_rows()
    {
        // The layout of the last release without versions: every run row carried its whole state as a blob.
        Exec("""
            CREATE TABLE run_index (run_id VARCHAR(128) NOT NULL PRIMARY KEY, last_seq BIGINT NOT NULL, workflow_name TEXT NOT NULL,
              client_id TEXT NOT NULL, status VARCHAR(16) NOT NULL, created_at BIGINT NOT NULL, updated_at BIGINT NOT NULL,
              task_count INTEGER NOT NULL, pending INTEGER NOT NULL, queued INTEGER NOT NULL, running INTEGER NOT NULL,
              succeeded INTEGER NOT NULL, failed INTEGER NOT NULL, cancelled INTEGER NOT NULL, skipped INTEGER NOT NULL,
              stale_base BIGINT NULL, heartbeat_base BIGINT NULL, timeout_base BIGINT NULL, pending_stale_s INTEGER NULL,
              workflow_stale_s INTEGER NULL, heartbeat_timeout_s INTEGER NULL, stale_deadline BIGINT NULL,
              heartbeat_deadline BIGINT NULL, timeout_deadline BIGINT NULL, cancel_reason TEXT NULL, cancelled_by TEXT NULL,
              cancelled_at BIGINT NULL, state BYTEA NOT NULL)
            """);
        Exec("CREATE TABLE run_index_offset (projection VARCHAR(64) NOT NULL PRIMARY KEY, offset_value BIGINT NOT NULL, thresholds VARCHAR(64) NOT NULL)");
        Exec("""
            INSERT INTO run_index VALUES ('old-run', 4, 'wf', 'team-a', 'CANCELLED', 1000, 2000, 1, 0, 0, 0, 0, 0, 1, 0,
              NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 'user: wrong input', 'ops', 3000, x'7B7D')
            """);
        Exec("INSERT INTO run_index_offset VALUES ('run-index', 42, '900/3600/60')");

        var store = new RunIndexStore(() => new SqliteConnection(_connection), new DetectorThresholds(900, 3600, 60));
        Assert.Equal(42, await store.InitializeAsync());

        Assert.Equal(RunIndexStore.SchemaVersion, Convert.ToInt32(Scalar("SELECT version FROM run_index_schema")));
        Assert.Equal(0L, Scalar("SELECT COUNT(*) FROM pragma_table_info('run_index') WHERE name = 'state'"));
        var row = Assert.Single(await store.CancelledAsync(10, 0, null));
        Assert.Equal(("old-run", "team-a", "user: wrong input", "ops"), (row.RunId, row.ClientId, row.CancelReason, row.CancelledBy));

        // Starting again changes nothing.
        Assert.Equal(42, await store.InitializeAsync());
        Assert.Single(await store.CancelledAsync(10, 0, null));
    }

    [Fact]
    public async Task An_index_written_by_a_newer_build_is_refused_not_altered()
    {
        var store = new RunIndexStore(() => new SqliteConnection(_connection), new DetectorThresholds(900, 3600, 60));
        await store.InitializeAsync();
        Exec($"UPDATE run_index_schema SET version = {RunIndexStore.SchemaVersion + 1}");

        var refused = await Assert.ThrowsAsync<InvalidOperationException>(() => store.InitializeAsync());
        Assert.Contains($"newer than this build's {RunIndexStore.SchemaVersion}", refused.Message);
        Assert.Equal(RunIndexStore.SchemaVersion + 1, Convert.ToInt32(Scalar("SELECT version FROM run_index_schema")));
    }

    [Fact]
    public async Task The_migrated_table_has_exactly_the_row_columns_the_store_writes()
    {
        // The CREATE is migration history and the column list lives apart from it: the two must not drift.
        var store = new RunIndexStore(() => new SqliteConnection(_connection), new DetectorThresholds(900, 3600, 60));
        await store.InitializeAsync();

        var columns = new List<string>();
        using (var db = new SqliteConnection(_connection))
        {
            db.Open();
            using var cmd = db.CreateCommand();
            cmd.CommandText = "SELECT name FROM pragma_table_info('run_index') ORDER BY cid";
            using var r = cmd.ExecuteReader();
            while (r.Read()) columns.Add(r.GetString(0));
        }

        Assert.Equal(RunIndexStore.RowColumns, columns);
        Assert.All(RunIndexStore.RowListColumns, c => Assert.Contains(c, columns));
    }

    private void Exec(string sql) => SqliteSql.Exec(_connection, sql);

    private object? Scalar(string sql) => SqliteSql.Scalar(_connection, sql);
}
