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
