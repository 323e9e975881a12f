using Akka.Persistence.Sql.Journal.Types;
using Deepline.Actors.Hosting;
using Microsoft.Data.Sqlite;

namespace Deepline.Actors.Tests;

/// <summary>
/// The SQLite journal writer groups concurrent writes into shared commits, acknowledges each only once it is stored,
/// and keeps one bad write (a sequence number already taken) from failing the others that shared its transaction.
/// </summary>
public sealed class GroupCommitWriterTests : IDisposable
{
    private readonly TempDir _dir = new();
    private readonly string _connection;

    public GroupCommitWriterTests()
    {
        _connection = SqliteStore.Prepare(_dir.Path).ConnectionString;
        // The plugin's SQLite tables, as it creates them on first start.
        SqliteSql.Exec(_connection, """
            CREATE TABLE journal (ordering INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT, created INTEGER NOT NULL, deleted Bit NOT NULL,
              persistence_id NVarChar(255) NOT NULL, sequence_number INTEGER NOT NULL, message VarBinary NOT NULL,
              manifest NVarChar(500) NULL, identifier INTEGER NULL, writer_uuid NVarChar(128) NULL);
            CREATE UNIQUE INDEX journal_uq ON journal (persistence_id, sequence_number);
            CREATE TABLE tags (ordering_id INTEGER NOT NULL, tag NVarChar(64) NOT NULL, sequence_nr INTEGER NOT NULL,
              persistence_id NVarChar(255) NOT NULL, CONSTRAINT PK_tags PRIMARY KEY (ordering_id, tag));
            CREATE TABLE snapshot (persistence_id NVarChar(255) NOT NULL, sequence_number INTEGER NOT NULL, created INTEGER NOT NULL,
              snapshot VarBinary NULL, manifest NVarChar(500) NULL, serializer_id INTEGER NULL,
              CONSTRAINT PK_snapshot PRIMARY KEY (persistence_id, sequence_number));
            """);
    }

    public void Dispose()
    {
        SqliteConnection.ClearAllPools();
        _dir.Dispose();
    }

    private static JournalRow Row(string pid, long seq, params string[] tags) => new()
    {
        PersistenceId = pid, SequenceNumber = seq, Message = [1, 2, 3], Manifest = "m", Identifier = 42, Timestamp = seq, TagArray = tags,
    };

    [Fact]
    public async Task Concurrent_writes_share_commits_and_are_all_stored_with_their_tags()
    {
        using var writer = new GroupCommitWriter(() => new SqliteConnection(_connection), "0");
        // Another writer holds the database while the 400 writes arrive, as a slow commit would: they wait together.
        await using (var other = new SqliteConnection(_connection))
        {
            other.Open();
            await using var hold = other.BeginTransaction(deferred: false);
            var writes = Enumerable.Range(0, 400).Select(i => writer.Enqueue([[Row($"run-{i % 40}", i / 40 + 1, i % 10 == 0 ? ["run-cancel"] : [])]])).ToList();
            Assert.DoesNotContain(writes, w => w.IsCompleted);
            hold.Commit();
            await Task.WhenAll(writes).WaitAsync(TimeSpan.FromSeconds(30));
        }

        Assert.Equal(400L, Scalar("SELECT COUNT(*) FROM journal"));
        Assert.Equal(40L, Scalar("SELECT COUNT(*) FROM tags WHERE tag = 'run-cancel'"));
        // Each tag row points at its own journal row.
        Assert.Equal(40L, Scalar("SELECT COUNT(*) FROM tags t JOIN journal j ON j.ordering = t.ordering_id AND j.persistence_id = t.persistence_id AND j.sequence_number = t.sequence_nr"));
        Assert.Equal(400L, writer.Rows);
        // The first write may have started its own transaction before the rest arrived; everything else shares one.
        Assert.InRange(writer.Commits, 1, 2);
    }

