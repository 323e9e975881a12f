using System.Globalization;
using Akka.Actor;
using Npgsql;

namespace Deepline.Actors.Hosting;

/// <summary>
/// Whether the journal last found its store's disk full, so that writes are refused at once with the free space named
/// instead of each waiting out its ask (measured: every submission took the full 10 s and answered "did not answer",
/// as a new shard's allocation could not be journalled either). Set by a journal write failing for lack of space,
/// cleared by the next write that commits, or, on SQLite, as soon as the data directory's disk has space again, so
/// writes resume by themselves once an operator frees some. PostgreSQL's disk cannot be seen from here: there a
/// write is let through a second after the last failure to find out.
/// </summary>
public sealed class StoreSpace : IExtension
{
    /// <summary>Free space beyond what was left at the failure that counts as space returned.</summary>
    public const long Headroom = 1 << 20;

    private static readonly TimeSpan RetryUnseen = TimeSpan.FromSeconds(1);
    private readonly Lock _gate = new();
    private string? _directory;
    private long? _fullAt;
    private long? _freeAtFull;

    /// <summary>Read without the lock on every write request: almost always false.</summary>
    private volatile bool _full;

    public static StoreSpace For(ActorSystem system) => system.WithExtension<StoreSpace, Provider>();

    /// <summary>The directory of the SQLite file whose disk is watched (null for PostgreSQL).</summary>
    public void Watch(string? directory)
    {
        lock (_gate) _directory = directory;
    }

    /// <summary>SQLITE_FULL, PostgreSQL disk_full (53100), or ENOSPC anywhere in <paramref name="e"/>.</summary>
    public static bool IsFull(Exception? e)
    {
        for (; e is not null; e = e.InnerException)
        {
            switch (e)
            {
                case AggregateException a when a.InnerExceptions.Any(IsFull):
                    return true;
                case Microsoft.Data.Sqlite.SqliteException s when s.SqliteErrorCode == 13:
                case PostgresException { SqlState: "53100" }:
                case IOException io when (io.HResult & 0xFFFF) == 28:
                    return true;
            }
        }
        return false;
    }

    /// <summary>A journal write failed: remembered when it failed for lack of space.</summary>
    public void Failed(Exception e)
    {
        if (!IsFull(e)) return;
        lock (_gate)
        {
            _freeAtFull = Free();
            _fullAt = Environment.TickCount64;
            _full = true;
        }
    }

    /// <summary>A journal write committed: the disk has room.</summary>
    public void Committed()
    {
        if (!_full) return;
        lock (_gate) (_fullAt, _full) = (null, false);
    }

    /// <summary>Null when writes may be tried; else why not, naming the free space, for a 503.</summary>
    public string? Refusal()
    {
        if (!_full && !NearlyFull()) return null;
        lock (_gate)
        {
            if (_fullAt is not { } at) return null;
            var free = Free();
            if (free is { } now ? now > (_freeAtFull ?? 0) + Headroom : Environment.TickCount64 - at > RetryUnseen.TotalMilliseconds)
            {
                // Space came back (or cannot be seen and a second passed): let writes try; a failing one sets this again.
                (_fullAt, _full) = (null, false);
                return null;
            }
            var what = free is { } f ? $"{f.ToString("N0", CultureInfo.InvariantCulture)} bytes free" : "the database server's disk";
            return $"the store's disk is full ({what}); nothing was stored: writes resume by themselves once space is freed";
        }
    }

    /// <summary>
    /// On SQLite, a disk with less than <see cref="Headroom"/> free is taken as full before a write fails on it (looked
    /// at no more than every <see cref="LookEvery"/> ms): the first writes on a full disk waited out their asks too.
    /// </summary>
    private bool NearlyFull()
    {
        var now = Environment.TickCount64;
        if (Volatile.Read(ref _directory) is null || now - Interlocked.Read(ref _lookedAt) < LookEvery) return false;
        Interlocked.Exchange(ref _lookedAt, now);
        if (Free() is not { } free || free >= Headroom) return false;
        lock (_gate) (_fullAt, _freeAtFull, _full) = (now, free, true);
        return true;
    }

    /// <summary>
    /// A look is one statfs call (about a microsecond). Every 100 ms let a request that came within 100 ms of the last
    /// look pass to the journal on a disk filled meanwhile, and a new run's first write (sharding's remember-entities)
    /// then waited out its 10 s ask; a millisecond bounds the looks to a thousand a second under any load.
    /// </summary>
    private const long LookEvery = 1;
    private long _lookedAt;

    private long? Free() => _directory is { } d ? SqliteStore.FreeBytes(d) : null;

    public sealed class Provider : ExtensionIdProvider<StoreSpace>
    {
        public override StoreSpace CreateExtension(ExtendedActorSystem system) => new();
    }
}
