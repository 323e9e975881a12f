using System.Data;
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
/// The journal's run events in ordering order, read straight from its table, for the run index and the cancellation
/// mirror. Only run events (or only those of one manifest) are deserialized and handed on; other rows (sharding's
/// remember-entities, the monitor) only move the offset: a page that ends with one hands it on as <see cref="NotRead"/>.
/// <para>
/// SQLite has a single writer that commits orderings in increasing order (write transactions are serialised and the
/// ordering is assigned inside them), so a row can never appear below one already read. PostgreSQL's orderings come from
/// an identity sequence taken at INSERT and become visible at COMMIT: each node's journal writer commits in order, but
/// with several nodes a row can become visible after rows above it, and a transaction that rolled back leaves a hole
/// forever. There the tail hands on rows only up to the first hole, reads again (backing off to a second) until the
/// hole fills, and after <see cref="HoleTimeout"/> takes it as rolled back, as Akka.Persistence.Sql's query journal
/// does (its sequence actor: 10 tries a second apart); a hole below a row written longer ago than that is passed at
/// once (old history). The query journal is not used for this: per page it ran a
/// linq2db statement whose tag column aggregates the whole tag table for every row (20 ms a page, in parallel workers
/// the server started for it), and its sequence actor read every ordering a second time.
/// </para>
/// </summary>
public sealed class JournalTail
{
    /// <summary>How long the tail waits before reading again after a page that was not full (the plugin waits 1 s).</summary>
    public static readonly TimeSpan PollInterval = TimeSpan.FromMilliseconds(50);

    /// <summary>Rows per read (the run index and the cancellation mirror): at thousands of events a second, fewer round trips per event.</summary>
    public const int PageSize = 2_000;

    /// <summary>The longest wait on a hole in the orderings before it is taken as a transaction that rolled back.</summary>
    public static readonly TimeSpan HoleTimeout = TimeSpan.FromSeconds(10);

    private static readonly TimeSpan MaxHoleWait = TimeSpan.FromSeconds(1);

    private readonly Func<DbConnection> _connect;
    private readonly Akka.Serialization.Serialization _serialization;
    private readonly bool _holesPossible;
    private readonly Func<DateTime> _clock;

    public JournalTail(Func<DbConnection> connect, Akka.Serialization.Serialization serialization, bool holesPossible, Func<DateTime>? clock = null) =>
        (_connect, _serialization, _holesPossible, _clock) = (connect, serialization, holesPossible, clock ?? (() => DateTime.UtcNow));

    /// <summary>A tail on the store <paramref name="connect"/> opens: SQLite (no holes) or PostgreSQL (holes waited for).</summary>
    public static JournalTail For(Func<DbConnection> connect, Akka.Serialization.Serialization serialization)
    {
        using var probe = connect();
        return new JournalTail(connect, serialization, holesPossible: probe is not SqliteConnection);
    }

    /// <summary>
    /// Every run event after <paramref name="offset"/>, now and as they are written, read in pages of at most
    /// <paramref name="pageSize"/> rows; with <paramref name="onlyManifest"/> only run events of that manifest (the
    /// others' payloads are not even read).
    /// </summary>
    public Source<EventEnvelope, NotUsed> After(long offset, int pageSize, string? onlyManifest = null) =>
        Source.UnfoldAsync<TailState, IReadOnlyList<EventEnvelope>>(new TailState(offset, TimeSpan.Zero, null), async s =>
        {
            if (s.Wait > TimeSpan.Zero) await Task.Delay(s.Wait);
            var rows = await QueryAsync("WHERE ordering > @a ORDER BY ordering LIMIT @b", [("@a", s.Offset), ("@b", pageSize)], onlyManifest, default);
            var (take, hole) = _holesPossible
                ? Contiguous(s.Offset, rows.Select(r => (r.Ordering, new DateTime(r.Envelope.Timestamp, DateTimeKind.Utc))).ToList(), s.Hole, _clock(), HoleTimeout)
                : (rows.Count, null);
            var next = take == 0 ? s.Offset : rows[take - 1].Ordering;
            var wait = hole is not null
                ? (s.Hole?.At == hole.Value.At ? Min(s.Wait * 2, MaxHoleWait) : PollInterval)
                : rows.Count < pageSize ? PollInterval : TimeSpan.Zero;
            var page = rows.Take(take).Where(r => r.Read).Select(r => r.Envelope).ToList();
            if (take > 0 && !rows[take - 1].Read) page.Add(rows[take - 1].Envelope);
            return Option<(TailState, IReadOnlyList<EventEnvelope>)>.Create((new TailState(next, wait, hole), (IReadOnlyList<EventEnvelope>)page));
        }).SelectMany(page => page);

    /// <summary>
    /// How many rows of a page (orderings ascending, all above <paramref name="offset"/>, each with when it was written)
    /// can be handed on: those before the first hole in the orderings. A hole is stepped over (its rows rolled back or
    /// removed) once it was first seen <paramref name="timeout"/> ago, or at once when the row after it was written
    /// that long ago: the hole's ordering was taken before that row's, so whatever holds it has been open at least as
    /// long (a tail reading old history, e.g. the mirror rebuilding from 0, must not wait on each hole of the past).
    /// Returns the hole the tail now waits on, with when it was first seen, or null.
    /// </summary>
    public static (int Take, Hole? Hole) Contiguous(long offset, IReadOnlyList<(long Ordering, DateTime Written)> rows, Hole? known, DateTime now, TimeSpan timeout)
    {
        var expected = offset + 1;
        for (var i = 0; i < rows.Count; i++)
        {
            if (rows[i].Ordering == expected)
            {
                expected++;
                continue;
            }
            if (now - rows[i].Written >= timeout || known is { } k && k.At == expected && now - k.Since >= timeout)
            {
                expected = rows[i].Ordering + 1;
                known = null;
                continue;
            }
            return (i, known is { } same && same.At == expected ? same : new Hole(expected, now));
        }
        return (rows.Count, null);
    }

