using System.Data.Common;
using Deepline.Actors.Serialization;
using static Deepline.Actors.Hosting.Sql;
using Deepline.Domain;

namespace Deepline.Actors.Index;

/// <summary>
/// A journal event as the projection sees it: the run, its sequence number, the journal offset and the event
/// (an <see cref="IRunEvent"/>, or an <see cref="UnreadablePayload"/> when its bytes could not be read).
/// </summary>
public sealed record IndexedEvent(string RunId, long SequenceNr, long Offset, object Event);

/// <summary>
/// The journal events of several runs from the first, as the projection reads them, in one read (the index rebuilding
/// runs it does not hold); events above a run's row are dropped by the caller.
/// </summary>
public delegate Task<IReadOnlyList<IndexedEvent>> RunHistory(IReadOnlyCollection<string> runIds, CancellationToken ct);

/// <summary>An event the index could not read or apply: set aside so that the events after it still flow.</summary>
public sealed record QuarantinedEvent(string RunId, long SequenceNr, long Offset, string Error, DateTimeOffset At);

/// <summary>
/// The run index tables, in the journal's database. Plain SQL that SQLite and PostgreSQL both accept (upserts,
/// partial indexes, @parameters). The stuck-run scans read only partial indexes over deadline columns, so their
/// cost follows the number of runs returned, not the number indexed.
/// </summary>
public sealed class RunIndexStore(Func<DbConnection> connect, DetectorThresholds thresholds)
{
    public const string ProjectionName = "run-index";

    /// <summary>A new connection to the store the index lives in (the journal's).</summary>
    public Func<DbConnection> Connect => connect;

    /// <summary>Open runs whose state the projection keeps between batches (a few KiB each); the rest are rebuilt on demand.</summary>
    public const int MaxCachedStates = 5_000;

    // Touched only by the projection (a cluster singleton, one batch at a time). Batch is the number of the batch that
    // last touched the run: the least recently touched make room first.
    private readonly Dictionary<string, (WorkflowState State, long Seq, long Batch, RunningSigns? Signs)> _states = new(StringComparer.Ordinal);
    /// <summary>Runs removed by retention whose cached state goes before the next batch (the cache is the projection's alone).</summary>
    private readonly System.Collections.Concurrent.ConcurrentQueue<string> _forget = new();
    private long _batches;

    /// <summary>
    /// The index schema as numbered steps, each applied once and in order (recorded in <c>run_index_schema</c>) in one
    /// transaction with its version, so a node never sees half a migration. Step 1 is the schema from before versions
    /// existed (every statement is IF NOT EXISTS, so it also adopts such a database); append steps, never edit one.
    /// </summary>
    private static readonly string[][] Migrations =
    [
        [
            """
            CREATE TABLE IF NOT EXISTS run_index (
              run_id VARCHAR(128) NOT NULL PRIMARY KEY,
              last_seq BIGINT NOT NULL,
              workflow_name TEXT NOT NULL,
              client_id TEXT NOT NULL,
              status VARCHAR(16) NOT NULL,
              created_at BIGINT NOT NULL,
              updated_at BIGINT NOT NULL,
              task_count INTEGER NOT NULL,
              pending INTEGER NOT NULL, queued INTEGER NOT NULL, running INTEGER NOT NULL, succeeded INTEGER NOT NULL,
              failed INTEGER NOT NULL, cancelled INTEGER NOT NULL, skipped INTEGER NOT NULL,
              stale_base BIGINT NULL, heartbeat_base BIGINT NULL, timeout_base BIGINT NULL,
              pending_stale_s INTEGER NULL, workflow_stale_s INTEGER NULL, heartbeat_timeout_s INTEGER NULL,
              stale_deadline BIGINT NULL, heartbeat_deadline BIGINT NULL, timeout_deadline BIGINT NULL,
              cancel_reason TEXT NULL, cancelled_by TEXT NULL, cancelled_at BIGINT NULL,
              state BYTEA NOT NULL)
            """,
            """
            CREATE TABLE IF NOT EXISTS run_index_quarantine (
              run_id VARCHAR(128) NOT NULL,
              sequence_nr BIGINT NOT NULL,
              offset_value BIGINT NOT NULL,
              error TEXT NOT NULL,
              quarantined_at BIGINT NOT NULL,
              PRIMARY KEY (run_id, sequence_nr))
            """,
            "CREATE TABLE IF NOT EXISTS run_index_offset (projection VARCHAR(64) NOT NULL PRIMARY KEY, offset_value BIGINT NOT NULL, thresholds VARCHAR(64) NOT NULL)",
            "CREATE INDEX IF NOT EXISTS ix_run_index_stale ON run_index (stale_deadline) WHERE stale_deadline IS NOT NULL",
            "CREATE INDEX IF NOT EXISTS ix_run_index_heartbeat ON run_index (heartbeat_deadline) WHERE heartbeat_deadline IS NOT NULL",
            "CREATE INDEX IF NOT EXISTS ix_run_index_timeout ON run_index (timeout_deadline) WHERE timeout_deadline IS NOT NULL",
            "CREATE INDEX IF NOT EXISTS ix_run_index_cancelled ON run_index (cancelled_at) WHERE cancelled_at IS NOT NULL",
            "CREATE INDEX IF NOT EXISTS ix_run_index_client_cancelled ON run_index (client_id, cancelled_at) WHERE cancelled_at IS NOT NULL",
        ],
        [
            // The whole-run state blob was rewritten on every batch only for the projection itself; states now live in
            // the projection's memory and are rebuilt from the journal when missing.
            "ALTER TABLE run_index DROP COLUMN state",
        ],
        [
            // The detector behind an auto-cancel, listed by /runs/cancelled (null for other cancels and older rows).
            "ALTER TABLE run_index ADD COLUMN deadlock_reason VARCHAR(32) NULL",
        ],
        [
            // The dashboard's run list (newest first, optionally per client or status) and its live feed (rows changed
            // since the last poll): without these each read sorted or scanned the whole index (0.7 s at 100,000 runs).
            "CREATE INDEX IF NOT EXISTS ix_run_index_created ON run_index (created_at)",
            "CREATE INDEX IF NOT EXISTS ix_run_index_client_created ON run_index (client_id, created_at)",
            "CREATE INDEX IF NOT EXISTS ix_run_index_status_created ON run_index (status, created_at)",
            "CREATE INDEX IF NOT EXISTS ix_run_index_updated ON run_index (updated_at)",
        ],
        [
            // Per-client quotas count a client's open runs at submission (cached a second per client and node).
            "CREATE INDEX IF NOT EXISTS ix_run_index_client_status ON run_index (client_id, status)",
        ],
    ];

