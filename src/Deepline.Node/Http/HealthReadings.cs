using Deepline.Actors.Hosting;
using LinqToDB;
using LinqToDB.Data;

namespace Deepline.Node.Http;

/// <summary>
/// An answer computed at most once a second for the whole node, shared by every caller in that second (and by every
/// caller while it is being computed). /health and the probes are open to anyone and not rate limited: one database
/// round trip per call (1,300 calls/s) slowed every other request from 2 ms to 0.8 s.
/// </summary>
public sealed class SharedAnswer<T>(Func<Task<T>> compute)
{
    private static readonly long FreshMs = 1_000;
    private readonly Lock _gate = new();
    private Task<T>? _current;
    private long _answeredAt;

    public Task<T> GetAsync(CancellationToken ct)
    {
        lock (_gate)
        {
            var current = _current;
            if (current is { IsCompleted: false }) return current.WaitAsync(ct);
            if (current is not null && Environment.TickCount64 - Volatile.Read(ref _answeredAt) < FreshMs) return current;
            // Not tied to one caller's token: others share it; the store's own timeouts bound it.
            _current = Run();
            return _current.WaitAsync(ct);
        }
    }

    private async Task<T> Run()
    {
        try
        {
            return await compute();
        }
        finally
        {
            Volatile.Write(ref _answeredAt, Environment.TickCount64);
        }
    }
}

/// <summary>Whether the store answers <c>SELECT 1</c>, asked at most once a second (<see cref="SharedAnswer{T}"/>).</summary>
public sealed class StoreProbe(PersistenceTarget target)
{
    private readonly SharedAnswer<(bool Reachable, string? Error)> _answer = new(() => ProbeAsync(target));

    public Task<(bool Reachable, string? Error)> CheckAsync(CancellationToken ct) => _answer.GetAsync(ct);

    private static async Task<(bool, string?)> ProbeAsync(PersistenceTarget target)
    {
        try
        {
            await using var db = new DataConnection(new DataOptions().UseConnectionString(target.ProviderName, target.ConnectionString));
            await db.ExecuteAsync("SELECT 1");
            return (true, null);
        }
        catch (Exception ex)
        {
            ConnectionLoss.Forget(ex);
            return (false, ex.GetType().Name + ": " + ex.Message);
        }
    }
}

/// <summary>The run index's offset, lag and quarantine count for /health, read at most once a second (three queries).</summary>
public sealed class RunIndexReadings(Deepline.Actors.Index.RunIndexStore index)
{
    private readonly SharedAnswer<(long Offset, long Lag, long Quarantined)> _answer = new(async () =>
    {
        var offset = await index.OffsetAsync(CancellationToken.None);
        var lag = await index.LagAsync(CancellationToken.None);
        var (quarantined, _) = await index.QuarantinedAsync(0, CancellationToken.None);
        return (offset, lag, quarantined);
    });

    public Task<(long Offset, long Lag, long Quarantined)> ReadAsync(CancellationToken ct) => _answer.GetAsync(ct);
}
