using System.Collections.Immutable;
using Akka.Actor;
using Akka.Event;
using Akka.Hosting;
using Akka.Persistence;
using Deepline.Actors.Monitoring;
using Deepline.Domain;
using Deepline.Domain.Resources;

namespace Deepline.Actors.Resources;

/// <summary>
/// Every resource grant and wait of the cluster (a cluster singleton, event-sourced). Decisions come from
/// <see cref="ResourceDecider"/>; this actor journals them, applies them, and only then answers or tells runs that their
/// tasks may start, so a grant that was announced is always in the journal. A cycle found by a new wait edge gets one
/// victim, handed to the deadlock supervisor (alert once, cancel once) or, without a monitor, cancelled from here.
/// <para>
/// External workers' claims live under a lease (<see cref="ClaimLeases"/>, in memory only: a renewal is a heartbeat and
/// is not journalled); one timer is armed at the earliest deadline, and a worker whose lease ran out loses its grants
/// and waits with a journalled <see cref="ResourceClaimExpired"/>, so a dead worker cannot starve the runs behind it.
/// </para>
/// </summary>
public sealed class ResourceCoordinator : UntypedPersistentActor, IWithTimers
{
    public const string ResourceDeadlockReason = "resource_deadlock";
    private const string SweepTimer = "sweep";
    private const string ReportTimer = "report-victims";
    private const string LeaseTimer = "claim-leases";
    private const int SnapshotEvery = 1000;
    private const int ViewListed = 500;
    private static readonly TimeSpan AskTimeout = TimeSpan.FromSeconds(10);

    private readonly ResourceSettings _settings;
    private readonly IActorRef _runs;
    private readonly ILoggingAdapter _log = Context.GetLogger();
    private readonly HashSet<string> _sweeping = [];
    private readonly HashSet<string> _cancelling = [];
    private ResourceBook _book = ResourceBook.Empty;
    private ClaimTally _claims = ClaimTally.Empty;
    private string _sweepAfter = "";
    private long _eventsSinceSnapshot;
    private long _deletableUpTo;
    private int _inFlight;
    private readonly HashSet<string> _victimsInFlight = [];
    private readonly NodeMeter _meter = NodeMeter.For(Context.System);
    private ClaimLeases _leases = ClaimLeases.Empty;
    private DateTimeOffset? _leaseTimerAt;

    public ResourceCoordinator(ResourceSettings settings, IActorRef runs)
    {
        _settings = settings;
        _runs = runs;
    }

    public static Props Props(ResourceSettings settings, IActorRef runs) =>
        Akka.Actor.Props.Create(() => new ResourceCoordinator(settings, runs));

    public override string PersistenceId => "resource-coordinator";

    public ITimerScheduler Timers { get; set; } = null!;

    protected override void OnRecover(object message)
    {
        switch (message)
        {
            case SnapshotOffer { Snapshot: ResourceBook b } offer:
                _book = b;
                _deletableUpTo = offer.Metadata.SequenceNr;
                break;
            case IResourceEvent e:
                _book = _book.Apply(e);
                break;
            case RecoveryCompleted:
                _claims = ClaimTally.Of(_book);
                Timers.StartPeriodicTimer(SweepTimer, SweepTick.Instance, _settings.SweepInterval);
                Timers.StartPeriodicTimer(ReportTimer, ReportTick.Instance, TimeSpan.FromSeconds(2));
                // Deadlines were never journalled: every worker in the book gets a full lease from now, so one that died
                // before the crash or hand-over loses its claims at most one lease later.
                var recoveredAt = DateTimeOffset.UtcNow;
                _leases = ClaimLeases.Recovered(_book, recoveredAt, _settings.ClaimLease);
                if (_leases.Next is { } first) ArmLeaseTimer(first, recoveredAt);
                // Victims chosen before a crash or failover whose hand-over was not acknowledged: handed over again.
                foreach (var victim in _book.Victims.Values.Where(v => !v.Reported)) Report(victim);
                // Grants journalled but perhaps never told (the tell follows the write): told again; a run that already
                // journalled them ignores the repeat.
                foreach (var run in _book.Runs.Keys) PushSatisfied(run);
                break;
        }
    }

