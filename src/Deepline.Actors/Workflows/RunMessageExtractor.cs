using Akka.Cluster.Sharding;
using Deepline.Domain;

namespace Deepline.Actors.Workflows;

/// <summary>One entity per run: the run id is the entity id.</summary>
public sealed class RunMessageExtractor(int maxShards) : HashCodeMessageExtractor(maxShards)
{
    public override string? EntityId(object message) => message switch
    {
        IRunCommand c => c.RunId,
        Workers.PoolReport r => r.Report.RunId,
        Workers.PoolReports r => r.RunId,
        _ => null,
    };
}
