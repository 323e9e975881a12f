using Akka.Actor;
using Akka.Cluster;
using Akka.Cluster.Hosting;
using Akka.Cluster.Sharding;
using Akka.Hosting;
using Akka.Persistence.Sql.Hosting;
using Akka.Remote.Hosting;
using Deepline.Actors.Alerting;
using Deepline.Actors.Index;
using Deepline.Actors.Monitoring;
using Deepline.Actors.Cancellation;
using Deepline.Actors.Resources;
using Deepline.Actors.Serialization;
using Deepline.Actors.Workers;
using Deepline.Actors.Workflows;
using Deepline.Domain;

namespace Deepline.Actors.Hosting;

public static class DeeplineHostingExtensions
{
    public const string WorkerRole = "worker";
    public const string WorkflowTypeName = "workflow";

    /// <summary>
    /// Remoting, cluster, persistence, the workflow shard region, the HTTP bridge and (on worker nodes) the
    /// in-cluster worker pools. A node with no seed nodes joins itself: a single-node cluster.
    /// </summary>
    public static AkkaConfigurationBuilder WithDeepline(this AkkaConfigurationBuilder builder, DeeplineAkkaOptions o, TaskHandlerRegistry handlers)
    {
        var roles = (o.Pools.Count > 0 ? [WorkerRole] : Array.Empty<string>()).Concat(o.Roles)
            .Concat(o.Store is { } store ? [store.Role] : []).Distinct(StringComparer.Ordinal).ToArray();
        builder
            // Keep-majority, stated rather than left to the library default: a side without the majority downs itself,
            // so a partitioned node never keeps serving runs whose shards moved to the majority.
            .AddHocon($$"""
                akka.cluster.downing-provider-class = "Akka.Cluster.SBR.SplitBrainResolverProvider, Akka.Cluster"
                akka.cluster.split-brain-resolver {
                  active-strategy = keep-majority
                  stable-after = {{(int)o.DownUnreachableAfter.TotalMilliseconds}}ms
                  down-all-when-unstable = on
                }
                """, HoconAddMode.Prepend)
            .WithCustomSerializer("deepline", [typeof(IDeeplineMessage)], system => new DeeplineSerializer(system))
            .WithRemoting(o.Host, o.Port)
            .WithClustering(new ClusterOptions { Roles = roles, SeedNodes = [.. o.SeedNodes] })
            .WithDistributedPubSub(role: null!)
            .WithSqlPersistence(o.ConnectionString, o.ProviderName,
                journalBuilder: j => j.AddWriteEventAdapter<RunEventTagger>("run-tagger", [typeof(IRunEvent)]))
            .AddSetup(SqliteStore.DataOptionsSetup(o.ProviderName, o.ConnectionString))
            .WithGroupCommitJournal()
            .WithWorkflowRuns(o, roles)
            .WithMonitor(o)
            .WithResourceCoordinator(o)
            .WithActors((system, registry) =>
            {
                var region = registry.Get<WorkflowRegion>();
                registry.Register<HttpBridge>(system.ActorOf(HttpBridge.Props(region), "http-bridge"));
                if (o.Store is { } guarded)
                    system.ActorOf(StoreGuard.Props(guarded.Role, guarded.Description, o.OnForeignStore), "store-guard");
                registry.Register<IntegrityWatch>(system.ActorOf(IntegrityWatch.Props(), "integrity-watch"));
                var self = Cluster.Get(system).SelfAddress;
                var redis = o.Redis is null ? null : RedisFor(system, o.Redis);
                if (o.Dependencies is { } dependencies) dependencies.Redis = redis;
                if (redis is not null)
                    registry.Register<CancellationBroadcaster>(system.ActorOf(CancellationBroadcaster.Props(redis), "cancellation-broadcaster"));
                foreach (var pool in o.Pools)
                {
                    var workerId = $"{pool.Name}@{self.Host}:{self.Port}";
                    system.ActorOf(WorkerPool.Props(pool, region, handlers, workerId, redis), Topics.PoolActorName(pool.Name));
                }
            });

        if (o.ClusterCertificate is { } certificate)
        {
            // Mutual TLS pinned to the cluster's own certificate: a peer must present it (and prove its private key)
            // both when it connects and when it is connected to, so only holders of the certificate can join.
            builder.AddHocon("akka.remote.dot-netty.tcp.enable-ssl = true", HoconAddMode.Prepend);
            builder.AddSetup(new Akka.Remote.Transport.DotNetty.DotNettySslSetup(certificate, suppressValidation: false,
                requireMutualAuthentication: true, validateCertificateHostname: false,
                Akka.Remote.Transport.DotNetty.CertificateValidation.PinnedCertificate([certificate.Thumbprint])));
        }

        if (o.SeedNodes.Count == 0)
            builder.AddStartup((system, _) => Cluster.Get(system).Join(Cluster.Get(system).SelfAddress));
        return builder;
    }

