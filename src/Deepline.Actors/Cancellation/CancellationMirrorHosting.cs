using Akka.Hosting;
using Deepline.Actors.Hosting;
using Microsoft.Extensions.DependencyInjection;

namespace Deepline.Actors.Cancellation;

public static class CancellationMirrorHosting
{
    /// <summary>One Redis connection per node (null settings: no Redis), shared by the broadcaster and the pools' pre-start checks.</summary>
    public static IServiceCollection AddCancellationMirror(this IServiceCollection services, RedisMirrorSettings? settings)
    {
        if (settings is not null)
            services.AddSingleton(_ => new RedisCancelStore(settings));
        return services;
    }

    /// <summary>
    /// The broadcaster mirroring cancels to Redis for workers outside the cluster, when the node has a Redis connection;
    /// the connection is published in <paramref name="dependencies"/> for /health. <paramref name="journal"/> opens a
    /// connection to the journal's database, which the mirror follows.
    /// </summary>
    public static AkkaConfigurationBuilder WithCancellationMirror(this AkkaConfigurationBuilder builder, Func<System.Data.Common.DbConnection> journal,
        NodeDependencies? dependencies = null) =>
        builder.WithActors((system, registry, resolver) =>
        {
            var redis = resolver.GetService<RedisCancelStore>();
            if (dependencies is not null) dependencies.Redis = redis;
            if (redis is not null)
                registry.Register<CancellationBroadcaster>(system.ActorOf(CancellationBroadcaster.Props(redis, journal), "cancellation-broadcaster"));
        });
}
