using Akka.Actor;
using Microsoft.Data.Sqlite;
using Npgsql;

namespace Deepline.Actors.Hosting;

/// <summary>
/// One group-committing writer per store in a node, shared by the journal and the snapshot store. A snapshot written on
/// a connection of its own was a transaction and an fsync of its own that held SQLite's write lock while the journal's
/// commits waited: sharding's remember-entities stores of all shards reach their snapshot at nearly the same time, and
/// the live cancels' p99 rose from 4.9 to 11.3 ms under retention (docs/benchmarks-retention.md). Through the shared
/// writer a snapshot rides in the journal's next transaction.
/// </summary>
public sealed class StoreWriters : IExtension
{
    private readonly ExtendedActorSystem _system;
    private readonly Lock _gate = new();
    private readonly Dictionary<string, Shared> _writers = new(StringComparer.Ordinal);

    private StoreWriters(ExtendedActorSystem system) => _system = system;

    public static StoreWriters For(ActorSystem system) => system.WithExtension<StoreWriters, Provider>();

    /// <summary>The store's writer, created by its first user; each user gives it back with <see cref="Release"/>.</summary>
    internal GroupCommitWriter Acquire(string providerName, string connectionString)
    {
        var key = providerName + "\n" + connectionString;
        lock (_gate)
        {
            if (!_writers.TryGetValue(key, out var shared))
                _writers[key] = shared = new Shared(Create(providerName, connectionString));
            shared.Users++;
            return shared.Writer;
        }
    }

    /// <summary>The last user's release stops the writer (after everything queued has committed or failed).</summary>
    internal void Release(GroupCommitWriter writer)
    {
        lock (_gate)
        {
            var (key, shared) = _writers.FirstOrDefault(w => ReferenceEquals(w.Value.Writer, writer));
            if (key is null || --shared.Users > 0) return;
            _writers.Remove(key);
        }
        writer.Dispose();
    }

    private GroupCommitWriter Create(string providerName, string connectionString)
    {
        var postgres = providerName.StartsWith("PostgreSQL", StringComparison.OrdinalIgnoreCase);
        Func<System.Data.Common.DbConnection> connect = postgres ? () => new NpgsqlConnection(connectionString) : () => new SqliteConnection(connectionString);
        var space = StoreSpace.For(_system);
        space.Watch(postgres ? null : Path.GetDirectoryName(Path.GetFullPath(new SqliteConnectionStringBuilder(connectionString).DataSource)));
        // On the shared store a node that was paused must not commit what it queued before (see PauseFence); PostgreSQL
        // itself aborts a transaction left idle half as long as the fence's limit, for a pause right before the COMMIT.
        var fence = postgres ? PauseFences.For(_system) : null;
        return new GroupCommitWriter(connect, falseLiteral: postgres ? "false" : "0")
        {
            Space = space,
            Fence = fence,
            IdleInTransactionMs = fence is null ? null : (int)Math.Max(250, fence.Limit.TotalMilliseconds / 2),
        };
    }

    private sealed class Shared(GroupCommitWriter writer)
    {
        public GroupCommitWriter Writer { get; } = writer;

        public int Users { get; set; }
    }

    public sealed class Provider : ExtensionIdProvider<StoreWriters>
    {
        public override StoreWriters CreateExtension(ExtendedActorSystem system) => new(system);
    }
}
