using Akka.Cluster;
using Akka.Hosting;
using Deepline.Actors.Cancellation;
using Deepline.Actors.Hosting;

namespace Deepline.Actors.Workers;

public static class WorkerPoolsHosting
{
    /// <summary>
    /// This node's in-cluster worker pools (none: the node serves no pool). Each pool checks Redis before starting a task
    /// when the node has a cancellation mirror (<see cref="CancellationMirrorHosting.AddCancellationMirror"/>).
    /// </summary>
    public static AkkaConfigurationBuilder WithWorkerPools(this AkkaConfigurationBuilder builder, IReadOnlyList<WorkerPoolSettings> pools,
        TaskHandlerRegistry handlers)
    {
        if (pools.Count == 0) return builder;
        return builder.WithActors((system, registry, resolver) =>
        {
            var region = registry.Get<WorkflowRegion>();
            var redis = resolver.GetService<RedisCancelStore>();
            var cluster = Cluster.Get(system);
            var self = cluster.SelfAddress;
            foreach (var pool in pools)
            {
                var workerId = $"{pool.Name}@{self.Host}:{self.Port}";
                system.ActorOf(WorkerPool.Props(pool with { Incarnation = Incarnation.Of(cluster.SelfUniqueAddress) }, region, handlers, workerId, redis),
                    Topics.PoolActorName(pool.Name));
            }
        });
    }
}
