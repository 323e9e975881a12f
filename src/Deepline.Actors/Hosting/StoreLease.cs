using System.Collections.Concurrent;
using System.Data.Common;
using Akka.Actor;
using Akka.Cluster;
using Akka.Event;

namespace Deepline.Actors.Hosting;

/// <summary>The lease row as read: who holds the store, and when it last renewed (store clock, ms).</summary>
public sealed record LeaseRow(string Holder, long RenewedAtMs);

/// <summary>What the keeper does after reading the row.</summary>
public enum LeaseStep
{
    /// <summary>Write the row as ours (it is ours, free, stale, or held by a member this cluster has had).</summary>
    Take,
    /// <summary>Another holder renews it; not long enough yet to call it another cluster (it may be a crashed one's last renewal).</summary>
    Wait,
    /// <summary>Another holder kept renewing it for longer than a lease: a second cluster uses this store.</summary>
    Conflict,
}

/// <summary>One cluster, one store, as a pure function of the lease row and what this cluster knows.</summary>
public static class StoreLeaseRule
{
    public static readonly TimeSpan Ttl = TimeSpan.FromSeconds(10);

    /// <param name="contestedSinceMs">When this keeper first found the row held by a holder it does not know (null: it has not).</param>
    public static LeaseStep Decide(LeaseRow? row, string self, Func<string, bool> seenMember, long nowMs, long? contestedSinceMs)
    {
        if (row is null || row.Holder == self || seenMember(row.Holder)) return LeaseStep.Take;
        if (nowMs - row.RenewedAtMs > Ttl.TotalMilliseconds) return LeaseStep.Take;
        // A holder that keeps renewing for longer than a lease after we first saw it is alive, not a crashed cluster's echo.
        return contestedSinceMs is { } since && nowMs - since > Ttl.TotalMilliseconds * 1.5 ? LeaseStep.Conflict : LeaseStep.Wait;
    }
}

/// <summary>
/// One cluster per store. The store identity (<see cref="StoreIdentity"/>) tells a node of another store from the cluster's
/// members, but a node pointed at the cluster's PostgreSQL database without seed nodes forms a cluster of its own with
/// the same identity, and the two wrote over each other's runs (500 "Not stored"). A lease row in the store settles it:
/// this cluster singleton renews it every 2 s as its node's <c>address#uid</c>, timed by the database's clock; it takes the row over when the holder
/// is itself, a member this cluster has had (a singleton that moved), or silent for 10 s (a cluster that is gone). A
/// holder it never saw that keeps renewing is a second cluster: this one, the newcomer, downs every member (each
/// stops with one line in its log) and the cluster that held the store keeps it. A clean stop releases the row, so a
/// restart takes over at once; after a crash the next start waits out the 10 s.
/// </summary>
public sealed class StoreLeaseKeeper : ReceiveActor, IWithTimers
{
    private static readonly TimeSpan Every = TimeSpan.FromSeconds(2);

    private readonly Func<DbConnection> _connect;
    private readonly Func<string, bool> _seen;
    private readonly Action? _onConflict;
    private readonly Cluster _cluster = Cluster.Get(Context.System);
    private readonly ILoggingAdapter _log = Context.GetLogger();
    private readonly string _self;
    private long? _contestedSince;
    private bool _held;
    private bool _busy;
    private bool _tableReady;

    public StoreLeaseKeeper(Func<DbConnection> connect, Func<string, bool> seen, Action? onConflict)
    {
        (_connect, _seen, _onConflict) = (connect, seen, onConflict);
        _self = Holder(_cluster.SelfUniqueAddress);
        Receive<Tick>(_ =>
        {
            if (_busy) return;
            _busy = true;
            RoundAsync().PipeTo(Self, success: r => r, failure: e => new Round(null, null, e));
        });
        Receive<Round>(OnRound);
    }

    public ITimerScheduler Timers { get; set; } = null!;

    public static string Holder(UniqueAddress member) => $"{member.Address}#{member.Uid}";

    public static Props Props(Func<DbConnection> connect, Func<string, bool> seen, Action? onConflict) =>
        Akka.Actor.Props.Create(() => new StoreLeaseKeeper(connect, seen, onConflict));

    protected override void PreStart()
    {
        Self.Tell(Tick.Instance);
        Timers.StartPeriodicTimer("renew", Tick.Instance, Every);
    }

    protected override void PostStop()
    {
        // A clean hand-over or stop releases the row, so the next holder need not wait out the lease. Not awaited (no
        // blocking in an actor): if the process ends first, the next holder waits out the lease instead.
        if (_held) _ = ReleaseAsync(_connect, _self);
    }