    /// <summary>An external worker's claims are read and changed only with the key that made them (or an admin's).</summary>
    private bool MayUse(string workerId, string owner, bool admin) =>
        admin || ExternalClaims.OwnerOf(_book, workerId) is not { } o || o == owner;

    private void OnClaim(ClaimResource c, DateTimeOffset now)
    {
        var claimer = Sender;
        if (!MayUse(c.WorkerId, c.Owner, c.Admin))
        {
            claimer.Tell(new ClaimNotFound(c.WorkerId));
            return;
        }
        var current = ExternalClaims.Status(_book, c.WorkerId, c.Name, _settings.DefaultCapacity);
        var repeated = current.State is ClaimState.granted or ClaimState.waiting;
        if (!repeated && _claims.Of(c.Owner) >= _settings.MaxClaimsPerKey)
        {
            claimer.Tell(new ClaimQuotaReached(
                $"this key's workers already hold or wait for {_claims.Of(c.Owner)} claims, its limit (orchestrator.resources.max_claims_per_key); release some before claiming more"));
            return;
        }
        if (!_book.Resources.ContainsKey(c.Name) && _book.Resources.Count >= ResourceLimits.MaxKnownResources)
        {
            claimer.Tell(new ResourceRefused($"the node already knows {ResourceLimits.MaxKnownResources} resources; claim no new one before some are released"));
            return;
        }
        if (repeated && current.Count != c.Count)
        {
            claimer.Tell(new ClaimConflict($"worker '{c.WorkerId}' already claims {current.Count} of '{c.Name}'; release it before claiming another count"));
            return;
        }
        var (sync, error) = ExternalClaims.Claim(_book, c.WorkerId, c.Owner, c.Name, c.Count, now);
        if (sync is null)
        {
            claimer.Tell(new ResourceRefused(error!));
            return;
        }
        // A claim, new or repeated, is the worker saying it is alive: all its claims get a full lease (before the commit,
        // whose answer to a repeated claim may be told at once and shows the renewed deadline).
        RenewLease(sync.RunId, now);
        _expired.Remove(sync.RunId);
        // Answered once the grant or the wait is journalled (a repeated claim changes nothing and is answered at once).
        Commit(ResourceDecider.Sync(_book, sync, _settings.DefaultCapacity, _settings.Victim, now), null, 0, ActorRefs.Nobody,
            () => claimer.Tell(ViewOf(c.WorkerId, c.Name)));
    }

    private ClaimView ViewOf(string workerId, string name) =>
        new(ExternalClaims.Status(_book, workerId, name, _settings.DefaultCapacity)) { LeaseExpiresAt = _leases.DeadlineOf(ExternalHolders.KeyOf(workerId)) };

    private void RenewLease(string holder, DateTimeOffset now)
    {
        _leases = _leases.Renew(holder, now, _settings.ClaimLease);
        // Every lease is as long, so a renewed deadline is never earlier than the one the armed timer waits for.
        if (_leaseTimerAt is null) ArmLeaseTimer(now + _settings.ClaimLease, now);
    }

    private void ArmLeaseTimer(DateTimeOffset at, DateTimeOffset now)
    {
        _leaseTimerAt = at;
        Timers.StartSingleTimer(LeaseTimer, LeaseTick.Instance, at > now ? at - now : TimeSpan.Zero);
    }

    /// <summary>Releases the claims of every worker whose lease ran out, then arms the timer at the next deadline.</summary>
    private void ExpireLeases(DateTimeOffset now)
    {
        _leaseTimerAt = null;
        foreach (var holder in _leases.Due(_book, now))
        {
            var owner = ExternalClaims.OwnerOf(_book, ExternalHolders.WorkerOf(holder)!);
            var decision = ResourceDecider.Expire(_book, holder, _settings.DefaultCapacity, _settings.Victim, now);
            _leases = _leases.Forget(holder);
            if (decision.Events.FirstOrDefault() is not ResourceClaimExpired expired) continue;
            // Remembered with the decision, as the book forgets the worker with it: a renewal in between answers 410, not 404.
            RememberExpired(holder, expired.At, owner);
            Commit(decision, null, 0, ActorRefs.Nobody, () => Expired(expired));
        }
        _leases = _leases.Pruned(_book);
        if (_leases.Next is { } next) ArmLeaseTimer(next, now);
    }

