using Akka.Actor;
using Akka.Cluster;

namespace Deepline.Actors.Workers;

/// <summary>
/// One life of a cluster member, as <c>address#uid</c>: a node restarted on the same address is a new incarnation, so
/// the attempts its previous one ran are known to be over without waiting for their leases.
/// </summary>
public static class Incarnation
{
    public static string Of(UniqueAddress member) => member.Address + "#" + member.Uid.ToString(System.Globalization.CultureInfo.InvariantCulture);

    /// <summary>
    /// Whether the member behind <paramref name="incarnation"/> is certainly gone, as this node sees the cluster: on a
    /// store only one node may use (SQLite), every incarnation but this one; otherwise this node's own address with
    /// another uid (it restarted), another uid now holding that address, or a member no longer in a membership that
    /// every member has seen (removed). A member merely missing from a view this node has not seen agreed on is
    /// <see cref="MemberFate.Unsure"/>: a node that just joined may not have heard of it yet, and a removal seen before
    /// the view converges must be asked again.
    /// </summary>
    public static MemberFate Fate(string incarnation, UniqueAddress self, ClusterEvent.CurrentClusterState state, bool singleNodeStore)
    {
        var cut = incarnation.LastIndexOf('#');
        if (cut <= 0 || !long.TryParse(incarnation.AsSpan(cut + 1), System.Globalization.NumberStyles.Integer, System.Globalization.CultureInfo.InvariantCulture, out var uid))
            return MemberFate.Present;
        if (singleNodeStore) return incarnation != Of(self) ? MemberFate.Gone : MemberFate.Present;
        var address = incarnation[..cut];
        if (self.Address.ToString() == address) return self.Uid != uid ? MemberFate.Gone : MemberFate.Present;
        var present = false;
        foreach (var m in state.Members)
        {
            if (m.Address.ToString() != address) continue;
            if (m.UniqueAddress.Uid != uid) return MemberFate.Gone;
            present = true;
        }
        if (present) return MemberFate.Present;
        var converged = state.Members.Any(m => m.UniqueAddress == self && m.Status == MemberStatus.Up)
                        && state.Members.All(m => state.SeenBy.Contains(m.Address));
        return converged ? MemberFate.Gone : MemberFate.Unsure;
    }
}

/// <summary>What this node can tell of a member that ran an attempt (see <see cref="Incarnation.Fate"/>).</summary>
public enum MemberFate { Present, Gone, Unsure }