    /// <summary>The schema version this build writes.</summary>
    public static int SchemaVersion => Migrations.Length;

    /// <summary>
    /// Every column of a run's row, in the order the upsert binds them (<see cref="RowValues"/>): the one list of the
    /// row. The CREATE TABLE that made them is migration history and is never edited; RunIndexSchemaTests checks that
    /// the migrated table has exactly these columns.
    /// </summary>
    public static readonly IReadOnlyList<string> RowColumns =
    [
        "run_id", "last_seq", "workflow_name", "client_id", "status", "created_at", "updated_at", "task_count",
        "pending", "queued", "running", "succeeded", "failed", "cancelled", "skipped",
        "stale_base", "heartbeat_base", "timeout_base", "pending_stale_s", "workflow_stale_s", "heartbeat_timeout_s",
        "stale_deadline", "heartbeat_deadline", "timeout_deadline",
        "cancel_reason", "cancelled_by", "cancelled_at", "deadlock_reason",
    ];

    /// <summary>The columns a <see cref="RunIndexRow"/> is read from, in <see cref="ReadRow"/>'s order.</summary>
    public static readonly IReadOnlyList<string> RowListColumns =
    [
        "run_id", "workflow_name", "client_id", "status", "created_at", "updated_at", "task_count",
        "pending", "queued", "running", "succeeded", "failed", "cancelled", "skipped",
        "cancel_reason", "cancelled_by", "cancelled_at", "deadlock_reason",
    ];

    /// <summary>A row selected with <see cref="RowListColumns"/> first.</summary>
    public static RunIndexRow ReadRow(DbDataReader r) =>
        new(r.GetString(0), r.GetString(1), r.GetString(2), Enum.Parse<RunStatus>(r.GetString(3)),
            IndexColumns.At(r.GetInt64(4)), IndexColumns.At(r.GetInt64(5)), r.GetInt32(6),
            new TaskCounts(r.GetInt32(7), r.GetInt32(8), r.GetInt32(9), r.GetInt32(10), r.GetInt32(11), r.GetInt32(12), r.GetInt32(13)),
            r.IsDBNull(14) ? null : r.GetString(14), r.IsDBNull(15) ? null : r.GetString(15),
            r.IsDBNull(16) ? null : IndexColumns.At(r.GetInt64(16)))
        {
            DeadlockReason = r.IsDBNull(17) ? null : r.GetString(17),
        };

    private static readonly string UpdateAll = string.Join(", ", RowColumns.Skip(1).Select(col => $"{col} = excluded.{col}"));

    private string ThresholdsKey => $"{thresholds.PendingStaleS}/{thresholds.WorkflowStaleS}/{thresholds.HeartbeatTimeoutS}";

    /// <summary>Creates the tables and, when the node's thresholds changed since the deadlines were written, recomputes them.</summary>
    public async Task<long> InitializeAsync(CancellationToken ct = default)
    {
        // Another node may have written the index since this one last followed the journal.
        _states.Clear();
        await using var db = await OpenAsync(ct);
        await MigrateAsync(db, ct);
        await using var read = Command(db, null, "SELECT offset_value, thresholds FROM run_index_offset WHERE projection = @p", ("p", ProjectionName));
        await using var reader = await read.ExecuteReaderAsync(ct);
        if (!await reader.ReadAsync(ct)) return 0;
        var offset = reader.GetInt64(0);
        var used = reader.GetString(1);
        await reader.DisposeAsync();
        if (used != ThresholdsKey)
        {
            await ExecAsync(db, null, """
                UPDATE run_index SET
                  stale_deadline = stale_base + COALESCE(pending_stale_s, @ps) * 1000,
                  heartbeat_deadline = heartbeat_base + COALESCE(heartbeat_timeout_s, @hb) * 1000,
                  timeout_deadline = timeout_base + COALESCE(workflow_stale_s, @ws) * 1000
                """, ct, ("ps", thresholds.PendingStaleS), ("hb", thresholds.HeartbeatTimeoutS), ("ws", thresholds.WorkflowStaleS));
            await ExecAsync(db, null, "UPDATE run_index_offset SET thresholds = @t WHERE projection = @p", ct, ("t", ThresholdsKey), ("p", ProjectionName));
        }
        return offset;
    }

