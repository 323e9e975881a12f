using System.Collections.Concurrent;
using System.Data;
using System.Data.Common;
using Microsoft.Data.Sqlite;
using Npgsql;

namespace Deepline.Actors.Hosting;

/// <summary>
/// The two point reads every persistent actor makes when it starts (its latest snapshot, its highest sequence number),
/// as prepared statements on a few connections of their own. Every new run makes both; through linq2db each one built
/// its SQL text again and together they were 28% of the thread pool's CPU on 5-task runs (docs/benchmarks-throughput.md).
/// The statements read the plugin's own tables with the plugin's own conditions (native mode: no metadata table). Each
/// instance prepares only its own statement: the journal and the snapshot store create their tables independently.
/// On SQLite the driver's async calls complete synchronously, so the read (an index lookup on a WAL reader, which never
/// waits for the writer) runs on the calling plugin actor's thread, as the plugin's own linq2db read did; PostgreSQL's
/// is truly asynchronous.
/// </summary>
internal sealed class RecoveryReads : IDisposable
{
    // A few are enough: each read takes microseconds, and a caller that finds none idle opens one more.
    private const int MaxIdle = 4;

    private const string HighestSql = "SELECT MAX(sequence_number) FROM journal WHERE persistence_id = @pid AND sequence_number > @after";
    private const string AnySnapshotSql = "SELECT 1 FROM snapshot WHERE persistence_id = @pid LIMIT 1";

    private readonly Func<DbConnection> _connect;
    private readonly string _sql;
    private readonly ConcurrentBag<Reader> _idle = new();
    private int _disposed;

    private RecoveryReads(Func<DbConnection> connect, string sql) => (_connect, _sql) = (connect, sql);

    /// <summary>Reads of the journal's highest sequence numbers.</summary>
    public static RecoveryReads Journal(string providerName, string connectionString) => For(providerName, connectionString, HighestSql);

    /// <summary>Reads of whether an entity has a snapshot.</summary>
    public static RecoveryReads Snapshots(string providerName, string connectionString) => For(providerName, connectionString, AnySnapshotSql);

    private static RecoveryReads For(string providerName, string connectionString, string sql) =>
        providerName.StartsWith("PostgreSQL", StringComparison.OrdinalIgnoreCase)
            ? new RecoveryReads(() => new NpgsqlConnection(connectionString), sql)
            : new RecoveryReads(() => new SqliteConnection(connectionString), sql);

    /// <summary>The highest sequence number journalled for the id above <paramref name="after"/>; 0 when there is none.</summary>
    public Task<long> HighestSequenceNrAsync(string persistenceId, long after, CancellationToken cancellationToken) =>
        WithReader(async (r, ct) =>
        {
            r.Command.Parameters[0].Value = persistenceId;
            r.Command.Parameters[1].Value = after;
            var max = await r.Command.ExecuteScalarAsync(ct);
            return max is null or DBNull ? 0L : Convert.ToInt64(max);
        }, cancellationToken);

    /// <summary>Whether any snapshot is stored for the id (a new entity has none, and then there is nothing to load).</summary>
    public Task<bool> HasSnapshotAsync(string persistenceId, CancellationToken cancellationToken) =>
        WithReader(async (r, ct) =>
        {
            r.Command.Parameters[0].Value = persistenceId;
            return await r.Command.ExecuteScalarAsync(ct) is not (null or DBNull);
        }, cancellationToken);

    private async Task<T> WithReader<T>(Func<Reader, CancellationToken, Task<T>> read, CancellationToken cancellationToken)
    {
        var reader = _idle.TryTake(out var idle) ? idle : await Open(cancellationToken);
        try
        {
            var result = await read(reader, cancellationToken);
            if (Volatile.Read(ref _disposed) == 0 && _idle.Count < MaxIdle) _idle.Add(reader);
            else reader.Dispose();
            return result;
        }
        catch (Exception e)
        {
            // A connection that failed once (server restart, broken socket) is not handed out again, nor, when the server
            // went away, are the idle ones beside it.
            reader.Dispose();
            if (ConnectionLoss.Forget(e))
                while (_idle.TryTake(out var stale)) stale.Dispose();
            throw;
        }
    }

    private async Task<Reader> Open(CancellationToken cancellationToken)
    {
        var connection = _connect();
        try
        {
            await connection.OpenAsync(cancellationToken);
            SqliteStore.OnOpened(connection);
            return Reader.Prepare(connection, _sql);
        }
        catch (Exception e)
        {
            await connection.DisposeAsync();
            ConnectionLoss.Forget(e);
            throw;
        }
    }

    public void Dispose()
    {
        Interlocked.Exchange(ref _disposed, 1);
        while (_idle.TryTake(out var reader)) reader.Dispose();
    }

    private sealed class Reader(DbConnection connection, DbCommand command) : IDisposable
    {
        public DbCommand Command { get; } = command;

        public static Reader Prepare(DbConnection connection, string sql)
        {
            var command = connection.CreateCommand();
            command.CommandText = sql;
            command.Parameters.Add(Parameter(command, "@pid", DbType.String));
            if (sql.Contains("@after", StringComparison.Ordinal)) command.Parameters.Add(Parameter(command, "@after", DbType.Int64));
            command.Prepare();
            return new Reader(connection, command);
        }

        private static DbParameter Parameter(DbCommand command, string name, DbType type)
        {
            var p = command.CreateParameter();
            p.ParameterName = name;
            p.DbType = type;
            // Npgsql prepares only statements whose parameters have values.
            p.Value = type == DbType.String ? "" : 0L;
            return p;
        }

        public void Dispose()
        {
            Command.Dispose();
            connection.Dispose();
        }
    }
}
