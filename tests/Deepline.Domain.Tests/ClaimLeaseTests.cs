using System.Collections.Immutable;
using Deepline.Domain.Resources;
using Xunit;

namespace Deepline.Domain.Tests;

/// <summary>Leases on external workers' claims: who expires at a time, and what an expiry releases, withdraws and grants.</summary>
public class ClaimLeaseTests
{
    private static readonly DateTimeOffset T0 = new(2026, 1, 1, 0, 0, 0, TimeSpan.Zero);
    private static readonly TimeSpan Lease = TimeSpan.FromSeconds(30);

    private static ResourceBook Claim(ResourceBook book, string worker, string resource, int count = 1)
    {
        var (sync, error) = ExternalClaims.Claim(book, worker, "key", resource, count, T0);
        Assert.Null(error);
        return Apply(book, ResourceDecider.Sync(book, sync!, 1, VictimPolicy.youngest, T0));
    }

    private static ResourceBook Apply(ResourceBook book, ResourceDecision decision)
    {
        foreach (var e in decision.Events) book = book.Apply(e);
        return book;
    }

    private static ResourceBook RunWants(ResourceBook book, string run, string resource) => Apply(book, ResourceDecider.Sync(book,
        new ResourceSync(run, new RunFacts(T0, 0, 0), ImmutableDictionary<string, ImmutableArray<ResourceRequest>>.Empty.Add("t", [new ResourceRequest(resource, 1)]), [], false),
        1, VictimPolicy.youngest, T0));

    [Fact]
    public void A_lease_is_due_at_its_deadline_not_before_and_renewing_pushes_it_back_a_full_lease()
    {
        var book = Claim(ResourceBook.Empty, "w1", "db");
        var leases = ClaimLeases.Empty.Renew("worker/w1", T0, Lease);

        Assert.Empty(leases.Due(book, T0 + Lease - TimeSpan.FromMilliseconds(1)));
        Assert.Equal(["worker/w1"], leases.Due(book, T0 + Lease).ToArray());

        leases = leases.Renew("worker/w1", T0 + TimeSpan.FromSeconds(20), Lease);
        Assert.Empty(leases.Due(book, T0 + Lease));
        Assert.Equal(T0 + TimeSpan.FromSeconds(50), leases.Next);
        Assert.Equal(["worker/w1"], leases.Due(book, T0 + TimeSpan.FromSeconds(50)).ToArray());
    }

    [Fact]
    public void Only_workers_the_book_still_knows_are_due_and_the_earliest_deadline_is_the_next()
    {
        var book = Claim(Claim(ResourceBook.Empty, "w1", "db"), "w2", "gpu");
        var leases = ClaimLeases.Empty
            .Renew("worker/w1", T0 + TimeSpan.FromSeconds(5), Lease)
            .Renew("worker/w2", T0, Lease)
            .Renew("worker/gone", T0, Lease);

        Assert.Equal(T0 + Lease, leases.Next);
        Assert.Equal(["worker/w2"], leases.Due(book, T0 + Lease).ToArray());
        Assert.Equal(["worker/w1", "worker/w2"], leases.Due(book, T0 + TimeSpan.FromMinutes(5)).ToArray());
        Assert.Equal(["worker/w1", "worker/w2"], leases.Pruned(book).Deadlines.Keys.Order(StringComparer.Ordinal).ToArray());
    }

    [Fact]
    public void After_a_recovery_every_worker_in_the_book_gets_a_full_lease_from_the_recovery_and_runs_get_none()
    {
        var book = RunWants(Claim(Claim(ResourceBook.Empty, "w1", "db"), "w2", "db"), "run-1", "gpu");
        var recoveredAt = T0 + TimeSpan.FromHours(1);

        var leases = ClaimLeases.Recovered(book, recoveredAt, Lease);

        Assert.Equal(["worker/w1", "worker/w2"], leases.Deadlines.Keys.Order(StringComparer.Ordinal).ToArray());
        Assert.All(leases.Deadlines.Values, d => Assert.Equal(recoveredAt + Lease, d));
        Assert.Empty(leases.Due(book, recoveredAt + Lease - TimeSpan.FromMilliseconds(1)));
    }