    /// <summary>
    /// Applies a batch of journal events with the domain's own <see cref="WorkflowState.Apply"/> and writes the
    /// touched rows' columns, the new offset and any quarantined events in one transaction. A run's state comes from
    /// this store's memory, else from its journal history up to the row's last_seq (after a restart or an eviction).
    /// Events at or below a row's last_seq are skipped, so replaying a batch after a crash changes nothing. An event
    /// that cannot be read or applied is quarantined (listed, counted, skipped) and the rest flows on: one event must
    /// never stop the index. Store errors still fail the batch, to be retried from the stored offset.
    /// </summary>
    public async Task<IReadOnlyList<QuarantinedEvent>> ApplyAsync(IReadOnlyList<IndexedEvent> batch, long offset, RunHistory history,
        CancellationToken ct = default)
    {
        while (_forget.TryDequeue(out var removed)) _states.Remove(removed);
        await using var db = await OpenAsync(ct);
        var byRun = new Dictionary<string, List<IndexedEvent>>();
        foreach (var e in batch)
        {
            if (!byRun.TryGetValue(e.RunId, out var events)) byRun[e.RunId] = events = [];
            events.Add(e);
        }

        // All reads and CPU work happen before the write transaction, which then holds the store's lock only to write.
        // A run whose batch starts at its submission is new to the index (a row is written with the offset that covers
        // its events, so a replay from the stored offset never finds one); the others not in memory are rebuilt from
        // their history, all of the batch's in one read (one round trip per run made a PostgreSQL index fall minutes
        // behind once more runs were open than it keeps in memory).
        var missed = byRun.Where(r => !_states.ContainsKey(r.Key) && r.Value[0] is not { SequenceNr: 1, Event: RunSubmitted }).Select(r => r.Key).ToList();
        var recovered = missed.Count == 0 ? [] : await RecoverAsync(db, missed, history, ct);
        var quarantined = new List<QuarantinedEvent>();
        var folded = new List<Folded>();
        foreach (var (runId, events) in byRun)
        {
            _states.TryGetValue(runId, out var cached);
            var start = cached.State is not null ? (cached.State, cached.Seq)
                : recovered.TryGetValue(runId, out var rebuilt) ? rebuilt
                : (null, 0);
            var (state, seq) = Fold(start, events, quarantined);
            if (state is null) continue;
            var (heartbeat, signs, touched) = Heartbeat(state, cached.Signs, events);
            folded.Add(new Folded(state, seq, heartbeat, signs, touched));
        }

        await using (var tx = await db.BeginTransactionAsync(ct))
        {
            if (db.CanCreateBatch)
            {
                // Over the network (PostgreSQL) a batch's rows go in multi-row upserts: one statement per chunk, not per
                // run (one per run cost the server a parse, plan and executor start each: its largest cost per event).
                // Positional parameters spare the driver rewriting names in a statement this long.
                foreach (var chunk in folded.Chunk(MaxRowsPerUpsert))
                {
                    await using var upsert = db.CreateCommand();
                    upsert.Transaction = tx;
                    upsert.CommandText = MultiRowUpsertSql(chunk.Length);
                    foreach (var f in chunk)
                        foreach (var value in RowValues(f))
                        {
                            var p = upsert.CreateParameter();
                            p.Value = value ?? DBNull.Value;
                            upsert.Parameters.Add(p);
                        }
                    await upsert.ExecuteNonQueryAsync(ct);
                }
            }
            else
            {
                // In-process (SQLite): one prepared statement re-bound per run costs microseconds.
                await using var upsert = UpsertCommand(db, tx);
                foreach (var f in folded)
                {
                    var values = RowValues(f);
                    for (var i = 0; i < values.Length; i++) upsert.Parameters[i].Value = values[i] ?? DBNull.Value;
                    await upsert.ExecuteNonQueryAsync(ct);
                }
            }
            foreach (var q in quarantined)
            {
                await ExecAsync(db, tx, """
                    INSERT INTO run_index_quarantine (run_id, sequence_nr, offset_value, error, quarantined_at) VALUES (@r, @s, @o, @e, @at)
                    ON CONFLICT (run_id, sequence_nr) DO NOTHING
                    """, ct, ("r", q.RunId), ("s", q.SequenceNr), ("o", q.Offset), ("e", q.Error), ("at", IndexColumns.Ms(q.At)));
            }
            await ExecAsync(db, tx, """
                INSERT INTO run_index_offset (projection, offset_value, thresholds) VALUES (@p, @o, @t)
                ON CONFLICT (projection) DO UPDATE SET offset_value = excluded.offset_value
                """, ct, ("p", ProjectionName), ("o", offset), ("t", ThresholdsKey));
            await tx.CommitAsync(ct);
        }

        // Only what is committed is remembered; finished runs rarely see another event, so they make room, then the
        // runs touched longest ago.
        var batchNo = ++_batches;
        foreach (var f in folded)
        {
            if (f.State.Status.IsTerminal())
            {
                _states.Remove(f.State.RunId);
                continue;
            }
            if (f.Touched is not null) f.Signs!.Apply(f.State, f.Touched);
            _states[f.State.RunId] = (f.State, f.Seq, batchNo, f.Signs);
        }
        if (_states.Count > MaxCachedStates)
            foreach (var runId in _states.OrderBy(e => e.Value.Batch).Take(_states.Count - MaxCachedStates * 3 / 4).Select(e => e.Key).ToList())
                _states.Remove(runId);
        return quarantined;
    }

