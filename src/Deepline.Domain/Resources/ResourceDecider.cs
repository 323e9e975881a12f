using System.Collections.Immutable;

namespace Deepline.Domain.Resources;

/// <summary>A run's complete wish, sent by its entity whenever it changes and again until acknowledged.</summary>
/// <param name="Wants">Tasks waiting for a grant, with what each needs.</param>
/// <param name="Keep">Resources the run has been granted and still needs (running tasks, open hold_until).</param>
/// <param name="Terminal">The run has ended: release and withdraw everything.</param>
public sealed record ResourceSync(
    string RunId,
    RunFacts Facts,
    ImmutableDictionary<string, ImmutableArray<ResourceRequest>> Wants,
    ImmutableArray<string> Keep,
    bool Terminal)
{
    /// <summary>
    /// Of <see cref="Keep"/>, what the run holds only for tasks that are running or about to (granted, no hold_until past
    /// themselves): released when those tasks end, whatever else the run waits for, so no wait of the run stands behind it.
    /// </summary>
    public ImmutableArray<string> Releasing { get; init; } = [];
}

/// <summary>What one command did: events to journal, and for each run the tasks it may now start.</summary>
public sealed record ResourceDecision(ImmutableArray<IResourceEvent> Events, ImmutableDictionary<string, ImmutableArray<string>> Satisfied)
{
    public static ResourceDecision None { get; } = new([], ImmutableDictionary<string, ImmutableArray<string>>.Empty);

    public IEnumerable<ResourceVictimChosen> Victims => Events.OfType<ResourceVictimChosen>();

    /// <summary>
    /// Whether this decision's victims may be cancelled while the decision is still being written: only when every fact
    /// of their cycles is durable already. That is so when none of the coordinator's earlier events is still in flight
    /// (every holding and older wait is journalled), this decision grants nothing (no holding of the cycle is new), and
    /// the wait that closed the cycle is held in a journal of its own (<paramref name="closingWaitDurable"/>: a run's
    /// sync states what its journal holds; an external worker's claim is held only in the coordinator's).
    /// </summary>
    public bool MayCancelBeforeWritten(int eventsInFlight, bool closingWaitDurable) =>
        closingWaitDurable && eventsInFlight == 0 && Victims.Any() && !Events.Any(e => e is ResourceGranted);
}

/// <summary>
/// The coordinator's decisions as pure functions of the book. A sync states the whole of what a run wants and keeps,
/// so repeating it (after a crash, a failover, a lost reply) changes nothing: that is what makes the protocol safe
/// under at-least-once delivery. Grants are first come, first served among waiters that fit: a waiter that needs more
/// than is free does not block a later one that fits.
/// </summary>
public static class ResourceDecider
{
    public static ResourceDecision Sync(ResourceBook book, ResourceSync sync, int defaultCapacity, VictimPolicy policy, DateTimeOffset now)
    {
        var work = new Work(book, now, sync.RunId);
        var known = book.Runs.TryGetValue(sync.RunId, out var run);
        var wants = sync.Terminal ? ImmutableDictionary<string, ImmutableArray<ResourceRequest>>.Empty : sync.Wants;
        if (!known && wants.IsEmpty)
            return ResourceDecision.None with { Satisfied = ImmutableDictionary<string, ImmutableArray<string>>.Empty.Add(sync.RunId, []) };

        var releasing = sync.Terminal || sync.Releasing.IsDefault ? [] : sync.Releasing;
        if (!known || run!.Facts != sync.Facts || !SameWants(run.Wants, wants) || !run.Releasing.SetEquals(releasing))
            work.Emit(new ResourceWantsRecorded(sync.RunId, sync.Facts, wants, now) { Releasing = releasing });
        run = work.Book.Runs[sync.RunId];

        // What the run needs after this sync, per resource (counts agree within a run: checked at submission).
        var needed = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (var request in wants.Values.SelectMany(r => r)) needed[request.Name] = request.Count;
        if (!sync.Terminal)
            foreach (var kept in sync.Keep)
                if (run.Holds.Contains(kept)) needed.TryAdd(kept, 0);

        var touched = new SortedSet<string>(StringComparer.Ordinal);
        foreach (var held in run.Holds.Where(h => !needed.ContainsKey(h)).Order(StringComparer.Ordinal))
        {
            work.Emit(new ResourceReleased(sync.RunId, held, now));
            touched.Add(held);
        }
        foreach (var waited in run.WaitsOn.Where(w => !needed.ContainsKey(w)).Order(StringComparer.Ordinal))
        {
            work.Emit(new ResourceWaitWithdrawn(sync.RunId, waited, now));
            touched.Add(waited);
        }

        var newWaits = new List<string>();
        run = work.Book.Runs[sync.RunId];
        foreach (var (name, count) in needed.OrderBy(kv => kv.Key, StringComparer.Ordinal))
        {
            if (run.Holds.Contains(name) || run.WaitsOn.Contains(name)) continue;
            if (work.Book.Resource(name).Free(defaultCapacity) >= count)
            {
                work.Emit(new ResourceGranted(sync.RunId, name, count, now));
            }
            else
            {
                work.Emit(new ResourceWaiting(sync.RunId, name, count, now));
                newWaits.Add(name);
            }
        }

        // Each new wait edge is checked at once; one victim per cycle found.
        if (newWaits.Count > 0) Detect(work, sync.RunId, defaultCapacity, policy);
        foreach (var name in touched) Promote(work, name, defaultCapacity, policy);

        var after = work.Book.Runs[sync.RunId];
        if (sync.Terminal && after.Holds.IsEmpty && after.WaitsOn.IsEmpty)
            work.Emit(new ResourceRunForgotten(sync.RunId, now));

        return work.Decision();
    }