    /// <summary>A missing ordering the tail waits on, and when it first saw it missing.</summary>
    public readonly record struct Hole(long At, DateTime Since);

    private sealed record TailState(long Offset, TimeSpan Wait, Hole? Hole);

    /// <summary>A journal row; <paramref name="Read"/>: a live run event whose payload was deserialized.</summary>
    private readonly record struct Row(long Ordering, bool Read, EventEnvelope Envelope);

    private static TimeSpan Min(TimeSpan a, TimeSpan b) => a < b ? a : b;

    /// <summary>The events of several entities, in one read a few hundred at a time (the index rebuilding runs it does not hold).</summary>
    public async Task<IReadOnlyList<EventEnvelope>> HistoriesAsync(IReadOnlyList<string> persistenceIds, CancellationToken ct = default)
    {
        var events = new List<EventEnvelope>();
        foreach (var chunk in persistenceIds.Chunk(Hosting.Sql.MaxIdsPerStatement))
        {
            var (list, ids) = Hosting.Sql.In("p", chunk);
            events.AddRange((await QueryAsync("WHERE persistence_id IN " + list, [.. ids.Select(i => ("@" + i.Name, i.Value!))], null, ct))
                .Where(r => r.Read).Select(r => r.Envelope));
        }
        return events;
    }

    /// <summary>
    /// One entity's events after <paramref name="afterSequenceNr"/>, in order, at most <paramref name="limit"/> (a run's
    /// history, paged): a read of the journal's primary key. A payload nothing can read comes as <see cref="UnreadablePayload"/>.
    /// </summary>
    public async Task<IReadOnlyList<EventEnvelope>> EventsOfAsync(string persistenceId, long afterSequenceNr, int limit, CancellationToken ct = default) =>
        [.. (await QueryAsync("WHERE persistence_id = @p AND sequence_number > @a ORDER BY sequence_number LIMIT @b",
            [("@p", persistenceId), ("@a", afterSequenceNr), ("@b", limit)], null, ct)).Where(r => r.Read).Select(r => r.Envelope)];

    private static bool NoJournalYet(DbException e) => e switch
    {
        SqliteException s => s.SqliteErrorCode == 1 && s.Message.Contains("no such table", StringComparison.Ordinal),
        Npgsql.PostgresException p => p.SqlState == Npgsql.PostgresErrorCodes.UndefinedTable,
        _ => false,
    };

    private async Task<List<Row>> QueryAsync(string where, (string Name, object Value)[] parameters, string? onlyManifest, CancellationToken ct)
    {
        await using var db = _connect();
        await db.OpenAsync(ct);
        Hosting.SqliteStore.OnOpened(db);
        await using var cmd = db.CreateCommand();
        // Deleted rows are read too: on PostgreSQL they are not holes.
        var message = onlyManifest is null ? "message" : "CASE WHEN manifest = @m THEN message END";
        cmd.CommandText = $"SELECT ordering, persistence_id, sequence_number, {message}, manifest, identifier, created, deleted FROM journal " + where;
        foreach (var (name, value) in parameters) Add(cmd, name, value);
        if (onlyManifest is not null) Add(cmd, "@m", onlyManifest);
        var rows = new List<Row>();
        DbDataReader r;
        try
        {
            r = await cmd.ExecuteReaderAsync(ct);
        }
        catch (DbException e) when (NoJournalYet(e))
        {
            // A new store: the journal's tables come with its first write. Until then there is nothing to read, and a
            // failure here restarted the tails with a warning and a stack trace on every first start.
            return rows;
        }
        await using var _ = r;
        while (await r.ReadAsync(ct))
        {
            var persistenceId = r.GetString(1);
            var deleted = r.GetBoolean(7);
            var manifest = r.IsDBNull(4) ? "" : r.GetString(4);
            var read = !deleted && persistenceId.StartsWith(WorkflowActor.PersistenceIdPrefix, StringComparison.Ordinal)
                       && (onlyManifest is null || manifest == onlyManifest);
            var payload = read ? Read((byte[])r.GetValue(3), r.IsDBNull(5) ? null : r.GetInt32(5), manifest) : NotRead.Instance;
            var ordering = r.GetInt64(0);
            rows.Add(new Row(ordering, read, new EventEnvelope(Offset.Sequence(ordering), persistenceId, r.GetInt64(2), payload, r.GetInt64(6), [])));
        }
        return rows;
    }

    /// <summary>As the query journal would, except that a payload nothing can read becomes a value the index quarantines.</summary>
    private object Read(byte[] bytes, int? serializerId, string manifest)
    {
        if (serializerId is not { } id) return new UnreadablePayload(manifest, "journal row without a serializer id");
        try
        {
            return _serialization.Deserialize(bytes, id, manifest);
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
        // PostgreSQL compares a LIMIT with an integer and the journal's columns with bigints; SQLite takes either.
        p.DbType = value switch { string => DbType.String, int => DbType.Int32, _ => DbType.Int64 };
        cmd.Parameters.Add(p);
    }

    /// <summary>A row that was not read (another entity's event, another manifest, a deleted row): only its offset matters.</summary>
    public sealed record NotRead
    {
        public static NotRead Instance { get; } = new();
    }
}
