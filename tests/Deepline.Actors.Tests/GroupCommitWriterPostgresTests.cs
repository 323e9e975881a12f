using Akka.Persistence.Sql.Journal.Types;
using Deepline.Actors.Hosting;
using Deepline.Tests.Shared;
using Npgsql;

namespace Deepline.Actors.Tests;

/// <summary>
/// The journal writer on PostgreSQL, where it inserts many rows per statement: everything is stored with its ordering
/// and tags, writes waiting together share a commit, and a bad write fails alone.
/// </summary>
public sealed class GroupCommitWriterPostgresTests : IAsyncLifetime
{
    private PostgresServer _server = null!;
    private string _connection = null!;

    public async Task InitializeAsync()
    {
        _server = await PostgresServer.StartAsync();
        _connection = await _server.CreateDatabaseAsync("journal");
        await using var db = new NpgsqlConnection(_connection);
        await db.OpenAsync();
        await using var cmd = db.CreateCommand();
        // The plugin's PostgreSQL tables, as it creates them on first start.
        cmd.CommandText = """
            CREATE TABLE journal (ordering BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY, created BIGINT NOT NULL, deleted BOOLEAN NOT NULL,
              persistence_id TEXT NOT NULL, sequence_number BIGINT NOT NULL, message BYTEA NOT NULL, manifest TEXT NULL,
              identifier INTEGER NULL, writer_uuid TEXT NULL, CONSTRAINT journal_uq UNIQUE (persistence_id, sequence_number));
            CREATE TABLE tags (ordering_id BIGINT NOT NULL, tag TEXT NOT NULL, sequence_nr BIGINT NOT NULL, persistence_id TEXT NOT NULL,
              CONSTRAINT "PK_tags" PRIMARY KEY (ordering_id, tag));
            CREATE TABLE snapshot (persistence_id TEXT NOT NULL, sequence_number BIGINT NOT NULL, created BIGINT NOT NULL,
              snapshot BYTEA NOT NULL, manifest TEXT NOT NULL, serializer_id INTEGER NULL, PRIMARY KEY (persistence_id, sequence_number));
            """;
        await cmd.ExecuteNonQueryAsync();
    }

    public async Task DisposeAsync() => await _server.DisposeAsync();

    private GroupCommitWriter Writer() => new(() => new NpgsqlConnection(_connection), "false");

    private static JournalRow Row(string pid, long seq, params string[] tags) => new()
    {
        PersistenceId = pid, SequenceNumber = seq, Message = [1, 2, 3], Manifest = "m", Identifier = 42, Timestamp = seq, TagArray = tags,
    };

    [Fact]
    public async Task Writes_waiting_together_share_a_commit_and_keep_their_tags()
    {
        using var writer = Writer();
        await using (var other = new NpgsqlConnection(_connection))
        {
            await other.OpenAsync();
            await using var hold = await other.BeginTransactionAsync();
            await using (var lockTable = new NpgsqlCommand("LOCK TABLE journal IN EXCLUSIVE MODE", other, hold)) await lockTable.ExecuteNonQueryAsync();
            var writes = Enumerable.Range(0, 400).Select(i => writer.Enqueue([[Row($"run-{i % 40}", i / 40 + 1, i % 10 == 0 ? ["run-cancel"] : [])]])).ToList();
            Assert.DoesNotContain(writes, w => w.IsCompleted);
            await hold.CommitAsync();
            await Task.WhenAll(writes).WaitAsync(TimeSpan.FromSeconds(30));
        }

        Assert.Equal(400L, await Scalar("SELECT COUNT(*) FROM journal WHERE deleted = false"));
        Assert.Equal(40L, await Scalar("SELECT COUNT(*) FROM tags t JOIN journal j ON j.ordering = t.ordering_id AND j.persistence_id = t.persistence_id AND j.sequence_number = t.sequence_nr WHERE t.tag = 'run-cancel'"));
        Assert.Equal(400L, writer.Rows);
        Assert.InRange(writer.Commits, 1, 2);
    }

    [Fact]
    public async Task A_write_that_cannot_be_stored_fails_alone()
    {
        using var writer = Writer();
        await writer.Enqueue([[Row("run-a", 1)]]);
        var writes = Enumerable.Range(0, 20).Select(i => writer.Enqueue([[Row($"run-b{i}", 1, "run-cancel")]])).ToList();
        var duplicate = writer.Enqueue([[Row("run-a", 1)]]);

        await Assert.ThrowsAsync<PostgresException>(() => duplicate);
        await Task.WhenAll(writes).WaitAsync(TimeSpan.FromSeconds(30));
        Assert.Equal(21L, await Scalar("SELECT COUNT(*) FROM journal"));
        Assert.Equal(20L, await Scalar("SELECT COUNT(*) FROM tags"));
    }

