using Akka.Persistence;
using Akka.Persistence.Sql;
using Akka.Persistence.Sql.Config;
using Akka.Persistence.Sql.Snapshot;

namespace Deepline.Actors.Hosting;

/// <summary>
/// Akka.Persistence.Sql's snapshot store, except that an entity without any snapshot (every new run) is answered from
/// one prepared point read instead of the plugin's linq2db query; loads, saves and deletes of real snapshots are the
/// plugin's own.
/// </summary>
public sealed class RecoveringSnapshotStore : SqlSnapshotStore
{
    private readonly RecoveryReads _reads;
    private readonly PauseFence? _fence;

    public RecoveringSnapshotStore(Akka.Configuration.Config snapshotConfig) : base(snapshotConfig)
    {
        var config = new SnapshotConfig(snapshotConfig.WithFallback(SqlPersistence.DefaultSnapshotConfiguration));
        _reads = RecoveryReads.Snapshots(config.ProviderName, config.ConnectionString);
        if (config.ProviderName.StartsWith("PostgreSQL", StringComparison.OrdinalIgnoreCase)) _fence = PauseFences.For(Context.System);
    }

    /// <summary>
    /// A node that was paused saves no snapshot (see <see cref="PauseFence"/>): its state may hold events the fence kept
    /// out of the journal, and a snapshot ahead of the journal would bring them back on the next recovery.
    /// </summary>
    protected override Task SaveAsync(SnapshotMetadata metadata, object snapshot, CancellationToken cancellationToken = default) =>
        _fence?.Refusal(Environment.TickCount64) is { } fenced
            ? Task.FromException(new JournalFencedException(fenced))
            : base.SaveAsync(metadata, snapshot, cancellationToken);

    protected override async Task<SelectedSnapshot?> LoadAsync(string persistenceId, SnapshotSelectionCriteria criteria, CancellationToken cancellationToken = default)
    {
        if (!await _reads.HasSnapshotAsync(persistenceId, cancellationToken)) return null;
        try
        {
            return await base.LoadAsync(persistenceId, criteria, cancellationToken);
        }
        catch (Exception e)
        {
            ConnectionLoss.Forget(e);
            throw;
        }
    }

    protected override void PostStop()
    {
        _reads.Dispose();
        base.PostStop();
    }
}