    /// <summary>A run's state after a batch and the heartbeat column computed for it (its signs change after the commit).</summary>
    private sealed record Folded(WorkflowState State, long Seq, long? HeartbeatBase, RunningSigns? Signs, IReadOnlySet<string>? Touched);

    private static readonly IReadOnlySet<string> NoTasks = new HashSet<string>();

    /// <summary>
    /// The run's heartbeat base (its running tasks' oldest sign of life). A large run's comes from the signs the index
    /// keeps and the tasks the batch touched; a small run, an event on no one task (a cancel, the submission) or a run
    /// not tracked yet take one walk over the tasks.
    /// </summary>
    private static (long? Base, RunningSigns? Signs, IReadOnlySet<string>? Touched) Heartbeat(WorkflowState state, RunningSigns? known, List<IndexedEvent> events)
    {
        if (state.Tasks.Count <= RunningSigns.FromTasks) return (IndexColumns.HeartbeatBase(state), null, null);
        var running = state.Status == RunStatus.RUNNING && state.Counts.Running > 0;
        var touched = events.Select(e => TaskIdOf(e.Event)).ToList();
        if (known is not null && !touched.Contains(null))
        {
            var ids = touched.Select(id => id!).ToHashSet(StringComparer.Ordinal);
            return (running ? known.OldestAfter(state, ids) : null, known, ids);
        }
        var signs = RunningSigns.Of(state);
        return (running ? signs.OldestAfter(state, NoTasks) : null, signs, null);
    }

    private static string? TaskIdOf(object e) => (e as ITaskEvent)?.TaskId;

    /// <summary>
    /// The states the runs' rows were written from: each run's history up to its row's last_seq, for all of them in one
    /// read of the rows and one of the journal (runs without a row are left out).
    /// </summary>
    private static async Task<Dictionary<string, (WorkflowState? State, long Seq)>> RecoverAsync(DbConnection db, List<string> runIds,
        RunHistory history, CancellationToken ct)
    {
        var lastSeq = new Dictionary<string, long>(StringComparer.Ordinal);
        foreach (var chunk in runIds.Chunk(MaxIdsPerStatement))
        {
            var (list, ids) = In("r", chunk);
            await using var cmd = Command(db, null, "SELECT run_id, last_seq FROM run_index WHERE run_id IN " + list, ids);
            await using var reader = await cmd.ExecuteReaderAsync(ct);
            while (await reader.ReadAsync(ct)) lastSeq[reader.GetString(0)] = reader.GetInt64(1);
        }
        var recovered = new Dictionary<string, (WorkflowState? State, long Seq)>(StringComparer.Ordinal);
        if (lastSeq.Count == 0) return recovered;
        // Events quarantined when they first came are quarantined again here, in a list nobody reads: skipped either way.
        foreach (var run in (await history(lastSeq.Keys, ct)).Where(e => e.SequenceNr <= lastSeq[e.RunId]).GroupBy(e => e.RunId))
            recovered[run.Key] = Fold((null, 0), [.. run.OrderBy(e => e.SequenceNr)], []);
        return recovered;
    }

    private static (WorkflowState? State, long Seq) Fold((WorkflowState? State, long Seq) start, List<IndexedEvent> events, List<QuarantinedEvent> quarantined)
    {
        var (state, seq) = start;
        foreach (var e in events)
        {
            if (e.SequenceNr <= seq) continue;
            try
            {
                state = e.Event switch
                {
                    RunSubmitted s => WorkflowState.Create(s),
                    IRunEvent re => state?.Apply(re),
                    UnreadablePayload p => throw new InvalidDataException($"unreadable {p.Manifest}: {p.Error}"),
                    var other => throw new InvalidDataException($"not a run event: {other.GetType().Name}"),
                };
            }
            catch (Exception ex)
            {
                quarantined.Add(new QuarantinedEvent(e.RunId, e.SequenceNr, e.Offset, $"{ex.GetType().Name}: {ex.Message}", DateTimeOffset.UtcNow));
            }
            seq = e.SequenceNr;
        }
        return (state, seq);
    }

