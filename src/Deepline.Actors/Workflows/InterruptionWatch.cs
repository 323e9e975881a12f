using Akka.Actor;
using Akka.Cluster;
using Akka.Cluster.Sharding;
using Akka.Event;
using Deepline.Actors.Workers;
using Deepline.Domain;

namespace Deepline.Actors.Workflows;

/// <summary>
/// When a member is removed from the cluster, the attempts its in-cluster pools ran are over. Runs that recover after
/// the removal find that out themselves; a run that stays on this node (or recovered here while the member was still
/// leaving, as a graceful leave hands its shards over first) is told: every run this node hosts gets a
/// <see cref="RequeueInterrupted"/> naming the member, and the ones with an attempt on it retry it at once. A removal
/// is rare and the command is a no-op for a run without such an attempt.
/// </summary>
public sealed class InterruptionWatch : ReceiveActor
{
    private static readonly TimeSpan AskTimeout = TimeSpan.FromSeconds(10);
    private readonly ILoggingAdapter _log = Context.GetLogger();

    public InterruptionWatch(IActorRef region)
    {
        var cluster = Cluster.Get(Context.System);
        Receive<ClusterEvent.MemberRemoved>(removed =>
        {
            if (removed.Member.UniqueAddress.Equals(cluster.SelfUniqueAddress)) return;
            var gone = Incarnation.Of(removed.Member.UniqueAddress);
            region.Ask<CurrentShardRegionState>(GetShardRegionState.Instance, AskTimeout)
                .PipeTo(Self, success: state => new HostedRuns(gone, state), failure: e => new Status.Failure(e));
        });
        Receive<HostedRuns>(h =>
        {
            var runs = 0;
            foreach (var shard in h.State.Shards)
            foreach (var runId in shard.EntityIds)
            {
                region.Tell(new RequeueInterrupted(runId, [h.Gone]));
                runs++;
            }
            _log.Info("Member {0} removed: {1} runs hosted here checked for attempts it was running", h.Gone, runs);
        });
        Receive<Status.Failure>(f => _log.Warning("Could not list this node's runs after a member's removal ({0}); their attempts on it are retried when their leases end",
            f.Cause.Message));
        Receive<ClusterEvent.CurrentClusterState>(_ => { });
    }

    public static Props Props(IActorRef region) => Akka.Actor.Props.Create(() => new InterruptionWatch(region));

    protected override void PreStart() => Cluster.Get(Context.System).Subscribe(Self, ClusterEvent.SubscriptionInitialStateMode.InitialStateAsSnapshot, typeof(ClusterEvent.MemberRemoved));

    protected override void PostStop() => Cluster.Get(Context.System).Unsubscribe(Self);

    private sealed record HostedRuns(string Gone, CurrentShardRegionState State);
}
