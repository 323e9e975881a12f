using System.Collections.Immutable;
using Deepline.Domain.Resources;
using FsCheck.Xunit;
using Xunit;

namespace Deepline.Domain.Tests;

/// <summary>
/// Random acquisition orders played against the coordinator's decider, each step checked against brute force over
/// the whole wait-for graph. A seed drives each scenario so that a failure names one reproducible case.
/// </summary>
[Properties(MaxTest = 300)]
public class ResourceProperties
{
    private static readonly DateTimeOffset T0 = new(2026, 1, 1, 0, 0, 0, TimeSpan.Zero);

    private static string Run(int i) => $"run-{i}";

    private static string Res(int i) => $"res-{i}";

    /// <summary>Every wait edge a run could have to another, whole graph: run -> resource it waits for -> each holder.</summary>
    private static IEnumerable<string> Edges(ResourceBook book, string run, bool skipVictims) =>
        book.Runs[run].WaitsOn.SelectMany(r => book.Resource(r).Holders.Keys)
            .Where(h => !skipVictims || !book.Victims.ContainsKey(h));

    /// <summary>Brute force: does the run reach itself, searching everything with no incremental shortcut?</summary>
    private static bool OnCycle(ResourceBook book, string run, bool skipVictims = true)
    {
        if (skipVictims && book.Victims.ContainsKey(run)) return false;
        var seen = new HashSet<string>();
        var frontier = new Queue<string>(Edges(book, run, skipVictims));
        while (frontier.Count > 0)
        {
            var x = frontier.Dequeue();
            if (x == run) return true;
            if (!seen.Add(x) || !book.Runs.ContainsKey(x)) continue;
            foreach (var y in Edges(book, x, skipVictims)) frontier.Enqueue(y);
        }
        return false;
    }

    /// <summary>Brute force Holt reduction over every run of the book.</summary>
    private static HashSet<string> GloballyDeadlocked(ResourceBook book, int defaultCapacity)
    {
        var free = book.Resources.Values.ToDictionary(r => r.Name, r => r.Free(defaultCapacity));
        var open = book.Runs.Values.ToList();
        bool progress;
        do
        {
            progress = false;
            foreach (var run in open.ToList())
            {
                var canFinish = book.Victims.ContainsKey(run.RunId) || run.WaitsOn.All(r =>
                    free.GetValueOrDefault(r, defaultCapacity) >= book.Resource(r).Waiters.First(w => w.RunId == run.RunId).Count);
                if (!canFinish) continue;
                foreach (var h in run.Holds) free[h] = free.GetValueOrDefault(h, defaultCapacity) + book.Resource(h).Holders[run.RunId];
                open.Remove(run);
                progress = true;
            }
        } while (progress);
        return open.Select(r => r.RunId).ToHashSet();
    }

    /// <summary>A random book built from grants and waits (capacity <paramref name="capacity"/>), without the decider.</summary>
    private static ResourceBook RandomBook(Random rnd, int capacity, int maxCount)
    {
        var runs = rnd.Next(2, 8);
        var resources = rnd.Next(1, 6);
        var book = ResourceBook.Empty;
        for (var r = 0; r < resources; r++) book = book.Apply(new ResourceDeclared(Res(r), capacity, T0));
        for (var i = 0; i < runs; i++)
            book = book.Apply(new ResourceWantsRecorded(Run(i), new RunFacts(T0.AddSeconds(i), 0, 0), ImmutableDictionary<string, ImmutableArray<ResourceRequest>>.Empty, T0));
        for (var step = 0; step < runs * 3; step++)
        {
            var run = Run(rnd.Next(runs));
            var res = Res(rnd.Next(resources));
            var count = rnd.Next(1, maxCount + 1);
            var state = book.Resource(res);
            if (book.Runs[run].Holds.Contains(res) || book.Runs[run].WaitsOn.Contains(res)) continue;
            book = state.Free(1) >= count
                ? book.Apply(new ResourceGranted(run, res, count, T0))
                : book.Apply(new ResourceWaiting(run, res, count, T0));
        }
        return book;
    }

