using System.Collections.Immutable;

namespace Deepline.Domain;

/// <summary>
/// Which open runs a bulk cancel takes: every condition given must hold (RUNNING, created up to the operation's start).
/// <see cref="RunIds"/> empty: any id.
/// </summary>
public sealed record RunFilter(string? ClientId, string? WorkflowName, DateTimeOffset? CreatedAfter, DateTimeOffset? CreatedBefore,
    ImmutableArray<string> RunIds)
{
    [System.Text.Json.Serialization.JsonIgnore]
    public bool MatchesEverything => ClientId is null && WorkflowName is null && CreatedAfter is null && CreatedBefore is null && RunIds.IsDefaultOrEmpty;
}

/// <summary>Where an operation has got to in the runs it matches, ordered by (created_at, run_id).</summary>
public sealed record OperationCursor(long CreatedAtMs, string RunId);

public enum OperationStatus { running, done }

/// <summary>
/// A bulk cancel: its matched runs are taken page by page in (created_at, run_id) order, each cancelled as one
/// <see cref="CancelRun"/> (a repeat answers the same record, so a page done again after a crash cancels nothing twice).
/// </summary>
public sealed record BulkOperation(
    string OperationId, RunFilter Filter, string Reason, string By, string? ClientScope, long Matched, DateTimeOffset CreatedAt,
    OperationStatus Status, OperationCursor? Cursor, long Cancelled, long Skipped, long Failed, DateTimeOffset UpdatedAt);

public sealed record BulkCancelStarted(string OperationId, RunFilter Filter, string Reason, string By, string? ClientScope, long Matched,
    DateTimeOffset At) : IDeeplineMessage;

/// <summary>A page done: the cursor moves past it; the counts are this page's.</summary>
public sealed record BulkCancelProgressed(string OperationId, OperationCursor Cursor, int Cancelled, int Skipped, int Failed, DateTimeOffset At)
    : IDeeplineMessage;

public sealed record BulkCancelFinished(string OperationId, DateTimeOffset At) : IDeeplineMessage;

/// <summary>The bulk operations one cluster knows: the running ones and the newest finished ones.</summary>
public sealed record BulkOperations(ImmutableDictionary<string, BulkOperation> ById) : IDeeplineMessage
{
    /// <summary>Finished operations kept for their progress to be read; older ones are forgotten.</summary>
    public const int FinishedKept = 1000;

    public static BulkOperations Empty { get; } = new(ImmutableDictionary<string, BulkOperation>.Empty.WithComparers(StringComparer.Ordinal));

    /// <summary>The oldest running operation: they run one at a time, in the order they were started.</summary>
    [System.Text.Json.Serialization.JsonIgnore]
    public BulkOperation? NextRunning =>
        ById.Values.Where(o => o.Status == OperationStatus.running).OrderBy(o => o.CreatedAt).ThenBy(o => o.OperationId, StringComparer.Ordinal).FirstOrDefault();

    public BulkOperations Apply(IDeeplineMessage e) => e switch
    {
        BulkCancelStarted s => this with
        {
            ById = ById.SetItem(s.OperationId, new BulkOperation(s.OperationId, s.Filter, s.Reason, s.By, s.ClientScope, s.Matched, s.At,
                OperationStatus.running, null, 0, 0, 0, s.At)),
        },
        BulkCancelProgressed p when ById.TryGetValue(p.OperationId, out var o) => this with
        {
            ById = ById.SetItem(p.OperationId, o with
            {
                Cursor = p.Cursor, Cancelled = o.Cancelled + p.Cancelled, Skipped = o.Skipped + p.Skipped, Failed = o.Failed + p.Failed, UpdatedAt = p.At,
            }),
        },
        BulkCancelFinished f when ById.TryGetValue(f.OperationId, out var o) => (this with
        {
            ById = ById.SetItem(f.OperationId, o with { Status = OperationStatus.done, UpdatedAt = f.At }),
        }).Trimmed(),
        _ => this,
    };

    private BulkOperations Trimmed()
    {
        var finished = ById.Values.Where(o => o.Status == OperationStatus.done).ToList();
        if (finished.Count <= FinishedKept) return this;
        var drop = finished.OrderBy(o => o.UpdatedAt).Take(finished.Count - FinishedKept).Select(o => o.OperationId);
        return this with { ById = ById.RemoveRange(drop) };
    }
}

/// <summary>What a cancel of one matched run came to, for the operation's counts.</summary>
public enum BulkCancelOutcome { Cancelled, Skipped, Failed }

public static class BulkCancelRules
{
    /// <summary>
    /// A run's cancel answer as the operation counts it: cancelled (now, or by this operation before a crash made it
    /// walk the page again: its caller and reason, since it started), skipped (cancelled by someone else, or finished or
    /// gone since it matched: nothing to do), or failed (no answer, the store unavailable: worth another try).
    /// </summary>
    public static BulkCancelOutcome Outcome(IDeeplineMessage? reply, BulkOperation op) => reply switch
    {
        CancelReply { AlreadyRequested: false } => BulkCancelOutcome.Cancelled,
        CancelReply { State.Cancel: { } c } when c.CancelledBy == op.By && c.Reason == op.Reason && c.CancelledAt >= op.CreatedAt => BulkCancelOutcome.Cancelled,
        CancelReply or CommandRejected { Kind: RejectionKind.NotFound or RejectionKind.Conflict } => BulkCancelOutcome.Skipped,
        _ => BulkCancelOutcome.Failed,
    };
}

/// <summary>Starts a bulk cancel of the runs <see cref="Filter"/> matches now (<see cref="Matched"/> of them, as counted).</summary>
public sealed record StartBulkCancel(RunFilter Filter, string Reason, string By, string? ClientScope, long Matched) : IDeeplineMessage;

public sealed record BulkCancelAccepted(BulkOperation Operation) : IDeeplineMessage;

public sealed record GetBulkOperation(string OperationId) : IDeeplineMessage;

/// <summary>The operation, or null when this cluster does not know it (never started, or forgotten long after it finished).</summary>
public sealed record BulkOperationReply(BulkOperation? Operation) : IDeeplineMessage;
