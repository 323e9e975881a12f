using Deepline.Domain;

namespace Deepline.Actors.Workflows;

/// <summary>What every run's entity needs to know from the node's configuration.</summary>
public sealed record WorkflowSettings(
    SubmissionPolicy Policy,
    TimeSpan CancelTimeout,
    int SnapshotEvery,
    TimeSpan PassivateAfter,
    DetectorThresholds? Detectors = null)
{
    public bool IsInClusterPool(string pool) => Policy.InClusterPools.ContainsKey(pool);

    /// <summary>
    /// The store admits one node only (SQLite): an attempt started by any other incarnation than this node's ran on a
    /// process that is gone, whatever address it had.
    /// </summary>
    public bool SingleNodeStore { get; init; }

    /// <summary>How often a run offers its ready tasks of external pools to their queue again (queues drop repeats).</summary>
    public TimeSpan RedispatchEvery { get; init; } = TimeSpan.FromSeconds(60);

    /// <summary>How often a run repeats a resource wish the coordinator has not answered.</summary>
    public TimeSpan ResourceResync { get; init; } = TimeSpan.FromSeconds(5);
}