    /// <summary>
    /// Workers whose lease ran out, with when and under whose key, until they claim again. Bounded by the order queue,
    /// which also keeps ids of workers that claimed again (removed from the map only): oldest forgotten first, so a worker
    /// that expires over and over cannot grow it, at worst an expiry is forgotten early (a 404 instead of a 410).
    /// </summary>
    private readonly Dictionary<string, (DateTimeOffset At, string? Owner)> _expired = new(StringComparer.Ordinal);
    private readonly Queue<string> _expiredOrder = new();
    private const int ExpiredKept = 10_000;

    private void RememberExpired(string holder, DateTimeOffset at, string? owner)
    {
        if (_expired.TryAdd(holder, (at, owner))) _expiredOrder.Enqueue(holder);
        else _expired[holder] = (at, owner);
        while (_expiredOrder.Count > ExpiredKept && _expiredOrder.TryDequeue(out var oldest)) _expired.Remove(oldest);
    }

    /// <summary>Logged and counted once the expiry is journalled. Worker ids and resource names were checked at the endpoint ([A-Za-z0-9._:-]).</summary>
    private void Expired(ResourceClaimExpired expired)
    {
        var workerId = ExternalHolders.WorkerOf(expired.RunId);
        var leaseS = (int)Math.Round(_settings.ClaimLease.TotalSeconds);
        foreach (var resource in expired.Held)
        {
            _log.Warning("Resource claim expired: worker {worker_id} did not renew its lease within {claim_lease_s} s; its grant of {resource} is released",
                workerId, leaseS, resource);
            _meter.ResourceClaimExpired(ClaimState.granted);
        }
        foreach (var resource in expired.WaitedFor)
        {
            _log.Warning("Resource claim expired: worker {worker_id} did not renew its lease within {claim_lease_s} s; its wait for {resource} is withdrawn",
                workerId, leaseS, resource);
            _meter.ResourceClaimExpired(ClaimState.waiting);
        }
    }

    private void PushSatisfied(string runId)
    {
        // External workers ask for their grants; only runs are told.
        if (ExternalHolders.IsExternal(runId)) return;
        if (_book.SatisfiedTasks(runId) is { IsEmpty: false } tasks) _runs.Tell(new ResourcesGranted(runId, tasks, 0));
    }