    [Property]
    public void With_single_units_the_incremental_search_finds_exactly_the_cycles_brute_force_finds(int seed)
    {
        var book = RandomBook(new Random(seed), 1, 1);
        foreach (var run in book.Runs.Keys)
        {
            var cycle = WaitForGraph.FindCycle(book, run);
            Assert.True(OnCycle(book, run) == cycle is not null, $"{run}: brute force {OnCycle(book, run)}, found {cycle is not null}; {Show(book)}");
            // A run on a cycle is deadlocked; one merely waiting behind a cycle is deadlocked too, but not on a cycle of its own.
            if (cycle is not null) Assert.True(WaitForGraph.IsDeadlocked(book, run, 1));
            if (cycle is { } c) AssertRealCycle(book, c, run);
        }
    }

    [Property]
    public void With_several_units_the_local_reduction_agrees_with_the_global_one(int seed)
    {
        var rnd = new Random(seed);
        var book = RandomBook(rnd, rnd.Next(1, 4), 3);
        var deadlocked = GloballyDeadlocked(book, 1);
        foreach (var run in book.Runs.Keys)
        {
            var local = WaitForGraph.IsDeadlocked(book, run, 1);
            Assert.Equal(deadlocked.Contains(run) && !book.Runs[run].WaitsOn.IsEmpty, local);
            // A deadlock is always on (or behind) a cycle; the cycle named is a real one.
            if (local && WaitForGraph.FindCycle(book, run) is { } c) AssertRealCycle(book, c, run);
        }
    }

    /// <summary>
    /// Runs acquire resources one wish at a time in a random order through the decider, victims are cancelled at a random
    /// later step; after every decision: capacity holds, nothing is granted twice, no deadlock is left among survivors, every
    /// victim was on a real cycle, and no cycle is given a second victim.
    /// </summary>
    [Property]
    public void Random_acquisition_orders_keep_capacity_grant_once_and_leave_no_cycle(int seed, bool multiUnit)
    {
        var rnd = new Random(seed);
        var runs = rnd.Next(2, 7);
        var resources = rnd.Next(1, 5);
        var capacity = multiUnit ? rnd.Next(1, 4) : 1;
        var policy = (VictimPolicy)rnd.Next(3);
        var book = ResourceBook.Empty;
        var wants = Enumerable.Range(0, runs).Select(_ => new Dictionary<string, ImmutableArray<ResourceRequest>>()).ToArray();
        var keep = Enumerable.Range(0, runs).Select(_ => new SortedSet<string>(StringComparer.Ordinal)).ToArray();
        var counts = Enumerable.Range(0, runs).Select(_ => Enumerable.Range(0, resources).Select(_ => multiUnit ? rnd.Next(1, capacity + 1) : 1).ToArray()).ToArray();
        var ended = new bool[runs];
        var victimsPending = new List<int>();
        var task = 0;

        ResourceSync SyncOf(int i) => new(Run(i), new RunFacts(T0.AddSeconds(i), i % 3, i % 2),
            wants[i].ToImmutableDictionary(), [.. keep[i]], ended[i]);

        void Play(ResourceSync sync)
        {
            var before = book;
            var decision = ResourceDecider.Sync(book, sync, capacity, policy, T0);
            foreach (var e in decision.Events)
            {
                if (e is ResourceGranted g)
                {
                    Assert.False(book.Resource(g.Resource).Holders.ContainsKey(g.RunId), $"double grant of {g.Resource} to {g.RunId}");
                    Assert.True(book.Resource(g.Resource).Free(capacity) >= g.Count, $"grant of {g.Resource} beyond capacity");
                }
                if (e is ResourceVictimChosen v)
                {
                    AssertRealCycle(book, v.Cycle, v.Cycle[0].RunId);
                    Assert.Contains(v.RunId, v.Cycle.Select(s => s.RunId));
                    // One victim per cycle: a cycle that already has one is never given a second.
                    Assert.DoesNotContain(v.Cycle, s => book.Victims.ContainsKey(s.RunId));
                    // No run is starved forever under youngest: the oldest run of a cycle is never its victim, so the
                    // oldest waiting run can lose no cycle and is eventually granted everything it waits for.
                    if (policy == VictimPolicy.youngest)
                        Assert.NotEqual(v.Cycle.MinBy(s => book.Runs[s.RunId].Facts.CreatedAt)!.RunId, v.RunId);
                }
                book = book.Apply(e);
            }
            foreach (var r in book.Resources.Values)
            {
                Assert.True(r.Used <= r.Capacity(capacity), $"{r.Name} over capacity");
                Assert.Equal(r.Used, r.Holders.Values.Sum());
                Assert.Equal(r.Waiters.Count, r.Waiters.Select(w => w.RunId).Distinct().Count());
            }
            // Every cycle found: among the runs not yet chosen as victims there is no deadlock left.
            var stuck = GloballyDeadlocked(book, capacity);
            Assert.True(stuck.Count == 0, $"deadlocked and not resolved: {string.Join(", ", stuck)}; {Show(book)}; victims {string.Join(",", book.Victims.Keys)}");
            if (!multiUnit)
                Assert.DoesNotContain(book.Runs.Keys, id => OnCycle(book, id));
            foreach (var v in decision.Victims)
                victimsPending.Add(int.Parse(v.RunId["run-".Length..]));
            // The run side: a satisfied task's resources move from its wants into what it keeps.
            foreach (var (runId, tasks) in decision.Satisfied)
            {
                var i = int.Parse(runId["run-".Length..]);
                foreach (var t in tasks.Where(wants[i].ContainsKey))
                {
                    foreach (var q in wants[i][t]) keep[i].Add(q.Name);
                    wants[i].Remove(t);
                }
            }
            _ = before;
        }

        for (var step = 0; step < runs * 6; step++)
        {
            if (victimsPending.Count > 0 && rnd.Next(3) == 0)
            {
                var v = victimsPending[0];
                victimsPending.RemoveAt(0);
                ended[v] = true;
                Play(SyncOf(v));
                Assert.False(book.Runs.ContainsKey(Run(v)), "an ended run is forgotten");
                continue;
            }
            var i = rnd.Next(runs);
            if (ended[i]) continue;
            switch (rnd.Next(5))
            {
                case 0 when keep[i].Count > 0:
                    keep[i].Remove(keep[i].First());
                    break;
                case 1:
                    ended[i] = true;
                    break;
                default:
                    var res = rnd.Next(resources);
                    wants[i][$"t{task++}"] = [new ResourceRequest(Res(res), counts[i][res])];
                    break;
            }
            Play(SyncOf(i));
        }
    }

