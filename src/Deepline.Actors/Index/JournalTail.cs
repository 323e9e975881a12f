using System.Data.Common;
using Akka;
using Akka.Persistence.Query;
using Akka.Streams.Dsl;
using Akka.Util;
using Deepline.Actors.Serialization;
using Deepline.Actors.Workflows;
using Microsoft.Data.Sqlite;

namespace Deepline.Actors.Index;

/// <summary>
/// The journal's rows in ordering order, read straight from its table, for the run index on SQLite. There a single
/// writer commits orderings in increasing order (SQLite serialises write transactions and the ordering is assigned
/// inside them), so a row can never appear below one already read and no gap needs waiting for: the query journal's
/// sequence actor, which reads every ordering a second time to find gaps (PostgreSQL's concurrent writers leave them),
/// and its per-page tag lookup are pure cost here. Only run events are deserialized; other entities' rows (sharding's
/// remember-entities) only move the offset. PostgreSQL keeps the query journal.
/// </summary>
public sealed class JournalTail(Func<DbConnection> connect, Akka.Serialization.Serialization serialization)
{
    /// <summary>How long the tail waits before reading again after a page that was not full (the plugin waits 1 s).</summary>
    public static readonly TimeSpan PollInterval = TimeSpan.FromMilliseconds(50);

    /// <summary>A tail on SQLite; null for any other store.</summary>
    public static JournalTail? For(Func<DbConnection> connect, Akka.Serialization.Serialization serialization)
    {
        using var probe = connect();
        return probe is SqliteConnection ? new JournalTail(connect, serialization) : null;
    }

    /// <summary>Every row after <paramref name="offset"/>, now and as they are written, in pages of at most <paramref name="pageSize"/>.</summary>
    public Source<EventEnvelope, NotUsed> After(long offset, int pageSize) =>
        Source.UnfoldAsync<(long Offset, bool Wait), IReadOnlyList<EventEnvelope>>((offset, false), async s =>
        {
            if (s.Wait) await Task.Delay(PollInterval);
            var page = await QueryAsync("WHERE ordering > @a AND deleted = 0 ORDER BY ordering LIMIT @b", s.Offset, pageSize, default);
            var next = page.Count == 0 ? s.Offset : ((Sequence)page[^1].Offset).Value;
            return Option<((long, bool), IReadOnlyList<EventEnvelope>)>.Create(((next, page.Count < pageSize), page));
        }).SelectMany(page => page);

    /// <summary>One entity's events up to <paramref name="toSequenceNr"/>, in order (the index rebuilding a run it does not hold).</summary>
    public Task<IReadOnlyList<EventEnvelope>> HistoryAsync(string persistenceId, long toSequenceNr, CancellationToken ct = default) =>
        QueryAsync("WHERE persistence_id = @a AND sequence_number <= @b AND deleted = 0 ORDER BY sequence_number", persistenceId, toSequenceNr, ct);

    private async Task<IReadOnlyList<EventEnvelope>> QueryAsync(string where, object a, object b, CancellationToken ct)
    {
        await using var db = connect();
        await db.OpenAsync(ct);
        Hosting.SqliteStore.OnOpened(db);
        await using var cmd = db.CreateCommand();
        cmd.CommandText = "SELECT ordering, persistence_id, sequence_number, message, manifest, identifier, created FROM journal " + where;
        Add(cmd, "@a", a);
        Add(cmd, "@b", b);
        var page = new List<EventEnvelope>();
        await using var r = await cmd.ExecuteReaderAsync(ct);
        while (await r.ReadAsync(ct))
        {
            var persistenceId = r.GetString(1);
            var manifest = r.IsDBNull(4) ? "" : r.GetString(4);
            var payload = persistenceId.StartsWith(WorkflowActor.PersistenceIdPrefix, StringComparison.Ordinal)
                ? Read((byte[])r.GetValue(3), r.IsDBNull(5) ? null : r.GetInt32(5), manifest)
                : (object)NotRead.Instance;
            page.Add(new EventEnvelope(Offset.Sequence(r.GetInt64(0)), persistenceId, r.GetInt64(2), payload, r.GetInt64(6), []));
        }
        return page;
    }

    /// <summary>As the query journal would, except that a payload nothing can read becomes a value the index quarantines.</summary>
    private object Read(byte[] bytes, int? serializerId, string manifest)
    {
        if (serializerId is not { } id) return new UnreadablePayload(manifest, "journal row without a serializer id");
        try
        {
            return serialization.Deserialize(bytes, id, manifest);
        }
        catch (Exception ex)
        {
            return new UnreadablePayload(manifest, $"{ex.GetType().Name}: {ex.Message}");
        }
    }

    private static void Add(DbCommand cmd, string name, object value)
    {
        var p = cmd.CreateParameter();
        p.ParameterName = name;
        p.Value = value;
        cmd.Parameters.Add(p);
    }

    /// <summary>Another entity's event: only its offset matters to the index.</summary>
    public sealed record NotRead
    {
        public static NotRead Instance { get; } = new();
    }
}