    protected override void OnCommand(object message)
    {
        var now = DateTimeOffset.UtcNow;
        switch (message)
        {
            case SyncRunResources s:
                var replyTo = Sender;
                Commit(ResourceDecider.Sync(_book, s.Sync, _settings.DefaultCapacity, _settings.Victim, now), s.Sync.RunId, s.SyncId, replyTo, null,
                    waitDurable: true);
                break;
            case DeclareResource d when !_book.Resources.ContainsKey(d.Name) && _book.Resources.Count >= ResourceLimits.MaxKnownResources:
                Sender.Tell(new ResourceRefused($"the node already knows {ResourceLimits.MaxKnownResources} resources; declare no new one before some are released"));
                break;
            case DeclareResource d:
                var declarer = Sender;
                Commit(ResourceDecider.Declare(_book, d.Name, d.Capacity, _settings.DefaultCapacity, _settings.Victim, now), null, 0, declarer,
                    () => declarer.Tell(View(d.Name, ViewListed)));
                break;
            case ExplainRunWaits x:
                Sender.Tell(new RunWaitsExplained(x.RunId, WaitForGraph.ExplainWaits(_book, x.RunId, _settings.DefaultCapacity)));
                break;
            case ClaimResource c:
                OnClaim(c, now);
                break;
            case ReleaseClaim r when !MayUse(r.WorkerId, r.Owner, r.Admin):
            case GetClaim g when !MayUse(g.WorkerId, g.Owner, g.Admin):
                Sender.Tell(new ClaimNotFound(message is ReleaseClaim rc ? rc.WorkerId : ((GetClaim)message).WorkerId));
                break;
            case RenewClaimLease l when !MayUse(l.WorkerId, l.Owner, l.Admin) || !_book.Runs.TryGetValue(ExternalHolders.KeyOf(l.WorkerId), out _):
                Sender.Tell(_expired.TryGetValue(ExternalHolders.KeyOf(l.WorkerId), out var gone) && (l.Admin || gone.Owner is null || gone.Owner == l.Owner)
                    ? new ClaimLeaseExpired(l.WorkerId, gone.At)
                    : new ClaimNotFound(l.WorkerId));
                break;
            case RenewClaimLease l:
                var leased = ExternalHolders.KeyOf(l.WorkerId);
                RenewLease(leased, now);
                var worker = _book.Runs[leased];
                Sender.Tell(new ClaimLeaseView(l.WorkerId, worker.Holds.Count + worker.WaitsOn.Count, _settings.ClaimLease, _leases.DeadlineOf(leased)!.Value));
                break;
            case LeaseTick:
                ExpireLeases(now);
                break;
            case ReleaseClaim r:
                var releaser = Sender;
                if (ExternalClaims.Release(_book, r.WorkerId, r.Name) is not { } release)
                {
                    releaser.Tell(ViewOf(r.WorkerId, r.Name));
                    break;
                }
                Commit(ResourceDecider.Sync(_book, release, _settings.DefaultCapacity, _settings.Victim, now), null, 0, ActorRefs.Nobody,
                    () => releaser.Tell(ViewOf(r.WorkerId, r.Name)));
                // The last release forgets the worker, and its lease with it.
                if (!_book.Runs.ContainsKey(release.RunId)) _leases = _leases.Forget(release.RunId);
                break;
            case GetClaim g:
                Sender.Tell(ViewOf(g.WorkerId, g.Name));
                break;
            case GetWaitForGraph w:
                Sender.Tell(WaitGraph(w.Limit));
                break;
            case GetResource g:
                Sender.Tell(View(g.Name, g.Limit));
                break;
            case ListResources l:
                Sender.Tell(new ResourceList(_book.Resources.Count,
                    [.. _book.Resources.Keys.Order(StringComparer.Ordinal).Skip(l.Offset).Take(l.Limit).Select(n => View(n, 0))]));
                break;
            case ScanResourceCycles scan:
                Sender.Tell(new ResourceCycles(_settings.Victim.ToString(),
                    [.. ResourceDecider.Scan(_book, _settings.DefaultCapacity, _settings.Victim, scan.Limit)
                        .Select(c => new ResourceCycleView(c.Cycle, WaitForGraph.Describe(c.Cycle), c.Victim))],
                    [.. _book.Victims.Keys.Order(StringComparer.Ordinal)]));
                break;
            case ResourceDeadlockTaken t when _book.Victims.TryGetValue(t.RunId, out var taken) && !taken.Reported:
                Persist(new ResourceVictimReported(t.RunId, now), Applied);
                break;
            case ResourceDeadlockTaken:
                break;
            case CancelAnswer a:
                _cancelling.Remove(a.RunId);
                if (a.Reply is CancelReply or CommandRejected && _book.Victims.TryGetValue(a.RunId, out var v) && !v.Reported)
                    Persist(new ResourceVictimReported(a.RunId, now), Applied);
                break;
            case ReportTick:
                // A victim whose choice is still being written is reported by its own write's completion, not before.
                foreach (var victim in _book.Victims.Values.Where(x => !x.Reported && !_victimsInFlight.Contains(x.RunId))) Report(victim);
                break;
            case SweepTick:
                Sweep();
                break;
            case SweepAnswer a:
                _sweeping.Remove(a.RunId);
                // Only a run that has ended (or never existed) is released here: an open run syncs itself.
                var ended = a.Reply is RunReply { State.Status: var status } ? status.IsTerminal() : a.Reply is CommandRejected { Kind: RejectionKind.NotFound };
                // Only with nothing in flight: a grant still being written must not be told before it is durable.
                if (!ended && a.Reply is RunReply && _inFlight == 0) PushSatisfied(a.RunId);
                if (ended && _book.Runs.TryGetValue(a.RunId, out var run))
                    Commit(ResourceDecider.Sync(_book, new ResourceSync(a.RunId, run.Facts, ImmutableDictionary<string, ImmutableArray<ResourceRequest>>.Empty, [], true),
                        _settings.DefaultCapacity, _settings.Victim, now), null, 0, ActorRefs.Nobody, null);
                break;
            case SaveSnapshotSuccess ok:
                // Events are deleted one snapshot behind: deleting up to the snapshot just taken cut a hole of up to a
                // whole book's worth of rows at the head of the shared journal, which the read journal's sequence actor
                // (behind the run index's AllEvents) then checked id by id while it waited for them to appear: a fifth
                // of the process's CPU in a profile of the resource benchmark. Rows a snapshot interval old are long
                // behind it. Recovery still needs only the newest snapshot and what follows it.
                if (_deletableUpTo > 0) DeleteMessages(_deletableUpTo);
                _deletableUpTo = ok.Metadata.SequenceNr;
                DeleteSnapshots(new SnapshotSelectionCriteria(ok.Metadata.SequenceNr - 1));
                break;
            case SaveSnapshotFailure failed:
                _log.Warning(failed.Cause, "Snapshot of the resource coordinator failed; the journal still holds every event");
                break;
            case DeleteMessagesSuccess or DeleteMessagesFailure or DeleteSnapshotsSuccess or DeleteSnapshotsFailure:
                break;
            default:
                Unhandled(message);
                break;
        }
    }

