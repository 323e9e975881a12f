using System.Collections.Immutable;
using Akka.Actor;
using Akka.Cluster;
using Akka.Event;

namespace Deepline.Actors.Hosting;

/// <summary>What the guard does about the members it sees.</summary>
public abstract record StoreVerdict
{
    public sealed record Fine : StoreVerdict;

    /// <summary>This node's store is not the cluster's: it must leave before it hosts any shard.</summary>
    public sealed record LeaveSelf(string ClusterStore) : StoreVerdict;

    /// <summary>These members carry another store (or none): the cluster removes them.</summary>
    public sealed record DownOthers(ImmutableArray<Address> Members) : StoreVerdict;
}

/// <summary>What the guard needs of a member: where it is, how far it joined, its rank by age (0 = oldest), which store it carries.</summary>
public sealed record MemberView(Address Address, MemberStatus Status, int UpNumber, string? Store)
{
    /// <summary>Members ranked by Akka's own age ordering (the up-number itself is internal to Akka.Cluster).</summary>
    public static IEnumerable<MemberView> Of(IEnumerable<Member> members) =>
        members.OrderBy(m => m, Member.AgeOrdering).Select((m, rank) =>
            new MemberView(m.Address, m.Status, rank, m.Roles.FirstOrDefault(r => r.StartsWith(StoreIdentity.RolePrefix, StringComparison.Ordinal))));
}

/// <summary>One cluster, one store, as a pure function of the members' store roles.</summary>
public static class StoreRule
{
    /// <summary>
    /// The cluster's store is the oldest Up member's (lowest up-number, as Akka orders age); whoever carries another is
    /// foreign, however many of them there are. A foreign node leaves on its own; the others down it, so that a node
    /// which does not run this guard is removed as well.
    /// </summary>
    public static StoreVerdict Decide(Address self, string selfStore, IEnumerable<MemberView> members)
    {
        var live = members.Where(m => m.Status is MemberStatus.Joining or MemberStatus.WeaklyUp or MemberStatus.Up).ToList();
        var oldest = live.Where(m => m.Status == MemberStatus.Up)
            .OrderBy(m => m.UpNumber).ThenBy(m => m.Address.ToString(), StringComparer.Ordinal).FirstOrDefault();
        if (oldest is null) return new StoreVerdict.Fine();
        if (oldest.Store != selfStore) return new StoreVerdict.LeaveSelf(oldest.Store ?? "(none)");
        var foreign = live.Where(m => m.Address != self && m.Store != selfStore).Select(m => m.Address).ToImmutableArray();
        return foreign.IsEmpty ? new StoreVerdict.Fine() : new StoreVerdict.DownOthers(foreign);
    }
}

/// <summary>
/// Watches membership from the moment this node joins (Joining members count, before any shard can be allocated to
/// them) and applies <see cref="StoreRule"/>: a node whose store is not the cluster's leaves and stops the process
/// with one clear line; the cluster's own nodes down a foreign member.
/// </summary>
public sealed class StoreGuard : ReceiveActor
{
    /// <summary>The process exit code of a node that left because its store was not the cluster's.</summary>
    public const int ExitCode = 4;

    private readonly Cluster _cluster = Cluster.Get(Context.System);
    private readonly ILoggingAdapter _log = Context.GetLogger();
    private readonly string _store;
    private readonly string _description;
    private readonly Action? _onForeignStore;
    private bool _leaving;

    public StoreGuard(string storeRole, string description, Action? onForeignStore)
    {
        _store = storeRole;
        _description = description;
        _onForeignStore = onForeignStore;
        Receive<ClusterEvent.IMemberEvent>(_ => Check());
        Receive<ClusterEvent.CurrentClusterState>(_ => Check());
    }

    public static Props Props(string storeRole, string description, Action? onForeignStore = null) =>
        Akka.Actor.Props.Create(() => new StoreGuard(storeRole, description, onForeignStore));

    protected override void PreStart() =>
        _cluster.Subscribe(Self, ClusterEvent.SubscriptionInitialStateMode.InitialStateAsSnapshot,
            typeof(ClusterEvent.IMemberEvent));

    protected override void PostStop() => _cluster.Unsubscribe(Self);

    private void Check()
    {
        if (_leaving) return;
        switch (StoreRule.Decide(_cluster.SelfAddress, _store, MemberView.Of(_cluster.State.Members)))
        {
            case StoreVerdict.LeaveSelf leave:
                _leaving = true;
                _log.Error("This node's store ({0}, {1}) is not the store of the cluster it joined ({2}): one cluster, one store. " +
                           "Leaving the cluster and stopping; point orchestrator.store.connection at the cluster's store.",
                    _description, _store, leave.ClusterStore);
                _onForeignStore?.Invoke();
                _cluster.Leave(_cluster.SelfAddress);
                break;
            case StoreVerdict.DownOthers down:
                foreach (var address in down.Members)
                {
                    _log.Warning("Member {0} does not carry this cluster's store ({1}): downing it, one cluster, one store", address, _store);
                    _cluster.Down(address);
                }
                break;
        }
    }
}
