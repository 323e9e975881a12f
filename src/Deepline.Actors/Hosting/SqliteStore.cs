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

    /// <summary>The SQLite file, for the journal marker; null for server stores.</summary>
    public string? File { get; init; }

    /// <summary>What the start-up check found worth a line in the log (a store restored from a backup); null: nothing.</summary>
    public string? Notice { get; init; }
}

/// <summary>The store failed its start-up check; the message names the file and what is wrong, for one line on stderr.</summary>
public sealed class StoreCheckException(string message) : Exception(message);

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
        string? notice;
        var asideWal = SetAsideForeignWal(file);
        try
        {
            using var connection = new SqliteConnection(connectionString);
            connection.Open();
            // Before anything else touches the file: a damaged store must stop start-up with a sentence, not later
            // inside the actor system with a stack trace (or worse, serve what is left of it).
            var check = Scalar(connection, "PRAGMA quick_check(1);") as string;
            if (!string.Equals(check, "ok", StringComparison.OrdinalIgnoreCase))
                throw new StoreCheckException($"{file} is damaged (SQLite quick_check: {check}); restore it from a backup");
            Scalar(connection, "PRAGMA journal_mode=WAL;");
            notice = CheckMarker(file, connection);
            if (asideWal is not null) notice = (notice ?? $"{file} is not in WAL mode") + $"; the write-ahead log beside it was not its own and was moved to {asideWal}";
        }
        catch (SqliteException ex)
        {
            throw new StoreCheckException(Unusable(file, ex, FreeBytes(dir)));
        }
        finally
        {
            SqliteConnection.ClearAllPools();
        }
        return new PersistenceTarget(ProviderName.SQLiteMS, connectionString, $"sqlite:{file}") { File = file, Notice = notice };
    }

    /// <summary>
    /// Why the file cannot be used, in the operator's terms: a full disk (SQLITE_FULL, or an I/O error with almost no
    /// space left) is said to be one, with the free space, rather than sending the operator to restore a backup of a
    /// file that is fine.
    /// </summary>
    public static string Unusable(string file, SqliteException ex, long? freeBytes)
    {
        const long AlmostNone = 1 << 20;
        var full = ex.SqliteErrorCode == 13 || (ex.SqliteErrorCode is 10 or 14 && freeBytes is < AlmostNone);
        return full
            ? $"the disk holding {file} is full ({freeBytes?.ToString("N0", System.Globalization.CultureInfo.InvariantCulture) ?? "unknown"} bytes free; " +
              $"SQLite: {ex.Message.TrimEnd('.')}): free space on it and start again; nothing in the store is lost"
            : $"{file} is not a readable SQLite database ({ex.Message.TrimEnd('.')}); restore it from a backup or move it away";
    }

    /// <summary>Free bytes on the file system holding <paramref name="path"/>, or null when it cannot be told.</summary>
    public static long? FreeBytes(string path)
    {
        try
        {
            return new DriveInfo(path).AvailableFreeSpace;
        }
        catch (Exception e) when (e is IOException or ArgumentException or UnauthorizedAccessException)
        {
            return null;
        }
    }

    /// <summary>Beside the database: the highest journal ordering the node has seen committed.</summary>
    public static string MarkerPath(string databaseFile) => databaseFile + ".highwater";

    /// <summary>
    /// The journal can only grow. If it now ends below the ordering recorded beside it, committed events are gone
    /// (typically the -wal file was deleted after a crash, or an older copy of the file was put back): refuse to
    /// start rather than serve a history with holes as if it were complete. The marker lives outside the database
    /// because whatever removed the events would have removed a marker kept inside it too.
    /// </summary>
    private static string? CheckMarker(string file, SqliteConnection connection)
    {
        var marker = MarkerPath(file);
        var restored = ReadBackupRecord(connection);
        if (restored is { } b)
        {
            // A backup put in place of the file: it ends where it was taken, below the marker, on purpose. Once started
            // it is the store; its record goes, so that a later loss of events is caught again.
            var current = MaxOrdering(connection);
            if (current != b.Ordering)
                throw new StoreCheckException($"{file} is a backup taken at journal ordering {b.Ordering}, but its journal now ends at {current}: it was changed since; take a new backup");
            Scalar(connection, "DROP TABLE deepline_backup;");
            var lost = File.Exists(marker) && long.TryParse(File.ReadAllText(marker).Trim(), System.Globalization.NumberStyles.Integer,
                System.Globalization.CultureInfo.InvariantCulture, out var before) && before > current ? before - current : 0;
            WriteMarker(file, current);
            return $"{file} was restored from a backup taken at {DateTimeOffset.FromUnixTimeMilliseconds(b.TakenAtMs):yyyy-MM-dd'T'HH:mm:ss'Z'} " +
                   $"(journal ordering {current})" + (lost > 0 ? $"; the {lost} journal event(s) written after that backup are not in it" : "");
        }
        if (!File.Exists(marker)) return null;
        if (!long.TryParse(File.ReadAllText(marker).Trim(), System.Globalization.NumberStyles.Integer, System.Globalization.CultureInfo.InvariantCulture, out var recorded))
            throw new StoreCheckException($"{marker} does not hold a journal ordering; delete it to start without the check");
        var now = MaxOrdering(connection);
        if (now < recorded)
            throw new StoreCheckException(
                $"{file} went backwards: its journal ends at ordering {now}, but {recorded} was committed before " +
                $"(recorded in {marker}); events are missing (was its -wal file deleted?). Restore the files, or delete the marker to accept the loss");
        return null;
    }

    /// <summary>
    /// The store always runs in WAL mode; a backup copy is written in rollback mode (one self-contained file). So a
    /// -wal file beside a database file that is not in WAL mode belongs to the file that was there before a restore,
    /// and SQLite would replay it into the restored one (it opens any -wal it finds): it is moved aside, with the -shm,
    /// before the file is opened. Returns where it went, or null.
    /// </summary>
    private static string? SetAsideForeignWal(string file)
    {
        var wal = file + "-wal";
        if (!File.Exists(file) || !File.Exists(wal)) return null;
        var header = new byte[100];
        using (var stream = new FileStream(file, FileMode.Open, FileAccess.Read, FileShare.ReadWrite))
            if (stream.ReadAtLeast(header, header.Length, throwOnEndOfStream: false) < header.Length) return null;
        // Bytes 18 and 19 of the header: 1 for a rollback journal, 2 for WAL.
        if (header[18] == 2 || header[19] == 2) return null;
        var aside = wal + ".before-restore";
        File.Move(wal, aside, overwrite: true);
        if (File.Exists(file + "-shm")) File.Delete(file + "-shm");
        return aside;
    }

    /// <summary>The record <see cref="Backup"/> leaves in a copy; null in a live store.</summary>
    private static (long Ordering, long TakenAtMs)? ReadBackupRecord(SqliteConnection connection)
    {
        if (Scalar(connection, "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = 'deepline_backup';") is not long n || n == 0) return null;
        using var command = connection.CreateCommand();
        command.CommandText = "SELECT journal_ordering, taken_at FROM deepline_backup WHERE id = 1;";
        using var reader = command.ExecuteReader();
        return reader.Read() ? (reader.GetInt64(0), reader.GetInt64(1)) : null;
    }

    /// <summary>
    /// An online, consistent copy of the store into <paramref name="destination"/> (a new file), by SQLite's backup API:
    /// one read transaction over the whole file, so the copy is the store as of one commit, while the node keeps
    /// writing (WAL: readers do not block the writer). The copy records where its journal ends and holds no store
    /// lease, so that a node started on it knows it is a restored backup (see <see cref="Prepare"/>) and takes the
    /// store at once. Returns the journal ordering the copy ends at. Blocking: call it off any actor's thread.
    /// </summary>
    public static long Backup(string connectionString, string destination, DateTimeOffset now)
    {
        using var source = new SqliteConnection(connectionString);
        source.Open();
        OnOpened(source);
        var target = new SqliteConnectionStringBuilder { DataSource = destination, Mode = SqliteOpenMode.ReadWriteCreate, Pooling = false }.ToString();
        using (var copy = new SqliteConnection(target))
        {
            copy.Open();
            source.BackupDatabase(copy);
            // One self-contained file: no -wal beside it to lose on the way to where it is kept.
            Scalar(copy, "PRAGMA journal_mode=DELETE;");
            var ordering = MaxOrdering(copy);
            Scalar(copy, "CREATE TABLE deepline_backup (id INTEGER NOT NULL PRIMARY KEY, journal_ordering BIGINT NOT NULL, taken_at BIGINT NOT NULL);");
            using (var insert = copy.CreateCommand())
            {
                insert.CommandText = "INSERT INTO deepline_backup (id, journal_ordering, taken_at) VALUES (1, @o, @t);";
                insert.Parameters.AddWithValue("@o", ordering);
                insert.Parameters.AddWithValue("@t", now.ToUnixTimeMilliseconds());
                insert.ExecuteNonQuery();
            }
            if (Scalar(copy, "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = 'deepline_store_lease';") is long leases && leases > 0)
                Scalar(copy, "DELETE FROM deepline_store_lease;");
            var check = Scalar(copy, "PRAGMA quick_check(1);") as string;
            if (!string.Equals(check, "ok", StringComparison.OrdinalIgnoreCase))
                throw new IOException($"the backup copy failed its check (SQLite quick_check: {check})");
            return ordering;
        }
    }

    /// <summary>The journal's highest ordering; 0 while the journal table does not exist yet.</summary>
    public static long MaxOrdering(SqliteConnection connection)
    {
        if (Scalar(connection, "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = 'journal';") is not long tables || tables == 0) return 0;
        return Scalar(connection, "SELECT COALESCE(MAX(ordering), 0) FROM journal;") is long n ? n : 0;
    }

    /// <summary>Writes the marker atomically (a reader sees the old value or the new one, never a torn one).</summary>
    public static void WriteMarker(string databaseFile, long ordering)
    {
        var marker = MarkerPath(databaseFile);
        var temp = marker + ".tmp";
        File.WriteAllText(temp, ordering.ToString(System.Globalization.CultureInfo.InvariantCulture));
        File.Move(temp, marker, overwrite: true);
    }

    private static object? Scalar(SqliteConnection connection, string sql)
    {
        using var command = connection.CreateCommand();
        command.CommandText = sql;
        return command.ExecuteScalar();
    }

    /// <summary>How long a writer waits inside SQLite for another writer's transaction (ms).</summary>
    public const int BusyTimeoutMs = 30_000;

    /// <summary>PRAGMA journal_size_limit: the size the WAL file is cut back to after a checkpoint.</summary>
    public const long WalSizeLimitBytes = 16L * 1024 * 1024;

    /// <summary>
    /// The journal, the snapshot store and the run index all write to the one file, and SQLite admits one writer at a
    /// time. Microsoft.Data.Sqlite answers a busy database by blocking its thread for 150 ms per retry, so every write
    /// that met another stalled for at least that long; SQLite's own busy handler instead waits in 1-100 ms steps
    /// and takes the lock as soon as it is free (docs/benchmarks-throughput.md). Set on every connection, since it is per connection and pooled
    /// connections are reused as they are. Other providers are left alone. The WAL file is cut back to
    /// <see cref="WalSizeLimitBytes"/> after each checkpoint: a checkpoint held back by a long read lets it grow, and
    /// SQLite otherwise keeps it at its largest for good (+17 MiB in the retention soak, docs/benchmarks-retention.md).
    /// </summary>
    public static void OnOpened(DbConnection connection)
    {
        if (connection is not SqliteConnection) return;
        using var pragma = connection.CreateCommand();
        pragma.CommandText = $"PRAGMA busy_timeout={BusyTimeoutMs}; PRAGMA journal_size_limit={WalSizeLimitBytes};";
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