    /// <summary>
    /// An external worker's lease ran out: <see cref="ResourceClaimExpired"/> records what it held and waited for, then
    /// everything is released and withdrawn and the worker forgotten exactly as if it had released its last claim, and
    /// waiters are granted as after any release. Nothing for a run or a holder the book does not know.
    /// </summary>
    public static ResourceDecision Expire(ResourceBook book, string holder, int defaultCapacity, VictimPolicy policy, DateTimeOffset now)
    {
        if (!ExternalHolders.IsExternal(holder) || !book.Runs.TryGetValue(holder, out var run)) return ResourceDecision.None;
        var expired = new ResourceClaimExpired(holder, [.. run.Holds.Order(StringComparer.Ordinal)], [.. run.WaitsOn.Order(StringComparer.Ordinal)], now);
        var release = Sync(book, new ResourceSync(holder, run.Facts, ImmutableDictionary<string, ImmutableArray<ResourceRequest>>.Empty, [], true),
            defaultCapacity, policy, now);
        return release with { Events = release.Events.Insert(0, expired) };
    }

    /// <summary>Sets a resource's capacity; a larger one grants to the waiters that now fit. A smaller one revokes nothing.</summary>
    public static ResourceDecision Declare(ResourceBook book, string name, int capacity, int defaultCapacity, VictimPolicy policy, DateTimeOffset now)
    {
        var work = new Work(book, now, null);
        if (book.Resource(name).DeclaredCapacity != capacity) work.Emit(new ResourceDeclared(name, capacity, now));
        Promote(work, name, defaultCapacity, policy);
        return work.Decision();
    }

    /// <summary>Every deadlock in the book as it stands, with the victim the policy would pick (the dry-run scan).</summary>
    public static IReadOnlyList<(ImmutableArray<CycleStep> Cycle, string Victim)> Scan(ResourceBook book, int defaultCapacity, VictimPolicy policy, int limit)
    {
        var found = new List<(ImmutableArray<CycleStep>, string)>();
        var covered = new HashSet<string>(StringComparer.Ordinal);
        var b = book;
        foreach (var run in book.Runs.Values.Where(r => !r.WaitsOn.IsEmpty).OrderBy(r => r.RunId, StringComparer.Ordinal))
        {
            if (found.Count >= limit) break;
            if (covered.Contains(run.RunId) || !WaitForGraph.IsDeadlocked(b, run.RunId, defaultCapacity)) continue;
            if (WaitForGraph.FindCycle(b, run.RunId) is not { } cycle) continue;
            var victim = WaitForGraph.ChooseVictim(b, cycle, policy);
            found.Add((cycle, victim));
            foreach (var s in cycle) covered.Add(s.RunId);
            // As if the victim were chosen, so that one cycle is not reported once per member.
            b = b.Apply(new ResourceVictimChosen(victim, cycle, "", default));
        }
        return found;
    }

