using System.Data.Common;
using Akka.Persistence.Sql.Config;
using LinqToDB;
using Microsoft.Data.Sqlite;

namespace Deepline.Actors.Hosting;

public sealed record PersistenceTarget(string ProviderName, string ConnectionString, string Description)
{
    public bool IsPostgreSql => ProviderName.StartsWith("PostgreSQL", StringComparison.Ordinal);

    /// <summary>A new, unopened ADO.NET connection to the store (for the run index and the health probe).</summary>
    public DbConnection CreateConnection() =>
        IsPostgreSql ? new Npgsql.NpgsqlConnection(ConnectionString) : new SqliteConnection(ConnectionString);

    /// <summary>Records print their members; a connection string may hold a password.</summary>
    public override string ToString() => $"PersistenceTarget {{ {Description} }}";
}

/// <summary>The embedded store: one SQLite file under the data directory.</summary>
public static class SqliteStore
{
    public const string FileName = "deepline.db";

    /// <summary>
    /// Creates the directory and the file in WAL mode, so that readers never block the journal writer; the busy
    /// timeout makes concurrent writers queue instead of failing.
    /// </summary>
    public static PersistenceTarget Prepare(string dataDir)
    {
        var dir = Path.GetFullPath(dataDir);
        Directory.CreateDirectory(dir);
        var file = Path.Combine(dir, FileName);
        var connectionString = new SqliteConnectionStringBuilder { DataSource = file, DefaultTimeout = 30, Pooling = true }.ToString();
        using var connection = new SqliteConnection(connectionString);
        connection.Open();
        using var pragma = connection.CreateCommand();
        pragma.CommandText = "PRAGMA journal_mode=WAL;";
        pragma.ExecuteNonQuery();
        return new PersistenceTarget(ProviderName.SQLiteMS, connectionString, $"sqlite:{file}");
    }

    /// <summary>How long a writer waits inside SQLite for another writer's transaction (ms).</summary>
    public const int BusyTimeoutMs = 30_000;

    /// <summary>
    /// The journal, the snapshot store and the run index all write to the one file, and SQLite admits one writer at a
    /// time. Microsoft.Data.Sqlite answers a busy database by blocking its thread for 150 ms per retry, so every write
    /// that met another stalled for at least that long; SQLite's own busy handler instead waits in 1-100 ms steps
    /// and takes the lock as soon as it is free (docs/benchmarks-throughput.md). Set on every connection, since it is per connection and pooled
    /// connections are reused as they are. Other providers are left alone.
    /// </summary>
    public static void OnOpened(DbConnection connection)
    {
        if (connection is not SqliteConnection) return;
        using var pragma = connection.CreateCommand();
        pragma.CommandText = $"PRAGMA busy_timeout={BusyTimeoutMs};";
        pragma.ExecuteNonQuery();
    }

    /// <summary>The journal, its query side and the snapshot store open their connections with <see cref="OnOpened"/>.</summary>
    public static MultiDataOptionsSetup DataOptionsSetup(string providerName, string connectionString)
    {
        var options = new DataOptions().UseConnectionString(providerName, connectionString).UseAfterConnectionOpened(OnOpened);
        var setup = new MultiDataOptionsSetup();
        foreach (var plugin in new[] { "akka.persistence.journal.sql", "akka.persistence.query.journal.sql", "akka.persistence.snapshot-store.sql" })
            setup.AddDataOptions(plugin, options);
        return setup;
    }
}
