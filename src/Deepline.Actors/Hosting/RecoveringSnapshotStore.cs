using Akka.Persistence;
using Akka.Persistence.Sql;
using Akka.Persistence.Sql.Config;
using Akka.Persistence.Sql.Snapshot;

namespace Deepline.Actors.Hosting;

/// <summary>
/// Akka.Persistence.Sql's snapshot store, except that an entity without any snapshot (every new run) is answered from
/// one prepared point read instead of the plugin's linq2db query, and saves and deletes go into the journal writer's
/// next transaction (<see cref="StoreWriters"/>); loads of real snapshots are the plugin's own, from the same table
/// and the same serialization.
/// </summary>
public sealed class RecoveringSnapshotStore : SqlSnapshotStore
{
    private readonly RecoveryReads _reads;
    private readonly PauseFence? _fence;
    private readonly StoreWriters _writers;
    private readonly GroupCommitWriter _writer;
    private readonly ByteArrayLongSnapshotSerializer _serializer;

    public RecoveringSnapshotStore(Akka.Configuration.Config snapshotConfig) : base(snapshotConfig)
    {
        var config = new SnapshotConfig(snapshotConfig.WithFallback(SqlPersistence.DefaultSnapshotConfiguration));
        _reads = RecoveryReads.Snapshots(config.ProviderName, config.ConnectionString);
        if (config.ProviderName.StartsWith("PostgreSQL", StringComparison.OrdinalIgnoreCase)) _fence = PauseFences.For(Context.System);
        _serializer = new ByteArrayLongSnapshotSerializer(Context.System.Serialization, config);
        _writers = StoreWriters.For(Context.System);
        _writer = _writers.Acquire(config.ProviderName, config.ConnectionString);
    }

    /// <summary>
    /// A node that was paused saves no snapshot (see <see cref="PauseFence"/>): its state may hold events the fence kept
    /// out of the journal, and a snapshot ahead of the journal would bring them back on the next recovery.
    /// </summary>
    protected override Task SaveAsync(SnapshotMetadata metadata, object snapshot, CancellationToken cancellationToken = default) =>
        _fence?.Refusal(Environment.TickCount64) is { } fenced
            ? Task.FromException(new JournalFencedException(fenced))
            : _writer.EnqueueSnapshot(new SnapshotSave(_serializer.Serialize(metadata, snapshot).Get()));

    protected override Task DeleteAsync(SnapshotMetadata metadata, CancellationToken cancellationToken = default) =>
        _writer.EnqueueSnapshot(new SnapshotDelete(metadata.PersistenceId, metadata.SequenceNr, metadata.SequenceNr,
            metadata.Timestamp > DateTime.MinValue ? metadata.Timestamp.Ticks : long.MaxValue));

    /// <summary>As the plugin: the criteria's upper bounds (its minimum sequence number is not applied there either).</summary>
    protected override Task DeleteAsync(string persistenceId, SnapshotSelectionCriteria criteria, CancellationToken cancellationToken = default) =>
        _writer.EnqueueSnapshot(new SnapshotDelete(persistenceId, 0, criteria.MaxSequenceNr, criteria.MaxTimeStamp.Ticks));

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
        _writers.Release(_writer);
        base.PostStop();
    }
}