    private static async Task MigrateAsync(DbConnection db, CancellationToken ct)
    {
        await ExecAsync(db, null, "CREATE TABLE IF NOT EXISTS run_index_schema (id INTEGER NOT NULL PRIMARY KEY, version INTEGER NOT NULL)", ct);
        await using var tx = await db.BeginTransactionAsync(ct);
        await using (var read = Command(db, tx, "SELECT version FROM run_index_schema WHERE id = 1"))
        {
            var version = await read.ExecuteScalarAsync(ct) is { } v and not DBNull ? Convert.ToInt32(v) : 0;
            if (version > Migrations.Length)
                throw new InvalidOperationException($"the run index schema is version {version}, newer than this build's {Migrations.Length}: run the newer build");
            for (var step = version; step < Migrations.Length; step++)
                foreach (var ddl in Migrations[step]) await ExecAsync(db, tx, ddl, ct);
        }
        await ExecAsync(db, tx, """
            INSERT INTO run_index_schema (id, version) VALUES (1, @v) ON CONFLICT (id) DO UPDATE SET version = excluded.version
            """, ct, ("v", Migrations.Length));
        await tx.CommitAsync(ct);
    }

    /// <summary>How many events the index has quarantined, and the newest <paramref name="limit"/> of them.</summary>
    public async Task<(long Count, IReadOnlyList<QuarantinedEvent> Newest)> QuarantinedAsync(int limit, CancellationToken ct = default)
    {
        await using var db = await OpenAsync(ct);
        await using var count = Command(db, null, "SELECT COUNT(*) FROM run_index_quarantine");
        var n = Convert.ToInt64(await count.ExecuteScalarAsync(ct));
        await using var cmd = Command(db, null,
            "SELECT run_id, sequence_nr, offset_value, error, quarantined_at FROM run_index_quarantine ORDER BY quarantined_at DESC, offset_value DESC LIMIT @limit",
            ("limit", limit));
        var rows = new List<QuarantinedEvent>();
        await using var r = await cmd.ExecuteReaderAsync(ct);
        while (await r.ReadAsync(ct))
            rows.Add(new QuarantinedEvent(r.GetString(0), r.GetInt64(1), r.GetInt64(2), r.GetString(3), IndexColumns.At(r.GetInt64(4))));
        return (n, rows);
    }

    /// <summary>Which of <paramref name="runIds"/> the index has a row for (in any state).</summary>
    public async Task<HashSet<string>> IndexedAsync(IReadOnlyCollection<string> runIds, CancellationToken ct = default)
    {
        var found = new HashSet<string>(StringComparer.Ordinal);
        if (runIds.Count == 0) return found;
        await using var db = await OpenAsync(ct);
        foreach (var chunk in runIds.Chunk(MaxIdsPerStatement))
        {
            var (list, ids) = In("r", chunk);
            await using var cmd = Command(db, null, "SELECT run_id FROM run_index WHERE run_id IN " + list, ids);
            await using var reader = await cmd.ExecuteReaderAsync(ct);
            while (await reader.ReadAsync(ct)) found.Add(reader.GetString(0));
        }
        return found;
    }

    /// <summary>A client's open runs (RUNNING or CANCELLING) and their tasks not yet ended, as far as the index got.</summary>
    public async Task<(long Runs, long Tasks)> OpenLoadAsync(string clientId, CancellationToken ct = default)
    {
        await using var db = await OpenAsync(ct);
        await using var cmd = Command(db, null,
            "SELECT COUNT(*), COALESCE(SUM(pending + queued + running), 0) FROM run_index WHERE client_id = @c AND status IN (@r, @x)",
            ("c", clientId), ("r", nameof(RunStatus.RUNNING)), ("x", nameof(RunStatus.CANCELLING)));
        await using var r = await cmd.ExecuteReaderAsync(ct);
        await r.ReadAsync(ct);
        return (Convert.ToInt64(r.GetValue(0)), Convert.ToInt64(r.GetValue(1)));
    }

    public async Task<long> OffsetAsync(CancellationToken ct = default)
    {
        await using var db = await OpenAsync(ct);
        await using var cmd = Command(db, null, "SELECT offset_value FROM run_index_offset WHERE projection = @p", ("p", ProjectionName));
        return await cmd.ExecuteScalarAsync(ct) is long o ? o : 0;
    }

    /// <summary>How far (in journal positions) the index is behind the newest run event.</summary>
    public async Task<long> LagAsync(CancellationToken ct = default)
    {
        await using var db = await OpenAsync(ct);
        // Only run events count: the monitor and sharding journal too, and their events must not make a quiet index look
        // behind. Newest first on the primary key stops at the first live run row, which is near the end.
        await using var cmd = Command(db, null,
            "SELECT COALESCE((SELECT ordering FROM journal WHERE deleted = @no AND persistence_id LIKE 'run-%' ORDER BY ordering DESC LIMIT 1), 0) - " +
            "COALESCE((SELECT offset_value FROM run_index_offset WHERE projection = @p), 0)",
            ("no", false), ("p", ProjectionName));
        return Math.Max(0, Convert.ToInt64(await cmd.ExecuteScalarAsync(ct)));
    }

