using System.Data.Common;

namespace Deepline.Actors.Hosting;

/// <summary>Plain ADO.NET commands over either store (SQLite or PostgreSQL): @name parameters, an optional transaction.</summary>
internal static class Sql
{
    /// <summary>A command with its parameters (names without the @; null becomes DBNull).</summary>
    public static DbCommand Command(DbConnection db, DbTransaction? tx, string sql, params (string Name, object? Value)[] parameters)
    {
        var cmd = db.CreateCommand();
        cmd.CommandText = sql;
        cmd.Transaction = tx;
        foreach (var (name, value) in parameters)
        {
            var p = cmd.CreateParameter();
            p.ParameterName = "@" + name;
            p.Value = value ?? DBNull.Value;
            cmd.Parameters.Add(p);
        }
        return cmd;
    }

    public static async Task ExecAsync(DbConnection db, DbTransaction? tx, string sql, CancellationToken ct, params (string Name, object? Value)[] parameters)
    {
        await using var cmd = Command(db, tx, sql, parameters);
        await cmd.ExecuteNonQueryAsync(ct);
    }

    /// <summary>Ids bound in one IN list (SQLite allows 32,766 parameters a statement, PostgreSQL 65,535).</summary>
    public const int MaxIdsPerStatement = 500;

    /// <summary>"(@p0, @p1, ...)" for <paramref name="values"/> and its parameters, named <paramref name="prefix"/> and the position.</summary>
    public static (string List, (string Name, object? Value)[] Parameters) In(string prefix, IReadOnlyList<string> values) =>
        ($"({string.Join(", ", values.Select((_, i) => "@" + prefix + i))})", [.. values.Select((v, i) => (prefix + i, (object?)v))]);
}
