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
    /// Whether the member behind <paramref name="incarnation"/> is certainly gone, as this node sees the cluster: it is this
    /// node's own address with another uid (this node restarted), or another uid holds its address now. A member merely
    /// missing from this node's view is not taken as gone: a node that just joined may not have heard of it yet.
    /// </summary>
    public static bool IsGone(string incarnation, UniqueAddress self, IEnumerable<Member> members)
    {
        var cut = incarnation.LastIndexOf('#');
        if (cut <= 0 || !long.TryParse(incarnation.AsSpan(cut + 1), System.Globalization.NumberStyles.Integer, System.Globalization.CultureInfo.InvariantCulture, out var uid))
            return false;
        var address = incarnation[..cut];
        if (self.Address.ToString() == address) return self.Uid != uid;
        foreach (var m in members)
            if (m.Address.ToString() == address && m.UniqueAddress.Uid != uid) return true;
        return false;
    }
}
