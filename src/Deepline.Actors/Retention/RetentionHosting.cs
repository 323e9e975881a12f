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
    /// index's projection, whose cached states it drops); nothing when every state is kept forever.
    /// </summary>
    public static AkkaConfigurationBuilder WithRetention(this AkkaConfigurationBuilder builder, RetentionPolicy policy, RunIndexStore index, string? role = null) =>
        policy.KeepsEverything
            ? builder
            : builder.WithSingleton<RetentionSweeper>("retention",
                (_, registry, _) => RetentionSweeper.Props(policy, registry.Get<WorkflowRegion>(), index),
                DeadlockMonitorHosting.SingletonOn(role), createProxyToo: false);
}