    private static void Detect(Work work, string runId, int defaultCapacity, VictimPolicy policy)
    {
        // The cycle search first: it is the cheap test, and most new waits close no cycle. The reduction only rules out
        // cycles that capacities above one can still dissolve. Searched again after each victim: one wish can close
        // several cycles at once (two new waits, or a grant that makes several waiters wait for the grantee), and a
        // victim resolves only the cycles it is on; the search skips victims, so each round finds a new cycle or none.
        while (WaitForGraph.FindCycle(work.Book, runId) is { } cycle && WaitForGraph.IsDeadlocked(work.Book, runId, defaultCapacity))
        {
            // A cycle an external worker's claim closes costs that claim, never a run: a worker key could otherwise close
            // a cycle on purpose and have another client's run cancelled (a worker is never the victim by the policy).
            var victim = ExternalHolders.IsExternal(runId) && cycle.Any(s => s.RunId == runId)
                ? runId
                : WaitForGraph.ChooseVictim(work.Book, cycle, policy, closer: runId);
            work.Emit(ExternalHolders.IsExternal(victim)
                ? new ResourceClaimRefused(victim, cycle, WaitForGraph.Describe(cycle), work.Now)
                : new ResourceVictimChosen(victim, cycle, WaitForGraph.Describe(cycle), work.Now));
        }
    }

    /// <summary>
    /// Grants to waiters in arrival order, each that fits; victims are passed over, they are leaving. A grant is a new set
    /// of wait edges too (every other waiter of the resource now waits for the grantee), so a grantee that still waits
    /// for something is checked like a new wait.
    /// </summary>
    private static void Promote(Work work, string name, int defaultCapacity, VictimPolicy policy)
    {
        foreach (var waiter in work.Book.Resource(name).Waiters)
        {
            if (work.Book.Victims.ContainsKey(waiter.RunId)) continue;
            if (work.Book.Resource(name).Free(defaultCapacity) < waiter.Count) continue;
            work.Emit(new ResourceGranted(waiter.RunId, name, waiter.Count, work.Now));
            if (!work.Book.Runs[waiter.RunId].WaitsOn.IsEmpty) Detect(work, waiter.RunId, defaultCapacity, policy);
            if (waiter.RunId != work.Origin && work.Book.SatisfiedTasks(waiter.RunId) is { IsEmpty: false } tasks)
                work.Satisfied[waiter.RunId] = tasks;
        }
    }

    private static bool SameWants(ImmutableDictionary<string, ImmutableArray<ResourceRequest>> a, ImmutableDictionary<string, ImmutableArray<ResourceRequest>> b) =>
        a.Count == b.Count && a.All(kv => b.TryGetValue(kv.Key, out var other) && kv.Value.SequenceEqual(other));

    /// <summary>Events decided so far, applied as they are decided so that each later decision sees the earlier ones.</summary>
    private sealed class Work(ResourceBook book, DateTimeOffset now, string? origin)
    {
        private readonly ImmutableArray<IResourceEvent>.Builder _events = ImmutableArray.CreateBuilder<IResourceEvent>();

        public ResourceBook Book { get; private set; } = book;

        public DateTimeOffset Now { get; } = now;

        public string? Origin { get; } = origin;

        public Dictionary<string, ImmutableArray<string>> Satisfied { get; } = new(StringComparer.Ordinal);

        public void Emit(IResourceEvent e)
        {
            _events.Add(e);
            Book = Book.Apply(e);
        }

        public ResourceDecision Decision()
        {
            // The run that synced always gets an answer, empty or not: it is the acknowledgement of its sync.
            if (Origin is { } o) Satisfied[o] = Book.SatisfiedTasks(o);
            return new(_events.ToImmutable(), Satisfied.ToImmutableDictionary(StringComparer.Ordinal));
        }
    }
}