    /// <summary>
    /// Runs and external workers claim in one random order: after every decision no deadlock is left, a worker is never
    /// chosen as a victim (it cannot be cancelled), and a refused claim is on the cycle it is refused for (a cycle of
    /// workers alone, or one its own claim closed).
    /// </summary>
    [Property]
    public void Runs_and_external_workers_share_the_graph_and_every_cycle_costs_a_run_if_it_has_one_also_when_leases_expire(int seed)
    {
        var rnd = new Random(seed);
        var policy = (VictimPolicy)rnd.Next(3);
        var book = ResourceBook.Empty;
        string[] runs = ["run-0", "run-1", "run-2"];
        string[] workers = ["w0", "w1", "w2"];
        var wants = runs.ToDictionary(r => r, _ => new Dictionary<string, ImmutableArray<ResourceRequest>>());
        var keep = runs.ToDictionary(r => r, _ => new SortedSet<string>(StringComparer.Ordinal));
        var ended = new HashSet<string>();
        var task = 0;

        void Play(ResourceDecision decision)
        {
            foreach (var e in decision.Events)
            {
                if (e is ResourceVictimChosen v)
                {
                    Assert.False(ExternalHolders.IsExternal(v.RunId), $"worker {v.RunId} chosen as a victim");
                    AssertRealCycle(book, v.Cycle, v.Cycle[0].RunId);
                }
                if (e is ResourceClaimRefused c)
                {
                    // A cycle of workers alone, or one that this worker's own claim closed: it pays, not a run.
                    Assert.True(c.Cycle.Any(x => x.RunId == c.RunId), $"a worker refused for a cycle it is not on: {c.Explanation}");
                    AssertRealCycle(book, c.Cycle, c.RunId);
                }
                book = book.Apply(e);
            }
            var stuck = GloballyDeadlocked(book, 1);
            Assert.True(stuck.Count == 0, $"deadlocked and not resolved: {string.Join(", ", stuck)}; {Show(book)}");
            foreach (var (runId, tasks) in decision.Satisfied.Where(kv => !ExternalHolders.IsExternal(kv.Key)))
                foreach (var t in tasks.Where(wants[runId].ContainsKey))
                {
                    foreach (var q in wants[runId][t]) keep[runId].Add(q.Name);
                    wants[runId].Remove(t);
                }
        }

        for (var step = 0; step < 40; step++)
        {
            // Victims leave at once: their run ends.
            foreach (var victim in book.Victims.Keys.Where(v => !ended.Contains(v)).ToList())
            {
                ended.Add(victim);
                Play(ResourceDecider.Sync(book, new ResourceSync(victim, new RunFacts(T0, 0, 0),
                    ImmutableDictionary<string, ImmutableArray<ResourceRequest>>.Empty, [], true), 1, policy, T0));
            }
            var resource = Res(rnd.Next(4));
            if (rnd.Next(2) == 0)
            {
                var w = workers[rnd.Next(workers.Length)];
                if (rnd.Next(5) == 0)
                {
                    // The worker's lease runs out: it is gone from every resource, and whoever it blocked moves on.
                    var key = ExternalHolders.KeyOf(w);
                    Play(ResourceDecider.Expire(book, key, 1, policy, T0.AddSeconds(step)));
                    Assert.False(book.Runs.ContainsKey(key), $"{key} still in the book after its expiry; {Show(book)}");
                    Assert.DoesNotContain(book.Resources.Values, r => r.Holders.ContainsKey(key) || r.Waiters.Any(x => x.RunId == key));
                    Assert.All(book.Resources.Values, r => Assert.True(r.Used == r.Holders.Values.Sum() && r.Used <= 1, $"{r.Name}: used {r.Used}"));
                    continue;
                }
                var claimed = ExternalClaims.Status(book, w, resource, 1).State is ClaimState.granted or ClaimState.waiting;
                var sync = claimed && rnd.Next(2) == 0
                    ? ExternalClaims.Release(book, w, resource)
                    : ExternalClaims.Claim(book, w, "key", resource, 1, T0.AddSeconds(step)).Sync;
                if (sync is not null) Play(ResourceDecider.Sync(book, sync, 1, policy, T0));
                continue;
            }
            var run = runs[rnd.Next(runs.Length)];
            if (ended.Contains(run)) continue;
            if (rnd.Next(4) == 0 && keep[run].Count > 0) keep[run].Remove(keep[run].First());
            else wants[run][$"t{task++}"] = [new ResourceRequest(resource, 1)];
            var i = int.Parse(run["run-".Length..]);
            Play(ResourceDecider.Sync(book, new ResourceSync(run, new RunFacts(T0.AddSeconds(i), i, 0), wants[run].ToImmutableDictionary(), [.. keep[run]], false),
                1, policy, T0));
        }
    }

