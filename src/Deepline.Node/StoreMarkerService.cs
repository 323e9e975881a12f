using Deepline.Actors.Hosting;
using Microsoft.Data.Sqlite;

namespace Deepline.Node;

/// <summary>
/// Keeps the journal's high-water mark beside the SQLite file (see <see cref="SqliteStore.MarkerPath"/>), so the next
/// start can tell a journal that went backwards. Only committed orderings are recorded, so after a crash the marker is
/// never ahead of what SQLite recovers from its file and WAL; it lags by at most one interval, so a loss smaller than
/// that interval's writes can go unnoticed.
/// </summary>
public sealed class StoreMarkerService(PersistenceTarget store, ILogger<StoreMarkerService> log) : BackgroundService
{
    public static readonly TimeSpan Interval = TimeSpan.FromSeconds(1);

    private long _written = -1;

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        if (store.File is null) return;
        using var timer = new PeriodicTimer(Interval);
        try
        {
            do Record();
            while (await timer.WaitForNextTickAsync(stoppingToken));
        }
        catch (OperationCanceledException)
        {
            // Stopping: StopAsync records the final mark.
        }
    }

    public override async Task StopAsync(CancellationToken cancellationToken)
    {
        await base.StopAsync(cancellationToken);
        if (store.File is not null) Record();
    }

    private void Record()
    {
        try
        {
            using var connection = new SqliteConnection(store.ConnectionString);
            connection.Open();
            SqliteStore.OnOpened(connection);
            var ordering = SqliteStore.MaxOrdering(connection);
            if (ordering <= _written) return;
            SqliteStore.WriteMarker(store.File!, ordering);
            _written = ordering;
        }
        catch (Exception ex) when (ex is SqliteException or IOException or UnauthorizedAccessException)
        {
            log.LogWarning("Could not record the journal high-water mark for {File}: {Error}", store.File, ex.Message);
        }
    }
}
