using Akka.Actor;
using Akka.Cluster;
using Deepline.Actors.Hosting;

namespace Deepline.Actors.Tests;

public sealed class StoreRuleTests
{
    private static readonly Address A = new("akka.tcp", "deepline", "10.0.0.1", 4053);
    private static readonly Address B = new("akka.tcp", "deepline", "10.0.0.2", 4053);
    private static readonly Address C = new("akka.tcp", "deepline", "10.0.0.3", 4053);

    private static MemberView M(Address a, MemberStatus status, int upNumber, string store) => new(a, status, upNumber, store);

    [Fact]
    public void A_newcomer_on_another_store_leaves_and_the_cluster_downs_it()
    {
        MemberView[] members = [M(A, MemberStatus.Up, 1, "store-aaaaaaaaaaaa"), M(B, MemberStatus.Up, 2, "store-aaaaaaaaaaaa"), M(C, MemberStatus.Joining, int.MaxValue, "store-cccccccccccc")];

        Assert.Equal(new StoreVerdict.LeaveSelf("store-aaaaaaaaaaaa"), StoreRule.Decide(C, "store-cccccccccccc", members));
        var down = Assert.IsType<StoreVerdict.DownOthers>(StoreRule.Decide(A, "store-aaaaaaaaaaaa", members));
        Assert.Equal(new[] { C }, down.Members.ToArray());
    }

    [Fact]
    public void Members_of_one_store_are_fine_and_nothing_is_decided_before_anyone_is_up()
    {
        Assert.IsType<StoreVerdict.Fine>(StoreRule.Decide(B, "store-aaaaaaaaaaaa",
            [M(A, MemberStatus.Up, 1, "store-aaaaaaaaaaaa"), M(B, MemberStatus.Joining, int.MaxValue, "store-aaaaaaaaaaaa")]));
        Assert.IsType<StoreVerdict.Fine>(StoreRule.Decide(B, "store-bbbbbbbbbbbb",
            [M(A, MemberStatus.Joining, int.MaxValue, "store-aaaaaaaaaaaa"), M(B, MemberStatus.Joining, int.MaxValue, "store-bbbbbbbbbbbb")]));
    }

    [Fact]
    public void The_oldest_up_member_names_the_clusters_store_even_when_it_is_outnumbered()
    {
        // Two intruders that joined together cannot take the cluster over by number.
        MemberView[] members = [M(A, MemberStatus.Up, 1, "store-aaaaaaaaaaaa"), M(B, MemberStatus.Up, 2, "store-bbbbbbbbbbbb"), M(C, MemberStatus.Up, 3, "store-bbbbbbbbbbbb")];
        Assert.IsType<StoreVerdict.LeaveSelf>(StoreRule.Decide(B, "store-bbbbbbbbbbbb", members));
        Assert.Equal(new[] { B, C }, Assert.IsType<StoreVerdict.DownOthers>(StoreRule.Decide(A, "store-aaaaaaaaaaaa", members)).Members.ToArray());
    }
}

/// <summary>The store's cluster lease as a pure rule: whose row a keeper may take, when it waits, when it calls a conflict.</summary>
public sealed class StoreLeaseRuleTests
{
    private const string Self = "akka.tcp://deepline@10.0.0.1:4053#1";
    private static readonly Func<string, bool> NoneSeen = _ => false;
    private const long Now = 1_000_000;

    [Fact]
    public void A_free_row_its_own_row_or_a_predecessors_row_is_taken()
    {
        Assert.Equal(LeaseStep.Take, StoreLeaseRule.Decide(null, Self, NoneSeen, Now, null));
        Assert.Equal(LeaseStep.Take, StoreLeaseRule.Decide(new LeaseRow(Self, Now - 500), Self, NoneSeen, Now, null));
        // The singleton moved: the last holder was a member of this cluster, so its fresh row is ours to take at once.
        const string predecessor = "akka.tcp://deepline@10.0.0.2:4053#7";
        Assert.Equal(LeaseStep.Take, StoreLeaseRule.Decide(new LeaseRow(predecessor, Now - 500), Self, h => h == predecessor, Now, null));
    }

    [Fact]
    public void A_stranger_s_fresh_row_is_waited_on_then_a_conflict_while_it_keeps_renewing_and_taken_once_silent()
    {
        var stranger = new LeaseRow("akka.tcp://deepline@10.0.0.9:4053#3", Now - 1_000);
        Assert.Equal(LeaseStep.Wait, StoreLeaseRule.Decide(stranger, Self, NoneSeen, Now, null));
        Assert.Equal(LeaseStep.Wait, StoreLeaseRule.Decide(stranger, Self, NoneSeen, Now, Now - 10_000));
        Assert.Equal(LeaseStep.Conflict, StoreLeaseRule.Decide(stranger, Self, NoneSeen, Now, Now - 16_000));
        // A crashed cluster's last renewal: silent for longer than the lease, taken (even after waiting on it).
        Assert.Equal(LeaseStep.Take, StoreLeaseRule.Decide(stranger with { RenewedAtMs = Now - 11_000 }, Self, NoneSeen, Now, Now - 16_000));
        // A released row (a clean stop writes 0) is taken at once.
        Assert.Equal(LeaseStep.Take, StoreLeaseRule.Decide(stranger with { RenewedAtMs = 0 }, Self, NoneSeen, Now, null));
    }
}