    /// <summary>The runs whose detector deadline (under the node's thresholds) has passed, oldest deadline first.</summary>
    public async Task<IReadOnlyList<(string RunId, StuckReason Reason)>> DueAsync(DateTimeOffset now, int limit, CancellationToken ct = default)
    {
        await using var db = await OpenAsync(ct);
        var due = new List<(string, StuckReason)>();
        foreach (var (column, reason) in new[] { ("heartbeat_deadline", StuckReason.no_heartbeat), ("stale_deadline", StuckReason.stale_pending), ("timeout_deadline", StuckReason.run_timeout) })
        {
            await using var cmd = Command(db, null,
                $"SELECT run_id FROM run_index WHERE {column} IS NOT NULL AND {column} <= @now ORDER BY {column} LIMIT @limit",
                ("now", IndexColumns.Ms(now)), ("limit", limit));
            await using var reader = await cmd.ExecuteReaderAsync(ct);
            while (await reader.ReadAsync(ct)) due.Add((reader.GetString(0), reason));
        }
        return due;
    }

    /// <summary>As <see cref="DueAsync"/> under what-if thresholds (per-run overrides still win); for the dry-run scan.</summary>
    public async Task<IReadOnlyList<string>> DueUnderAsync(DetectorThresholds whatIf, DateTimeOffset now, int limit, CancellationToken ct = default)
    {
        await using var db = await OpenAsync(ct);
        await using var cmd = Command(db, null, """
            SELECT run_id FROM run_index WHERE
                 (stale_base IS NOT NULL AND stale_base + COALESCE(pending_stale_s, @ps) * 1000 <= @now)
              OR (heartbeat_base IS NOT NULL AND heartbeat_base + COALESCE(heartbeat_timeout_s, @hb) * 1000 <= @now)
              OR (timeout_base IS NOT NULL AND timeout_base + COALESCE(workflow_stale_s, @ws) * 1000 <= @now)
            LIMIT @limit
            """, ("ps", whatIf.PendingStaleS), ("hb", whatIf.HeartbeatTimeoutS), ("ws", whatIf.WorkflowStaleS),
            ("now", IndexColumns.Ms(now)), ("limit", limit));
        var ids = new List<string>();
        await using var reader = await cmd.ExecuteReaderAsync(ct);
        while (await reader.ReadAsync(ct)) ids.Add(reader.GetString(0));
        return ids;
    }

    /// <summary>Cancelled runs, newest first, optionally for one client.</summary>
    public async Task<IReadOnlyList<RunIndexRow>> CancelledAsync(int limit, int offset, string? clientId, CancellationToken ct = default)
    {
        await using var db = await OpenAsync(ct);
        var filter = clientId is null ? "" : "AND client_id = @client ";
        await using var cmd = Command(db, null,
            $"SELECT {string.Join(", ", RowListColumns)} FROM run_index WHERE cancelled_at IS NOT NULL " + filter +
            "ORDER BY cancelled_at DESC, run_id LIMIT @limit OFFSET @offset",
            ("limit", limit), ("offset", offset), ("client", (object?)clientId ?? DBNull.Value));
        var rows = new List<RunIndexRow>();
        await using var r = await cmd.ExecuteReaderAsync(ct);
        while (await r.ReadAsync(ct)) rows.Add(ReadRow(r));
        return rows;
    }

    /// <summary>
    /// A bulk cancel's next page: runs that match <paramref name="filter"/>, were created no later than the operation
    /// and come after <paramref name="cursor"/> in (created_at, run_id) order, at most <paramref name="limit"/>; RUNNING
    /// ones, and the ones the operation itself cancelled (its caller and reason, since it started), so that a page it
    /// cancelled but did not get to record before a crash is walked and counted again.
    /// </summary>
    public async Task<IReadOnlyList<OperationCursor>> OpenMatchesAsync(BulkOperation op, OperationCursor? cursor, int limit, CancellationToken ct = default)
    {
        var (where, parameters) = MatchWhere(op.Filter, op.CreatedAt,
            "(cancelled_at >= @since AND cancelled_by = @by AND cancel_reason = @reason)");
        parameters.Add(("since", IndexColumns.Ms(op.CreatedAt)));
        parameters.Add(("by", op.By));
        parameters.Add(("reason", op.Reason));
        if (cursor is not null)
        {
            where += " AND (created_at > @cc OR (created_at = @cc AND run_id > @cr))";
            parameters.Add(("cc", cursor.CreatedAtMs));
            parameters.Add(("cr", cursor.RunId));
        }
        parameters.Add(("limit", limit));
        await using var db = await OpenAsync(ct);
        await using var cmd = Command(db, null, $"SELECT created_at, run_id FROM run_index WHERE {where} ORDER BY created_at, run_id LIMIT @limit", [.. parameters]);
        var page = new List<OperationCursor>();
        await using var r = await cmd.ExecuteReaderAsync(ct);
        while (await r.ReadAsync(ct)) page.Add(new OperationCursor(r.GetInt64(0), r.GetString(1)));
        return page;
    }

    /// <summary>How many RUNNING runs match, and the ids of the first <paramref name="sample"/> (a bulk cancel's dry run).</summary>
    public async Task<(long Count, IReadOnlyList<string> Sample)> CountOpenMatchesAsync(RunFilter filter, DateTimeOffset createdUpTo, int sample,
        CancellationToken ct = default)
    {
        var (where, parameters) = MatchWhere(filter, createdUpTo);
        await using var db = await OpenAsync(ct);
        long count;
        await using (var cmd = Command(db, null, $"SELECT COUNT(*) FROM run_index WHERE {where}", [.. parameters]))
            count = Convert.ToInt64(await cmd.ExecuteScalarAsync(ct));
        var ids = new List<string>();
        parameters.Add(("limit", sample));
        await using (var cmd = Command(db, null, $"SELECT run_id FROM run_index WHERE {where} ORDER BY created_at, run_id LIMIT @limit", [.. parameters]))
        await using (var r = await cmd.ExecuteReaderAsync(ct))
            while (await r.ReadAsync(ct)) ids.Add(r.GetString(0));
        return (count, ids);
    }

