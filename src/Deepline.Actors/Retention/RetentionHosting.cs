using Akka.Cluster.Hosting;
using Akka.Hosting;
using Deepline.Actors.Hosting;
using Deepline.Actors.Index;
using Deepline.Actors.Monitoring;
using Deepline.Domain;

namespace Deepline.Actors.Retention;

public static class RetentionHosting
{
    /// <summary>
    /// The retention sweeper, a cluster singleton on <paramref name="role"/> (the monitor's, so it runs beside the run
    /// index's projection, whose cached states it drops); nothing when every state is kept forever. With
    /// <paramref name="archiveDir"/>, removed runs are archived there first.
    /// </summary>
    public static AkkaConfigurationBuilder WithRetention(this AkkaConfigurationBuilder builder, RetentionPolicy policy, RunIndexStore index,
        string? role = null, string? archiveDir = null) =>
        policy.KeepsEverything
            ? builder
            : builder.WithSingleton<RetentionSweeper>("retention",
                (system, registry, resolver) => RetentionSweeper.Props(policy, registry.Get<WorkflowRegion>(), index,
                    string.IsNullOrEmpty(archiveDir) ? null : new RunArchive(archiveDir, index, system.Serialization),
                    resolver.GetService<Cancellation.RedisCancelStore>()),
                DeadlockMonitorHosting.SingletonOn(role), createProxyToo: false);
}
