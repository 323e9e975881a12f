using System.Collections.Immutable;

namespace Deepline.Domain.Resources;

/// <summary>
/// How many claims (grants and waits) external workers hold under each key, so that one worker key cannot fill the
/// node's resource book with made-up worker ids: kept beside the book and stepped with each event, since counting it
/// from the book costs a walk over every holder.
/// </summary>
public sealed record ClaimTally(ImmutableDictionary<string, int> ByOwner)
{
    public static ClaimTally Empty { get; } = new(ImmutableDictionary<string, int>.Empty.WithComparers(StringComparer.Ordinal));

    public int Of(string owner) => ByOwner.GetValueOrDefault(owner);

    public static ClaimTally Of(ResourceBook book) =>
        book.Runs.Values.Where(r => ExternalHolders.IsExternal(r.RunId)).Aggregate(Empty, (t, r) => t.Add(OwnerOf(r), Claims(r)));

    /// <summary>The tally after <paramref name="e"/> turned <paramref name="before"/> into <paramref name="after"/>.</summary>
    public ClaimTally Step(ResourceBook before, ResourceBook after, IResourceEvent e)
    {
        if (HolderOf(e) is not { } holder || !ExternalHolders.IsExternal(holder)) return this;
        var was = before.Runs.GetValueOrDefault(holder);
        var now = after.Runs.GetValueOrDefault(holder);
        if (was is null && now is null) return this;
        var owner = OwnerOf(now ?? was!);
        return Add(owner, (now is null ? 0 : Claims(now)) - (was is null ? 0 : Claims(was)));
    }

    private ClaimTally Add(string owner, int delta)
    {
        if (delta == 0) return this;
        var total = Of(owner) + delta;
        return new(total <= 0 ? ByOwner.Remove(owner) : ByOwner.SetItem(owner, total));
    }

    private static int Claims(ResourceRun r) => r.Holds.Count + r.WaitsOn.Count;

    private static string OwnerOf(ResourceRun r) => r.Facts.Owner ?? "";

    private static string? HolderOf(IResourceEvent e) => e switch
    {
        ResourceWantsRecorded w => w.RunId,
        ResourceGranted g => g.RunId,
        ResourceWaiting w => w.RunId,
        ResourceReleased r => r.RunId,
        ResourceWaitWithdrawn w => w.RunId,
        ResourceClaimRefused c => c.RunId,
        ResourceRunForgotten f => f.RunId,
        _ => null,
    };
}
