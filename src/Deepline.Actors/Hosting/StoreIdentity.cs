using System.Data.Common;

namespace Deepline.Actors.Hosting;

/// <summary>
/// A store's identity: a cluster id written into the store at its first start. Every node carries it as a cluster role
/// (<see cref="RoleOf"/>), so a node pointed at another store is told apart from the cluster's members the moment it
/// joins (<see cref="StoreGuard"/>).
/// </summary>
public static class StoreIdentity
{
    public const string RolePrefix = "store-";

    /// <summary>Reads the store's cluster id, creating it on first start (one row; concurrent first starts agree).</summary>
    public static string Ensure(PersistenceTarget target)
    {
        using var db = target.CreateConnection();
        db.Open();
        SqliteStore.OnOpened(db);
        Exec(db, "CREATE TABLE IF NOT EXISTS deepline_cluster (id INTEGER NOT NULL PRIMARY KEY, cluster_id VARCHAR(64) NOT NULL, created_at BIGINT NOT NULL)");
        Exec(db, "INSERT INTO deepline_cluster (id, cluster_id, created_at) VALUES (1, @c, @t) ON CONFLICT (id) DO NOTHING",
            ("c", Guid.NewGuid().ToString("N")), ("t", DateTimeOffset.UtcNow.ToUnixTimeMilliseconds()));
        using var read = db.CreateCommand();
        read.CommandText = "SELECT cluster_id FROM deepline_cluster WHERE id = 1";
        return (string)read.ExecuteScalar()!;
    }

    /// <summary>The role naming a store: short enough to read in /cluster/members, long enough never to collide by chance.</summary>
    public static string RoleOf(string clusterId) => RolePrefix + clusterId[..12];

    private static void Exec(DbConnection db, string sql, params (string Name, object Value)[] parameters)
    {
        using var cmd = db.CreateCommand();
        cmd.CommandText = sql;
        foreach (var (name, value) in parameters)
        {
            var p = cmd.CreateParameter();
            p.ParameterName = "@" + name;
            p.Value = value;
            cmd.Parameters.Add(p);
        }
        cmd.ExecuteNonQuery();
    }
}