    [Fact]
    public async Task A_write_that_cannot_be_stored_fails_alone()
    {
        using var writer = new GroupCommitWriter(() => new SqliteConnection(_connection), "0");
        await writer.Enqueue([[Row("run-a", 1)]]);

        var writes = new List<Task>();
        for (var i = 0; i < 20; i++)
            writes.Add(writer.Enqueue([[Row($"run-b{i}", 1)]]));
        var duplicate = writer.Enqueue([[Row("run-a", 1)]]);
        for (var i = 0; i < 20; i++)
            writes.Add(writer.Enqueue([[Row($"run-c{i}", 1), Row($"run-c{i}", 2)]]));

        await Assert.ThrowsAsync<SqliteException>(() => duplicate);
        await Task.WhenAll(writes).WaitAsync(TimeSpan.FromSeconds(30));
        Assert.Equal(1 + 20 + 40L, Scalar("SELECT COUNT(*) FROM journal"));
    }

    [Fact]
    public async Task Snapshots_share_the_journals_commit_replace_at_the_same_number_and_are_deleted_within_bounds()
    {
        using var writer = new GroupCommitWriter(() => new SqliteConnection(_connection), "0");
        await writer.Enqueue([[Row("warm", 1)]]);
        var commitsBefore = writer.Commits;
        // Queued behind a held database with journal writes, as a shard's snapshot is behind the runs' events: one commit.
        await using (var other = new SqliteConnection(_connection))
        {
            other.Open();
            await using var hold = other.BeginTransaction(deferred: false);
            var pending = new List<Task>();
            for (var i = 1; i <= 20; i++) pending.Add(writer.Enqueue([[Row("run-s", i)]]));
            for (var i = 1; i <= 5; i++) pending.Add(writer.EnqueueSnapshot(new SnapshotSave(Snapshot("shard-1", i * 10, [(byte)i]))));
            pending.Add(writer.EnqueueSnapshot(new SnapshotSave(Snapshot("shard-1", 50, [9, 9]))));
            Assert.DoesNotContain(pending, w => w.IsCompleted);
            hold.Commit();
            await Task.WhenAll(pending).WaitAsync(TimeSpan.FromSeconds(30));
        }
        // The first may have begun its transaction alone before the rest arrived; everything else shares one.
        Assert.InRange(writer.Commits - commitsBefore, 1, 2);
        Assert.Equal(5L, Scalar("SELECT COUNT(*) FROM snapshot WHERE persistence_id = 'shard-1'"));
        Assert.Equal(new byte[] { 9, 9 }, Scalar("SELECT snapshot FROM snapshot WHERE persistence_id = 'shard-1' AND sequence_number = 50"));

        // Up to 30 (the shard's "older batches"), then one exact number with a time bound that spares it, then without.
        await writer.EnqueueSnapshot(new SnapshotDelete("shard-1", 0, 30, DateTime.MaxValue.Ticks));
        Assert.Equal(2L, Scalar("SELECT COUNT(*) FROM snapshot WHERE persistence_id = 'shard-1'"));
        await writer.EnqueueSnapshot(new SnapshotDelete("shard-1", 40, 40, 39));
        Assert.Equal(2L, Scalar("SELECT COUNT(*) FROM snapshot WHERE persistence_id = 'shard-1'"));
        await writer.EnqueueSnapshot(new SnapshotDelete("shard-1", 40, 40, long.MaxValue));
        Assert.Equal(50L, Scalar("SELECT sequence_number FROM snapshot WHERE persistence_id = 'shard-1'"));
    }

    internal static Akka.Persistence.Sql.Snapshot.LongSnapshotRow Snapshot(string pid, long seq, byte[] payload) => new()
    {
        PersistenceId = pid, SequenceNumber = seq, Created = seq, Payload = payload, Manifest = "m", SerializerId = 1,
    };

    private object? Scalar(string sql) => SqliteSql.Scalar(_connection, sql);
}
