using System.Collections.Immutable;
using Deepline.Domain.Resources;
using Xunit;

namespace Deepline.Domain.Tests;

/// <summary>Starvation made explicit: a waiting run is told who holds what it waits for, and what those holders wait for.</summary>
public class ResourceExplanationTests
{
    private static readonly DateTimeOffset T0 = new(2026, 1, 1, 0, 0, 0, TimeSpan.Zero);

    private static ResourceBook Sync(ResourceBook book, string run, params (string Task, string Resource)[] wants) => Sync(book, run, [], wants);

    private static ResourceBook Sync(ResourceBook book, string run, string[] keep, params (string Task, string Resource)[] wants)
    {
        var sync = new ResourceSync(run, new RunFacts(T0, 0, 0),
            wants.ToImmutableDictionary(w => w.Task, w => ImmutableArray.Create(new ResourceRequest(w.Resource, 1))), [.. keep], false);
        foreach (var e in ResourceDecider.Sync(book, sync, 1, VictimPolicy.youngest, T0).Events) book = book.Apply(e);
        return book;
    }

    [Fact]
    public void A_wait_on_a_resource_whose_holder_waits_itself_names_the_holder_and_what_it_waits_for()
    {
        var book = Sync(ResourceBook.Empty, "C", ("load", "warehouse-db"));
        book = Sync(book, "B", ("load", "gpu"));
        // B keeps gpu and now waits for warehouse-db, held by C; A waits for gpu.
        book = Sync(book, "B", ["gpu"], ("train", "warehouse-db"));
        book = Sync(book, "A", ("train", "gpu"));

        var a = Assert.Single(WaitForGraph.ExplainWaits(book, "A", 1));
        Assert.Equal("waits for gpu (capacity 1, 1 used): held by run B, which waits for warehouse-db; every holder waits itself", a.Text);
        Assert.True(a.HoldersAllWait);
        Assert.Equal(["warehouse-db"], Assert.Single(a.Holders).WaitsFor.ToArray());

        // C holds warehouse-db and waits for nothing: B's wait can end, and says so.
        var b = Assert.Single(WaitForGraph.ExplainWaits(book, "B", 1));
        Assert.Equal("waits for warehouse-db (capacity 1, 1 used): held by run C, which waits for nothing", b.Text);
        Assert.False(b.HoldersAllWait);
        Assert.Empty(WaitForGraph.ExplainWaits(book, "C", 1));
    }

    [Fact]
    public void A_holding_that_ends_with_a_running_task_closes_no_cycle_and_is_explained_as_such()
    {
        // B holds gpu only for its running task (no hold_until) while another of its tasks waits for warehouse-db. A keeps
        // warehouse-db (hold_until) and waits for gpu. Not a deadlock: B's running task ends and releases gpu whatever B waits for.
        var book = Sync(ResourceBook.Empty, "A", ("load", "warehouse-db"));
        book = Sync(book, "B", ("fit", "gpu"));
        book = Apply(book, new ResourceSync("B", new RunFacts(T0.AddSeconds(1), 0, 0),
            ImmutableDictionary<string, ImmutableArray<ResourceRequest>>.Empty.Add("export", [new ResourceRequest("warehouse-db", 1)]), ["gpu"], false)
        { Releasing = ["gpu"] });
        var decision = ResourceDecider.Sync(book, new ResourceSync("A", new RunFacts(T0, 0, 0),
            ImmutableDictionary<string, ImmutableArray<ResourceRequest>>.Empty.Add("train", [new ResourceRequest("gpu", 1)]), ["warehouse-db"], false),
            1, VictimPolicy.youngest, T0);
        Assert.Empty(decision.Victims);
        foreach (var e in decision.Events) book = book.Apply(e);
        Assert.Empty(ResourceDecider.Scan(book, 1, VictimPolicy.youngest, 10));
        Assert.Equal("waits for gpu (capacity 1, 1 used): held by run B, which releases it when its task ends",
            Assert.Single(WaitForGraph.ExplainWaits(book, "A", 1)).Text);

        // The same holding kept past its task (hold_until) does close the cycle.
        var pinned = Apply(book, new ResourceSync("B", new RunFacts(T0.AddSeconds(1), 0, 0),
            ImmutableDictionary<string, ImmutableArray<ResourceRequest>>.Empty.Add("export", [new ResourceRequest("warehouse-db", 1)]), ["gpu"], false));
        Assert.Equal("B", Assert.Single(ResourceDecider.Scan(pinned, 1, VictimPolicy.youngest, 10)).Victim);
    }

    private static ResourceBook Apply(ResourceBook book, ResourceSync sync)
    {
        foreach (var e in ResourceDecider.Sync(book, sync, 1, VictimPolicy.youngest, T0).Events) book = book.Apply(e);
        return book;
    }

    [Fact]
    public void An_external_worker_holding_the_resource_is_named_as_a_worker()
    {
        var worker = ExternalHolders.KeyOf("etl-7");
        var book = Sync(ResourceBook.Empty, worker, ("warehouse-db", "warehouse-db"));
        book = Sync(book, "A", ("load", "warehouse-db"));
        Assert.Equal("waits for warehouse-db (capacity 1, 1 used): held by worker etl-7, which waits for nothing",
            Assert.Single(WaitForGraph.ExplainWaits(book, "A", 1)).Text);
    }
}
