using System.Threading.RateLimiting;
using Deepline.Actors.Hosting;
using StackExchange.Redis;

namespace Deepline.Node.Security;

/// <summary>
/// A caller's token bucket kept in Redis when the node has Redis, so that every node behind a load balancer draws on
/// one bucket per key (the original design keeps its rate limits in Redis; per node, three nodes granted three times the
/// rate). One script call per request, atomic on the Redis server, timed by the server's clock (nodes' clocks may differ).
/// While Redis is away the node's own bucket for the caller decides, so an outage of Redis never refuses or fails a
/// request. Ours rather than the RedisRateLimiting package: its limiters throw while Redis is down, and the fallback is
/// the point here.
/// </summary>
public sealed class SharedRateLimit(NodeDependencies dependencies, int ratePerSecond, int burst)
{
    public const string KeyPrefix = "deepline:rate:";

    private static readonly LuaScript Script = LuaScript.Prepare("""
        local rate = tonumber(@rate)
        local burst = tonumber(@burst)
        local t = redis.call('TIME')
        local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
        local b = redis.call('HMGET', @key, 'tokens', 'at')
        local tokens = tonumber(b[1])
        local at = tonumber(b[2])
        if tokens == nil or at == nil then tokens = burst; at = now end
        tokens = math.min(burst, tokens + math.max(0, now - at) * rate / 1000)
        local granted = 0
        local wait = 0
        if tokens >= 1 then
          tokens = tokens - 1
          granted = 1
        else
          wait = math.ceil((1 - tokens) * 1000 / rate)
        end
        redis.call('HSET', @key, 'tokens', tostring(tokens), 'at', now)
        redis.call('PEXPIRE', @key, math.ceil(burst * 1000 / rate) + 1000)
        return { granted, wait }
        """);

    private bool RedisConnected => dependencies.Redis?.IsConnected == true;

    /// <summary>The limiter of one caller: Redis's bucket when Redis answers, else <paramref name="local"/>.</summary>
    public RateLimiter For(string caller, RateLimiter local) => new Bucket(this, KeyPrefix + caller, local);

    private async Task<(bool Granted, TimeSpan RetryAfter)?> TryRedisAsync(RedisKey key)
    {
        if (dependencies.Redis?.DatabaseIfConnected is not { } db) return null;
        try
        {
            var result = (RedisResult[])(await Script.EvaluateAsync(db, new { key, rate = ratePerSecond, burst }))!;
            return ((long)result[0] == 1, TimeSpan.FromMilliseconds((long)result[1]));
        }
        catch (Exception e) when (e is RedisException or TimeoutException)
        {
            return null;
        }
    }

    private sealed class Bucket(SharedRateLimit shared, RedisKey key, RateLimiter local) : RateLimiter
    {
        public override TimeSpan? IdleDuration => local.IdleDuration;

        public override RateLimiterStatistics? GetStatistics() => local.GetStatistics();

        // Redis cannot be asked without waiting: the middleware then asks AcquireAsync, which can.
        protected override RateLimitLease AttemptAcquireCore(int permitCount) =>
            shared.RedisConnected ? Refused.Pending : local.AttemptAcquire(permitCount);

        protected override async ValueTask<RateLimitLease> AcquireAsyncCore(int permitCount, CancellationToken cancellationToken)
        {
            if (await shared.TryRedisAsync(key) is { } answer)
                return answer.Granted ? Granted.Instance : new Refused(answer.RetryAfter);
            return local.AttemptAcquire(permitCount);
        }

        protected override void Dispose(bool disposing)
        {
            if (disposing) local.Dispose();
            base.Dispose(disposing);
        }
    }

    private sealed class Granted : RateLimitLease
    {
        public static readonly Granted Instance = new();

        public override bool IsAcquired => true;

        public override IEnumerable<string> MetadataNames => [];

        public override bool TryGetMetadata(string metadataName, out object? metadata)
        {
            metadata = null;
            return false;
        }
    }

    private sealed class Refused(TimeSpan? retryAfter) : RateLimitLease
    {
        /// <summary>Not an answer yet: the middleware goes on to AcquireAsync.</summary>
        public static readonly Refused Pending = new(null);

        public override bool IsAcquired => false;

        public override IEnumerable<string> MetadataNames => retryAfter is null ? [] : [MetadataName.RetryAfter.Name];

        public override bool TryGetMetadata(string metadataName, out object? metadata)
        {
            metadata = retryAfter is { } r && metadataName == MetadataName.RetryAfter.Name ? r : null;
            return metadata is not null;
        }
    }
}
