using System.Collections.Concurrent;
using System.Collections.Immutable;
using System.Data;
using Akka.Actor;
using Akka.Persistence;
using Akka.Persistence.Sql;
using Akka.Persistence.Sql.Config;
using Akka.Persistence.Sql.Journal;
using Akka.Persistence.Sql.Journal.Dao;
using Akka.Persistence.Sql.Journal.Types;
using Akka.Util;
using Microsoft.Data.Sqlite;

namespace Deepline.Actors.Hosting;

/// <summary>
/// Akka.Persistence.Sql's journal with its SQLite writes replaced by group commit: every write waiting while a commit
/// is in flight goes into the next transaction, so many runs' events share one COMMIT and one fsync, and a write is
/// acknowledged only after the COMMIT that holds it returned (synchronous=FULL, as before). Rows, tags and the read
/// side are the plugin's own (same tables, same serializer), so replay, deletes and the query journal are unchanged.
/// Measured before it: one fsync per journalled event, and linq2db's single-row insert was the largest managed cost.
/// </summary>
public sealed class SqliteGroupCommitJournal : SqlWriteJournal
{
    private readonly ByteArrayJournalSerializer _serializer;
    private readonly SqliteJournalWriter _writer;
    private readonly Dictionary<string, Task> _inFlight = new(StringComparer.Ordinal);

    public SqliteGroupCommitJournal(Akka.Configuration.Config journalConfig) : base(journalConfig)
    {
        var config = new JournalConfig(journalConfig.WithFallback(SqlPersistence.DefaultJournalConfiguration));
        _serializer = new ByteArrayJournalSerializer(config, Context.System.Serialization, config.PluginConfig.TagSeparator,
            config.TableConfig.EventJournalTable.UseWriterUuidColumn ? Guid.NewGuid().ToString("N") : null);
        _writer = new SqliteJournalWriter(config.ConnectionString);
    }

    /// <summary>Transactions committed by the SQLite journal writers of this process (rows / commits shows the grouping).</summary>
    public static long Commits => SqliteJournalWriter.TotalCommits;

    /// <summary>Journal rows written by the SQLite journal writers of this process.</summary>
    public static long Rows => SqliteJournalWriter.TotalRows;

    protected override void PostStop()
    {
        _writer.Dispose();
        base.PostStop();
    }