    [Fact]
    public void Two_runs_crossing_two_resources_deadlock_at_the_closing_edge_and_the_youngest_is_the_victim()
    {
        var book = ResourceBook.Empty;
        ResourceDecision Sync(string run, int age, params string[] wanted) => ResourceDecider.Sync(book,
            new ResourceSync(run, new RunFacts(T0.AddSeconds(age), 0, 0),
                wanted.Select((w, k) => (w, k)).ToImmutableDictionary(x => $"t{x.k}", x => ImmutableArray.Create(new ResourceRequest(x.w, 1))),
                [], false), 1, VictimPolicy.youngest, T0);
        void Play(ResourceDecision d) { foreach (var e in d.Events) book = book.Apply(e); }

        Play(Sync("A", 0, "warehouse-db"));
        Play(Sync("B", 1, "gpu"));
        var aWaits = Sync("A", 0, "warehouse-db", "gpu");
        Assert.Empty(aWaits.Victims);
        Play(aWaits);
        var closing = Sync("B", 1, "gpu", "warehouse-db");

        var victim = Assert.Single(closing.Victims);
        Assert.Equal("B", victim.RunId);
        Assert.Equal("run B holds gpu, waits for warehouse-db; run A holds warehouse-db, waits for gpu", victim.Explanation);
        Play(closing);

        // The victim ends: A is granted gpu and told which task may start.
        var release = ResourceDecider.Sync(book, new ResourceSync("B", new RunFacts(T0.AddSeconds(1), 0, 0),
            ImmutableDictionary<string, ImmutableArray<ResourceRequest>>.Empty, [], true), 1, VictimPolicy.youngest, T0);
        Assert.Contains(release.Events, e => e is ResourceGranted { RunId: "A", Resource: "gpu" });
        Assert.Equal(["t0", "t1"], release.Satisfied["A"].ToArray());
    }