    /// <summary>
    /// The workflow shard region where this node hosts runs (every node, or those with the workflow role); elsewhere a
    /// proxy with the same extractor, so the HTTP API, pools and monitor on any node reach every run the same way.
    /// </summary>
    private static AkkaConfigurationBuilder WithWorkflowRuns(this AkkaConfigurationBuilder builder, DeeplineAkkaOptions o, string[] roles)
    {
        var role = string.IsNullOrEmpty(o.WorkflowRole) ? null : o.WorkflowRole;
        if (role is not null && !roles.Contains(role, StringComparer.Ordinal))
            return builder.WithShardRegionProxy<WorkflowRegion>(WorkflowTypeName, role, new RunMessageExtractor(o.NumberOfShards));
        return builder.AddHocon(LeanDequeMailbox.Hocon, HoconAddMode.Prepend).WithShardRegion<WorkflowRegion>(
            WorkflowTypeName,
            runId => WorkflowActor.Props(runId, o.Workflow).WithMailbox(LeanDequeMailbox.ConfigPath),
            new RunMessageExtractor(o.NumberOfShards),
            new ShardOptions
            {
                Role = role,
                // Open runs come back after a restart on their own: their timers are deadlines.
                RememberEntities = true,
                RememberEntitiesStore = RememberEntitiesStore.Eventsourced,
                StateStoreMode = StateStoreMode.Persistence,
            });
    }

    /// <summary>The journal's writes go through one group-committing writer per node (see <see cref="GroupCommitJournal"/>); recovery's point reads through prepared statements (<see cref="RecoveringSnapshotStore"/>).</summary>
    private static AkkaConfigurationBuilder WithGroupCommitJournal(this AkkaConfigurationBuilder builder) =>
        builder.AddHocon($"akka.persistence.journal.sql.class = \"{typeof(GroupCommitJournal).AssemblyQualifiedName}\"\n" +
                         $"akka.persistence.snapshot-store.sql.class = \"{typeof(RecoveringSnapshotStore).AssemblyQualifiedName}\"", HoconAddMode.Prepend);

    private static ClusterSingletonOptions Singleton(DeeplineAkkaOptions o) =>
        new() { Role = string.IsNullOrEmpty(o.MonitorRole) ? null : o.MonitorRole };

    /// <summary>The run index projection and the deadlock supervisor, each a cluster singleton (on role monitor_role).</summary>
    private static AkkaConfigurationBuilder WithMonitor(this AkkaConfigurationBuilder builder, DeeplineAkkaOptions o)
    {
        if (o.Monitor is not { } monitor || o.Index is not { } index) return builder;
        var webhook = o.Webhook is { } w ? new WebhookSender(w, new HttpClient()) : null;
        return builder
            .WithSingleton<RunIndexProjection>("run-index", RunIndexProjection.Props(index), Singleton(o), createProxyToo: false)
            .WithSingleton<DeadlockSupervisor>("deadlock-supervisor",
                (_, registry, _) => DeadlockSupervisor.Props(monitor, registry.Get<WorkflowRegion>(), index, webhook),
                Singleton(o));
    }

    /// <summary>
    /// The resource coordinator, a cluster singleton beside the monitor's, hosted whether or not the node runs a monitor:
    /// a run whose tasks need resources cannot start without it.
    /// </summary>
    private static AkkaConfigurationBuilder WithResourceCoordinator(this AkkaConfigurationBuilder builder, DeeplineAkkaOptions o) =>
        builder.WithSingleton<ResourceCoordinator>("resource-coordinator",
            (_, registry, _) => ResourceCoordinator.Props(o.Resources, registry.Get<WorkflowRegion>()), Singleton(o));

    /// <summary>One Redis connection per node, shared by the broadcaster and the pools' pre-start checks.</summary>
    private static RedisCancelStore RedisFor(ActorSystem system, RedisMirrorSettings settings)
    {
        var store = new RedisCancelStore(settings);
        system.RegisterOnTermination(() => store.DisposeAsync().AsTask().Wait(TimeSpan.FromSeconds(5)));
        return store;
    }
}
