using Akka.Persistence.Query;
using Akka.Streams;
using Akka.Streams.Dsl;
using Deepline.Actors.Hosting;
using Deepline.Actors.Index;
using Deepline.Tests.Shared;
using Npgsql;

namespace Deepline.Actors.Tests;

/// <summary>
/// The run index's journal tail on a real PostgreSQL server, where a row's ordering is taken at INSERT and becomes
/// visible at COMMIT: a row committed above a transaction still open is not handed on before it (the index would
/// store an offset past an event it never saw), and a rolled-back transaction's hole is stepped over after the timeout.
/// </summary>
public sealed class JournalTailPostgresTests : Akka.TestKit.Xunit2.TestKit, IAsyncLifetime
{
    private PostgresServer _server = null!;
    private string _connection = null!;
    // The tail's clock, moved by hand; rows are written "now" by this clock unless a test says otherwise.
    private DateTime _now = DateTime.UtcNow;

    public async Task InitializeAsync()
    {
        _server = await PostgresServer.StartAsync();
        _connection = await _server.CreateDatabaseAsync("tail");
        // The plugin's PostgreSQL journal table, as it creates it on first start.
        await Exec(null, """
            CREATE TABLE journal (ordering BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY, created BIGINT NOT NULL, deleted BOOLEAN NOT NULL,
              persistence_id TEXT NOT NULL, sequence_number BIGINT NOT NULL, message BYTEA NOT NULL, manifest TEXT NULL,
              identifier INTEGER NULL, writer_uuid TEXT NULL, CONSTRAINT journal_uq UNIQUE (persistence_id, sequence_number));
            CREATE TABLE tags (ordering_id BIGINT NOT NULL, tag TEXT NOT NULL, sequence_nr BIGINT NOT NULL, persistence_id TEXT NOT NULL,
              CONSTRAINT "PK_tags" PRIMARY KEY (ordering_id, tag))
            """);
    }

    public async Task DisposeAsync() => await _server.DisposeAsync();

    private JournalTail Tail() => new(() => new NpgsqlConnection(_connection), Sys.Serialization, holesPossible: true, () => _now);

    private async Task Exec(NpgsqlConnection? on, string sql)
    {
        await using var own = on is null ? new NpgsqlConnection(_connection) : null;
        if (own is not null) await own.OpenAsync();
        await using var cmd = new NpgsqlCommand(sql, on ?? own);
        await cmd.ExecuteNonQueryAsync();
    }

    private string Insert(string pid, long seq, bool deleted = false, string manifest = "TaskStarted", long? created = null) =>
        $"INSERT INTO journal (created, deleted, persistence_id, sequence_number, message, manifest) VALUES ({created ?? _now.Ticks}, {deleted}, '{pid}', {seq}, '\\x01', '{manifest}')";

    /// <summary>The tail's rows arrive at the test actor.</summary>
    private UniqueKillSwitch Follow(long offset, string? onlyManifest = null) =>
        Tail().After(offset, 100, onlyManifest).ViaMaterialized(KillSwitches.Single<EventEnvelope>(), Keep.Right)
            .To(Sink.ActorRef<EventEnvelope>(TestActor, "completed", e => e)).Run(Sys.Materializer());

    private EventEnvelope Next() => ExpectMsg<EventEnvelope>(TimeSpan.FromSeconds(10));

    [Fact]
    public async Task A_row_committed_above_an_open_transaction_waits_for_it_and_both_arrive_in_order()
    {
        await Exec(null, Insert("run-a", 1));
        await using var slow = new NpgsqlConnection(_connection);
        await slow.OpenAsync();
        await using var open = await slow.BeginTransactionAsync();
        await Exec(slow, Insert("run-b", 1)); // ordering 2, not committed yet
        await Exec(null, Insert("run-c", 1)); // ordering 3, committed

        var tail = Follow(0);
        Assert.Equal("run-a", Next().PersistenceId);
        // Several of the tail's reads happen in this window; none may hand on the row above the open transaction.
        ExpectNoMsg(TimeSpan.FromMilliseconds(500));

        await open.CommitAsync();
        Assert.Equal(["run-b", "run-c"], [Next().PersistenceId, Next().PersistenceId]);
        tail.Shutdown();
    }

