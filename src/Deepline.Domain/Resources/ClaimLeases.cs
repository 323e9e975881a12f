using System.Collections.Immutable;

namespace Deepline.Domain.Resources;

/// <summary>
/// When each external worker's claims expire unless renewed (etcd leases, Consul sessions): one lease per worker covers
/// all its grants and waits. Deadlines are kept in the coordinator's memory only, never journalled (a renewal is a
/// worker's heartbeat: a write per heartbeat would cost the journal more than every claim together); after a recovery
/// or a singleton hand-over every worker in the book starts a fresh lease (<see cref="Recovered"/>), so a dead worker's
/// claims are released at most one lease after a failover.
/// </summary>
public sealed record ClaimLeases(ImmutableDictionary<string, DateTimeOffset> Deadlines)
{
    public static ClaimLeases Empty { get; } = new(ImmutableDictionary<string, DateTimeOffset>.Empty.WithComparers(StringComparer.Ordinal));

    /// <summary>Every external holder of <paramref name="book"/> with a full lease from <paramref name="now"/>.</summary>
    public static ClaimLeases Recovered(ResourceBook book, DateTimeOffset now, TimeSpan lease) =>
        new(book.Runs.Keys.Where(ExternalHolders.IsExternal)
            .ToImmutableDictionary(k => k, _ => now + lease, StringComparer.Ordinal));

    /// <summary>The holder's lease runs a full <paramref name="lease"/> from <paramref name="now"/>.</summary>
    public ClaimLeases Renew(string holder, DateTimeOffset now, TimeSpan lease) => new(Deadlines.SetItem(holder, now + lease));

    public ClaimLeases Forget(string holder) => Deadlines.ContainsKey(holder) ? new(Deadlines.Remove(holder)) : this;

    public DateTimeOffset? DeadlineOf(string holder) => Deadlines.TryGetValue(holder, out var d) ? d : null;

    /// <summary>The earliest deadline (when the coordinator's one timer is to fire), or null with no lease.</summary>
    public DateTimeOffset? Next => Deadlines.IsEmpty ? null : Deadlines.Values.Min();

    /// <summary>
    /// Holders whose lease has run out at <paramref name="now"/> (a deadline at <paramref name="now"/> has) and who
    /// still hold, wait for or were refused something in <paramref name="book"/>, in id order.
    /// </summary>
    public ImmutableArray<string> Due(ResourceBook book, DateTimeOffset now) =>
        [.. Deadlines.Where(d => d.Value <= now && book.Runs.ContainsKey(d.Key)).Select(d => d.Key).Order(StringComparer.Ordinal)];

    /// <summary>Without the leases of holders the book no longer knows (released everything, or expired).</summary>
    public ClaimLeases Pruned(ResourceBook book) =>
        Deadlines.Keys.All(book.Runs.ContainsKey) ? this : new(Deadlines.RemoveRange(Deadlines.Keys.Where(k => !book.Runs.ContainsKey(k)).ToList()));
}
