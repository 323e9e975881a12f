using System.Collections.Immutable;
using Akka.Actor;
using Akka.Cluster;
using Akka.Configuration;
using Deepline.Actors.Workers;
using Deepline.Tests.Shared;

namespace Deepline.Actors.Tests;

/// <summary>What a run can tell of the member its attempt ran on, from the cluster view it has.</summary>
public sealed class IncarnationTests : Akka.TestKit.Xunit2.TestKit
{
    private static readonly Config ClusterConfig = ConfigurationFactory.ParseString("""
        akka.actor.provider = cluster
        akka.remote.dot-netty.tcp { hostname = 127.0.0.1, port = 0 }
        akka.loglevel = WARNING
        """);

    public IncarnationTests() : base(ClusterConfig) { }

    private async Task<(UniqueAddress Self, Member Up)> UpAsync()
    {
        var cluster = Cluster.Get(Sys);
        cluster.Join(cluster.SelfAddress);
        await Eventually.Until(() => cluster.SelfMember.Status == MemberStatus.Up, TimeSpan.FromSeconds(20), "self up");
        return (cluster.SelfUniqueAddress, cluster.SelfMember);
    }

    private static ClusterEvent.CurrentClusterState View(Member member, params Address[] seenBy) =>
        new(ImmutableSortedSet.Create(member), ImmutableHashSet<Member>.Empty, [.. seenBy], member.Address,
            ImmutableDictionary<string, Address>.Empty);

    [Fact]
    public async Task A_member_missing_from_a_view_not_yet_agreed_on_is_unsure_and_gone_once_it_is()
    {
        var (self, up) = await UpAsync();
        const string removed = "akka.tcp://deepline@127.0.0.1:1#42";

        Assert.Equal(MemberFate.Unsure, Incarnation.Fate(removed, self, View(up), singleNodeStore: false));
        Assert.Equal(MemberFate.Gone, Incarnation.Fate(removed, self, View(up, up.Address), singleNodeStore: false));
    }

    [Fact]
    public async Task This_node_is_present_and_its_address_with_another_uid_is_a_restart()
    {
        var (self, up) = await UpAsync();

        Assert.Equal(MemberFate.Present, Incarnation.Fate(Incarnation.Of(self), self, View(up), singleNodeStore: false));
        Assert.Equal(MemberFate.Gone, Incarnation.Fate($"{self.Address}#{self.Uid + 1}", self, View(up), singleNodeStore: false));
        // On a store only one node may use, any other incarnation is over.
        Assert.Equal(MemberFate.Gone, Incarnation.Fate("akka.tcp://deepline@127.0.0.1:1#42", self, View(up), singleNodeStore: true));
    }
}
