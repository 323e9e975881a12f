using System.Data.Common;
using LinqToDB;
using Npgsql;

namespace Deepline.Actors.Hosting;

/// <summary>
/// The production store: a PostgreSQL database shared by every node of a cluster. Akka.Persistence.Sql creates its
/// journal, snapshot and tag tables on first start (linq2db's PostgreSQL 15 dialect); the run index creates its own.
/// </summary>
public static class PostgresStore
{
    /// <summary>
    /// Checks that the server answers before the actor system starts, so that a wrong host or password is one clear
    /// line at start-up rather than a journal that fails on the first write. The description never holds the password.
    /// </summary>
    public static PersistenceTarget Prepare(string connectionString)
    {
        var builder = new NpgsqlConnectionStringBuilder(connectionString);
        var description = $"postgresql:{builder.Host}:{builder.Port}/{builder.Database ?? builder.Username}";
        try
        {
            using var db = new NpgsqlConnection(connectionString);
            db.Open();
            using var cmd = db.CreateCommand();
            cmd.CommandText = "SELECT 1";
            cmd.ExecuteScalar();
        }
        catch (Exception e) when (e is NpgsqlException or DbException or TimeoutException or System.Net.Sockets.SocketException)
        {
            throw new StoreUnavailableException($"orchestrator.store.connection: cannot reach PostgreSQL at {description}: {e.Message}", e);
        }
        return new PersistenceTarget(ProviderName.PostgreSQL15, connectionString, description);
    }
}

/// <summary>The store named in the configuration cannot be used; the message says which and why, without secrets.</summary>
public sealed class StoreUnavailableException(string message, Exception? inner = null) : Exception(message, inner);
