using Akka.Cluster.Hosting;
using Akka.Hosting;
using Deepline.Actors.Hosting;
using Deepline.Actors.Monitoring;

namespace Deepline.Actors.Resources;

public static class ResourceCoordinatorHosting
{
    /// <summary>
    /// The resource coordinator, a cluster singleton on <paramref name="role"/> (the monitor's), hosted whether or not the
    /// node runs a monitor: a run whose tasks need resources cannot start without it.
    /// </summary>
    public static AkkaConfigurationBuilder WithResourceCoordinator(this AkkaConfigurationBuilder builder, ResourceSettings settings, string? role = null) =>
        builder.WithSingleton<ResourceCoordinator>("resource-coordinator",
            (_, registry, _) => BackOnItsOwn.Props(ResourceCoordinator.Props(settings, registry.Get<WorkflowRegion>()), "resource-coordinator"),
            DeadlockMonitorHosting.SingletonOn(role));
}