    [Fact]
    public async Task After_its_connection_is_killed_the_writer_reconnects()
    {
        using var writer = Writer();
        await writer.Enqueue([[Row("run-a", 1)]]);
        await Scalar("SELECT COUNT(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = 'journal' AND pid <> pg_backend_pid()");

        // The writes that meet the dead connection may fail (their callers hear it); the ones after must not.
        var meeting = Enumerable.Range(2, 5).Select(seq => writer.Enqueue([[Row("run-a", seq)]])).ToList();
        await Task.WhenAll(meeting.Select(w => w.ContinueWith(_ => { }))).WaitAsync(TimeSpan.FromSeconds(30));
        await writer.Enqueue([[Row("run-a", 7)]]).WaitAsync(TimeSpan.FromSeconds(30));

        Assert.Equal(1L, await Scalar("SELECT COUNT(*) FROM journal WHERE persistence_id = 'run-a' AND sequence_number = 7"));
        Assert.Equal(meeting.Count(w => w.IsCompletedSuccessfully), await Scalar("SELECT COUNT(*) FROM journal WHERE sequence_number BETWEEN 2 AND 6"));
    }

    [Fact]
    public async Task Recovery_reads_see_committed_rows_and_survive_a_killed_connection()
    {
        using var writer = Writer();
        using var journal = RecoveryReads.Journal("PostgreSQL.15", _connection);
        using var snapshots = RecoveryReads.Snapshots("PostgreSQL.15", _connection);
        Assert.Equal(0, await journal.HighestSequenceNrAsync("run-r", 0, CancellationToken.None));
        Assert.False(await snapshots.HasSnapshotAsync("run-r", CancellationToken.None));

        await writer.Enqueue([[Row("run-r", 1), Row("run-r", 2), Row("run-r", 3)], [Row("run-other", 9)]]);
        await Scalar("INSERT INTO snapshot VALUES ('run-r', 2, 0, '\\x01', 'm', 1) RETURNING 1");
        Assert.Equal(3, await journal.HighestSequenceNrAsync("run-r", 0, CancellationToken.None));
        // The plugin's condition: only sequence numbers above the one recovery starts from.
        Assert.Equal(0, await journal.HighestSequenceNrAsync("run-r", 3, CancellationToken.None));
        Assert.True(await snapshots.HasSnapshotAsync("run-r", CancellationToken.None));

        await Scalar("SELECT COUNT(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = 'journal' AND pid <> pg_backend_pid()");
        // The read that meets the dead connection fails (recovery retries through the plugin's circuit breaker); the next opens anew.
        await Record.ExceptionAsync(() => journal.HighestSequenceNrAsync("run-r", 0, CancellationToken.None));
        Assert.Equal(3, await journal.HighestSequenceNrAsync("run-r", 0, CancellationToken.None));
    }

    [Fact]
    public async Task Snapshots_share_the_journals_commit_replace_at_the_same_number_and_are_deleted_within_bounds()
    {
        using var writer = Writer();
        await writer.Enqueue([[Row("warm", 1)]]);
        var commitsBefore = writer.Commits;
        await using (var other = new NpgsqlConnection(_connection))
        {
            await other.OpenAsync();
            await using var hold = await other.BeginTransactionAsync();
            await using (var lockTable = new NpgsqlCommand("LOCK TABLE journal IN EXCLUSIVE MODE", other, hold)) await lockTable.ExecuteNonQueryAsync();
            var pending = new List<Task>();
            for (var i = 1; i <= 20; i++) pending.Add(writer.Enqueue([[Row("run-s", i)]]));
            for (var i = 1; i <= 5; i++) pending.Add(writer.EnqueueSnapshot(new SnapshotSave(GroupCommitWriterTests.Snapshot("shard-1", i * 10, [(byte)i]))));
            pending.Add(writer.EnqueueSnapshot(new SnapshotSave(GroupCommitWriterTests.Snapshot("shard-1", 50, [9, 9]))));
            Assert.DoesNotContain(pending, w => w.IsCompleted);
            await hold.CommitAsync();
            await Task.WhenAll(pending).WaitAsync(TimeSpan.FromSeconds(30));
        }
        // The first may have gone alone before the rest arrived (it waits on the lock inside its transaction).
        Assert.InRange(writer.Commits - commitsBefore, 1, 2);
        Assert.Equal(5L, await Scalar("SELECT COUNT(*) FROM snapshot WHERE persistence_id = 'shard-1'"));
        Assert.Equal(2L, await Scalar("SELECT length(snapshot) FROM snapshot WHERE persistence_id = 'shard-1' AND sequence_number = 50"));

        await writer.EnqueueSnapshot(new SnapshotDelete("shard-1", 0, 30, DateTime.MaxValue.Ticks));
        Assert.Equal(2L, await Scalar("SELECT COUNT(*) FROM snapshot WHERE persistence_id = 'shard-1'"));
        await writer.EnqueueSnapshot(new SnapshotDelete("shard-1", 40, 40, 39));
        Assert.Equal(2L, await Scalar("SELECT COUNT(*) FROM snapshot WHERE persistence_id = 'shard-1'"));
        await writer.EnqueueSnapshot(new SnapshotDelete("shard-1", 40, 40, long.MaxValue));
        Assert.Equal(50L, await Scalar("SELECT sequence_number FROM snapshot WHERE persistence_id = 'shard-1'"));
    }

