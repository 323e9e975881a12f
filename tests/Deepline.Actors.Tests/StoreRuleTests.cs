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
