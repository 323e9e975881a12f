using System.Net;
using Deepline.Node.Configuration;
using Microsoft.Extensions.Logging;
using Deepline.Tests.Shared;

namespace Deepline.Node.Tests.Http;

/// <summary>The seed's troubleshooting greps, run against the files a real node writes with orchestrator.logging.dir.</summary>
public sealed class FileLoggingTests : IAsyncLifetime
{
    private readonly string _dir = Directory.CreateTempSubdirectory("deepline-logs-").FullName;
    private Deepline.Tests.Shared.TestStore _store = null!;

    private string LogDir => Path.Combine(_dir, "logs");

    public async Task InitializeAsync() => _store = await Deepline.Tests.Shared.TestStore.CreateAsync();

    public async Task DisposeAsync()
    {
        await _store.DisposeAsync();
        try { Directory.Delete(_dir, true); } catch (IOException) { }
    }

    [Fact]
    public async Task A_cancelled_running_task_is_in_worker_log_and_the_cancel_in_orchestrator_log()
    {
        var port = Loopback.FreePort();
        var d = SingleNode.LoopbackConfig(Path.Combine(_dir, "data"), port);
        var config = d with
        {
            Store = _store.Config,
            Logging = new LoggingConfig(LogDir),
            Limits = d.Limits with { RunThresholdMinS = 1 },
        };
        // The console at Warning, as in the other tests: the files still get Information.
        var app = DeeplineNode.Build(config, logging: l => l.ClearProviders().SetMinimumLevel(LogLevel.Warning));
        try
        {
            await app.StartAsync();
            using var client = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{port}"), Timeout = TimeSpan.FromSeconds(30) };
            await Eventually.Until(() => Json.ServingWithMonitor(client), TimeSpan.FromSeconds(30), "node healthy");
            Assert.Equal(HttpStatusCode.Created, (await client.PostJson("/runs", """{"run_id":"logged-1","tasks":[{"task_id":"h","type":"hang"}]}""")).StatusCode);
            await client.AwaitRun("logged-1", r => r.TaskState("h") == "RUNNING", "task running");
            await client.PutJson("/runs/logged-1/cancel", """{"reason":"stop for the logs"}""");
            await client.AwaitRun("logged-1", r => r.Str("status") == "CANCELLED", "run cancelled");
            // And one the monitor finds stuck (its own 1 s threshold) and cancels.
            Assert.Equal(HttpStatusCode.Created, (await client.PostJson("/runs",
                """{"run_id":"logged-stuck","tasks":[{"task_id":"t","type":"x","pool":"nobody"}],"deadlock":{"pending_stale_s":1}}""")).StatusCode);
            await client.AwaitRun("logged-stuck", r => r.Str("status") == "CANCELLED", "auto-cancelled");
        }
        finally
        {
            await app.DisposeAsync(); // flushes and closes the files
        }

        var worker = await File.ReadAllLinesAsync(Path.Combine(LogDir, "worker.log"));
        var orchestrator = await File.ReadAllLinesAsync(Path.Combine(LogDir, "orchestrator.log"));
        // grep -i "cancelled" logs/worker.log, and the abort line with run, task, worker and how long the handler took.
        var abort = Assert.Single(worker, l => l.Contains("Task logged-1/h aborted on worker", StringComparison.Ordinal));
        Assert.Contains(" INFO ", abort);
        Assert.Matches("returned \\d+ ms after the cancellation", abort);
        Assert.Contains(worker, l => l.Contains("cancelled", StringComparison.OrdinalIgnoreCase));
        // The cancel is in orchestrator.log; the pools' lines are not.
        Assert.Contains(orchestrator, l => l.Contains(" WARN ", StringComparison.Ordinal) && l.Contains("logged-1", StringComparison.Ordinal)
            && l.Contains("cancelled: stop for the logs", StringComparison.Ordinal));
        Assert.DoesNotContain(orchestrator, l => l.Contains("aborted on worker", StringComparison.Ordinal));
        // The seed's Logging section, line for line (the detector in its own field), found by its troubleshooting grep.
        Assert.Contains(orchestrator, l => l.Contains(" INFO ", StringComparison.Ordinal)
            && l.Contains("Deadlock detected for workflow logged-stuck with 1 stuck tasks (deadlock_reason: stale_pending", StringComparison.Ordinal));
        Assert.Single(orchestrator, l => l.Contains(" WARN ", StringComparison.Ordinal)
            && l.EndsWith("Workflow logged-stuck cancelled: auto-cancel: deadlock detected (deadlock_reason: stale_pending)", StringComparison.Ordinal));
    }
}
