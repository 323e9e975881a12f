using System.Data.Common;

namespace Deepline.Actors.Hosting;

/// <summary>
/// Deleting an entity's events up to a sequence number (the monitor, the resource coordinator and sharding's
/// remember-entities do after a snapshot). The plugin removes the rows at once, but the run index and the cancellation
/// mirror read the journal table behind its head (<see cref="Index.JournalTail"/>), and on PostgreSQL an ordering
/// they have not reached yet that vanishes looks exactly like a transaction still open: each such delete held both of
/// them for the tail's whole hole timeout. Here every row is marked deleted at once (the tails pass marked rows), and
/// only rows written more than <see cref="Grace"/> ago are removed; the later ones go with a later delete. SQLite has
/// no holes (one writer gives the orderings in commit order), so there every row goes at once (<see cref="GraceFor"/>):
/// marked rows kept five minutes were most of a busy node's remember-entities journal. The highest row stays, as the
/// plugin keeps it, so the entity's highest sequence number survives.
/// </summary>
public static class JournalDeletes
{
    /// <summary>How old a deleted row must be before it is removed: far longer than the tails trail the journal's head.</summary>
    public static readonly TimeSpan Grace = TimeSpan.FromMinutes(5);

    /// <summary>The grace on a store: <see cref="Grace"/> where a tail can wait on a hole (PostgreSQL), none on SQLite.</summary>
    public static TimeSpan GraceFor(bool postgres) => postgres ? Grace : TimeSpan.Zero;

    /// <summary>Marks the rows up to <paramref name="toSequenceNr"/> deleted and removes those written before <paramref name="removeWrittenBefore"/>.</summary>
    public static async Task DeleteAsync(DbConnection db, string persistenceId, long toSequenceNr, DateTime removeWrittenBefore, CancellationToken ct = default)
    {
        await using var tx = await db.BeginTransactionAsync(ct);
        Delete(db, tx, persistenceId, toSequenceNr, removeWrittenBefore);
        await tx.CommitAsync(ct);
    }

    /// <summary>
    /// Many entities' deletes inside <paramref name="tx"/>, as the journal's writer runs those a commit groups. On
    /// PostgreSQL each statement is a round trip on the writer's one connection: under retention (every finished run
    /// deletes its journal) three per run took a share of the writer's time that the live commits waited behind, so
    /// there they go as three statements for the whole group. SQLite runs them one by one, in process.
    /// </summary>
    public static void DeleteAll(DbConnection db, DbTransaction tx, IReadOnlyList<(string PersistenceId, long ToSequenceNr, DateTime RemoveWrittenBefore)> deletes)
    {
        if (db is not Npgsql.NpgsqlConnection || deletes.Count == 1)
        {
            foreach (var (pid, to, before) in deletes) Delete(db, tx, pid, to, before);
            return;
        }
        foreach (var chunk in deletes.Chunk(Sql.MaxIdsPerStatement))
        {
            var values = string.Join(", ", chunk.Select((_, i) => $"(@p{i}, @t{i}, @b{i})"));
            var parameters = chunk.SelectMany((d, i) => new (string, object?)[] { ($"p{i}", d.PersistenceId), ($"t{i}", d.ToSequenceNr), ($"b{i}", d.RemoveWrittenBefore.Ticks) })
                .Append(("yes", true)).ToArray();
            Exec($"UPDATE journal AS j SET deleted = @yes FROM (VALUES {values}) AS v(pid, upto, before) " +
                 "WHERE j.persistence_id = v.pid AND j.sequence_number <= v.upto", parameters);
            Exec($"DELETE FROM journal AS j USING (VALUES {values}) AS v(pid, upto, before) " +
                 "WHERE j.persistence_id = v.pid AND j.sequence_number <= v.upto AND j.created < v.before " +
                 "AND j.sequence_number < (SELECT MAX(m.sequence_number) FROM journal m WHERE m.persistence_id = v.pid AND m.deleted = @yes)", parameters);
            Exec($"DELETE FROM tags AS t USING (VALUES {values}) AS v(pid, upto, before) " +
                 "WHERE t.persistence_id = v.pid AND t.sequence_nr <= v.upto AND NOT EXISTS (SELECT 1 FROM journal j WHERE j.ordering = t.ordering_id)", parameters);
        }

        void Exec(string sql, (string, object?)[] parameters)
        {
            using var cmd = Sql.Command(db, tx, sql, parameters);
            cmd.ExecuteNonQuery();
        }
    }

    /// <summary>The same inside <paramref name="tx"/>: the journal's writer runs it in the transaction of the writes it groups.</summary>
    public static void Delete(DbConnection db, DbTransaction tx, string persistenceId, long toSequenceNr, DateTime removeWrittenBefore)
    {
        (string, object?) pid = ("pid", persistenceId), to = ("to", toSequenceNr), yes = ("yes", true);
        Exec("UPDATE journal SET deleted = @yes WHERE persistence_id = @pid AND sequence_number <= @to", pid, to, yes);
        Exec("""
            DELETE FROM journal WHERE persistence_id = @pid AND sequence_number <= @to AND created < @before
              AND sequence_number < (SELECT MAX(sequence_number) FROM journal WHERE persistence_id = @pid AND deleted = @yes)
            """, pid, to, yes, ("before", removeWrittenBefore.Ticks));
        // Tags of rows written before events stopped being tagged: nothing reads them any more.
        Exec("DELETE FROM tags WHERE persistence_id = @pid AND sequence_nr <= @to AND NOT EXISTS " +
             "(SELECT 1 FROM journal j WHERE j.ordering = tags.ordering_id)", pid, to);

        void Exec(string sql, params (string, object?)[] parameters)
        {
            using var cmd = Sql.Command(db, tx, sql, parameters);
            cmd.ExecuteNonQuery();
        }
    }
}