    [Fact]
    public async Task Deletes_that_share_a_commit_do_what_each_does_alone()
    {
        using var writer = Writer();
        // Three entities of four events; the first two events of each are old enough to be removed at once.
        var old = DateTime.UtcNow.AddHours(-1).Ticks;
        foreach (var pid in new[] { "run-d1", "run-d2", "run-d3" })
            await writer.Enqueue([[Aged(Row(pid, 1), old), Aged(Row(pid, 2), old), Aged(Row(pid, 3), DateTime.UtcNow.Ticks), Aged(Row(pid, 4), DateTime.UtcNow.Ticks)]]);
        foreach (var pid in new[] { "run-d1", "run-d2", "run-d3" })
            await writer.EnqueueSnapshot(new SnapshotSave(GroupCommitWriterTests.Snapshot(pid, 2, [2])));

        var commitsBefore = writer.Commits;
        await using (var other = new NpgsqlConnection(_connection))
        {
            await other.OpenAsync();
            await using var hold = await other.BeginTransactionAsync();
            await using (var lockTable = new NpgsqlCommand("LOCK TABLE journal IN EXCLUSIVE MODE", other, hold)) await lockTable.ExecuteNonQueryAsync();
            var before = DateTime.UtcNow.AddMinutes(-5);
            var pending = new List<Task>
            {
                writer.EnqueueDelete(new JournalDelete("run-d1", 4, before)),
                writer.EnqueueDelete(new JournalDelete("run-d2", 2, before)),
                writer.EnqueueDelete(new JournalDelete("run-d3", 4, before)),
                writer.EnqueueSnapshot(new SnapshotDelete("run-d1", 0, long.MaxValue, long.MaxValue)),
                writer.EnqueueSnapshot(new SnapshotDelete("run-d2", 0, 1, long.MaxValue)),
            };
            await hold.CommitAsync();
            await Task.WhenAll(pending).WaitAsync(TimeSpan.FromSeconds(30));
        }
        Assert.InRange(writer.Commits - commitsBefore, 1, 2);

        // run-d1 and run-d3: every row marked, the old ones removed; run-d2: up to 2 only, its highest marked row kept.
        Assert.Equal("3:t,4:t", await Rows("run-d1"));
        Assert.Equal("2:t,3:f,4:f", await Rows("run-d2"));
        Assert.Equal("3:t,4:t", await Rows("run-d3"));
        Assert.Equal(2L, await Scalar("SELECT COUNT(*) FROM snapshot"));
        Assert.Equal(0L, await Scalar("SELECT COUNT(*) FROM snapshot WHERE persistence_id = 'run-d1'"));
    }

    private static JournalRow Aged(JournalRow row, long createdTicks)
    {
        row.Timestamp = createdTicks;
        return row;
    }

    private async Task<string> Rows(string pid)
    {
        await using var db = new NpgsqlConnection(_connection);
        await db.OpenAsync();
        await using var cmd = new NpgsqlCommand("SELECT sequence_number, deleted FROM journal WHERE persistence_id = @p ORDER BY 1", db);
        cmd.Parameters.AddWithValue("p", pid);
        var rows = new List<string>();
        await using var r = await cmd.ExecuteReaderAsync();
        while (await r.ReadAsync()) rows.Add($"{r.GetInt64(0)}:{(r.GetBoolean(1) ? "t" : "f")}");
        return string.Join(",", rows);
    }

    private async Task<long> Scalar(string sql)
    {
        await using var db = new NpgsqlConnection(_connection);
        await db.OpenAsync();
        await using var cmd = new NpgsqlCommand(sql, db);
        return Convert.ToInt64(await cmd.ExecuteScalarAsync());
    }
}
