using System.Data.Common;
using Deepline.Actors.Hosting;
using Deepline.Actors.Index;
using Deepline.Domain;

namespace Deepline.Node.Ui;

/// <summary>A run as the list and the live feed show it: the index row, without tasks.</summary>
public sealed record RunSummary(
    string RunId,
    string WorkflowName,
    string ClientId,
    string Status,
    DateTimeOffset CreatedAt,
    DateTimeOffset UpdatedAt,
    int TaskCount,
    IReadOnlyDictionary<string, int> TaskCounts,
    string? CancelReason,
    string? CancelledBy,
    DateTimeOffset? CancelledAt,
    string? DeadlockReason,
    long LastSeq);

public sealed record RunListFilter(string? Status, string? ClientId, string? Workflow, int Limit, int Offset);

/// <summary>
/// Reads of the run index for the dashboard: the paged list and the change feed. Plain SQL that SQLite and
/// PostgreSQL both accept, like the index itself; the index is written only by its projection, never here.
/// </summary>
public sealed class UiRunQueries(PersistenceTarget store)
{
    private const string Columns =
        "run_id, workflow_name, client_id, status, created_at, updated_at, task_count, pending, queued, running, succeeded, failed, cancelled, skipped, " +
        "cancel_reason, cancelled_by, cancelled_at, deadlock_reason, last_seq";

    /// <summary>Newest first, one row more than asked so the caller knows whether another page exists.</summary>
    public async Task<IReadOnlyList<RunSummary>> ListAsync(RunListFilter f, CancellationToken ct)
    {
        var where = new List<string>();
        var args = new List<(string, object?)> { ("limit", f.Limit + 1), ("offset", f.Offset) };
        if (f.Status is not null) { where.Add("status = @status"); args.Add(("status", f.Status)); }
        if (f.ClientId is not null) { where.Add("client_id = @client"); args.Add(("client", f.ClientId)); }
        if (f.Workflow is not null)
        {
            // A substring match, case-insensitive on both stores; the caller's % and _ are literals, not wildcards.
            where.Add("LOWER(workflow_name) LIKE @workflow ESCAPE '!'");
            args.Add(("workflow", "%" + f.Workflow.ToLowerInvariant().Replace("!", "!!").Replace("%", "!%").Replace("_", "!_") + "%"));
        }
        var sql = $"SELECT {Columns} FROM run_index {(where.Count == 0 ? "" : "WHERE " + string.Join(" AND ", where))} " +
                  "ORDER BY created_at DESC, run_id LIMIT @limit OFFSET @offset";
        return await ReadAsync(sql, args, ct);
    }

    /// <summary>Rows whose run changed at or after <paramref name="sinceMs"/> (the run's own updated_at), oldest first.</summary>
    public Task<IReadOnlyList<RunSummary>> ChangedSinceAsync(long sinceMs, int limit, CancellationToken ct) =>
        ReadAsync($"SELECT {Columns} FROM run_index WHERE updated_at >= @since ORDER BY updated_at, run_id LIMIT @limit",
            [("since", sinceMs), ("limit", limit)], ct);

    /// <summary>The client a run belongs to, or null when the index does not hold the run (yet).</summary>
    public async Task<string?> ClientOfAsync(string runId, CancellationToken ct)
    {
        await using var db = await OpenAsync(ct);
        await using var cmd = Command(db, "SELECT client_id FROM run_index WHERE run_id = @id", [("id", runId)]);
        return await cmd.ExecuteScalarAsync(ct) as string;
    }

    /// <summary>The projection's position: it moves whenever the index applied anything, so an idle feed skips the row scan.</summary>
    public async Task<long> OffsetAsync(CancellationToken ct)
    {
        await using var db = await OpenAsync(ct);
        await using var cmd = Command(db, "SELECT offset_value FROM run_index_offset WHERE projection = @p", [("p", RunIndexStore.ProjectionName)]);
        return await cmd.ExecuteScalarAsync(ct) is { } o and not DBNull ? Convert.ToInt64(o) : 0;
    }

    private async Task<IReadOnlyList<RunSummary>> ReadAsync(string sql, IReadOnlyList<(string, object?)> args, CancellationToken ct)
    {
        await using var db = await OpenAsync(ct);
        await using var cmd = Command(db, sql, args);
        var rows = new List<RunSummary>();
        await using var r = await cmd.ExecuteReaderAsync(ct);
        while (await r.ReadAsync(ct))
        {
            var counts = new Dictionary<string, int>
            {
                ["pending"] = r.GetInt32(7), ["queued"] = r.GetInt32(8), ["running"] = r.GetInt32(9), ["succeeded"] = r.GetInt32(10),
                ["failed"] = r.GetInt32(11), ["cancelled"] = r.GetInt32(12), ["skipped"] = r.GetInt32(13),
            };
            rows.Add(new RunSummary(r.GetString(0), r.GetString(1), r.GetString(2), r.GetString(3),
                IndexColumns.At(r.GetInt64(4)), IndexColumns.At(r.GetInt64(5)), r.GetInt32(6), counts,
                r.IsDBNull(14) ? null : r.GetString(14), r.IsDBNull(15) ? null : r.GetString(15),
                r.IsDBNull(16) ? null : IndexColumns.At(r.GetInt64(16)), r.IsDBNull(17) ? null : r.GetString(17), r.GetInt64(18)));
        }
        return rows;
    }

    private async Task<DbConnection> OpenAsync(CancellationToken ct)
    {
        var db = store.CreateConnection();
        await db.OpenAsync(ct);
        SqliteStore.OnOpened(db);
        return db;
    }

    private static DbCommand Command(DbConnection db, string sql, IReadOnlyList<(string Name, object? Value)> args)
    {
        var cmd = db.CreateCommand();
        cmd.CommandText = sql;
        foreach (var (name, value) in args)
        {
            var p = cmd.CreateParameter();
            p.ParameterName = "@" + name;
            p.Value = value ?? DBNull.Value;
            cmd.Parameters.Add(p);
        }
        return cmd;
    }

    /// <summary>Whether <paramref name="status"/> is a run status name, exactly.</summary>
    public static bool IsStatus(string status) => Enum.GetNames<RunStatus>().Contains(status, StringComparer.Ordinal);
}
