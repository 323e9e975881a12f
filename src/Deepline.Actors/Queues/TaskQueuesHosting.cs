using Akka.Hosting;

namespace Deepline.Actors.Queues;

public static class TaskQueuesHosting
{
    /// <summary>This node's <see cref="TaskQueues"/> for external pools, registered for the runs it hosts and its HTTP polls.</summary>
    public static AkkaConfigurationBuilder WithTaskQueues(this AkkaConfigurationBuilder builder) =>
        builder.WithActors((system, registry) => registry.Register<TaskQueues>(system.ActorOf(Akka.Actor.Props.Create<TaskQueues>(), "task-queues")));
}
