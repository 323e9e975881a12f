using Akka;
using Akka.Actor;
using Akka.Event;
using Akka.Persistence.Query;
using Akka.Streams;
using Akka.Streams.Dsl;
using Deepline.Actors.Index;
using Deepline.Actors.Workers;
using Deepline.Actors.Workflows;
using Deepline.Domain;

namespace Deepline.Actors.Cancellation;

/// <summary>
/// Mirrors every cancel record to Redis (see <see cref="RedisCancelStore"/>). One per node, started only when Redis
/// is configured; the in-cluster path (WorkflowActor publishing on <see cref="Topics.Cancellations"/>) is separate
/// and does not depend on it.
/// <list type="bullet">
/// <item>Fast path: the <see cref="RunCancelledNotice"/> that this node's WorkflowActors publish on the local event
/// stream when they decide a cancel is announced on the channel at once (PUBLISH only: workers stop while the journal
/// write is under way); the <see cref="RunCancelJournalled"/> that follows once it is durable writes the set, hash and
/// time index and announces the run again (the set's message, as before). Best effort: a failure is dropped, the
/// journal path catches it.</item>
/// <item>Journal path, the guarantee: the journal's cancel records (<see cref="RunCancelRequested"/>, read by a
/// <see cref="JournalTail"/>, which never hands on a row above one that may still commit) from the offset stored in
/// Redis, written in batches, the offset raised in the same script, run again with backoff after any failure (by this
/// actor, not Akka's RestartSource, which logs every restart as a warning with a stack trace: one line per outage is
/// what an operator needs, <see cref="MirrorHealth"/>). A cancel
/// accepted while Redis was down is written when it is back; when Redis lost its data the offset is gone with it
/// and the mirror starts over from 0 (skipping entries past retention).</item>
/// </list>
/// Per node rather than a cluster singleton: every write is idempotent (SADD/HSET/ZADD, PUBLISH only for a run new to
/// the set), so nodes mirroring the same journal need no hand-over and no node waits for another to mirror.
/// </summary>
public sealed class CancellationBroadcaster : ReceiveActor, IWithTimers
{
    private const string PruneTimer = "prune";
    private const string RestartTimer = "restart-journal-path";
    private static readonly TimeSpan MinBackoff = TimeSpan.FromMilliseconds(200);
    private static readonly TimeSpan MaxBackoff = TimeSpan.FromSeconds(5);

    private readonly RedisCancelStore _store;
    private readonly Func<System.Data.Common.DbConnection> _journal;
    private readonly Func<DateTimeOffset> _now;
    private readonly ILoggingAdapter _log = Context.GetLogger();
    private readonly MirrorHealth _health;
    private UniqueKillSwitch? _journalStream;
    private IActorRef? _fastPath;
    private int _restarts;
    private long _journalStartedAt;
    private IMaterializer? _materializer;

    /// <param name="journal">Opens a connection to the journal's database.</param>
    public CancellationBroadcaster(RedisCancelStore store, Func<System.Data.Common.DbConnection> journal, Func<DateTimeOffset>? now = null)
    {
        _store = store;
        _journal = journal;
        _now = now ?? (() => DateTimeOffset.UtcNow);
        _health = new MirrorHealth(_log);

        Receive<RunCancelledNotice>(n => _fastPath?.Tell(new FastItem(n, Journalled: false)));
        Receive<RunCancelJournalled>(j => _fastPath?.Tell(new FastItem(j.Notice, Journalled: true)));
        Receive<Prune>(_ => _store.PruneAsync(_now() - _store.Settings.Retention)
            .PipeTo(Self, success: n => new Pruned(n, null), failure: e => new Pruned(0, e)));
        Receive<Pruned>(p =>
        {
            if (p.Error is not null) _log.Debug("Pruning Redis cancels skipped: {0}", p.Error.Message);
            else if (p.Count > 0) _log.Info("Pruned {0} cancelled runs older than {1} from Redis", p.Count, _store.Settings.Retention);
        });
        Receive<JournalPathEnded>(e =>
        {
            // A run that lasted past the longest backoff was a recovery: the next failure starts the backoff over.
            if (Environment.TickCount64 - _journalStartedAt > MaxBackoff.TotalMilliseconds) _restarts = 0;
            var delay = Backoff(_restarts++, Random.Shared.NextDouble());
            _log.Debug("Redis cancel mirror stopped ({0}); running it again in {1} ms", e.Error?.Message ?? "completed", (int)delay.TotalMilliseconds);
            Timers.StartSingleTimer(RestartTimer, RestartJournalPath.Instance, delay);
        });
        Receive<RestartJournalPath>(_ => StartJournalPath());
    }

