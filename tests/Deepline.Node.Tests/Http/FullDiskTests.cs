using System.Diagnostics;
using System.Net;
using System.Runtime.InteropServices;
using Deepline.Tests.Shared;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.Logging;

namespace Deepline.Node.Tests.Http;

/// <summary>Runs only as root: a real full disk needs a small file system of its own (a tmpfs mounted for the test).</summary>
public sealed class RootFactAttribute : FactAttribute
{
    public RootFactAttribute()
    {
        if (!IsRoot) Skip = "needs root, to mount a small tmpfs that can be filled";
    }

    public static bool IsRoot => OperatingSystem.IsLinux() && geteuid() == 0;

    [DllImport("libc")]
    private static extern uint geteuid();
}

/// <summary>
/// A node whose SQLite store's disk fills up while it serves: writes are refused at once with a 503 that names the
/// free space (before: every write waited out its 10 s ask and said "did not answer"), reads go on, and writes resume
/// by themselves once space is freed, without a restart.
/// </summary>
public sealed class FullDiskTests : IAsyncLifetime
{
    private readonly string _mount = Directory.CreateTempSubdirectory("deepline-full-disk-").FullName;
    private WebApplication? _app;
    private HttpClient _client = null!;

    private string Filler => Path.Combine(_mount, "filler");

    public async Task InitializeAsync()
    {
        if (!RootFactAttribute.IsRoot) return;
        using var mount = Process.Start(new ProcessStartInfo("mount", ["-t", "tmpfs", "-o", "size=48m", "tmpfs", _mount]) { RedirectStandardError = true })!;
        await mount.WaitForExitAsync();
        if (mount.ExitCode != 0) throw new InvalidOperationException($"mount tmpfs failed: {await mount.StandardError.ReadToEndAsync()}");
    }

    public async Task DisposeAsync()
    {
        _client?.Dispose();
        if (_app is not null) await _app.DisposeAsync();
        Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
        // Lazily: a node that failed to stop in time must not leave the mount behind.
        if (RootFactAttribute.IsRoot)
            using (var umount = Process.Start("umount", ["-l", _mount])) await umount.WaitForExitAsync();
        try { Directory.Delete(_mount, true); } catch (IOException) { }
    }

    private void FillDisk()
    {
        var chunk = new byte[1 << 20];
        using var file = new FileStream(Filler, FileMode.Create, FileAccess.Write, FileShare.None, 1 << 16);
        try
        {
            while (true)
            {
                file.Write(chunk);
                file.Flush(flushToDisk: true);
            }
        }
        catch (IOException)
        {
            // ENOSPC: the disk is full; what is left over is less than a chunk.
        }
        // Down to the last bytes: SQLite may still fit a page into less than a megabyte.
        using var rest = new FileStream(Filler + "-rest", FileMode.Create, FileAccess.Write);
        try
        {
            while (true)
            {
                rest.Write(chunk, 0, 4096);
                rest.Flush(flushToDisk: true);
            }
        }
        catch (IOException)
        {
        }
    }

    [RootFact]
    public async Task Writes_are_refused_at_once_naming_the_free_space_and_resume_once_space_is_freed()
    {
        // The embedded default store (SQLite) whatever DEEPLINE_TEST_STORE says: PostgreSQL's disk is not ours to fill.
        (_app, var config) = await SingleNode.StartOnFreePortAsync(port => SingleNode.LoopbackConfig(Path.Combine(_mount, "data"), port),
            l => l.ClearProviders().SetMinimumLevel(LogLevel.Warning));
        // Shorter than the node's 10 s ask: a write that waits it out fails this test.
        _client = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{config.Http.Port}"), Timeout = TimeSpan.FromSeconds(5) };
        Assert.Equal(HttpStatusCode.Created, (await _client.PostJson("/runs", """{"run_id":"before-full","tasks":[{"task_id":"a","type":"x","pool":"ext"}]}""")).StatusCode);

        FillDisk();

        var refused = await _client.PostJson("/runs", """{"run_id":"while-full","tasks":[{"task_id":"a","type":"x","pool":"ext"}]}""");
        Assert.Equal(HttpStatusCode.ServiceUnavailable, refused.StatusCode);
        var problem = await refused.ReadObject();
        Assert.Equal("Store full", problem.Str("title"));
        Assert.Matches(@"the store's disk is full \([\d,]+ bytes free\)", problem.Str("detail"));
        var cancel = await _client.PutJson("/runs/before-full/cancel", """{"reason":"disk full"}""");
        Assert.Equal("Store full", (await cancel.ReadObject()).Str("title"));
        Assert.Equal("RUNNING", (await _client.GetRun("before-full")).Str("status"));
        var health = await (await _client.GetAsync("/health")).ReadObject();
        Assert.Equal("degraded", health.Str("status"));
        Assert.Contains("the store's disk is full", health["dependencies"]!["store"]!.AsObject().Str("detail"));

        File.Delete(Filler);
        File.Delete(Filler + "-rest");

        await Eventually.Until(async () =>
            (await _client.PostJson("/runs", """{"run_id":"after-full","tasks":[{"task_id":"a","type":"x","pool":"ext"}]}""")).StatusCode == HttpStatusCode.Created,
            TimeSpan.FromSeconds(30), "writes accepted again once space was freed");
        Assert.Equal(HttpStatusCode.OK, (await _client.PutJson("/runs/before-full/cancel", """{"reason":"space back"}""")).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await _client.GetAsync("/runs/while-full")).StatusCode);
    }
}