    protected override Task<IImmutableList<Exception>> WriteMessagesAsync(IEnumerable<AtomicWrite> messages, CancellationToken cancellationToken)
    {
        var writes = messages.ToList();
        var serialized = _serializer.Serialize(writes, DateTime.UtcNow.Ticks);
        // A write that cannot be serialized is rejected alone (the persistent actor hears "rejected"); the rest are stored.
        var rows = serialized.Where(t => t.IsSuccess).Select(t => t.Success.Value).ToArray();
        // Null marks a write that was stored, as Akka.Persistence expects.
        var rejections = serialized.Select(t => t.IsSuccess ? null! : t.Failure.Value).ToImmutableList();
        var stored = rows.Length == 0 ? Task.CompletedTask : _writer.Enqueue(rows);

        var persistenceId = writes[0].PersistenceId;
        _inFlight[persistenceId] = stored;
        var self = Self;
        stored.ContinueWith(t => self.Tell(new WriteDone(persistenceId, t)), CancellationToken.None,
            TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
        return stored.ContinueWith(t =>
        {
            if (t.IsFaulted) throw t.Exception!.InnerException!;
            return (IImmutableList<Exception>)rejections;
        }, CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
    }

    public override async Task<long> ReadHighestSequenceNrAsync(string persistenceId, long fromSequenceNr, CancellationToken cancellationToken)
    {
        // Recovery asks for the highest sequence number; a write of ours still in flight must land first.
        if (_inFlight.TryGetValue(persistenceId, out var pending))
            await pending.ContinueWith(_ => { }, CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
        return await base.ReadHighestSequenceNrAsync(persistenceId, fromSequenceNr, cancellationToken);
    }

    protected override bool ReceivePluginInternal(object message)
    {
        if (message is not WriteDone done) return base.ReceivePluginInternal(message);
        if (_inFlight.TryGetValue(done.PersistenceId, out var latest) && latest == done.Write) _inFlight.Remove(done.PersistenceId);
        return true;
    }

    private sealed record WriteDone(string PersistenceId, Task Write);
}

/// <summary>
/// One SQLite connection on its own thread (fsync blocks it, not the thread pool), draining a queue: everything pending
/// goes into one BEGIN IMMEDIATE ... COMMIT with prepared statements; each caller's task completes after that COMMIT.
/// </summary>
internal sealed class SqliteJournalWriter : IDisposable
{
    private const int MaxRowsPerCommit = 1_000;

    private readonly BlockingCollection<Pending> _queue = new();
    private readonly Thread _thread;
    private readonly string _connectionString;

    public SqliteJournalWriter(string connectionString)
    {
        _connectionString = connectionString;
        _thread = new Thread(Run) { IsBackground = true, Name = "deepline-journal-writer" };
        _thread.Start();
    }

    /// <summary>Commits and rows of every writer in the process, for the benchmark (rows per commit shows the grouping).</summary>
    public static long TotalCommits => Interlocked.Read(ref _totalCommits);

    public static long TotalRows => Interlocked.Read(ref _totalRows);

    /// <summary>This writer's commits and rows.</summary>
    public long Commits => Interlocked.Read(ref _commits);

    public long Rows => Interlocked.Read(ref _rows);

    private static long _totalCommits;
    private static long _totalRows;
    private long _commits;
    private long _rows;

    public Task Enqueue(JournalRow[][] writes)
    {
        var pending = new Pending(writes, new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously));
        try
        {
            _queue.Add(pending);
        }
        catch (InvalidOperationException)
        {
            pending.Done.SetException(new ObjectDisposedException(nameof(SqliteJournalWriter), "the journal is stopping"));
        }
        return pending.Done.Task;
    }

    public void Dispose()
    {
        _queue.CompleteAdding();
        _thread.Join(TimeSpan.FromSeconds(30));
    }

    private void Run()
    {
        using var connection = new SqliteConnection(_connectionString);
        var statements = default(Statements);
        foreach (var first in _queue.GetConsumingEnumerable())
        {
            var batch = new List<Pending> { first };
            var rows = first.RowCount;
            while (rows < MaxRowsPerCommit && _queue.TryTake(out var next))
            {
                batch.Add(next);
                rows += next.RowCount;
            }
            try
            {
                statements ??= Statements.Open(connection);
                Commit(connection, statements, batch);
                foreach (var p in batch) p.Done.TrySetResult();
            }
            catch (Exception) when (batch.Count > 1)
            {
                // One write (e.g. a duplicate sequence number) must not fail the others that shared its transaction.
                foreach (var p in batch)
                {
                    try
                    {
                        Commit(connection, statements!, [p]);
                        p.Done.TrySetResult();
                    }
                    catch (Exception e)
                    {
                        p.Done.TrySetException(e);
                    }
                }
            }
            catch (Exception e)
            {
                first.Done.TrySetException(e);
                if (connection.State != ConnectionState.Open) statements = null;
            }
        }
        statements?.Dispose();
        while (_queue.TryTake(out var left))
            left.Done.TrySetException(new ObjectDisposedException(nameof(SqliteJournalWriter), "the journal stopped"));
    }

    private void Commit(SqliteConnection connection, Statements s, List<Pending> batch)
    {
        using var tx = connection.BeginTransaction(deferred: false);
        s.Bind(tx);
        var rows = 0;
        foreach (var pending in batch)
            foreach (var write in pending.Writes)
                foreach (var row in write)
                {
                    s.Insert(row);
                    rows++;
                }
        tx.Commit();
        Interlocked.Increment(ref _commits);
        Interlocked.Add(ref _rows, rows);
        Interlocked.Increment(ref _totalCommits);
        Interlocked.Add(ref _totalRows, rows);
    }

    private sealed record Pending(JournalRow[][] Writes, TaskCompletionSource Done)
    {
        public int RowCount { get; } = Writes.Sum(w => w.Length);
    }

    /// <summary>Prepared once, re-bound per row: the plugin's tables and columns, ordering from the row id.</summary>
    private sealed class Statements : IDisposable
    {
        private readonly SqliteCommand _journal;
        private readonly SqliteCommand _tag;

        private Statements(SqliteCommand journal, SqliteCommand tag) => (_journal, _tag) = (journal, tag);

        public static Statements Open(SqliteConnection connection)
        {
            if (connection.State != ConnectionState.Open)
            {
                connection.Open();
                SqliteStore.OnOpened(connection);
            }
            var journal = connection.CreateCommand();
            journal.CommandText = "INSERT INTO journal (created, deleted, persistence_id, sequence_number, message, manifest, identifier, writer_uuid) " +
                                  "VALUES (@created, 0, @pid, @seq, @message, @manifest, @identifier, @writer) RETURNING ordering";
            foreach (var name in new[] { "@created", "@pid", "@seq", "@message", "@manifest", "@identifier", "@writer" })
                journal.Parameters.Add(new SqliteParameter { ParameterName = name });
            var tag = connection.CreateCommand();
            tag.CommandText = "INSERT INTO tags (ordering_id, tag, sequence_nr, persistence_id) VALUES (@ordering, @tag, @seq, @pid)";
            foreach (var name in new[] { "@ordering", "@tag", "@seq", "@pid" })
                tag.Parameters.Add(new SqliteParameter { ParameterName = name });
            return new Statements(journal, tag);
        }

        public void Bind(SqliteTransaction tx) => (_journal.Transaction, _tag.Transaction) = (tx, tx);

        public void Insert(JournalRow row)
        {
            var p = _journal.Parameters;
            p[0].Value = row.Timestamp;
            p[1].Value = row.PersistenceId;
            p[2].Value = row.SequenceNumber;
            p[3].Value = row.Message;
            p[4].Value = (object?)row.Manifest ?? DBNull.Value;
            p[5].Value = row.Identifier is { } id ? id : DBNull.Value;
            p[6].Value = (object?)row.WriterUuid ?? DBNull.Value;
            var ordering = (long)_journal.ExecuteScalar()!;
            foreach (var tag in row.TagArray ?? [])
            {
                var t = _tag.Parameters;
                t[0].Value = ordering;
                t[1].Value = tag;
                t[2].Value = row.SequenceNumber;
                t[3].Value = row.PersistenceId;
                _tag.ExecuteNonQuery();
            }
        }

        public void Dispose()
        {
            _journal.Dispose();
            _tag.Dispose();
        }
    }
}
