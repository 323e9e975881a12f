using Akka.Cluster.Hosting;
using Akka.Hosting;
using Deepline.Actors.Alerting;
using Deepline.Actors.Hosting;
using Deepline.Actors.Index;

namespace Deepline.Actors.Monitoring;

public static class DeadlockMonitorHosting
{
    /// <summary>Singletons of the monitor (and the resource coordinator) run on nodes with this role; null or empty: any node.</summary>
    public static ClusterSingletonOptions SingletonOn(string? role) => new() { Role = string.IsNullOrEmpty(role) ? null : role };

    /// <summary>
    /// The run index projection and the deadlock supervisor, each a cluster singleton on <paramref name="role"/>. Alerts go
    /// through the <see cref="WebhookSender"/> in DI (<see cref="AlertingServices.AddWebhookAlerting"/>), when there is one.
    /// </summary>
    public static AkkaConfigurationBuilder WithDeadlockMonitor(this AkkaConfigurationBuilder builder, MonitorSettings settings, RunIndexStore index,
        string? role = null) =>
        builder
            .WithSingleton<RunIndexProjection>("run-index", RunIndexProjection.Props(index), SingletonOn(role), createProxyToo: false)
            .WithSingleton<DeadlockSupervisor>("deadlock-supervisor",
                (_, registry, resolver) => BackOnItsOwn.Props(
                    DeadlockSupervisor.Props(settings, registry.Get<WorkflowRegion>(), index, resolver.GetService<WebhookSender>()), "deadlock-supervisor"),
                SingletonOn(role));
}
