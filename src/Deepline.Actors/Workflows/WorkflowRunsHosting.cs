using Akka.Cluster.Hosting;
using Akka.Cluster.Sharding;
using Akka.Hosting;
using Deepline.Actors.Hosting;

namespace Deepline.Actors.Workflows;

public static class WorkflowRunsHosting
{
    public const string TypeName = "workflow";

    /// <summary>Shards runs are spread over unless the node says otherwise.</summary>
    public const int DefaultNumberOfShards = 100;

    /// <summary>
    /// The workflow shard region where this node hosts runs (every node, or those with <paramref name="workflowRole"/>);
    /// elsewhere a proxy with the same extractor, so the HTTP API, pools and monitor on any node reach every run the same
    /// way. Registered as <see cref="WorkflowRegion"/>.
    /// </summary>
    public static AkkaConfigurationBuilder WithWorkflowRuns(this AkkaConfigurationBuilder builder, WorkflowSettings settings,
        IReadOnlyCollection<string> nodeRoles, string? workflowRole = null, int numberOfShards = DefaultNumberOfShards)
    {
        var role = string.IsNullOrEmpty(workflowRole) ? null : workflowRole;
        if (role is not null && !nodeRoles.Contains(role, StringComparer.Ordinal))
            return builder.WithShardRegionProxy<WorkflowRegion>(TypeName, role, new RunMessageExtractor(numberOfShards));
        builder = builder.AddHocon(LeanDequeMailbox.Hocon, HoconAddMode.Prepend).WithShardRegion<WorkflowRegion>(
            TypeName,
            runId => WorkflowActor.Props(runId, settings).WithMailbox(LeanDequeMailbox.ConfigPath),
            new RunMessageExtractor(numberOfShards),
            new ShardOptions
            {
                Role = role,
                // Open runs come back after a restart on their own: their timers are deadlines.
                RememberEntities = true,
                RememberEntitiesStore = RememberEntitiesStore.Eventsourced,
                StateStoreMode = StateStoreMode.Persistence,
            });
        // On a store one node only may use, no other member can ever be removed: nothing to watch.
        return settings.SingleNodeStore
            ? builder
            : builder.WithActors((system, registry) =>
                system.ActorOf(InterruptionWatch.Props(registry.Get<WorkflowRegion>()), "interruption-watch"));
    }
}
