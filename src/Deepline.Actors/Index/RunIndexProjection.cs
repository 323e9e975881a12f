using Akka;
using Akka.Actor;
using Akka.Event;
using Akka.Persistence.Query;
using Akka.Streams;
using Akka.Streams.Dsl;
using Deepline.Actors.Serialization;
using Deepline.Actors.Workflows;
using Deepline.Domain;

namespace Deepline.Actors.Index;

/// <summary>
/// Keeps the run index up to date: a live stream of every journal event, read from the journal table by
/// <see cref="JournalTail"/>, in batches, each batch's run events and its offset written in one transaction,
/// restarted with backoff on failure from the stored offset. Runs as a cluster singleton so exactly one writer
/// follows the journal.
/// </summary>
public sealed class RunIndexProjection : ReceiveActor, IWithTimers
{
    private readonly RunIndexStore _store;
    private readonly ILoggingAdapter _log = Context.GetLogger();
    private const string RunPersistenceIdPrefix = WorkflowActor.PersistenceIdPrefix;
    private UniqueKillSwitch? _kill;

    public RunIndexProjection(RunIndexStore store)
    {
        _store = store;
        Receive<Start>(_ => _store.InitializeAsync().PipeTo(Self, success: _ => Initialized.Instance));
        Receive<Initialized>(_ => _kill ??= Run());
        Receive<Status.Failure>(f =>
        {
            _log.Error(f.Cause, "Run index could not be initialised; retrying in 5 s");
            Timers.StartSingleTimer("start", Start.Instance, TimeSpan.FromSeconds(5));
        });
    }

    public ITimerScheduler Timers { get; set; } = null!;

    public static Props Props(RunIndexStore store) => Akka.Actor.Props.Create(() => new RunIndexProjection(store));

    protected override void PreStart() => Self.Tell(Start.Instance);

    protected override void PostStop() => _kill?.Shutdown();

    private UniqueKillSwitch Run()
    {
        var tail = JournalTail.For(_store.Connect, Context.System.Serialization);
        var store = _store;
        var log = _log;
        var materializer = Context.System.Materializer();
        RunHistory history = async (runIds, ct) =>
            (await tail.HistoriesAsync(runIds.Select(id => RunPersistenceIdPrefix + id).ToList(), ct))
            .Select(e => new IndexedEvent(e.PersistenceId[RunPersistenceIdPrefix.Length..], e.SequenceNr, ((Sequence)e.Offset).Value, e.Event))
            .ToList();
        var source = RestartSource.OnFailuresWithBackoff(() =>
            Source.FromTask(store.OffsetAsync())
                .ConcatMany(offset => tail.After(offset, JournalTail.PageSize))
                // A page per transaction at most: fewer transactions per event.
                .GroupedWithin(JournalTail.PageSize, TimeSpan.FromMilliseconds(50))
                .SelectAsync(1, async envelopes =>
                {
                    // Other entities' events (sharding, the monitor) only move the offset, so the lag can reach zero.
                    var batch = envelopes
                        .Where(e => e.PersistenceId.StartsWith(RunPersistenceIdPrefix, StringComparison.Ordinal) && e.Event is IRunEvent or UnreadablePayload)
                        .Select(e => new IndexedEvent(e.PersistenceId[RunPersistenceIdPrefix.Length..], e.SequenceNr, ((Sequence)e.Offset).Value, e.Event))
                        .ToList();
                    try
                    {
                        foreach (var q in await store.ApplyAsync(batch, envelopes.Max(e => ((Sequence)e.Offset).Value), history))
                            log.Error("Run index quarantined event {sequence_nr} of run {run_id} (journal offset {offset}): {error}; the index goes on without it",
                                q.SequenceNr, q.RunId, q.Offset, q.Error);
                    }
                    catch (Exception ex)
                    {
                        log.Error(ex, "Run index projection failed on a batch of {0} events; restarting from the stored offset", batch.Count());
                        throw;
                    }
                    return NotUsed.Instance;
                })
                .MapMaterializedValue(_ => NotUsed.Instance),
            RestartSettings.Create(TimeSpan.FromMilliseconds(200), TimeSpan.FromSeconds(10), 0.2).WithMaxRestarts(int.MaxValue, TimeSpan.FromMinutes(1)));
        var (kill, done) = source
            .ViaMaterialized(KillSwitches.Single<NotUsed>(), Keep.Right)
            .ToMaterialized(Sink.Ignore<NotUsed>(), Keep.Both)
            .Run(materializer);
        done.ContinueWith(t => { if (t.IsFaulted) log.Error(t.Exception, "Run index projection stopped"); });
        return kill;
    }

    private sealed record Start
    {
        public static Start Instance { get; } = new();
    }

    private sealed record Initialized
    {
        public static Initialized Instance { get; } = new();
    }
}
