using System.Collections.Concurrent;
using System.Collections.Immutable;
using System.Data;
using System.Data.Common;
using Akka.Actor;
using Akka.Persistence;
using Akka.Persistence.Sql;
using Akka.Persistence.Sql.Config;
using Akka.Persistence.Sql.Journal;
using Akka.Persistence.Sql.Journal.Dao;
using Akka.Persistence.Sql.Journal.Types;
using Akka.Util;
using Microsoft.Data.Sqlite;
using Npgsql;

namespace Deepline.Actors.Hosting;

/// <summary>
/// Akka.Persistence.Sql's journal with its writes replaced by group commit (SQLite and PostgreSQL): every write waiting
/// while a commit is in flight goes into the next transaction, so many runs' events share one COMMIT and one fsync,
/// and a write is acknowledged only after the COMMIT that holds it returned (SQLite synchronous=FULL, PostgreSQL
/// synchronous_commit as the server has it). Rows, tags and the read side are the plugin's own (same tables, same
/// serializer), so replay, deletes and the query journal are unchanged. Measured before it on SQLite: one fsync per
/// journalled event, and linq2db's single-row insert was the largest managed cost.
/// </summary>
public sealed class GroupCommitJournal : SqlWriteJournal
{
    private readonly ByteArrayJournalSerializer _serializer;
    private readonly StoreWriters _writers;
    private readonly GroupCommitWriter _writer;
    private readonly RecoveryReads _reads;
    private readonly TimeSpan _deleteGrace;
    private readonly Dictionary<string, Task> _inFlight = new(StringComparer.Ordinal);

    public GroupCommitJournal(Akka.Configuration.Config journalConfig) : base(journalConfig)
    {
        var config = new JournalConfig(journalConfig.WithFallback(SqlPersistence.DefaultJournalConfiguration));
        _serializer = new ByteArrayJournalSerializer(config, Context.System.Serialization, config.PluginConfig.TagSeparator,
            config.TableConfig.EventJournalTable.UseWriterUuidColumn ? Guid.NewGuid().ToString("N") : null);
        _deleteGrace = JournalDeletes.GraceFor(config.ProviderName.StartsWith("PostgreSQL", StringComparison.OrdinalIgnoreCase));
        _writers = StoreWriters.For(Context.System);
        _writer = _writers.Acquire(config.ProviderName, config.ConnectionString);
        _reads = RecoveryReads.Journal(config.ProviderName, config.ConnectionString);
    }

    /// <summary>Transactions committed by the journal writers of this process (rows / commits shows the grouping).</summary>
    public static long Commits => GroupCommitWriter.TotalCommits;

    /// <summary>Journal rows written by the journal writers of this process.</summary>
    public static long Rows => GroupCommitWriter.TotalRows;

    protected override void PostStop()
    {
        _writers.Release(_writer);
        _reads.Dispose();
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
        await WrittenAsync(persistenceId);
        return await _reads.HighestSequenceNrAsync(persistenceId, fromSequenceNr, cancellationToken);
    }

    public override async Task ReplayMessagesAsync(IActorContext context, string persistenceId, long fromSequenceNr, long toSequenceNr, long max,
        Action<IPersistentRepresentation> recoveryCallback)
    {
        try
        {
            await base.ReplayMessagesAsync(context, persistenceId, fromSequenceNr, toSequenceNr, max, recoveryCallback);
        }
        catch (Exception e)
        {
            ConnectionLoss.Forget(e);
            throw;
        }
    }

    /// <summary>Rows marked deleted at once, removed only once the journal's readers are surely past them (<see cref="JournalDeletes"/>).</summary>
    protected override async Task DeleteMessagesToAsync(string persistenceId, long toSequenceNr, CancellationToken cancellationToken)
    {
        // A write of ours still in flight must land first, or its rows would escape the delete. The delete then shares
        // the writer's next transaction: on SQLite a delete of its own was one more fsync and held the write lock the
        // group commit waits for (retention deletes a run's journal for every run that finished).
        await WrittenAsync(persistenceId);
        await _writer.EnqueueDelete(new JournalDelete(persistenceId, toSequenceNr, DateTime.UtcNow - _deleteGrace));
    }

