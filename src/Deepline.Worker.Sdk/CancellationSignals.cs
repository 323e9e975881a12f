using System.Collections.Concurrent;
using StackExchange.Redis;

namespace Deepline.Worker.Sdk;

/// <summary>
/// Cancellation signals for a worker outside the cluster. Keeps a local copy of <c>cancelled_runs</c>, loaded on
/// start and again on every reconnect (a cancel published while this worker was disconnected is in the set, not in
/// the channel), and follows the channel for cancels as they happen.
/// </summary>
/// <remarks>
/// Start it once per process with <see cref="ConnectAsync(string, CancellationToken)"/>; Redis may be down at
/// start: the set is loaded as soon as the connection comes. Thread-safe.
/// </remarks>
public sealed class CancellationSignals : IAsyncDisposable
{
    private readonly IConnectionMultiplexer _redis;
    private readonly bool _ownsConnection;
    private readonly ConcurrentDictionary<string, bool> _cancelled = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, CancellationTokenSource> _tokens = new(StringComparer.Ordinal);
    private readonly RedisChannel _channel = RedisChannel.Literal(RedisContract.Channel);
    private int _loads;
    private int _subscribed;
    private int _disposed;

    private CancellationSignals(IConnectionMultiplexer redis, bool ownsConnection)
    {
        _redis = redis;
        _ownsConnection = ownsConnection;
    }

    /// <summary>How many times the set has been loaded in full (start, then once per restored connection).</summary>
    public int Loads => Volatile.Read(ref _loads);

    /// <summary>Whether Redis is reachable right now. While it is not, answers come from the local copy.</summary>
    public bool IsConnected => _redis.IsConnected;

    /// <summary>Connects to Redis (StackExchange.Redis configuration string, e.g. <c>localhost:6379</c>).</summary>
    public static async Task<CancellationSignals> ConnectAsync(string configuration, CancellationToken ct = default)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(configuration);
        var options = ConfigurationOptions.Parse(configuration);
        // Start even while Redis is down, and keep reconnecting: the set is loaded when the connection comes.
        options.AbortOnConnectFail = false;
        var redis = await ConnectionMultiplexer.ConnectAsync(options);
        return await StartAsync(redis, ownsConnection: true, ct);
    }

    /// <summary>Uses a connection the application already has (not disposed with this object).</summary>
    public static Task<CancellationSignals> ConnectAsync(IConnectionMultiplexer redis, CancellationToken ct = default) =>
        StartAsync(redis, ownsConnection: false, ct);

    private static async Task<CancellationSignals> StartAsync(IConnectionMultiplexer redis, bool ownsConnection, CancellationToken ct)
    {
        var signals = new CancellationSignals(redis, ownsConnection);
        // Registered before the first load, so a reconnect during start-up still triggers a load.
        redis.ConnectionRestored += signals.OnConnectionRestored;
        await signals.SubscribeAsync();
        await signals.TryLoadAsync(ct);
        return signals;
    }

    /// <summary>
    /// True when the run is cancelled: from the local copy, else from Redis (<c>SISMEMBER</c>). While Redis is
    /// unreachable, the local copy answers (false for a run it has not heard of).
    /// </summary>
    public async Task<bool> IsCancelledAsync(string runId)
    {
        ArgumentException.ThrowIfNullOrEmpty(runId);
        if (_cancelled.ContainsKey(runId)) return true;
        // Disconnected: answer from the local copy now rather than wait for the command backlog to time out.
        if (!_redis.IsConnected) return false;
        try
        {
            if (!await _redis.GetDatabase().SetContainsAsync(RedisContract.CancelledRuns, runId)) return false;
        }
        catch (Exception e) when (e is RedisException or TimeoutException)
        {
            return false;
        }
        MarkCancelled(runId);
        return true;
    }

    /// <summary>
    /// A token that fires when the run's cancel arrives, or an already-cancelled token when it is known cancelled.
    /// The same token is returned for every call with the same run until <see cref="Forget"/>.
    /// </summary>
    public CancellationToken TokenFor(string runId)
    {
        ArgumentException.ThrowIfNullOrEmpty(runId);
        if (_cancelled.ContainsKey(runId)) return new CancellationToken(canceled: true);
        var cts = _tokens.GetOrAdd(runId, _ => new CancellationTokenSource());
        // MarkCancelled adds to the set before it looks for tokens; looking again here closes the race.
        if (_cancelled.ContainsKey(runId)) _ = cts.CancelAsync();
        return cts.Token;
    }

    /// <summary>Drops the token of a run this worker is done with (its tasks finished).</summary>
    public void Forget(string runId)
    {
        if (_tokens.TryRemove(runId, out var cts)) cts.Dispose();
    }

    /// <summary>Loads the whole set again; called on start and on every restored connection, callable at will.</summary>
    public async Task LoadAsync(CancellationToken ct = default)
    {
        var members = await _redis.GetDatabase().SetMembersAsync(RedisContract.CancelledRuns).WaitAsync(ct);
        foreach (var m in members)
        {
            if (m.HasValue) MarkCancelled(m.ToString());
        }
        Interlocked.Increment(ref _loads);
    }

    private async Task TryLoadAsync(CancellationToken ct = default)
    {
        try
        {
            await LoadAsync(ct);
        }
        catch (Exception e) when (e is RedisException or TimeoutException)
        {
            // Not reachable yet: ConnectionRestored loads it when it is.
        }
    }

    private async Task SubscribeAsync()
    {
        try
        {
            // StackExchange.Redis remembers the subscription and renews it on every reconnect.
            await _redis.GetSubscriber().SubscribeAsync(_channel, (_, value) =>
            {
                if (CancelMessage.TryParse(value) is { } message) MarkCancelled(message.RunId);
            });
            Volatile.Write(ref _subscribed, 1);
        }
        catch (Exception e) when (e is RedisException or TimeoutException)
        {
            // Renewed when the connection is restored.
        }
    }

    private void OnConnectionRestored(object? sender, ConnectionFailedEventArgs e)
    {
        if (Volatile.Read(ref _disposed) != 0) return;
        // A cancel published while the connection was down is in the set but will never come down the channel again.
        _ = Task.Run(async () =>
        {
            if (Volatile.Read(ref _subscribed) == 0) await SubscribeAsync();
            await TryLoadAsync();
        });
    }

    private void MarkCancelled(string runId)
    {
        _cancelled.TryAdd(runId, true);
        // CancelAsync: token callbacks run on the thread pool, not on the Redis reader.
        if (_tokens.TryGetValue(runId, out var cts)) _ = cts.CancelAsync();
    }

    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0) return;
        _redis.ConnectionRestored -= OnConnectionRestored;
        try
        {
            await _redis.GetSubscriber().UnsubscribeAsync(_channel);
        }
        catch (RedisException)
        {
        }
        if (_ownsConnection) await _redis.DisposeAsync();
        foreach (var cts in _tokens.Values) cts.Dispose();
        _tokens.Clear();
    }
}
