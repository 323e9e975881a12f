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

/// <summary>The writer's two lanes: a cancel's write is committed next, alone, whatever routine backlog is queued.</summary>
public sealed class CommitQueueTests
{
    [Fact]
    public void An_urgent_write_is_taken_before_a_backlog_of_routine_writes_and_alone()
    {
        var queue = new CommitQueue<string>(maxRows: 100, _ => 1);
        for (var i = 0; i < 300; i++) queue.Add($"routine-{i}", urgent: false);
        queue.Add("cancel-1", urgent: true);
        queue.Add("cancel-2", urgent: true);

        Assert.Equal(["cancel-1", "cancel-2"], queue.TakeBatch());
        // Then the backlog in arrival order, one commit's worth at a time.
        Assert.Equal(Enumerable.Range(0, 100).Select(i => $"routine-{i}"), queue.TakeBatch());
        queue.Add("cancel-3", urgent: true);
        Assert.Equal(["cancel-3"], queue.TakeBatch());
        Assert.Equal(Enumerable.Range(100, 100).Select(i => $"routine-{i}"), queue.TakeBatch());
    }

    [Fact]
    public void A_commit_holds_at_most_its_row_budget_but_never_splits_a_write()
    {
        var queue = new CommitQueue<int>(maxRows: 10, rows => rows);
        foreach (var rows in new[] { 4, 4, 4, 30, 1 }) queue.Add(rows, urgent: false);

        Assert.Equal([4, 4, 4], queue.TakeBatch());
        Assert.Equal([30], queue.TakeBatch());
        Assert.Equal([1], queue.TakeBatch());
    }

    [Fact]
    public async Task Closing_lets_the_writer_drain_what_was_queued_and_refuses_new_writes()
    {
        var queue = new CommitQueue<string>(maxRows: 100, _ => 1);
        var waiting = Task.Run(queue.TakeBatch);
        Assert.True(queue.Add("a", urgent: false));
        Assert.Equal(["a"], await waiting.WaitAsync(TimeSpan.FromSeconds(10)));

        queue.Add("b", urgent: false);
        queue.Close();
        Assert.False(queue.Add("c", urgent: true));
        Assert.Equal(["b"], queue.TakeBatch());
        Assert.Null(queue.TakeBatch());
    }
}

public sealed class UrgentWriteTests
{
    private static Akka.Persistence.AtomicWrite Write(params object[] payloads) => new(
        System.Collections.Immutable.ImmutableList.CreateRange(payloads.Select((p, i) =>
            (Akka.Persistence.IPersistentRepresentation)new Akka.Persistence.Persistent(p, i + 1, "run-x"))));

    [Fact]
    public void Cancel_records_tagged_or_not_are_urgent_and_task_transitions_are_not()
    {
        var at = DateTimeOffset.UtcNow;
        var cancel = new Deepline.Domain.RunCancelRequested("stop", "ops", false, at);
        Assert.True(GroupCommitJournal.IsUrgent(Write(cancel)));
        Assert.True(GroupCommitJournal.IsUrgent(Write(new Akka.Persistence.Journal.Tagged(cancel, ["run-cancel"]))));
        Assert.True(GroupCommitJournal.IsUrgent(Write(new Deepline.Domain.TaskStarted("a", "w", at), new Deepline.Domain.RunCancelFinalised("ops", at))));
        Assert.False(GroupCommitJournal.IsUrgent(Write(new Deepline.Domain.TaskStarted("a", "w", at), new Deepline.Domain.TaskSucceeded("a", null, at))));
    }
}