    /// <summary>Completes when this journal's write in flight for the entity (if any) has ended, whatever its outcome.</summary>
    private Task WrittenAsync(string persistenceId) =>
        _inFlight.TryGetValue(persistenceId, out var pending)
            ? pending.ContinueWith(_ => { }, CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default)
            : Task.CompletedTask;

    protected override bool ReceivePluginInternal(object message)
    {
        if (message is not WriteDone done) return base.ReceivePluginInternal(message);
        if (_inFlight.TryGetValue(done.PersistenceId, out var latest) && latest == done.Write) _inFlight.Remove(done.PersistenceId);
        return true;
    }

    private sealed record WriteDone(string PersistenceId, Task Write);
}

/// <summary>An entity's events up to a sequence number, deleted as <see cref="JournalDeletes"/> says.</summary>
internal sealed record JournalDelete(string PersistenceId, long ToSequenceNr, DateTime RemoveWrittenBefore);

/// <summary>A snapshot store's change, written in the journal writer's next transaction (see <see cref="StoreWriters"/>).</summary>
internal abstract record SnapshotChange;

/// <summary>A snapshot saved, replacing one at the same sequence number, as the plugin's insert-or-replace does.</summary>
internal sealed record SnapshotSave(Akka.Persistence.Sql.Snapshot.LongSnapshotRow Row) : SnapshotChange;

/// <summary>An entity's snapshots from one sequence number to another taken at or before a time (ticks), as the plugin deletes them.</summary>
internal sealed record SnapshotDelete(string PersistenceId, long FromSequenceNr, long ToSequenceNr, long CreatedAtOrBefore) : SnapshotChange;

/// <summary>
/// One connection on its own thread (the commit's fsync blocks it, not the thread pool), draining a queue: everything
/// pending goes into one transaction (SQLite: BEGIN IMMEDIATE) with re-bound statements; each caller's task completes
/// after that COMMIT.
/// </summary>
internal sealed class GroupCommitWriter : IDisposable
{
    private const int MaxRowsPerCommit = 1_000;

    private readonly BlockingCollection<Pending> _queue = new();
    private readonly Thread _thread;
    private readonly Func<DbConnection> _connect;
    private readonly string _falseLiteral;

    /// <param name="falseLiteral">How the store writes false in the journal's deleted column (SQLite 0, PostgreSQL false).</param>
    public GroupCommitWriter(Func<DbConnection> connect, string falseLiteral)
    {
        (_connect, _falseLiteral) = (connect, falseLiteral);
        _thread = new Thread(Run) { IsBackground = true, Name = "deepline-journal-writer" };
        _thread.Start();
    }

    /// <summary>PostgreSQL: idle_in_transaction_session_timeout of the writer's session (see the journal's constructor).</summary>
    public int? IdleInTransactionMs { get; init; }

    /// <summary>The shared store's fence against writes of a node that was paused (null on SQLite: one node, no one to race).</summary>
    public PauseFence? Fence { get; init; }

    /// <summary>Told of every commit and failure, so that a full disk is answered at once (see <see cref="StoreSpace"/>).</summary>
    public StoreSpace? Space { get; init; }

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

