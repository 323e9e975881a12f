using System.Collections.Immutable;
using Deepline.Domain.Resources;
using Xunit;

namespace Deepline.Domain.Tests;

/// <summary>
/// A resource deadlock's victim is cancelled while the coordinator's write of the choice is under way only when every
/// fact of the cycle is durable already; otherwise it waits for the write, as every other decision does.
/// </summary>
public class EarlyVictimTests
{
    private static readonly DateTimeOffset T0 = new(2026, 1, 1, 0, 0, 0, TimeSpan.Zero);

    private static ResourceSync Wish(string run, int ageMs, string[] keep, params (string Task, string Resource)[] wants) =>
        new(run, new RunFacts(T0.AddMilliseconds(ageMs), 0, 0),
            wants.ToImmutableDictionary(w => w.Task, w => ImmutableArray.Create(new ResourceRequest(w.Resource, 1))), [.. keep], false);

    private static ResourceBook Apply(ResourceBook book, ResourceDecision d) => d.Events.Aggregate(book, (b, e) => b.Apply(e));

    /// <summary>A holds warehouse-db and waits for gpu; B holds gpu; the returned decision is B's wait closing the cycle.</summary>
    private static ResourceDecision ClosingEdge()
    {
        var book = Apply(ResourceBook.Empty, ResourceDecider.Sync(ResourceBook.Empty, Wish("A", 0, [], ("load", "warehouse-db")), 1, VictimPolicy.youngest, T0));
        book = Apply(book, ResourceDecider.Sync(book, Wish("B", 1, [], ("fit", "gpu")), 1, VictimPolicy.youngest, T0));
        book = Apply(book, ResourceDecider.Sync(book, Wish("A", 0, ["warehouse-db"], ("train", "gpu")), 1, VictimPolicy.youngest, T0));
        return ResourceDecider.Sync(book, Wish("B", 1, ["gpu"], ("export", "warehouse-db")), 1, VictimPolicy.youngest, T0);
    }

    [Fact]
    public void A_cycle_closed_by_a_runs_sync_with_nothing_else_in_flight_is_cancelled_before_its_write()
    {
        var closing = ClosingEdge();
        Assert.Equal("B", Assert.Single(closing.Victims).RunId);
        Assert.True(closing.MayCancelBeforeWritten(eventsInFlight: 0, closingWaitDurable: true));
    }

    [Fact]
    public void Earlier_writes_in_flight_or_a_wait_held_only_here_make_the_victim_wait_for_the_write()
    {
        var closing = ClosingEdge();
        // A holding or wait of the cycle may still be on its way to the journal.
        Assert.False(closing.MayCancelBeforeWritten(eventsInFlight: 1, closingWaitDurable: true));
        // An external worker's claim is journalled nowhere but here.
        Assert.False(closing.MayCancelBeforeWritten(eventsInFlight: 0, closingWaitDurable: false));
    }

    [Fact]
    public void A_decision_that_grants_or_chooses_no_victim_is_never_told_before_its_write()
    {
        var grant = ResourceDecider.Sync(ResourceBook.Empty, Wish("A", 0, [], ("load", "warehouse-db")), 1, VictimPolicy.youngest, T0);
        Assert.Contains(grant.Events, e => e is ResourceGranted);
        Assert.False(grant.MayCancelBeforeWritten(eventsInFlight: 0, closingWaitDurable: true));

        var closing = ClosingEdge();
        var withGrant = closing with { Events = closing.Events.Add(new ResourceGranted("C", "gpu", 1, T0)) };
        Assert.False(withGrant.MayCancelBeforeWritten(eventsInFlight: 0, closingWaitDurable: true));
    }
}