    [Fact]
    public void An_expired_holder_is_released_recorded_and_forgotten_and_the_next_waiter_is_granted()
    {
        var book = Claim(ResourceBook.Empty, "w1", "db");
        book = RunWants(book, "run-1", "db");
        Assert.Equal(["run-1"], book.Resource("db").Waiters.Select(w => w.RunId));

        var decision = ResourceDecider.Expire(book, "worker/w1", 1, VictimPolicy.youngest, T0 + Lease);
        var expired = Assert.IsType<ResourceClaimExpired>(decision.Events[0]);
        Assert.Equal(["db"], expired.Held.ToArray());
        Assert.Empty(expired.WaitedFor);
        book = Apply(book, decision);

        Assert.False(book.Runs.ContainsKey("worker/w1"));
        Assert.Equal(["run-1"], book.Resource("db").Holders.Keys);
        Assert.Equal(["t"], decision.Satisfied["run-1"].ToArray());
        Assert.Equal(ClaimState.none, ExternalClaims.Status(book, "w1", "db", 1).State);
    }

    [Fact]
    public void An_expired_waiter_is_withdrawn_and_no_longer_in_line()
    {
        var book = Claim(Claim(ResourceBook.Empty, "w1", "db"), "w2", "db");
        Assert.Equal(ClaimState.waiting, ExternalClaims.Status(book, "w2", "db", 1).State);

        var decision = ResourceDecider.Expire(book, "worker/w2", 1, VictimPolicy.youngest, T0 + Lease);
        var expired = Assert.IsType<ResourceClaimExpired>(decision.Events[0]);
        Assert.Equal(["db"], expired.WaitedFor.ToArray());
        Assert.Empty(expired.Held);
        book = Apply(book, decision);

        Assert.Empty(book.Resource("db").Waiters);
        Assert.Equal(["worker/w1"], book.Resource("db").Holders.Keys);
        Assert.False(book.Runs.ContainsKey("worker/w2"));
    }

    [Fact]
    public void Expiring_a_run_or_an_unknown_worker_decides_nothing()
    {
        var book = RunWants(ResourceBook.Empty, "run-1", "db");

        Assert.Empty(ResourceDecider.Expire(book, "run-1", 1, VictimPolicy.youngest, T0).Events);
        Assert.Empty(ResourceDecider.Expire(book, "worker/nobody", 1, VictimPolicy.youngest, T0).Events);
    }

    [Fact]
    public void A_worker_that_holds_and_waits_loses_both_at_once_and_the_first_waiter_in_line_is_granted()
    {
        var book = Claim(Claim(ResourceBook.Empty, "w1", "db"), "w2", "gpu");
        book = Claim(book, "w1", "gpu");
        book = Claim(book, "w3", "db");
        book = RunWants(book, "run-1", "db");

        var decision = ResourceDecider.Expire(book, "worker/w1", 1, VictimPolicy.youngest, T0 + Lease);
        var expired = Assert.IsType<ResourceClaimExpired>(decision.Events[0]);
        Assert.Equal(["db"], expired.Held.ToArray());
        Assert.Equal(["gpu"], expired.WaitedFor.ToArray());
        book = Apply(book, decision);

        // w3 was first in line for db; run-1 still waits behind it. gpu's line no longer has w1.
        Assert.Equal(["worker/w3"], book.Resource("db").Holders.Keys);
        Assert.Equal(["run-1"], book.Resource("db").Waiters.Select(w => w.RunId));
        Assert.Empty(book.Resource("gpu").Waiters);
        Assert.Equal("worker/w1", Assert.IsType<ResourceRunForgotten>(Assert.Single(decision.Events, e => e is ResourceRunForgotten)).RunId);
    }
}
