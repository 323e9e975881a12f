using Deepline.Domain;

namespace Deepline.Actors.Queues;

/// <summary>What a stale run's explanation says about the external pools its ready tasks wait in.</summary>
public static class PoolHints
{
    /// <summary>A pool counts as unpolled once nobody has polled it for this long.</summary>
    public static readonly TimeSpan UnpolledAfter = TimeSpan.FromSeconds(5);

    /// <summary>
    /// The pools (of those this node queues) where the run's ready tasks wait and no worker has polled lately, as a clause
    /// of the explanation; empty when every such pool is polled or this node does not queue them (in-cluster pools, or
    /// a run hosted elsewhere).
    /// </summary>
    public static string Unpolled(WorkflowState run, QueueStats stats, DateTimeOffset now)
    {
        var pools = run.Tasks.Values.Where(t => t.Ready).Select(t => t.Pool).ToHashSet(StringComparer.Ordinal);
        var unpolled = stats.Pools
            .Where(p => pools.Contains(p.Pool) && p.Depth > 0 && p.WaitingPolls == 0 && (p.LastPollAt is not { } l || now - l >= UnpolledAfter))
            .Select(p => p.LastPollAt is { } l
                ? $"'{p.Pool}' (last poll {(now - l).TotalSeconds:0} s ago, {p.Depth} queued)"
                : $"'{p.Pool}' (never polled, {p.Depth} queued)")
            .ToList();
        return unpolled.Count == 0 ? "" : $"no worker is polling pool {string.Join(", ", unpolled)}: start workers for it (GET /pools)";
    }
}
