namespace Deepline.Domain.Resources;

/// <summary>
/// External workers hold and wait for resources in the same book as runs, under a key no run id can take ('/' is not
/// allowed in run ids), so their waits enter the same wait-for graph and a cycle through a worker is found like any other.
/// </summary>
public static class ExternalHolders
{
    public const string Prefix = "worker/";

    public static string KeyOf(string workerId) => Prefix + workerId;

    public static bool IsExternal(string holder) => holder.StartsWith(Prefix, StringComparison.Ordinal);

    /// <summary>The worker id of an external holder's key, or null for a run.</summary>
    public static string? WorkerOf(string holder) => IsExternal(holder) ? holder[Prefix.Length..] : null;
}