    /// <summary>At-least-once delivery: any wish repeated right after itself changes nothing and gets the same answer.</summary>
    [Property]
    public void A_repeated_wish_journals_nothing_and_is_answered_the_same(int seed)
    {
        var rnd = new Random(seed);
        var book = ResourceBook.Empty;
        for (var step = 0; step < 40; step++)
        {
            var run = Run(rnd.Next(5));
            var wants = Enumerable.Range(0, rnd.Next(3)).ToImmutableDictionary(k => $"t{k}", _ => ImmutableArray.Create(new ResourceRequest(Res(rnd.Next(4)), 1)));
            var keep = book.Runs.TryGetValue(run, out var known) ? known.Holds.Where(_ => rnd.Next(2) == 0).ToImmutableArray() : [];
            var sync = new ResourceSync(run, new RunFacts(T0, 0, 0), wants, keep, rnd.Next(6) == 0);
            var first = ResourceDecider.Sync(book, sync, 1, VictimPolicy.youngest, T0);
            foreach (var e in first.Events) book = book.Apply(e);

            var again = ResourceDecider.Sync(book, sync, 1, VictimPolicy.youngest, T0);

            Assert.Empty(again.Events);
            Assert.Equal(first.Satisfied.GetValueOrDefault(run).ToArray(), again.Satisfied.GetValueOrDefault(run).ToArray());
        }
    }

    [Theory]
    [InlineData(VictimPolicy.youngest, "B")]
    [InlineData(VictimPolicy.least_work, "A")]
    [InlineData(VictimPolicy.lowest_priority, "A")]
    public void The_victim_policy_decides_with_deterministic_ties(VictimPolicy policy, string expected)
    {
        var book = ResourceBook.Empty
            .Apply(new ResourceWantsRecorded("A", new RunFacts(T0, -5, 0), ImmutableDictionary<string, ImmutableArray<ResourceRequest>>.Empty, T0))
            .Apply(new ResourceWantsRecorded("B", new RunFacts(T0.AddSeconds(1), 0, 3), ImmutableDictionary<string, ImmutableArray<ResourceRequest>>.Empty, T0));
        ImmutableArray<CycleStep> cycle = [new("A", "x", "y"), new("B", "y", "x")];
        Assert.Equal(expected, WaitForGraph.ChooseVictim(book, cycle, policy));

        var twins = ResourceBook.Empty
            .Apply(new ResourceWantsRecorded("A", new RunFacts(T0, 0, 0), ImmutableDictionary<string, ImmutableArray<ResourceRequest>>.Empty, T0))
            .Apply(new ResourceWantsRecorded("B", new RunFacts(T0, 0, 0), ImmutableDictionary<string, ImmutableArray<ResourceRequest>>.Empty, T0));
        Assert.Equal("B", WaitForGraph.ChooseVictim(twins, cycle, policy));
    }

    private static string Show(ResourceBook book) => string.Join(" | ", book.Runs.Values.OrderBy(r => r.RunId).Select(r =>
        $"{r.RunId} holds [{string.Join(",", r.Holds.Order())}] waits [{string.Join(",", r.WaitsOn.Order())}]"));

    /// <summary>Consecutive steps chain: each run holds what the previous one waits for, closing back to the first.</summary>
    private static void AssertRealCycle(ResourceBook book, ImmutableArray<CycleStep> cycle, string through)
    {
        Assert.Contains(through, cycle.Select(s => s.RunId));
        Assert.Equal(cycle.Length, cycle.Select(s => s.RunId).Distinct().Count());
        for (var k = 0; k < cycle.Length; k++)
        {
            var step = cycle[k];
            var next = cycle[(k + 1) % cycle.Length];
            Assert.Contains(step.WaitsFor, book.Runs[step.RunId].WaitsOn);
            Assert.Equal(step.WaitsFor, next.Holds);
            Assert.True(book.Resource(next.Holds).Holders.ContainsKey(next.RunId), $"{next.RunId} does not hold {next.Holds}");
        }
    }
}
