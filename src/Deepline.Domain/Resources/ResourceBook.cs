using System.Collections.Immutable;

namespace Deepline.Domain.Resources;

/// <summary>
/// Every resource, every run that wants, holds or waits for one, and the victims still leaving: the coordinator's
/// whole state. Built only by <see cref="Apply"/>; decisions are in <see cref="ResourceDecider"/>.
/// </summary>
public sealed record ResourceBook(
    ImmutableDictionary<string, ResourceState> Resources,
    ImmutableDictionary<string, ResourceRun> Runs,
    ImmutableDictionary<string, ResourceVictim> Victims) : IDeeplineMessage
{
    public static ResourceBook Empty { get; } = new(
        ImmutableDictionary<string, ResourceState>.Empty.WithComparers(StringComparer.Ordinal),
        ImmutableDictionary<string, ResourceRun>.Empty.WithComparers(StringComparer.Ordinal),
        ImmutableDictionary<string, ResourceVictim>.Empty.WithComparers(StringComparer.Ordinal));

    public ResourceState Resource(string name) => Resources.TryGetValue(name, out var r) ? r : ResourceState.Empty(name);

    public ResourceBook Apply(IResourceEvent e) => e switch
    {
        ResourceDeclared d => WithResource(Resource(d.Name) with { DeclaredCapacity = d.Capacity }),
        ResourceWantsRecorded w => WithRun((Runs.TryGetValue(w.RunId, out var run) ? run : ResourceRun.New(w.RunId, w.Facts)) with
        {
            Facts = w.Facts,
            Wants = w.Wants.WithComparers(StringComparer.Ordinal),
            Releasing = w.Releasing.IsDefaultOrEmpty ? ImmutableHashSet<string>.Empty : [.. w.Releasing],
            // Wanting a refused resource again is a new claim.
            Refused = run is null ? ImmutableDictionary<string, string>.Empty : run.Refused.RemoveRange(w.Wants.Keys),
        }),
        ResourceClaimRefused c => Refuse(c),
        ResourceGranted g => Granted(g),
        ResourceWaiting w => Waiting(w),
        ResourceReleased r => Released(r),
        ResourceWaitWithdrawn w => Withdrawn(w.RunId, w.Resource),
        ResourceVictimChosen v => this with { Victims = Victims.SetItem(v.RunId, new ResourceVictim(v.RunId, v.Cycle, v.Explanation, v.At, false)) },
        ResourceVictimReported r when Victims.TryGetValue(r.RunId, out var victim) => this with { Victims = Victims.SetItem(r.RunId, victim with { Reported = true }) },
        ResourceRunForgotten f => this with { Runs = Runs.Remove(f.RunId), Victims = Victims.Remove(f.RunId) },
        _ => this,
    };

    private ResourceBook WithResource(ResourceState r) =>
        this with { Resources = r.Idle ? Resources.Remove(r.Name) : Resources.SetItem(r.Name, r) };

    private ResourceBook WithRun(ResourceRun r) => this with { Runs = Runs.SetItem(r.RunId, r) };

    private ResourceRun RunOf(string runId) => Runs.TryGetValue(runId, out var r) ? r : ResourceRun.New(runId, new RunFacts(default, 0, 0));

    private ResourceBook Granted(ResourceGranted g)
    {
        // A grant of a resource the run waited for also ends that wait.
        var book = Withdrawn(g.RunId, g.Resource);
        var r = book.Resource(g.Resource);
        if (r.Holders.ContainsKey(g.RunId)) return book;
        var run = book.RunOf(g.RunId);
        return book
            .WithResource(r with { Holders = r.Holders.Add(g.RunId, g.Count), Used = r.Used + g.Count })
            .WithRun(run with { Holds = run.Holds.Add(g.Resource) });
    }

    private ResourceBook Waiting(ResourceWaiting w)
    {
        var run = RunOf(w.RunId);
        if (run.WaitsOn.Contains(w.Resource)) return this;
        var r = Resource(w.Resource);
        return WithResource(r with { Waiters = r.Waiters.Add(new ResourceWaiter(w.RunId, w.Count, w.At)) })
            .WithRun(run with { WaitsOn = run.WaitsOn.Add(w.Resource) });
    }

    private ResourceBook Released(ResourceReleased e)
    {
        var r = Resource(e.Resource);
        if (!r.Holders.TryGetValue(e.RunId, out var count)) return this;
        var run = RunOf(e.RunId);
        return WithResource(r with { Holders = r.Holders.Remove(e.RunId), Used = r.Used - count })
            .WithRun(run with { Holds = run.Holds.Remove(e.Resource) });
    }

    private ResourceBook Refuse(ResourceClaimRefused c)
    {
        if (!Runs.TryGetValue(c.RunId, out var run)) return this;
        var book = this;
        foreach (var name in run.WaitsOn) book = book.Withdrawn(c.RunId, name);
        var after = book.Runs[c.RunId];
        return book.WithRun(after with
        {
            Wants = after.Wants.RemoveRange(run.WaitsOn),
            Refused = after.Refused.SetItems(run.WaitsOn.Select(n => KeyValuePair.Create(n, c.Explanation))),
        });
    }

    private ResourceBook Withdrawn(string runId, string resource)
    {
        if (!Runs.TryGetValue(runId, out var run) || !run.WaitsOn.Contains(resource)) return this;
        var r = Resource(resource);
        return WithResource(r with { Waiters = r.Waiters.RemoveAll(w => w.RunId == runId) })
            .WithRun(run with { WaitsOn = run.WaitsOn.Remove(resource) });
    }

    /// <summary>Tasks of the run whose every request is held by the run: they may be dispatched.</summary>
    public ImmutableArray<string> SatisfiedTasks(string runId) =>
        Runs.TryGetValue(runId, out var run)
            ? [.. run.Wants.Where(kv => kv.Value.All(q => run.Holds.Contains(q.Name))).Select(kv => kv.Key).Order(StringComparer.Ordinal)]
            : [];
}