    public Task Enqueue(JournalRow[][] writes) => Add(new Pending(writes, new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously)));

    /// <summary>Completes after the COMMIT of the transaction that ran the delete (after every write queued before it).</summary>
    public Task EnqueueDelete(JournalDelete delete) =>
        Add(new Pending([], new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously)) { Delete = delete });

    /// <summary>Completes after the COMMIT of the transaction that made the change.</summary>
    public Task EnqueueSnapshot(SnapshotChange change) =>
        Add(new Pending([], new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously)) { Snapshot = change });

    private Task Add(Pending pending)
    {
        try
        {
            _queue.Add(pending);
        }
        catch (InvalidOperationException)
        {
            pending.Done.SetException(new ObjectDisposedException(nameof(GroupCommitWriter), "the journal is stopping"));
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
        using var connection = _connect();
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
            // Writes queued before a pause are failed, not written late: their callers hear a timeout.
            batch.RemoveAll(p => Fence?.Refusal(p.QueuedAt) is { } why && p.Done.TrySetException(new JournalFencedException(why)));
            if (batch.Count == 0) continue;
            try
            {
                // (Re)open first: a connection lost to a store restart must not fail every batch after it.
                if (connection.State != ConnectionState.Open)
                {
                    statements?.Dispose();
                    statements = null;
                    connection.Open();
                    SqliteStore.OnOpened(connection);
                    if (IdleInTransactionMs is { } idle)
                    {
                        using var set = connection.CreateCommand();
                        set.CommandText = $"SET idle_in_transaction_session_timeout = {idle}";
                        set.ExecuteNonQuery();
                    }
                }
                // Prepared per-row statements serve SQLite only; PostgreSQL gets multi-row statements per commit.
                if (connection is SqliteConnection) statements ??= Statements.Prepare(connection, _falseLiteral);
                Commit(connection, statements, batch);
                Space?.Committed();
                foreach (var p in batch) p.Done.TrySetResult();
            }
            catch (Exception failed) when (batch.Count > 1 && !ConnectionLoss.Forget(failed) && !StoreSpace.IsFull(failed) && failed is not JournalFencedException)
            {
                // One write (e.g. a duplicate sequence number) must not fail the others that shared its transaction; a
                // lost connection fails them all at once (below) instead of once each.
                foreach (var p in batch)
                {
                    try
                    {
                        Commit(connection, statements, [p]);
                        Space?.Committed();
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
                ConnectionLoss.Forget(e);
                Space?.Failed(e);
                foreach (var p in batch) p.Done.TrySetException(e);
            }
        }
        statements?.Dispose();
        while (_queue.TryTake(out var left))
            left.Done.TrySetException(new ObjectDisposedException(nameof(GroupCommitWriter), "the journal stopped"));
    }

    private void Commit(DbConnection connection, Statements? s, List<Pending> batch)
    {
        // SQLite: Serializable, i.e. BEGIN IMMEDIATE, so the write lock is taken up front and no reader upgrades into a deadlock.
        using var tx = connection.BeginTransaction(connection is SqliteConnection ? IsolationLevel.Serializable : IsolationLevel.ReadCommitted);
        var all = batch.SelectMany(p => p.Writes).SelectMany(w => w).ToList();
        var rows = all.Count;
        if (s is not null)
        {
            // In-process (SQLite): a prepared statement per row costs microseconds.
            s.Bind(tx);
            foreach (var row in all) s.Insert(row);
        }
        else
        {
            // Over the network each statement is a round trip: one multi-row INSERT per chunk instead.
            foreach (var chunk in all.Chunk(MaxRowsPerStatement)) InsertMany(connection, tx, chunk);
        }
        // After the inserts: a delete reaches only sequence numbers its entity wrote before asking, never a later write's.
        if (batch.Any(p => p.Delete is not null))
            JournalDeletes.DeleteAll(connection, tx, [.. batch.Select(p => p.Delete).OfType<JournalDelete>().Select(d => (d.PersistenceId, d.ToSequenceNr, d.RemoveWrittenBefore))]);
        if (batch.Any(p => p.Snapshot is not null))
            Snapshots.WriteAll(connection, tx, [.. batch.Select(p => p.Snapshot).OfType<SnapshotChange>()]);
        // The last look before the COMMIT: a pause during the INSERTs must not end in a late commit.
        if (Fence?.Refusal(batch.Min(p => p.QueuedAt)) is { } fenced) throw new JournalFencedException(fenced);
        tx.Commit();
        Interlocked.Increment(ref _commits);
        Interlocked.Add(ref _rows, rows);
        Interlocked.Increment(ref _totalCommits);
        Interlocked.Add(ref _totalRows, rows);
    }

    // 8 parameters per row, far below PostgreSQL's 65,535 per statement.
    private const int MaxRowsPerStatement = 500;

    /// <summary>The rows in one INSERT ... RETURNING, then their tags in one more; orderings matched by (persistence id, sequence nr).</summary>
    private void InsertMany(DbConnection connection, DbTransaction tx, JournalRow[] rows)
    {
        using var insert = connection.CreateCommand();
        insert.Transaction = tx;
        var values = new System.Text.StringBuilder();
        for (var i = 0; i < rows.Length; i++)
        {
            var r = rows[i];
            if (i > 0) values.Append(", ");
            values.Append($"(@c{i}, {_falseLiteral}, @p{i}, @s{i}, @m{i}, @f{i}, @i{i}, @w{i})");
            Add(insert, $"@c{i}", r.Timestamp);
            Add(insert, $"@p{i}", r.PersistenceId);
            Add(insert, $"@s{i}", r.SequenceNumber);
            Add(insert, $"@m{i}", r.Message);
            Add(insert, $"@f{i}", r.Manifest);
            Add(insert, $"@i{i}", r.Identifier);
            Add(insert, $"@w{i}", r.WriterUuid);
        }
        insert.CommandText = "INSERT INTO journal (created, deleted, persistence_id, sequence_number, message, manifest, identifier, writer_uuid) VALUES " +
                             values + " RETURNING ordering, persistence_id, sequence_number";
        var orderings = new Dictionary<(string, long), long>();
        using (var reader = insert.ExecuteReader())
            while (reader.Read()) orderings[(reader.GetString(1), reader.GetInt64(2))] = reader.GetInt64(0);

        var tagged = rows.Where(r => r.TagArray is { Length: > 0 }).SelectMany(r => r.TagArray.Select(tag => (Row: r, Tag: tag))).ToList();
        if (tagged.Count == 0) return;
        using var tags = connection.CreateCommand();
        tags.Transaction = tx;
        var tagValues = new System.Text.StringBuilder();
        for (var i = 0; i < tagged.Count; i++)
        {
            var (row, tag) = tagged[i];
            if (i > 0) tagValues.Append(", ");
            tagValues.Append($"(@o{i}, @t{i}, @s{i}, @p{i})");
            Add(tags, $"@o{i}", orderings[(row.PersistenceId, row.SequenceNumber)]);
            Add(tags, $"@t{i}", tag);
            Add(tags, $"@s{i}", row.SequenceNumber);
            Add(tags, $"@p{i}", row.PersistenceId);
        }
        tags.CommandText = "INSERT INTO tags (ordering_id, tag, sequence_nr, persistence_id) VALUES " + tagValues;
        tags.ExecuteNonQuery();
    }

    private static void Add(DbCommand command, string name, object? value)
    {
        var p = command.CreateParameter();
        p.ParameterName = name;
        p.Value = value ?? DBNull.Value;
        command.Parameters.Add(p);
    }

    private sealed record Pending(JournalRow[][] Writes, TaskCompletionSource Done)
    {
        public long QueuedAt { get; } = Environment.TickCount64;

        public JournalDelete? Delete { get; init; }

        public SnapshotChange? Snapshot { get; init; }

        public int RowCount { get; } = Writes.Sum(w => w.Length);
    }

    /// <summary>Prepared once, re-bound per row: the plugin's tables and columns, ordering from the row id.</summary>
    private sealed class Statements : IDisposable
    {
        private readonly DbCommand _journal;
        private readonly DbCommand _tag;

        private Statements(DbCommand journal, DbCommand tag) => (_journal, _tag) = (journal, tag);

        public static Statements Prepare(DbConnection connection, string falseLiteral)
        {
            var journal = connection.CreateCommand();
            journal.CommandText = "INSERT INTO journal (created, deleted, persistence_id, sequence_number, message, manifest, identifier, writer_uuid) " +
                                  $"VALUES (@created, {falseLiteral}, @pid, @seq, @message, @manifest, @identifier, @writer) RETURNING ordering";
            foreach (var name in new[] { "@created", "@pid", "@seq", "@message", "@manifest", "@identifier", "@writer" })
                journal.Parameters.Add(Parameter(journal, name));
            var tag = connection.CreateCommand();
            tag.CommandText = "INSERT INTO tags (ordering_id, tag, sequence_nr, persistence_id) VALUES (@ordering, @tag, @seq, @pid)";
            foreach (var name in new[] { "@ordering", "@tag", "@seq", "@pid" })
                tag.Parameters.Add(Parameter(tag, name));
            return new Statements(journal, tag);
        }

        private static DbParameter Parameter(DbCommand command, string name)
        {
            var p = command.CreateParameter();
            p.ParameterName = name;
            return p;
        }

        public void Bind(DbTransaction tx) => (_journal.Transaction, _tag.Transaction) = (tx, tx);

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
            var ordering = Convert.ToInt64(_journal.ExecuteScalar());
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

/// <summary>A journal write failed, not stored, because the node was paused long enough to have been downed (see <see cref="PauseFence"/>).</summary>
public sealed class JournalFencedException(string message) : TimeoutException(message);
