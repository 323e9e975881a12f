namespace Deepline.Node.Http;

/// <summary>How a dependency of the node is doing, as /health reports it.</summary>
public enum DependencyState { ok, degraded, down }

/// <summary>
/// The run index's health from its lag and its progress. A lag alone is not a fault (a burst of submissions makes
/// one), so the index is degraded when the lag is over <see cref="LagDegradedEvents"/>, or when it has not moved
/// for <see cref="StalledAfter"/> while there is something to apply: a stalled projection with a small lag is still
/// stalled, and the deadlock scan reads the index.
/// </summary>
public sealed class RunIndexProgress(TimeSpan stalledAfter, long lagDegradedEvents = RunIndexProgress.DefaultLagDegradedEvents)
{
    public const long DefaultLagDegradedEvents = 1000;
    public static readonly TimeSpan DefaultStalledAfter = TimeSpan.FromSeconds(30);

    private readonly Lock _lock = new();
    private long _offset = -1;
    private DateTimeOffset _since;

    public TimeSpan StalledAfter => stalledAfter;

    public long LagDegradedEvents => lagDegradedEvents;

    /// <summary>Records an observation and judges it; the clock is passed in so the rule can be tested without waiting.</summary>
    public (DependencyState State, string? Reason) Observe(long offset, long lag, DateTimeOffset now)
    {
        DateTimeOffset since;
        lock (_lock)
        {
            if (offset != _offset || lag == 0)
            {
                _offset = offset;
                _since = now;
            }
            since = _since;
        }
        return Assess(lag, now - since, stalledAfter, lagDegradedEvents);
    }

    public static (DependencyState State, string? Reason) Assess(long lag, TimeSpan unchangedFor, TimeSpan stalledAfter, long lagDegradedEvents)
    {
        if (lag > lagDegradedEvents)
            return (DependencyState.degraded, $"{lag} journal events behind (more than {lagDegradedEvents})");
        if (lag > 0 && unchangedFor >= stalledAfter)
            return (DependencyState.degraded, $"stalled: {lag} events to apply and no progress for {unchangedFor.TotalSeconds:0} s");
        return (DependencyState.ok, null);
    }
}
