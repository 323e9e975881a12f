using Deepline.Actors.Hosting;
using Deepline.Node.Security;
using Microsoft.AspNetCore.Http.HttpResults;

namespace Deepline.Node.Http;

/// <summary>The store itself: an online backup of the embedded SQLite store.</summary>
public static class StoreEndpoints
{
    public const string OrderingHeader = "X-Deepline-Journal-Ordering";

    /// <summary>One backup at a time: each holds a read transaction over the whole file and a copy's worth of disk.</summary>
    private static readonly SemaphoreSlim OneAtATime = new(1, 1);

    public static IEndpointRouteBuilder MapStoreEndpoints(this IEndpointRouteBuilder app)
    {
        // Role admin: the copy holds every run of every client.
        app.MapGet("/store/backup", async Task<Results<FileStreamHttpResult, ProblemHttpResult>> (PersistenceTarget store, HttpResponse response,
            ILoggerFactory loggers, CancellationToken ct) =>
        {
            if (store.IsPostgreSql || store.File is null)
                return Problems.Of(409, "Not a SQLite store",
                    "this node's store is PostgreSQL: back it up with pg_dump or pg_basebackup (README, Backup and restore)");
            if (!await OneAtATime.WaitAsync(0, ct))
                return Problems.Of(409, "Backup in progress", "a backup of this store is being taken; ask again when it is done");
            var log = loggers.CreateLogger("Deepline.Store");
            string? temp = null;
            try
            {
                // The copy is made beside the store (same disk, same permissions), streamed, and deleted when the stream closes.
                var dir = Path.Combine(Path.GetDirectoryName(store.File)!, "backups");
                Directory.CreateDirectory(dir);
                // Copies a crash left behind (a stream's close deletes its copy; a killed process cannot).
                foreach (var stale in Directory.EnumerateFiles(dir, ".backup-*.db").Where(f => File.GetLastWriteTimeUtc(f) < DateTime.UtcNow.AddDays(-1)))
                    TryDelete(stale);
                var need = Size(store.File) + Size(store.File + "-wal");
                if (SqliteStore.FreeBytes(dir) is { } free && free < need + (64L << 20))
                    return Problems.Of(507, "Insufficient storage",
                        $"a backup needs about {need:N0} bytes beside the store and 64 MiB to spare; {free:N0} bytes are free");
                temp = Path.Combine(dir, $".backup-{Guid.NewGuid():N}.db");
                var started = System.Diagnostics.Stopwatch.StartNew();
                var at = DateTimeOffset.UtcNow;
                var path = temp;
                var ordering = await Task.Run(() => SqliteStore.Backup(store.ConnectionString, path, at), ct);
                var stream = new FileStream(temp, FileMode.Open, FileAccess.Read, FileShare.Read | FileShare.Delete, 1 << 16,
                    FileOptions.Asynchronous | FileOptions.DeleteOnClose);
                log.LogInformation("Store backup taken: {Bytes} bytes, journal ordering {Ordering}, in {Seconds:0.0} s", stream.Length, ordering,
                    started.Elapsed.TotalSeconds);
                temp = null; // the stream deletes it
                response.Headers[OrderingHeader] = ordering.ToString(System.Globalization.CultureInfo.InvariantCulture);
                return TypedResults.File(stream, "application/vnd.sqlite3", $"deepline-{at:yyyyMMdd'T'HHmmss'Z'}.db");
            }
            catch (Exception e) when (e is IOException or Microsoft.Data.Sqlite.SqliteException or UnauthorizedAccessException)
            {
                log.LogError("Store backup failed: {Error}", e.Message);
                return Problems.Of(500, "Backup failed", $"the backup could not be taken: {e.Message}");
            }
            finally
            {
                if (temp is not null) TryDelete(temp);
                OneAtATime.Release();
            }
        }).RequireAuthorization(Policies.Admin)
            .Produces(200, contentType: "application/vnd.sqlite3")
            .Documented("store", "An online, consistent copy of the SQLite store (admin); restore: put it in place of data.dir/deepline.db", 409, 500, 507);
        return app;
    }

    private static long Size(string file) => File.Exists(file) ? new FileInfo(file).Length : 0;

    private static void TryDelete(string file)
    {
        try { File.Delete(file); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }
}
