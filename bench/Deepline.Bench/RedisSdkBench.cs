namespace Deepline.Bench;

/// <summary>
/// The hook for (b) in the issue: an external worker using src/Deepline.Worker.Sdk, its per-run token fed by the
/// Redis channel. It needs the SDK (a separate piece of work); until the SDK is on this branch the row says so.
/// </summary>
public static class RedisSdkBench
{
    public const string SdkProject = "src/Deepline.Worker.Sdk";

    /// <summary>A measurement, or the reason there is none.</summary>
    public static (Measurement? Result, string? NotMeasured) TryMeasure(int tasks)
    {
        _ = tasks;
        var root = Machine.RepoRoot();
        if (root is null || !Directory.Exists(Path.Combine(root, SdkProject)))
            return (null, "not measured (SDK not on this branch)");
        // Wire the SDK here: start redis-server on a free loopback port, a node with that Redis configured, N SDK
        // subscribers each holding one run's token, then PUT /runs/{id}/cancel per run as DeeplineBench does.
        return (null, "not measured (SDK present, but this bench does not drive it yet)");
    }
}
