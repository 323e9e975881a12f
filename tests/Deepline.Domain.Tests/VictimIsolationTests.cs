using System.Collections.Immutable;
using Deepline.Domain.Resources;
using Xunit;

namespace Deepline.Domain.Tests;

/// <summary>
/// One client cannot have another client's run cancelled by closing a resource cycle on purpose: the victim is taken
/// from the client whose wish closed the cycle, and the policy still ranks within that client and within one client.
/// </summary>
public class VictimIsolationTests
{
    private static readonly DateTimeOffset T0 = new(2026, 1, 1, 0, 0, 0, TimeSpan.Zero);

    private static ResourceSync Wish(string run, string client, int ageS, int priority, string[] keep, params (string Task, string Resource)[] wants) =>
        new(run, new RunFacts(T0.AddSeconds(ageS), priority, 0) { ClientId = client },
            wants.ToImmutableDictionary(w => w.Task, w => ImmutableArray.Create(new ResourceRequest(w.Resource, 1))), [.. keep], false);

    private static (ResourceBook Book, ResourceDecision Last) Play(VictimPolicy policy, params ResourceSync[] syncs)
    {
        var book = ResourceBook.Empty;
        var last = ResourceDecision.None;
        foreach (var sync in syncs)
        {
            last = ResourceDecider.Sync(book, sync, 1, policy, T0);
            foreach (var e in last.Events) book = book.Apply(e);
        }
        return (book, last);
    }

    [Theory]
    [InlineData(VictimPolicy.youngest)]
    [InlineData(VictimPolicy.least_work)]
    [InlineData(VictimPolicy.lowest_priority)]
    public void A_run_that_closes_a_cycle_through_another_clients_run_is_the_victim_itself(VictimPolicy policy)
    {
        // The attacker's run is the oldest and has the highest priority: by the policy alone the victim's run would go.
        var (_, closing) = Play(policy,
            Wish("victim-run", "team-a", 10, -5, [], ("load", "db")),
            Wish("attacker-run", "team-b", 0, 100, [], ("hold", "gpu")),
            Wish("victim-run", "team-a", 10, -5, ["db"], ("train", "gpu")),
            Wish("attacker-run", "team-b", 0, 100, ["gpu"], ("close", "db")));

        var chosen = Assert.Single(closing.Victims);
        Assert.Equal("attacker-run", chosen.RunId);
    }

    [Fact]
    public void Within_the_closing_client_the_policy_still_decides()
    {
        // Three runs on one cycle: two of team-b (the closer is the older), one of team-a. Youngest of team-b goes.
        var (_, closing) = Play(VictimPolicy.youngest,
            Wish("a1", "team-a", 30, 0, [], ("t", "r1")),
            Wish("b-young", "team-b", 20, 0, [], ("t", "r2")),
            Wish("b-old", "team-b", 0, 0, [], ("t", "r3")),
            Wish("a1", "team-a", 30, 0, ["r1"], ("u", "r2")),
            Wish("b-young", "team-b", 20, 0, ["r2"], ("u", "r3")),
            Wish("b-old", "team-b", 0, 0, ["r3"], ("u", "r1")));

        Assert.Equal("b-young", Assert.Single(closing.Victims).RunId);
    }

    [Fact]
    public void A_cycle_of_one_client_keeps_the_policy_over_every_run()
    {
        var (_, closing) = Play(VictimPolicy.youngest,
            Wish("young", "team-a", 10, 0, [], ("t", "db")),
            Wish("old", "team-a", 0, 0, [], ("t", "gpu")),
            Wish("young", "team-a", 10, 0, ["db"], ("u", "gpu")),
            Wish("old", "team-a", 0, 0, ["gpu"], ("u", "db")));

        Assert.Equal("young", Assert.Single(closing.Victims).RunId);
    }
}
