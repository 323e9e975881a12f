namespace Deepline.Actors.Hosting;

/// <summary>Registry key of the workflow shard region (or its proxy on nodes that do not host runs).</summary>
public sealed class WorkflowRegion;