    private static (string Where, List<(string Name, object? Value)> Parameters) MatchWhere(RunFilter filter, DateTimeOffset createdUpTo,
        string? orAlso = null)
    {
        var where = new System.Text.StringBuilder(orAlso is null ? "status = @running" : $"(status = @running OR {orAlso})").Append(" AND created_at <= @upto");
        var parameters = new List<(string Name, object? Value)> { ("running", nameof(RunStatus.RUNNING)), ("upto", IndexColumns.Ms(createdUpTo)) };
        if (filter.ClientId is { } client) { where.Append(" AND client_id = @client"); parameters.Add(("client", client)); }
        if (filter.WorkflowName is { } workflow) { where.Append(" AND workflow_name = @workflow"); parameters.Add(("workflow", workflow)); }
        if (filter.CreatedAfter is { } after) { where.Append(" AND created_at > @after"); parameters.Add(("after", IndexColumns.Ms(after))); }
        if (filter.CreatedBefore is { } before) { where.Append(" AND created_at < @before"); parameters.Add(("before", IndexColumns.Ms(before))); }
        if (!filter.RunIds.IsDefaultOrEmpty)
        {
            var (list, ids) = Hosting.Sql.In("id", filter.RunIds);
            where.Append(" AND run_id IN ").Append(list);
            parameters.AddRange(ids);
        }
        return (where.ToString(), parameters);
    }

    /// <summary>Finished runs whose retention is over, longest finished first, at most <paramref name="limit"/>.</summary>
    public async Task<IReadOnlyList<(string RunId, long CreatedAtMs)>> DueForRetentionAsync(RetentionPolicy policy, DateTimeOffset now, int limit,
        CancellationToken ct = default)
    {
        var clauses = new List<string>();
        var parameters = new List<(string Name, object? Value)> { ("limit", limit) };
        foreach (var status in new[] { RunStatus.SUCCEEDED, RunStatus.FAILED, RunStatus.CANCELLED })
        {
            if (policy.LimitFor(status) is not { } keep) continue;
            var name = status.ToString().ToLowerInvariant();
            clauses.Add($"(status = @{name} AND updated_at <= @{name}_before)");
            parameters.Add((name, status.ToString()));
            parameters.Add(($"{name}_before", IndexColumns.Ms(now - keep)));
        }
        if (clauses.Count == 0) return [];
        // The latest cutoff bounds the scan of ix_run_index_updated: open runs with old rows above it are never read.
        parameters.Add(("latest", parameters.Where(p => p.Name.EndsWith("_before", StringComparison.Ordinal)).Max(p => (long)p.Value!)));
        await using var db = await OpenAsync(ct);
        await using var cmd = Command(db, null,
            $"SELECT run_id, created_at FROM run_index WHERE updated_at <= @latest AND ({string.Join(" OR ", clauses)}) ORDER BY updated_at LIMIT @limit",
            [.. parameters]);
        var due = new List<(string, long)>();
        await using var r = await cmd.ExecuteReaderAsync(ct);
        while (await r.ReadAsync(ct)) due.Add((r.GetString(0), r.GetInt64(1)));
        return due;
    }

    /// <summary>@s, @f, @x: the terminal states, for "status IN (@s, @f, @x)".</summary>
    private static readonly (string Name, object? Value)[] FinishedStatuses =
        [("s", nameof(RunStatus.SUCCEEDED)), ("f", nameof(RunStatus.FAILED)), ("x", nameof(RunStatus.CANCELLED))];

    /// <summary>
    /// The finished runs beyond <paramref name="cap"/>, those that finished first, at most <paramref name="limit"/>, and
    /// the time the last of them finished (a run that finished later is not over the cap).
    /// </summary>
    public async Task<(IReadOnlyList<(string RunId, long CreatedAtMs)> Runs, DateTimeOffset? FinishedBefore)> OverCapAsync(int cap, int limit,
        CancellationToken ct = default)
    {
        await using var db = await OpenAsync(ct);
        long count;
        await using (var cmd = Command(db, null, "SELECT COUNT(*) FROM run_index WHERE status IN (@s, @f, @x)", FinishedStatuses))
            count = Convert.ToInt64(await cmd.ExecuteScalarAsync(ct));
        if (count <= cap) return ([], null);
        var over = new List<(string, long)>();
        long last = 0;
        await using (var cmd = Command(db, null, "SELECT run_id, created_at, updated_at FROM run_index WHERE status IN (@s, @f, @x) ORDER BY updated_at LIMIT @n",
                         [.. FinishedStatuses, ("n", (int)Math.Min(count - cap, limit))]))
        await using (var r = await cmd.ExecuteReaderAsync(ct))
            while (await r.ReadAsync(ct))
            {
                over.Add((r.GetString(0), r.GetInt64(1)));
                last = r.GetInt64(2);
            }
        return (over, over.Count == 0 ? null : DateTimeOffset.FromUnixTimeMilliseconds(last));
    }

