using Akka.Cluster.Hosting;
using Akka.Hosting;
using Akka.Persistence.Sql.Hosting;
using Deepline.Actors.Workflows;
using Deepline.Domain;

namespace Deepline.Actors.Hosting;

public static class StoreHosting
{
    /// <summary>
    /// Journal and snapshots in the SQL store (SQLite or PostgreSQL), no tags (the run index and the cancellation mirror
    /// read the journal table itself, see <see cref="Index.JournalTail"/>); writes through
    /// one group-committing writer per node (<see cref="GroupCommitJournal"/>), recovery's point reads through prepared
    /// statements (<see cref="RecoveringSnapshotStore"/>).
    /// </summary>
    public static AkkaConfigurationBuilder WithDeeplinePersistence(this AkkaConfigurationBuilder builder, string connectionString, string providerName) =>
        builder
            .WithSqlPersistence(connectionString, providerName)
            .AddSetup(SqliteStore.DataOptionsSetup(providerName, connectionString))
            .AddHocon($"akka.persistence.journal.sql.class = \"{typeof(GroupCommitJournal).AssemblyQualifiedName}\"\n" +
                      $"akka.persistence.snapshot-store.sql.class = \"{typeof(RecoveringSnapshotStore).AssemblyQualifiedName}\"\n" +
                      NoReplayFilter +
                      (providerName.StartsWith("PostgreSQL", StringComparison.OrdinalIgnoreCase) ? "\n" + PostgresShardTimeout : ""), HoconAddMode.Prepend);

    /// <summary>
    /// Akka's replay filter (repair-by-discard-old) drops every event of a writer it has seen before once another
    /// writer's event came between, whatever the sequence numbers: a run whose shard moved from node A to B and back to
    /// A (a rebalance, then B leaving) would lose A's later events at its next recovery. Our writer ids are per journal,
    /// i.e. per node process, so that case is ordinary; one writer per run at a time is what sharding and the
    /// split-brain resolver guarantee, and the journal's primary key refuses a second event at a sequence number.
    /// The filter can only drop real events here, so it is off (ReplayFilterTests).
    /// </summary>
    public const string NoReplayFilter = "akka.persistence.journal.sql.replay-filter.mode = off";

    /// <summary>
    /// A shard whose remember-entities write failed in a database restart waits this long before it restarts, and holds
    /// every message for its runs meanwhile (1 % of all runs, 30 s, after PostgreSQL was back). The 30 s of
    /// deepline.hocon are for SQLite, whose single writer can queue a write that long under load. On PostgreSQL the same
    /// timeout also bounds a shard's load of its remembered entity ids when it moves after a failover: at Akka's 5 s that
    /// load gave up under load (64 clients on 2 cores) and every message of the shard waited out its 10 s ask (~60
    /// failed submissions in the 20 s after a frozen node's removal); at 8 s none failed, and a database restart still
    /// serves writes 3-4 s after PostgreSQL is back (DatabaseRestartTests; at 15 s a write failed 11 s after it).
    /// </summary>
    private const string PostgresShardTimeout = "akka.cluster.sharding.updating-state-timeout = 8s";

    /// <summary>
    /// The store guard (the node leaves a cluster whose store is not its own, then calls <paramref name="onForeignStore"/>)
    /// and the integrity watch /health asks about the store.
    /// </summary>
    public static AkkaConfigurationBuilder WithStoreGuard(this AkkaConfigurationBuilder builder, string storeRole, string description, Action? onForeignStore) =>
        builder.WithActors((system, registry) =>
        {
            system.ActorOf(StoreGuard.Props(storeRole, description, onForeignStore), "store-guard");
            registry.Register<IntegrityWatch>(system.ActorOf(IntegrityWatch.Props(), "integrity-watch"));
        });

    /// <summary>
    /// The store's cluster lease (<see cref="StoreLeaseKeeper"/>, a singleton on any node) and, on every node, the record of
    /// the members it has seen. PostgreSQL only: SQLite is one node's store.
    /// </summary>
    public static AkkaConfigurationBuilder WithStoreLease(this AkkaConfigurationBuilder builder, PersistenceTarget store, Action? onConflict)
    {
        if (!store.IsPostgreSql) return builder;
        var seen = new System.Collections.Concurrent.ConcurrentDictionary<string, byte>(StringComparer.Ordinal);
        return builder
            .WithActors((system, _) => system.ActorOf(MembersSeen.Props(seen), "members-seen"))
            .WithSingleton<StoreLeaseKeeper>("store-lease", StoreLeaseKeeper.Props(store.CreateConnection, seen.ContainsKey, onConflict),
                new Akka.Cluster.Hosting.ClusterSingletonOptions(), createProxyToo: false);
    }

    /// <summary>The integrity watch alone, for a node composed without a store guard (tests of actors).</summary>
    public static AkkaConfigurationBuilder WithIntegrityWatch(this AkkaConfigurationBuilder builder) =>
        builder.WithActors((system, registry) => registry.Register<IntegrityWatch>(system.ActorOf(IntegrityWatch.Props(), "integrity-watch")));
}
