using System.Collections.Immutable;
using Deepline.Domain.Resources;
using Xunit;

namespace Deepline.Domain.Tests;

/// <summary>The claims per key kept beside the book agree with a count over the whole book after every event.</summary>
public class ClaimTallyTests
{
    private static readonly DateTimeOffset T0 = new(2026, 1, 1, 0, 0, 0, TimeSpan.Zero);

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    [InlineData(4)]
    [InlineData(5)]
    public void The_tally_stepped_event_by_event_equals_a_recount_of_the_book(int seed)
    {
        var rnd = new Random(seed);
        var book = ResourceBook.Empty;
        var tally = ClaimTally.Empty;
        string[] keys = ["key-a", "key-b"];
        var most = 0;
        for (var step = 0; step < 400; step++)
        {
            var worker = $"w{rnd.Next(6)}";
            var resource = $"r{rnd.Next(5)}";
            ResourceDecision decision;
            switch (rnd.Next(4))
            {
                case 0 or 1:
                    var (sync, _) = ExternalClaims.Claim(book, worker, keys[rnd.Next(2)], resource, 1, T0);
                    if (sync is null) continue;
                    decision = ResourceDecider.Sync(book, sync, 1, VictimPolicy.youngest, T0);
                    break;
                case 2:
                    if (ExternalClaims.Release(book, worker, resource) is not { } release) continue;
                    decision = ResourceDecider.Sync(book, release, 1, VictimPolicy.youngest, T0);
                    break;
                default:
                    // A run in the same book: its claims are no key's.
                    var run = $"run-{rnd.Next(3)}";
                    decision = ResourceDecider.Sync(book, new ResourceSync(run, new RunFacts(T0, 0, 0),
                        ImmutableDictionary<string, ImmutableArray<ResourceRequest>>.Empty.Add("t", [new ResourceRequest(resource, 1)]), [], rnd.Next(3) == 0),
                        1, VictimPolicy.youngest, T0);
                    break;
            }
            if (rnd.Next(10) == 0 && book.Runs.Keys.FirstOrDefault(ExternalHolders.IsExternal) is { } expiring)
                decision = ResourceDecider.Expire(book, expiring, 1, VictimPolicy.youngest, T0);
            foreach (var e in decision.Events)
            {
                var before = book;
                book = book.Apply(e);
                tally = tally.Step(before, book, e);
            }
            Assert.Equal(ClaimTally.Of(book).ByOwner.OrderBy(kv => kv.Key), tally.ByOwner.OrderBy(kv => kv.Key));
            most = Math.Max(most, tally.ByOwner.Values.DefaultIfEmpty(0).Max());
        }
        Assert.True(most >= 3, "the scenario made keys hold several claims");
    }
}
