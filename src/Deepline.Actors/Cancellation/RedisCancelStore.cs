using System.Globalization;
using Deepline.Actors.Workers;
using Deepline.Worker.Sdk;
using StackExchange.Redis;

namespace Deepline.Actors.Cancellation;

/// <summary>Redis mirroring of cancels; null in <see cref="CancellationMirrorHosting.AddCancellationMirror"/> = no Redis (the embedded default).</summary>
/// <param name="Connection">StackExchange.Redis configuration string (may carry a password: never logged).</param>
/// <param name="Retention">Entries older than this are pruned, and skipped when the set is rebuilt.</param>
/// <param name="CheckInterval">How often an idle mirror checks that Redis still holds its data (a flush, a restart empty).</param>
/// <param name="PruneInterval">How often entries past <paramref name="Retention"/> are pruned.</param>
/// <param name="MaxBatch">Most cancels written in one script call when Redis falls behind.</param>
public sealed record RedisMirrorSettings(
    string Connection,
    TimeSpan Retention,
    TimeSpan CheckInterval,
    TimeSpan PruneInterval,
    int MaxBatch = 256)
{
    public static RedisMirrorSettings For(string connection, TimeSpan retention) =>
        new(connection, retention, TimeSpan.FromSeconds(1),
            TimeSpan.FromTicks(Math.Clamp(retention.Ticks / 10, TimeSpan.TicksPerSecond, 10 * TimeSpan.TicksPerSecond)));
}

/// <summary>One cancel as mirrored: where it sits in the journal (0 when it came on the fast path), and its record.</summary>
public sealed record MirroredCancel(long Offset, string RunId, string Reason, string CancelledBy, DateTimeOffset CancelledAt)
{
    /// <summary>The cancel's W3C trace context when it came by the fast path and was traced; null from the journal.</summary>
    public string? TraceParent { get; init; }
}

/// <summary>Redis answered that its data is gone (no offset marker): the mirror must start over from the journal.</summary>
public sealed class RedisDataLostException(string message) : Exception(message);

/// <summary>
/// The node's Redis side of the cancel contract (see <see cref="RedisContract"/>): idempotent writes, the mirror
/// offset, pruning, and the pre-start <c>SISMEMBER</c> check. Connects in the background and keeps reconnecting,
/// so a node starts and runs while Redis is down.
/// </summary>
public sealed class RedisCancelStore : ICancelledRunsLookup, IAsyncDisposable
{
    // Everything a cancel changes, in one script so that the offset never runs ahead of the entries it covers.
    // Refuses to write when the offset marker is missing: Redis lost its data and the mirror must start over from 0,
    // and a write now would put a marker over a hole. PUBLISH only when SADD added the run: one set message per cancel (after the early one of AnnounceAsync),
    // however many nodes or paths mirror it, and only for entries the caller marks as not yet announced: a rebuild after
    // Redis lost its data restores the set and hashes, it does not re-announce old cancels as new.
    private const string WriteScript = """
        if redis.call('EXISTS', KEYS[1]) == 0 then return redis.error_reply('DEEPLINE_NO_MARKER offset marker missing') end
        local added = 0
        for i = 3, #ARGV, 7 do
          local id = ARGV[i]
          local new = redis.call('SADD', KEYS[2], id)
          redis.call('HSET', ARGV[2] .. id, 'run_id', id, 'reason', ARGV[i + 1], 'cancelled_by', ARGV[i + 2], 'cancelled_at', ARGV[i + 3])
          redis.call('ZADD', KEYS[3], ARGV[i + 4], id)
          if new == 1 then
            if ARGV[i + 6] == '1' then redis.call('PUBLISH', KEYS[4], ARGV[i + 5]) end
            added = added + 1
          end
        end
        if tonumber(redis.call('GET', KEYS[1])) < tonumber(ARGV[1]) then redis.call('SET', KEYS[1], ARGV[1]) end
        return added
        """;

    // Oldest first, a bounded slice per call so a large backlog never blocks Redis for long.
    private const string PruneScript = """
        local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
        for _, id in ipairs(ids) do
          redis.call('SREM', KEYS[2], id)
          redis.call('DEL', ARGV[3] .. id)
          redis.call('ZREM', KEYS[1], id)
        end
        return #ids
        """;

    private const string ForgetScript = """
        for i = 2, #ARGV do
          redis.call('SREM', KEYS[1], ARGV[i])
          redis.call('ZREM', KEYS[2], ARGV[i])
          redis.call('DEL', ARGV[1] .. ARGV[i])
        end
        return #ARGV - 1
        """;

    private static readonly RedisKey[] WriteKeys =
        [RedisContract.MirrorOffset, RedisContract.CancelledRuns, RedisContract.CancelledRunsByTime, RedisContract.Channel];

    private static readonly RedisKey[] PruneKeys = [RedisContract.CancelledRunsByTime, RedisContract.CancelledRuns];

    private readonly Task<ConnectionMultiplexer> _connection;

    public RedisCancelStore(RedisMirrorSettings settings)
    {
        Settings = settings;
        var options = ConfigurationOptions.Parse(settings.Connection);
        // Start and keep running while Redis is down: the journal holds every cancel until it is back.
        options.AbortOnConnectFail = false;
        _connection = ConnectionMultiplexer.ConnectAsync(options);
    }

    public RedisMirrorSettings Settings { get; }

    /// <summary>Whether the connection to Redis is up right now (for /health; never waits).</summary>
    public bool IsConnected => _connection.IsCompletedSuccessfully && _connection.Result.IsConnected;

    /// <summary>The connection's database while it is up, for the node's other uses of Redis (cluster-wide rate limits); null while it is not.</summary>
    public IDatabase? DatabaseIfConnected => IsConnected ? _connection.Result.GetDatabase() : null;