    /// <summary>
    /// After the runs deleted their own journals: the rows the journal only marked deleted (it keeps the highest of an
    /// entity), any snapshot left, quarantined events and the index rows (only the finished run of that creation time:
    /// a run submitted again under the same id meanwhile keeps its row). Their cached states go too.
    /// </summary>
    public async Task RemoveExpiredAsync(IReadOnlyList<(string RunId, long CreatedAtMs)> runs, CancellationToken ct = default)
    {
        if (runs.Count == 0) return;
        await using var db = await OpenAsync(ct);
        // A transaction per 50 runs: on SQLite it holds the write lock the journal's group commit waits for.
        foreach (var chunk in runs.Chunk(50))
        {
            await using var tx = await db.BeginTransactionAsync(ct);
            var (pids, pidParameters) = Hosting.Sql.In("p", [.. chunk.Select(r => Workflows.WorkflowActor.PersistenceIdPrefix + r.RunId)]);
            await ExecAsync(db, tx, $"DELETE FROM journal WHERE persistence_id IN {pids} AND deleted = @yes", ct, [.. pidParameters, ("yes", true)]);
            await ExecAsync(db, tx, $"DELETE FROM snapshot WHERE persistence_id IN {pids}", ct, pidParameters);
            var (ids, idParameters) = Hosting.Sql.In("r", [.. chunk.Select(r => r.RunId)]);
            await ExecAsync(db, tx, $"DELETE FROM run_index_quarantine WHERE run_id IN {ids}", ct, idParameters);
            foreach (var (runId, createdAt) in chunk)
                await ExecAsync(db, tx, "DELETE FROM run_index WHERE run_id = @r AND created_at = @c AND status IN (@s, @f, @x)", ct,
                    [("r", runId), ("c", createdAt), .. FinishedStatuses]);
            await tx.CommitAsync(ct);
        }
        foreach (var (runId, _) in runs) _forget.Enqueue(runId);
    }

    private static readonly string UpsertSql =
        $"INSERT INTO run_index ({string.Join(", ", RowColumns)}) VALUES ({string.Join(", ", RowColumns.Select(c => "@" + c))}) " +
        $"ON CONFLICT (run_id) DO UPDATE SET {UpdateAll}";

    /// <summary>Rows per multi-row upsert: 28 parameters each, far below PostgreSQL's 65,535 per statement.</summary>
    private const int MaxRowsPerUpsert = 1_000;

    /// <summary>The upsert of <paramref name="rows"/> rows with positional parameters ($1, $2, ...), row by row in <see cref="RowColumns"/> order.</summary>
    private static string MultiRowUpsertSql(int rows)
    {
        var sql = new System.Text.StringBuilder($"INSERT INTO run_index ({string.Join(", ", RowColumns)}) VALUES ");
        var n = 0;
        for (var r = 0; r < rows; r++)
        {
            sql.Append(r == 0 ? "(" : ", (");
            for (var c = 0; c < RowColumns.Count; c++) sql.Append(c == 0 ? "$" : ", $").Append(++n);
            sql.Append(')');
        }
        return sql.Append(" ON CONFLICT (run_id) DO UPDATE SET ").Append(UpdateAll).ToString();
    }

    /// <summary>One command for a whole batch, re-bound per run (SQLite keeps its statement prepared while the text stays).</summary>
    private static DbCommand UpsertCommand(DbConnection db, DbTransaction tx) =>
        Command(db, tx, UpsertSql, [.. RowColumns.Select(c => (c, (object?)null))]);

    /// <summary>The run's row, in <see cref="RowColumns"/> order.</summary>
    private object?[] RowValues(Folded f)
    {
        var (s, seq, heartbeat) = (f.State, f.Seq, f.HeartbeatBase);
        var t = thresholds.For(s.Deadlock);
        var stale = IndexColumns.StaleBase(s);
        var timeout = IndexColumns.TimeoutBase(s);
        var c = s.Counts;
        return
        [
            s.RunId, seq, s.WorkflowName, s.ClientId, s.Status.ToString(), IndexColumns.Ms(s.CreatedAt), IndexColumns.Ms(s.UpdatedAt), s.Tasks.Count,
            c.Pending, c.Queued, c.Running, c.Succeeded, c.Failed, c.Cancelled, c.Skipped,
            stale, heartbeat, timeout,
            s.Deadlock?.PendingStaleS, s.Deadlock?.WorkflowStaleS, s.Deadlock?.HeartbeatTimeoutS,
            stale + t.PendingStaleS * 1000L, heartbeat + t.HeartbeatTimeoutS * 1000L, timeout + t.WorkflowStaleS * 1000L,
            s.Cancel?.Reason, s.Cancel?.CancelledBy, s.Cancel is { } k ? IndexColumns.Ms(k.CancelledAt) : null,
            s.Cancel?.DeadlockReason,
        ];
    }

    private async Task<DbConnection> OpenAsync(CancellationToken ct)
    {
        var db = connect();
        await db.OpenAsync(ct);
        Hosting.SqliteStore.OnOpened(db);
        return db;
    }
}
