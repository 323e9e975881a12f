using Npgsql;

namespace Deepline.Actors.Hosting;

/// <summary>
/// Npgsql hands out a pooled connection without asking the server whether it still lives (npgsql/npgsql#5073), so after
/// a PostgreSQL restart every idle connection of the pool fails once before a fresh one is opened. Behind Akka's circuit
/// breaker (one trial call a second once open) that was one dead connection a second: writes came back 14 s after the
/// database did. The first call that sees the connection lost empties the pools instead, so the next one opens fresh.
/// </summary>
public static class ConnectionLoss
{
    /// <summary>Whether <paramref name="e"/> (or an exception inside it) says the connection to the server is gone.</summary>
    public static bool Is(Exception? e)
    {
        for (; e is not null; e = e.InnerException)
        {
            switch (e)
            {
                case AggregateException a when a.InnerExceptions.Any(Is):
                    return true;
                // 57P01 admin shutdown, 57P02 crash shutdown, 57P03 cannot connect now; class 08: connection exceptions.
                case PostgresException p:
                    return p.SqlState.StartsWith("57P", StringComparison.Ordinal) || p.SqlState.StartsWith("08", StringComparison.Ordinal);
                case NpgsqlException:
                    return true; // not a server's answer: the socket or the stream failed
            }
        }
        return false;
    }

    /// <summary>Empties Npgsql's pools when <paramref name="e"/> is a lost connection; true when it was.</summary>
    public static bool Forget(Exception e)
    {
        if (!Is(e)) return false;
        NpgsqlConnection.ClearAllPools();
        return true;
    }
}

/// <summary>Whether a failed journal call failed because the store could not be used, rather than because of what it holds.</summary>
public static class StoreFailure
{
    /// <summary>
    /// True for a store that is down, restarting, refusing connections, behind an open circuit breaker, timing out or out of
    /// space: a history read that failed so says nothing about the history. /health listed such runs as "unreadable
    /// history" for minutes after a database restart, some that never existed.
    /// </summary>
    public static bool IsUnavailable(Exception? e)
    {
        for (; e is not null; e = e.InnerException)
        {
            switch (e)
            {
                case AggregateException a when a.InnerExceptions.Any(IsUnavailable):
                    return true;
                case Akka.Pattern.OpenCircuitException or TimeoutException or OperationCanceledException or IOException
                    or System.Net.Sockets.SocketException:
                    return true;
                case PostgresException p:
                    // Class 08 connection, 53 insufficient resources (disk full, out of memory, too many connections), 57 operator intervention.
                    return p.SqlState.StartsWith("08", StringComparison.Ordinal) || p.SqlState.StartsWith("53", StringComparison.Ordinal)
                           || p.SqlState.StartsWith("57", StringComparison.Ordinal);
                case NpgsqlException:
                    return true;
                case Microsoft.Data.Sqlite.SqliteException s:
                    // SQLITE_BUSY 5, SQLITE_LOCKED 6, SQLITE_NOMEM 7, SQLITE_IOERR 10, SQLITE_FULL 13, SQLITE_CANTOPEN 14.
                    return s.SqliteErrorCode is 5 or 6 or 7 or 10 or 13 or 14;
            }
        }
        return false;
    }
}
