using Akka.Actor;
using Akka.Cluster.Tools.PublishSubscribe;
using Deepline.Actors.Workers;

namespace Deepline.Node.Ui;

/// <summary>
/// Hands the cluster's cancel notices (the same topic the worker pools follow) to the dashboard feed, so a cancel made
/// on any node shows at once, before the run index has caught up with it. It only forwards: the feed does the rest
/// off the actor's thread.
/// </summary>
public sealed class UiCancelListener : ReceiveActor
{
    public UiCancelListener(Action<RunCancelledNotice> onNotice)
    {
        Receive<SubscribeAck>(_ => { });
        Receive<RunCancelledNotice>(onNotice);
    }

    public static Props Props(Action<RunCancelledNotice> onNotice) => Akka.Actor.Props.Create(() => new UiCancelListener(onNotice));

    protected override void PreStart() =>
        DistributedPubSub.Get(Context.System).Mediator.Tell(new Subscribe(Topics.Cancellations, Self));
}