    private static async Task ReleaseAsync(Func<DbConnection> connect, string self)
    {
        try
        {
            await using var db = connect();
            await db.OpenAsync();
            await Sql.ExecAsync(db, null, "UPDATE deepline_store_lease SET renewed_at = 0 WHERE id = 1 AND holder = @h", CancellationToken.None, ("h", self));
        }
        catch (Exception e) when (e is DbException or InvalidOperationException or TimeoutException)
        {
            // The store is away: the next holder waits out the lease.
        }
    }

    private void OnRound(Round r)
    {
        _busy = false;
        if (r.Error is null) _tableReady = true;
        else
        {
            // The store is away (a restart, a network fault): nothing is decided without it; the next tick asks again.
            return;
        }
        switch (r.Step)
        {
            case LeaseStep.Take:
                _held = true;
                _contestedSince = null;
                break;
            case LeaseStep.Wait:
                _held = false;
                _contestedSince ??= r.NowMs;
                _log.Warning("The store's cluster lease is held by {0}, not a member of this cluster; waiting to see whether it is still renewed", r.Row!.Holder);
                break;
            case LeaseStep.Conflict:
                _log.Error("Another cluster is using this store: its node {0} keeps renewing the store's cluster lease. One store, one cluster: " +
                           "this cluster (the newcomer) stops. Point orchestrator.store.connection at a database of its own, or give this node " +
                           "the other cluster's seed nodes (orchestrator.remoting.seed_nodes) to join it.", r.Row!.Holder);
                Timers.CancelAll();
                _onConflict?.Invoke();
                foreach (var member in _cluster.State.Members) _cluster.Down(member.Address);
                break;
        }
    }

    private async Task<Round> RoundAsync()
    {
        await using var db = _connect();
        await db.OpenAsync();
        if (!_tableReady)
            await Sql.ExecAsync(db, null, "CREATE TABLE IF NOT EXISTS deepline_store_lease (id INTEGER NOT NULL PRIMARY KEY, holder VARCHAR(300) NOT NULL, renewed_at BIGINT NOT NULL)",
                CancellationToken.None);
        // The database's clock, for writing and for judging a renewal alike: nodes' clocks may differ by more than a lease.
        long now;
        await using (var clock = db.CreateCommand())
        {
            clock.CommandText = "SELECT CAST(EXTRACT(EPOCH FROM clock_timestamp()) * 1000 AS BIGINT)";
            now = Convert.ToInt64(await clock.ExecuteScalarAsync());
        }
        LeaseRow? row = null;
        await using (var read = db.CreateCommand())
        {
            read.CommandText = "SELECT holder, renewed_at FROM deepline_store_lease WHERE id = 1";
            await using var r = await read.ExecuteReaderAsync();
            if (await r.ReadAsync()) row = new LeaseRow(r.GetString(0), r.GetInt64(1));
        }
        var step = StoreLeaseRule.Decide(row, _self, _seen, now, _contestedSince);
        if (step == LeaseStep.Take)
        {
            // Conditional on the row read: of two keepers taking a stale row at once, one wins; the other reads it next time.
            await using var take = row is null
                ? Sql.Command(db, null, "INSERT INTO deepline_store_lease (id, holder, renewed_at) VALUES (1, @h, @t) ON CONFLICT (id) DO NOTHING", ("h", _self), ("t", now))
                : Sql.Command(db, null, "UPDATE deepline_store_lease SET holder = @h, renewed_at = @t WHERE id = 1 AND holder = @old AND renewed_at = @at",
                    ("h", _self), ("t", now), ("old", row.Holder), ("at", row.RenewedAtMs));
            var taken = await take.ExecuteNonQueryAsync();
            if (taken == 0) step = LeaseStep.Wait;
        }
        return new Round(step, row, null) { NowMs = now };
    }

    private sealed record Tick
    {
        public static readonly Tick Instance = new();
    }

    private sealed record Round(LeaseStep? Step, LeaseRow? Row, Exception? Error)
    {
        public long NowMs { get; init; }
    }
}

/// <summary>Every member this node has seen in its cluster (address#uid), so a keeper that moved knows its predecessors.</summary>
public sealed class MembersSeen : ReceiveActor
{
    public MembersSeen(ConcurrentDictionary<string, byte> seen)
    {
        Receive<ClusterEvent.CurrentClusterState>(s =>
        {
            foreach (var m in s.Members) seen.TryAdd(StoreLeaseKeeper.Holder(m.UniqueAddress), 0);
        });
        Receive<ClusterEvent.IMemberEvent>(e => seen.TryAdd(StoreLeaseKeeper.Holder(e.Member.UniqueAddress), 0));
    }

    public static Props Props(ConcurrentDictionary<string, byte> seen) => Akka.Actor.Props.Create(() => new MembersSeen(seen));

    protected override void PreStart() =>
        Cluster.Get(Context.System).Subscribe(Self, ClusterEvent.SubscriptionInitialStateMode.InitialStateAsSnapshot, typeof(ClusterEvent.IMemberEvent));

    protected override void PostStop() => Cluster.Get(Context.System).Unsubscribe(Self);
}
