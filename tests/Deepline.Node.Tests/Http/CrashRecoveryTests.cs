using System.Net;
using Deepline.Tests.Shared;

namespace Deepline.Node.Tests.Http;

/// <summary>
/// The node as operators run it, in its own process, killed with SIGKILL: every accepted run and every
/// cancel answered before the kill must be there when it starts again on the same data directory.
/// </summary>
public sealed class CrashRecoveryTests : IDisposable
{
    private readonly string _dataDir = Directory.CreateTempSubdirectory("deepline-crash-").FullName;

    public void Dispose()
    {
        try { Directory.Delete(_dataDir, true); } catch (IOException) { }
    }

    [Fact]
    public async Task Runs_and_cancels_survive_SIGKILL()
    {
        var port = Loopback.FreePort();
        var cancelledAt = new Dictionary<string, string>();
        const int runs = 20;
        await using (var first = new NodeProcess("first", port, 0, _dataDir))
        {
            first.Start();
            await first.AwaitHealthyAsync(TimeSpan.FromSeconds(60));
            for (var i = 0; i < runs; i++)
            {
                var created = await first.Client.PostJson("/runs", $$"""{"run_id":"crash-{{i}}","tasks":[{"task_id":"h","type":"hang"},{"task_id":"after","type":"noop","depends_on":["h"]}]}""");
                Assert.Equal(HttpStatusCode.Created, created.StatusCode);
            }
            for (var i = 0; i < runs; i += 2)
            {
                var cancel = await (await first.Client.PutJson($"/runs/crash-{i}/cancel", """{"reason":"before the crash","force":true}""")).ReadObject();
                cancelledAt[$"crash-{i}"] = cancel.Str("cancelled_at");
            }
            await first.KillAsync();
        }

        await using var second = new NodeProcess("second", port, 0, _dataDir);
        second.Start();
        await second.AwaitHealthyAsync(TimeSpan.FromSeconds(60));
        for (var i = 0; i < runs; i++)
        {
            var run = await second.Client.GetRun($"crash-{i}");
            if (cancelledAt.TryGetValue($"crash-{i}", out var at))
            {
                Assert.Equal("CANCELLED", run.Str("status"));
                Assert.Equal(at, run["cancellation"]!["cancelled_at"]!.GetValue<string>());
                Assert.Equal("before the crash", run["cancellation"]!["reason"]!.GetValue<string>());
            }
            else
            {
                Assert.Equal("RUNNING", run.Str("status"));
                Assert.Equal("PENDING", run.TaskState("after"));
            }
        }
    }
}