    /// <summary>
    /// Journals a decision, then tells. The decision is applied to the book at once, so the next command is decided on
    /// it while the write is in flight (the group-commit journal batches the writes of many decisions); nothing is told
    /// before its write is done, and an answer that changes nothing waits behind the writes still in flight. A refused
    /// write restarts the coordinator from its journal (see <see cref="OnPersistRejected"/>), so the book never keeps
    /// what the journal does not hold.
    /// <para>
    /// One exception: a victim is reported (cancelled) while its choice is still being written when every fact of its
    /// cycle is already durable (<see cref="ResourceDecision.MayCancelBeforeWritten"/>; <paramref name="waitDurable"/>:
    /// the closing wait comes from a run's sync), so that the journal's fsync is not on the path from the closing edge
    /// to the cancel. If this write then fails, the coordinator restarts from its journal, and the cycle it cancelled was
    /// real all the same.
    /// </para>
    /// </summary>
    private void Commit(ResourceDecision decision, string? origin, long syncId, IActorRef replyTo, Action? done, bool waitDurable = false)
    {
        var early = decision.MayCancelBeforeWritten(_inFlight, waitDurable);
        void Tell()
        {
            foreach (var chosen in decision.Victims) _victimsInFlight.Remove(chosen.RunId);
            Announce(decision, origin, syncId, replyTo);
            foreach (var refused in decision.Events.OfType<ResourceClaimRefused>())
                _log.Warning("Resource deadlock among external workers: {cycle}; the wait of {holder} is refused (deadlock_reason: {deadlock_reason})",
                    refused.Explanation, WaitForGraph.HolderName(refused.RunId), ResourceDeadlockReason);
            foreach (var chosen in decision.Victims)
            {
                _log.Warning("Resource deadlock: {cycle}; victim by policy {policy}: run {run_id} (deadlock_reason: {deadlock_reason})",
                    chosen.Explanation, _settings.Victim.ToString(), chosen.RunId, ResourceDeadlockReason);
                if (!early && _book.Victims.TryGetValue(chosen.RunId, out var victim) && !victim.Reported) Report(victim);
            }
            done?.Invoke();
        }

        if (decision.Events.IsEmpty)
        {
            if (_inFlight == 0) Tell();
            else DeferAsync(decision, _ => Tell());
            return;
        }
        foreach (var e in decision.Events) Apply(e);
        foreach (var chosen in decision.Victims) _victimsInFlight.Add(chosen.RunId);
        if (early)
        {
            foreach (var chosen in decision.Victims)
                if (_book.Victims.TryGetValue(chosen.RunId, out var found) && !found.Reported) Report(found);
        }
        _inFlight += decision.Events.Length;
        var remaining = decision.Events.Length;
        PersistAllAsync(decision.Events, _ =>
        {
            _inFlight--;
            Written();
            if (--remaining == 0) Tell();
        });
    }