    [Fact]
    public async Task A_rolled_back_transaction_holds_the_tail_until_the_timeout_then_the_rows_after_it_arrive()
    {
        await using (var failed = new NpgsqlConnection(_connection))
        {
            await failed.OpenAsync();
            await using var tx = await failed.BeginTransactionAsync();
            await Exec(failed, Insert("run-lost", 1)); // takes ordering 1
            await tx.RollbackAsync();
        }
        await Exec(null, Insert("run-d", 1));
        await Exec(null, Insert("run-e", 1, deleted: true));
        await Exec(null, Insert("run-f", 1));

        var tail = Follow(0);
        ExpectNoMsg(TimeSpan.FromMilliseconds(500));

        _now += JournalTail.HoleTimeout;
        // A deleted row is no hole, and is not handed on.
        var arrived = new[] { Next(), Next() };
        Assert.Equal(["run-d", "run-f"], arrived.Select(e => e.PersistenceId));
        Assert.Equal([2L, 4L], arrived.Select(e => ((Sequence)e.Offset).Value));
        tail.Shutdown();
    }

    [Fact]
    public async Task Following_one_manifest_hands_on_only_its_rows_and_a_page_ending_in_others_moves_the_offset()
    {
        await Exec(null, Insert("run-g", 1, manifest: "RunSubmitted"));
        await Exec(null, Insert("run-g", 2, manifest: "RunCancelRequested"));
        await Exec(null, Insert("shard-h", 1, manifest: "RunCancelRequested")); // not a run
        await Exec(null, Insert("run-i", 1, manifest: "RunSubmitted"));

        var tail = Follow(0, "RunCancelRequested");
        var cancel = Next();
        Assert.Equal(("run-g", 2L), (cancel.PersistenceId, ((Sequence)cancel.Offset).Value));
        Assert.IsType<Deepline.Actors.Serialization.UnreadablePayload>(cancel.Event); // read: its bytes are no real payload
        var progress = Next();
        Assert.Equal(4L, ((Sequence)progress.Offset).Value);
        Assert.IsType<JournalTail.NotRead>(progress.Event);
        tail.Shutdown();
    }

    [Fact]
    public async Task Events_deleted_after_a_snapshot_leave_no_hole_for_a_tail_that_had_not_read_them()
    {
        // The monitor journals, snapshots and deletes its events before the tail got to them; a run event follows.
        var now = _now;
        for (var seq = 1; seq <= 5; seq++) await Exec(null, Insert("monitor", seq));
        await using (var db = new NpgsqlConnection(_connection))
        {
            await db.OpenAsync();
            await JournalDeletes.DeleteAsync(db, "monitor", 5, now - JournalDeletes.Grace);
        }
        await Exec(null, Insert("run-j", 1));

        // The tail's clock stands still: a hole would hold it for good (removing the rows at once, as the plugin does, fails here).
        var tail = Follow(0);
        Assert.Equal("run-j", Next().PersistenceId);
        tail.Shutdown();
    }

    [Fact]
    public async Task Deleted_events_are_removed_once_older_than_the_grace_and_the_highest_stays()
    {
        var now = _now;
        await Exec(null, Insert("coordinator", 1, created: (now - TimeSpan.FromHours(1)).Ticks));
        await Exec(null, Insert("coordinator", 2, created: (now - TimeSpan.FromHours(1)).Ticks));
        await Exec(null, Insert("coordinator", 3));
        await Exec(null, Insert("coordinator", 4));
        await using var db = new NpgsqlConnection(_connection);
        await db.OpenAsync();
        await JournalDeletes.DeleteAsync(db, "coordinator", 4, now - JournalDeletes.Grace);

        await using var cmd = new NpgsqlCommand("SELECT sequence_number, deleted FROM journal WHERE persistence_id = 'coordinator' ORDER BY 1", db);
        var rows = new List<(long, bool)>();
        await using (var r = await cmd.ExecuteReaderAsync())
            while (await r.ReadAsync()) rows.Add((r.GetInt64(0), r.GetBoolean(1)));
        Assert.Equal([(3L, true), (4L, true)], rows);
    }

    [Fact]
    public async Task A_tail_reading_old_history_passes_its_holes_without_waiting_on_each()
    {
        var anHourAgo = (_now - TimeSpan.FromHours(1)).Ticks;
        for (var hole = 0; hole < 3; hole++)
        {
            await using (var failed = new NpgsqlConnection(_connection))
            {
                await failed.OpenAsync();
                await using var tx = await failed.BeginTransactionAsync();
                await Exec(failed, Insert($"run-lost{hole}", 1));
                await tx.RollbackAsync();
            }
            await Exec(null, Insert($"run-old{hole}", 1, created: anHourAgo));
        }

        // The tail's clock stands still: only the rows' own age lets it pass (the mirror rebuilding from 0 after Redis
        // lost its data reads the whole journal, with every hole the past left).
        var tail = Follow(0);
        Assert.Equal(["run-old0", "run-old1", "run-old2"], new[] { Next(), Next(), Next() }.Select(e => e.PersistenceId));
        tail.Shutdown();
    }
}