    /// <summary>200 ms doubling to 5 s, plus up to 20 % so that nodes do not retry in step.</summary>
    internal static TimeSpan Backoff(int restarts, double jitter) =>
        TimeSpan.FromMilliseconds(Math.Min(MaxBackoff.TotalMilliseconds, MinBackoff.TotalMilliseconds * Math.Pow(2, Math.Min(restarts, 16))) * (1 + 0.2 * jitter));

    private void StartJournalPath()
    {
        _journalStartedAt = Environment.TickCount64;
        var (killSwitch, done) = JournalPath().Run(_materializer!);
        _journalStream = killSwitch;
        done.PipeTo(Self, success: _ => new JournalPathEnded(null), failure: e => new JournalPathEnded(e));
    }

    public static Props Props(RedisCancelStore store, Func<System.Data.Common.DbConnection> journal) =>
        Akka.Actor.Props.Create(() => new CancellationBroadcaster(store, journal, null));

    public ITimerScheduler Timers { get; set; } = null!;

    protected override void PreStart()
    {
        _materializer = Context.Materializer();
        _fastPath = FastPath().Run(_materializer);
        Context.System.EventStream.Subscribe(Self, typeof(RunCancelledNotice));
        Context.System.EventStream.Subscribe(Self, typeof(RunCancelJournalled));
        StartJournalPath();
        Timers.StartPeriodicTimer(PruneTimer, Prune.Instance, TimeSpan.Zero, _store.Settings.PruneInterval);
    }

    protected override void PostStop()
    {
        Context.System.EventStream.Unsubscribe(Self);
        _journalStream?.Shutdown();
    }

    private IRunnableGraph<IActorRef> FastPath()
    {
        var max = _store.Settings.MaxBatch;
        // Batch only forms while a write is in flight: no added latency when Redis keeps up.
        return Source.ActorRef<FastItem>(10_000, OverflowStrategy.DropHead)
            .Batch(max, n => new List<FastItem> { n }, (list, n) => { list.Add(n); return list; })
            .SelectAsync(1, async batch =>
            {
                try
                {
                    // The early message is a hint, not the record: the set's write below announces the run again, as
                    // it always did, because a worker that resubscribed between the two reloaded a set without it and
                    // would otherwise never hear of this cancel.
                    var announce = batch.Where(i => !i.Journalled).Select(i => ToCancel(i.Notice)).ToList();
                    if (announce.Count > 0) await _store.AnnounceAsync(announce);
                    var durable = batch.Where(i => i.Journalled).Select(i => ToCancel(i.Notice)).ToList();
                    if (durable.Count > 0)
                    {
                        await _store.WriteAsync(durable, offset: 0);
                        RememberFastPath(durable);
                    }
                }
                catch (Exception e)
                {
                    // The journal path writes it once Redis is back (or rebuilds, when Redis lost its data).
                    _log.Debug("Fast-path write of {0} cancels to Redis failed: {1}", batch.Count, e.Message);
                }
                return NotUsed.Instance;
            })
            .To(Sink.Ignore<NotUsed>());
    }

    private IRunnableGraph<(UniqueKillSwitch, Task<Done>)> JournalPath()
    {
        var journal = JournalTail.For(_journal, Context.System.Serialization);
        var settings = _store.Settings;
        return Source.FromTask(_health.Track(_store.ResumeOffsetAsync()))
            .ConcatMany(offset =>
            {
                _health.Resuming(offset);
                // Ticks while idle probe the marker (an empty write), so a flush is noticed without new cancels.
                return journal.After(offset, JournalTail.PageSize, nameof(RunCancelRequested))
                    .Select(e => Item.From(e))
                    .Merge(Source.Tick(settings.CheckInterval, settings.CheckInterval, Item.Probe).MapMaterializedValue(_ => NotUsed.Instance));
            })
            .Batch(settings.MaxBatch, i => new List<Item> { i }, (list, i) => { list.Add(i); return list; })
            .SelectAsync(1, batch => _health.Track(Write(batch)))
            .ViaMaterialized(KillSwitches.Single<int>(), Keep.Right)
            .ToMaterialized(Sink.Ignore<int>(), Keep.Both);
    }