    /// <summary>For the few events persisted one at a time (victims reported): applied once written.</summary>
    private void Applied(IResourceEvent e)
    {
        Apply(e);
        Written();
    }

    private void Apply(IResourceEvent e)
    {
        var before = _book;
        _book = _book.Apply(e);
        _claims = _claims.Step(before, _book, e);
    }

    /// <summary>
    /// A snapshot writes the whole book: taken every SnapshotEvery events, but never more often than once per as many
    /// events as the book has runs and resources (so its cost per event stays constant as the book grows), and only
    /// when no write is in flight, so that it holds exactly what the journal holds up to its sequence number.
    /// </summary>
    private void Written()
    {
        if (++_eventsSinceSnapshot < Math.Max(SnapshotEvery, _book.Runs.Count + _book.Resources.Count) || _inFlight > 0) return;
        _eventsSinceSnapshot = 0;
        SaveSnapshot(_book);
    }

    private void Announce(ResourceDecision decision, string? origin, long syncId, IActorRef replyTo)
    {
        foreach (var (runId, tasks) in decision.Satisfied)
        {
            if (runId == origin) replyTo.Tell(new ResourcesGranted(runId, tasks, syncId));
            else if (!tasks.IsEmpty && !ExternalHolders.IsExternal(runId)) _runs.Tell(new ResourcesGranted(runId, tasks, 0));
        }
    }

    protected override void OnPersistRejected(Exception cause, object @event, long sequenceNr)
    {
        _log.Error(cause, "Resource coordinator: the journal refused event {0} ({1}); nothing of it was told; restarting from the journal", sequenceNr, @event.GetType().Name);
        Sender.Tell(new ResourceNotStored($"the journal refused the write ({cause.GetType().Name})"));
        // The book already holds the refused decision (and maybe later ones decided on it): only the journal is right now.
        throw new InvalidOperationException($"resource coordinator: event {sequenceNr} refused by the journal", cause);
    }

    /// <summary>The victim's incident goes to the supervisor (alerted once, cancelled once); without a monitor it is cancelled from here.</summary>
    private void Report(ResourceVictim victim)
    {
        var detection = DetectionOf(victim);
        if (ActorRegistry.For(Context.System).TryGet<DeadlockSupervisor>(out var supervisor))
        {
            supervisor.Tell(new ResourceDeadlockFound(detection));
            return;
        }
        if (!_cancelling.Add(victim.RunId)) return;
        var runId = victim.RunId;
        _runs.Ask<IDeeplineMessage>(DeadlockSupervisor.AutoCancel(detection), AskTimeout)
            .PipeTo(Self, success: reply => new CancelAnswer(runId, reply), failure: _ => new CancelAnswer(runId, null));
    }

    public static Detection DetectionOf(ResourceVictim victim, ResourceBook? book = null) => new(
        victim.RunId,
        book?.Runs.GetValueOrDefault(victim.RunId)?.Facts.WorkflowName ?? "",
        StuckReason.resource_deadlock,
        victim.ChosenAt,
        victim.ChosenAt,
        [],
        $"resource deadlock: {victim.Explanation}");

    private Detection DetectionOf(ResourceVictim victim)
    {
        var d = DetectionOf(victim, _book);
        var tasks = _book.Runs.TryGetValue(victim.RunId, out var run) ? run.Wants.Keys.Order(StringComparer.Ordinal).ToImmutableArray() : [];
        return d with { StuckTasks = tasks };
    }

