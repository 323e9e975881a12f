using System.Data.Common;

namespace Deepline.Actors.Hosting;

/// <summary>
/// The snapshot store's writes as the journal writer runs them inside its transaction: Akka.Persistence.Sql's snapshot
/// table and columns, its insert-or-replace and its deletes (sequence number and creation time bounds, ticks).
/// </summary>
internal static class Snapshots
{
    private const string Upsert =
        "INSERT INTO snapshot (persistence_id, sequence_number, created, snapshot, manifest, serializer_id) VALUES (@pid, @seq, @created, @snapshot, @manifest, @serializer) " +
        "ON CONFLICT (persistence_id, sequence_number) DO UPDATE SET created = excluded.created, snapshot = excluded.snapshot, " +
        "manifest = excluded.manifest, serializer_id = excluded.serializer_id";

    private const string Remove =
        "DELETE FROM snapshot WHERE persistence_id = @pid AND sequence_number >= @from AND sequence_number <= @to AND created <= @created";

    /// <summary>
    /// A commit's snapshot changes in their order; on PostgreSQL a group of deletes with no save among them (retention
    /// removes a snapshot per run; saves are rare) is one statement instead of a round trip each.
    /// </summary>
    public static void WriteAll(DbConnection db, DbTransaction tx, IReadOnlyList<SnapshotChange> changes)
    {
        if (db is not Npgsql.NpgsqlConnection || changes.Count == 1 || changes.Any(c => c is SnapshotSave))
        {
            foreach (var change in changes) Write(db, tx, change);
            return;
        }
        foreach (var chunk in changes.Cast<SnapshotDelete>().Chunk(Sql.MaxIdsPerStatement))
        {
            var values = string.Join(", ", chunk.Select((_, i) => $"(@p{i}, @f{i}, @t{i}, @c{i})"));
            var parameters = chunk.SelectMany((d, i) => new (string, object?)[]
                { ($"p{i}", d.PersistenceId), ($"f{i}", d.FromSequenceNr), ($"t{i}", d.ToSequenceNr), ($"c{i}", d.CreatedAtOrBefore) }).ToArray();
            using var cmd = Sql.Command(db, tx, $"DELETE FROM snapshot AS s USING (VALUES {values}) AS v(pid, lo, hi, created) " +
                "WHERE s.persistence_id = v.pid AND s.sequence_number >= v.lo AND s.sequence_number <= v.hi AND s.created <= v.created", parameters);
            cmd.ExecuteNonQuery();
        }
    }

    public static void Write(DbConnection db, DbTransaction tx, SnapshotChange change)
    {
        using var cmd = change switch
        {
            SnapshotSave { Row: var r } => Sql.Command(db, tx, Upsert, ("pid", r.PersistenceId), ("seq", r.SequenceNumber), ("created", r.Created),
                ("snapshot", r.Payload), ("manifest", r.Manifest), ("serializer", r.SerializerId)),
            SnapshotDelete d => Sql.Command(db, tx, Remove, ("pid", d.PersistenceId), ("from", d.FromSequenceNr), ("to", d.ToSequenceNr),
                ("created", d.CreatedAtOrBefore)),
            _ => throw new ArgumentOutOfRangeException(nameof(change), change, "not a snapshot change"),
        };
        cmd.ExecuteNonQuery();
    }
}