    private async Task<int> Write(List<Item> batch)
    {
        var cutoff = _now() - _store.Settings.Retention;
        var offset = batch.Max(i => i.Offset);
        // Entries past retention are not written back (they would be pruned at once), but the offset moves past them.
        var cancels = batch.Where(i => i.Cancel is { } c && c.CancelledAt >= cutoff).Select(i => i.Cancel!).ToList();
        // What this node already wrote to Redis was announced then (journal entries up to the offset it mirrored, runs
        // its fast path wrote): after a flush the replay from 0 restores them quietly (workers reload the set when they
        // resubscribe) and only cancels Redis never had are announced.
        var mirrored = Interlocked.Read(ref _mirrored);
        var added = await _store.WriteAsync(cancels, offset, c => c.Offset <= mirrored || _fastPathWritten.ContainsKey(c.RunId));
        if (offset > 0) InterlockedMax(ref _mirrored, offset);
        if (cancels.Count > 0) _log.Debug("Mirrored {0} cancels to Redis up to journal offset {1} ({2} new)", cancels.Count, offset, added);
        return added;
    }

    /// <summary>Highest journal offset written to Redis by this node; the journal stream writes it, hence Interlocked.</summary>
    private long _mirrored;

    /// <summary>Runs the fast path wrote (bounded: the oldest are forgotten; a forgotten one may be announced twice after a flush).</summary>
    private readonly System.Collections.Concurrent.ConcurrentDictionary<string, byte> _fastPathWritten = new(StringComparer.Ordinal);
    private readonly System.Collections.Concurrent.ConcurrentQueue<string> _fastPathOrder = new();
    private const int FastPathMemory = 100_000;

    private void RememberFastPath(IEnumerable<MirroredCancel> batch)
    {
        foreach (var c in batch)
        {
            if (_fastPathWritten.TryAdd(c.RunId, 0)) _fastPathOrder.Enqueue(c.RunId);
        }
        while (_fastPathOrder.Count > FastPathMemory && _fastPathOrder.TryDequeue(out var old)) _fastPathWritten.TryRemove(old, out _);
    }

    private static void InterlockedMax(ref long target, long value)
    {
        long current;
        while ((current = Interlocked.Read(ref target)) < value && Interlocked.CompareExchange(ref target, value, current) != current) { }
    }

    /// <summary>A cancel for the fast path: decided (announce it) or <paramref name="Journalled"/> (write it).</summary>
    private sealed record FastItem(RunCancelledNotice Notice, bool Journalled);

    private static MirroredCancel ToCancel(RunCancelledNotice n) => new(0, n.RunId, n.Reason, n.CancelledBy, n.CancelledAt) { TraceParent = n.TraceParent };

    /// <summary>A journal entry (a cancel, or another event that carries the tag) or an idle probe (offset 0).</summary>
    private sealed record Item(long Offset, MirroredCancel? Cancel)
    {
        public static readonly Item Probe = new(0, null);

        public static Item From(EventEnvelope e)
        {
            var offset = e.Offset is Sequence s ? s.Value : 0;
            return e.Event is RunCancelRequested c && e.PersistenceId.StartsWith(WorkflowActor.PersistenceIdPrefix, StringComparison.Ordinal)
                ? new Item(offset, new MirroredCancel(offset, e.PersistenceId[WorkflowActor.PersistenceIdPrefix.Length..], c.Reason, c.CancelledBy, c.At))
                : new Item(offset, null);
        }
    }

    private sealed record Prune
    {
        public static Prune Instance { get; } = new();
    }

    private sealed record Pruned(int Count, Exception? Error);

    private sealed record JournalPathEnded(Exception? Error);

    private sealed record RestartJournalPath
    {
        public static RestartJournalPath Instance { get; } = new();
    }

    /// <summary>Logs the mirror's transitions (down, back, rebuilding) once each, not every retry.</summary>
    private sealed class MirrorHealth(ILoggingAdapter log)
    {
        private int _failing;

        public void Resuming(long offset)
        {
            if (offset == 0) log.Info("Mirroring cancels to Redis from the start of the journal (Redis had no mirror yet, or lost it)");
            else log.Info("Mirroring cancels to Redis from journal offset {0}", offset);
        }

        public async Task<T> Track<T>(Task<T> work)
        {
            try
            {
                var result = await work;
                if (Interlocked.Exchange(ref _failing, 0) == 1) log.Info("Redis reachable again: cancel mirror resumed");
                return result;
            }
            catch (RedisDataLostException e)
            {
                log.Warning("{0}: rebuilding cancelled_runs from the journal", e.Message);
                throw;
            }
            catch (Exception e)
            {
                if (Interlocked.Exchange(ref _failing, 1) == 0)
                    log.Warning("Redis unreachable ({0}): cancels stay in the journal and are mirrored when it is back; retrying with backoff", e.Message);
                throw;
            }
        }
    }
}
