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

    private object? Scalar(string sql) => SqliteSql.Scalar(_connection, sql);
}
