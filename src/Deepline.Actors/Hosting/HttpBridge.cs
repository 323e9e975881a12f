using Akka.Actor;
using Deepline.Domain;

namespace Deepline.Actors.Hosting;

/// <summary>
/// The HTTP layer's one door into the cluster: endpoints Ask this actor, which forwards each command to the
/// run's entity (the reply goes straight back to the asker). Keeping it an actor leaves one place to route
/// queries that are not about a single run once the run index exists.
/// </summary>
public sealed class HttpBridge : ReceiveActor
{
    public HttpBridge(IActorRef runs)
    {
        Receive<IRunCommand>(command => runs.Forward(command));
    }

    public static Props Props(IActorRef runs) => Akka.Actor.Props.Create(() => new HttpBridge(runs));
}

/// <summary>Registry key of the workflow shard region.</summary>
public sealed class WorkflowRegion;
