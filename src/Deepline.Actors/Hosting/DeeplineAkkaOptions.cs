using Deepline.Actors.Index;
using Deepline.Actors.Alerting;
using Deepline.Actors.Monitoring;
using Deepline.Actors.Resources;
using Deepline.Actors.Cancellation;
using Deepline.Actors.Workers;
using Deepline.Actors.Workflows;

namespace Deepline.Actors.Hosting;

/// <summary>Everything <see cref="DeeplineHostingExtensions.WithDeepline"/> needs to start a node's actors.</summary>
public sealed record DeeplineAkkaOptions(
    string SystemName,
    string Host,
    int Port,
    IReadOnlyList<string> SeedNodes,
    string ConnectionString,
    string ProviderName,
    WorkflowSettings Workflow,
    IReadOnlyList<WorkerPoolSettings> Pools,
    int NumberOfShards = 100,
    RedisMirrorSettings? Redis = null)
{
    /// <summary>The run index, in the journal's database.</summary>
    public RunIndexStore? Index { get; init; }

    /// <summary>The deadlock monitor; null runs the node without one.</summary>
    public MonitorSettings? Monitor { get; init; }

    public WebhookSettings? Webhook { get; init; }

    /// <summary>The resource coordinator's default capacity and victim policy.</summary>
    public ResourceSettings Resources { get; init; } = ResourceSettings.Default;

    /// <summary>Where the node's Redis connection is published for /health.</summary>
    public NodeDependencies? Dependencies { get; init; }

    /// <summary>Extra cluster roles of this node (the worker role is added when it serves pools).</summary>
    public IReadOnlyList<string> Roles { get; init; } = [];

    /// <summary>Only nodes with this role host runs (workflow shards); the others reach them through a shard region proxy. Null or empty: every node.</summary>
    public string? WorkflowRole { get; init; }

    /// <summary>Only nodes with this role host the monitor's singletons; null or empty: any node.</summary>
    public string? MonitorRole { get; init; }

    /// <summary>The store's role (<see cref="StoreIdentity.RoleOf"/>) and description; null: no store guard (tests of actors alone).</summary>
    public (string Role, string Description)? Store { get; init; }

    /// <summary>Split-brain resolver (keep-majority) stable-after: how long membership must be stable before the minority is downed.</summary>
    public TimeSpan DownUnreachableAfter { get; init; } = TimeSpan.FromSeconds(20);

    /// <summary>The cluster certificate: with it Akka.Remote speaks mutual TLS and admits only peers presenting this very certificate.</summary>
    public System.Security.Cryptography.X509Certificates.X509Certificate2? ClusterCertificate { get; init; }

    /// <summary>Called when this node leaves because its store is not the cluster's (the node process sets its exit code).</summary>
    public Action? OnForeignStore { get; init; }
}
