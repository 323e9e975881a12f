using Akka.Cluster.Hosting;
using Akka.Hosting;
using Deepline.Actors.Hosting;
using Deepline.Actors.Index;
using Deepline.Actors.Monitoring;

namespace Deepline.Actors.Operations;

public static class BulkCancelsHosting
{
    /// <summary>Bulk cancels, a cluster singleton on <paramref name="role"/> (the monitor's): it reads the run index as the monitor does.</summary>
    public static AkkaConfigurationBuilder WithBulkCancels(this AkkaConfigurationBuilder builder, RunIndexStore index, int runsPerSecond, string? role = null) =>
        builder.WithSingleton<BulkCancels>("bulk-operations",
            (_, registry, _) => BackOnItsOwn.Props(BulkCancels.Props(registry.Get<WorkflowRegion>(), index, runsPerSecond), "bulk-operations"),
            DeadlockMonitorHosting.SingletonOn(role));
}