    /// <summary>Asks a page of the runs in the book whether they still exist and are open, resuming where the last sweep ended.</summary>
    private void Sweep()
    {
        // External workers are no runs to ask: their claims last until they release them or their lease runs out.
        var page = _book.Runs.Keys.Where(id => string.CompareOrdinal(id, _sweepAfter) > 0 && !_sweeping.Contains(id) && !ExternalHolders.IsExternal(id))
            .Order(StringComparer.Ordinal).Take(_settings.SweepLimit).ToList();
        _sweepAfter = page.Count < _settings.SweepLimit ? "" : page[^1];
        foreach (var runId in page)
        {
            _sweeping.Add(runId);
            _runs.Ask<IDeeplineMessage>(new GetRun(runId), AskTimeout)
                .PipeTo(Self, success: reply => new SweepAnswer(runId, reply), failure: _ => new SweepAnswer(runId, null));
        }
    }

    private ResourceView View(string name, int limit)
    {
        var r = _book.Resource(name);
        return new ResourceView(name, r.Capacity(_settings.DefaultCapacity), r.DeclaredCapacity is not null, r.Used, r.Holders.Count, r.Waiters.Count,
            [.. r.Holders.OrderBy(h => h.Key, StringComparer.Ordinal).Take(limit).Select(h => new ResourceHolderView(h.Key, h.Value)
            {
                WaitsFor = _book.Runs.TryGetValue(h.Key, out var holder) ? [.. holder.WaitsOn.Order(StringComparer.Ordinal)] : [],
            })],
            [.. r.Waiters.Take(limit).Select(w => new ResourceWaiterView(w.RunId, w.Count, w.Since))]);
    }

    /// <summary>
    /// Costs one pass over the resources (to find those waited for) and the explanations of the waiters shown: a read for
    /// the dashboard, bounded by its limits, never a search of the graph.
    /// </summary>
    private WaitForGraphView WaitGraph(int limit)
    {
        const int PerResource = 20;
        var deadlocks = _book.Victims.Values.OrderBy(v => v.ChosenAt).Take(limit)
            .Select(v => new ResourceCycleView(v.Cycle, v.Explanation, v.RunId)).ToList();
        var onCycles = deadlocks.SelectMany(d => d.Cycle.SelectMany(c => new[] { c.Holds, c.WaitsFor })).ToHashSet(StringComparer.Ordinal);
        var waited = _book.Resources.Values.Where(r => !r.Waiters.IsEmpty).ToList();
        var shown = waited.OrderBy(r => onCycles.Contains(r.Name) ? 0 : 1).ThenBy(r => r.Name, StringComparer.Ordinal).Take(limit).ToList();
        var waits = new List<WaitLine>();
        var explained = new Dictionary<string, ImmutableArray<WaitExplanation>>(StringComparer.Ordinal);
        foreach (var r in shown)
            foreach (var w in r.Waiters.Take(PerResource))
            {
                if (!explained.TryGetValue(w.RunId, out var lines))
                    explained[w.RunId] = lines = WaitForGraph.ExplainWaits(_book, w.RunId, _settings.DefaultCapacity);
                if (lines.FirstOrDefault(l => l.Resource == r.Name) is { } line) waits.Add(new WaitLine(w.RunId, r.Name, line.Text));
            }
        return new WaitForGraphView(waited.Count, [.. shown.Select(r => View(r.Name, PerResource))], [.. waits], [.. deadlocks]);
    }

    private sealed record SweepTick
    {
        public static SweepTick Instance { get; } = new();
    }

    private sealed record ReportTick
    {
        public static ReportTick Instance { get; } = new();
    }

    private sealed record LeaseTick
    {
        public static LeaseTick Instance { get; } = new();
    }

    private sealed record SweepAnswer(string RunId, IDeeplineMessage? Reply);

    private sealed record CancelAnswer(string RunId, IDeeplineMessage? Reply);
}