    /// <summary>Where the mirror resumes: the stored offset, creating the marker (offset 0) when Redis has none.</summary>
    public async Task<long> ResumeOffsetAsync()
    {
        var db = await Db();
        await db.StringSetAsync(RedisContract.MirrorOffset, 0, when: When.NotExists);
        var offset = await db.StringGetAsync(RedisContract.MirrorOffset);
        return offset.TryParse(out long value) ? value : 0;
    }

    /// <summary>
    /// Announces cancels on the channel only, before they are journalled: nothing durable is written (the set, hash and
    /// time index follow through <see cref="WriteAsync"/> once the journal holds them, with the set's own message).
    /// </summary>
    public async Task AnnounceAsync(IReadOnlyList<MirroredCancel> cancels)
    {
        var db = await Db();
        var sends = cancels.Select(c => db.PublishAsync(RedisChannel.Literal(RedisContract.Channel),
            new CancelMessage(c.RunId, c.Reason, c.CancelledBy, c.CancelledAt) { TraceParent = c.TraceParent }.ToJson())).ToArray();
        await Task.WhenAll(sends);
    }

    /// <summary>
    /// Writes the cancels (set, hash, time index, one channel message per newly added run) and raises the stored
    /// offset to <paramref name="offset"/> (0: leave it). An empty batch only checks the marker.
    /// Returns how many runs were new to Redis.
    /// </summary>
    /// <exception cref="RedisDataLostException">The marker is missing: Redis was flushed or restarted empty.</exception>
    /// <param name="announced">Cancels already announced on the channel (restored, not re-published); null: none.</param>
    public async Task<int> WriteAsync(IReadOnlyList<MirroredCancel> cancels, long offset, Func<MirroredCancel, bool>? announced = null)
    {
        var args = new RedisValue[2 + cancels.Count * 7];
        args[0] = offset;
        args[1] = RedisContract.RunHashPrefix;
        var i = 2;
        foreach (var c in cancels)
        {
            args[i++] = c.RunId;
            args[i++] = c.Reason;
            args[i++] = c.CancelledBy;
            args[i++] = RedisContract.Timestamp(c.CancelledAt);
            args[i++] = c.CancelledAt.ToUnixTimeMilliseconds();
            args[i++] = new CancelMessage(c.RunId, c.Reason, c.CancelledBy, c.CancelledAt) { TraceParent = c.TraceParent }.ToJson();
            args[i++] = announced?.Invoke(c) == true ? "0" : "1";
        }

        var db = await Db();
        try
        {
            return (int)await db.ScriptEvaluateAsync(WriteScript, WriteKeys, args);
        }
        catch (RedisServerException e) when (e.Message.Contains("DEEPLINE_NO_MARKER", StringComparison.Ordinal))
        {
            throw new RedisDataLostException("Redis no longer holds the cancel mirror (flushed or restarted without its data)");
        }
    }

    /// <summary>Removes up to <paramref name="limit"/> runs cancelled before <paramref name="cutoff"/>; returns how many.</summary>
    public async Task<int> PruneAsync(DateTimeOffset cutoff, int limit = 1000)
    {
        var db = await Db();
        var removed = await db.ScriptEvaluateAsync(PruneScript, PruneKeys,
            [cutoff.ToUnixTimeMilliseconds().ToString(CultureInfo.InvariantCulture), limit, RedisContract.RunHashPrefix]);
        return (int)removed;
    }

    /// <summary>
    /// Removes runs that retention removed from the set, its time index and their hashes (whatever their state: a run
    /// that was never cancelled has nothing here). Redis down: false, and the entries go with <see cref="PruneAsync"/>.
    /// </summary>
    public async Task<bool> ForgetAsync(IReadOnlyList<string> runIds)
    {
        if (runIds.Count == 0) return true;
        if (DatabaseIfConnected is not { } db) return false;
        foreach (var chunk in runIds.Chunk(500))
            await db.ScriptEvaluateAsync(ForgetScript, [RedisContract.CancelledRuns, RedisContract.CancelledRunsByTime],
                [RedisContract.RunHashPrefix, .. chunk.Select(id => (RedisValue)id)]);
        return true;
    }

    /// <summary>SISMEMBER cancelled_runs: true for a run cancelled anywhere that mirrors to this Redis.</summary>
    /// <exception cref="InvalidOperationException">Not connected: answered at once, so a Redis outage never delays task starts.</exception>
    public async Task<bool> IsCancelledAsync(string runId)
    {
        if (!_connection.IsCompletedSuccessfully || !_connection.Result.IsConnected)
            throw new InvalidOperationException("Redis is not connected");
        return await _connection.Result.GetDatabase().SetContainsAsync(RedisContract.CancelledRuns, runId);
    }

    /// <summary>SISMEMBER cancelled_runs, then the run's hash for the record to cancel it with here.</summary>
    /// <exception cref="InvalidOperationException">Not connected, as <see cref="IsCancelledAsync"/>.</exception>
    public async Task<ExternalCancel?> FindCancelAsync(string runId)
    {
        if (!await IsCancelledAsync(runId)) return null;
        var fields = await (await Db()).HashGetAsync(RedisContract.RunHash(runId), ["reason", "cancelled_by"]);
        return ExternalCancel.From(fields[0].IsNull ? null : (string?)fields[0], fields[1].IsNull ? null : (string?)fields[1]);
    }

    private async Task<IDatabase> Db() => (await _connection).GetDatabase();

    public async ValueTask DisposeAsync()
    {
        try
        {
            await (await _connection).DisposeAsync();
        }
        catch (RedisException)
        {
        }
    }
}
