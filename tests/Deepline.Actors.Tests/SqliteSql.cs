using Microsoft.Data.Sqlite;

namespace Deepline.Actors.Tests;

/// <summary>One statement against a SQLite store file, on a connection of its own (what a test sets up or reads back).</summary>
public static class SqliteSql
{
    public static void Exec(string connectionString, string sql)
    {
        using var db = new SqliteConnection(connectionString);
        db.Open();
        using var cmd = db.CreateCommand();
        cmd.CommandText = sql;
        cmd.ExecuteNonQuery();
    }

    public static object? Scalar(string connectionString, string sql)
    {
        using var db = new SqliteConnection(connectionString);
        db.Open();
        using var cmd = db.CreateCommand();
        cmd.CommandText = sql;
        return cmd.ExecuteScalar();
    }
}
