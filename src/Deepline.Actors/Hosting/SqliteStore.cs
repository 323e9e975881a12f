using LinqToDB;
using Microsoft.Data.Sqlite;

namespace Deepline.Actors.Hosting;

public sealed record PersistenceTarget(string ProviderName, string ConnectionString, string Description);

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
}
