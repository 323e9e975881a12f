using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net;
using System.Text.Json.Nodes;
using Deepline.Node.Tests.Http;
using Deepline.Tests.Shared;
using Xunit.Abstractions;

namespace Deepline.Node.Tests.Cluster;

/// <summary>
/// A node process on PostgreSQL while the database restarts under it (fast shutdown, and a SIGKILL of the postmaster):
/// while the database is down writes are refused with 503 and nothing else, they are served again within seconds of the
/// database accepting connections, and the deadlock monitor (whose own journal writes failed during the outage) finds and
/// cancels a stuck run afterwards without anyone restarting the node. Submitters keep writing all along.
/// </summary>
[Trait("Category", "Cluster")]
public sealed class DatabaseRestartTests(ITestOutputHelper output) : IAsyncLifetime
{
    private readonly string _dir = Directory.CreateTempSubdirectory("deepline-dbrestart-").FullName;
    private PostgresServer _postgres = null!;
    private NodeProcess _node = null!;

    public async Task InitializeAsync()
    {
        _postgres = await PostgresServer.StartAsync();
        var store = await _postgres.CreateDatabaseAsync("restart");
        var (http, remoting) = (Loopback.FreePort(), Loopback.FreePort());
        _node = new NodeProcess("node1", http, remoting, Path.Combine(_dir, "node1"), new Dictionary<string, string>
        {
            ["DEEPLINE_STORE_PROVIDER"] = "postgresql",
            ["DEEPLINE_STORE_CONNECTION"] = store,
            ["DEEPLINE_REMOTING_SEED_NODES"] = $"akka.tcp://deepline@127.0.0.1:{remoting}",
            ["DEEPLINE_DEADLOCK_CHECK_INTERVAL"] = "1",
            ["DEEPLINE_LIMITS_RUN_THRESHOLD_MIN"] = "1",
            ["DEEPLINE_LOGGING_DIR"] = Path.Combine(_dir, "logs"),
        });
        _node.Start();
        await _node.AwaitHealthyAsync(TimeSpan.FromSeconds(60));
    }

    public async Task DisposeAsync()
    {
        await _node.DisposeAsync();
        if (Environment.GetEnvironmentVariable("DEEPLINE_KEEP_LOG") is { } keep)
            foreach (var f in Directory.GetFiles(_dir, "orchestrator*.log", SearchOption.AllDirectories)) File.Copy(f, keep, true);
        await _postgres.DisposeAsync();
        try { Directory.Delete(_dir, true); } catch (IOException) { }
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task After_a_database_restart_writes_and_the_monitor_come_back_by_themselves(bool killPostmaster)
    {
        await SubmitStuck("dl-before");
        await _node.Client.AwaitRun("dl-before", r => r.Str("status") == "CANCELLED", "dl-before auto-cancelled");

        // Submitters write all along; each answer is kept with the time its request was sent.
        var answers = new ConcurrentQueue<(TimeSpan At, TimeSpan Answered, HttpStatusCode Status)>();
        var refusals = new ConcurrentQueue<string>();
        var clock = Stopwatch.StartNew();
        using var stop = new CancellationTokenSource();
        var submitters = Enumerable.Range(0, 4).Select(s => Task.Run(async () =>
        {
            for (var i = 0; !stop.IsCancellationRequested; i++)
            {
                HttpStatusCode status;
                var sent = clock.Elapsed;
                try
                {
                    var response = await _node.Client.PostJson("/runs", $$"""{"run_id":"w-{{s}}-{{i}}","tasks":[{"task_id":"x","type":"x","pool":"ext"}]}""");
                    status = response.StatusCode;
                    if (status != HttpStatusCode.Created) refusals.Enqueue($"{sent.TotalSeconds:F1} s: {(int)status} {await response.Content.ReadAsStringAsync()}");
                }
                catch (TaskCanceledException) when (!stop.IsCancellationRequested)
                {
                    status = HttpStatusCode.RequestTimeout; // the client's own 15 s: the node held the request without an answer
                }
                answers.Enqueue((sent, clock.Elapsed, status));
                await Task.Delay(50);
            }
        })).ToArray();

        await Eventually.Until(() => answers.Count(a => a.Status == HttpStatusCode.Created) >= 20, TimeSpan.FromSeconds(30), "writes before the restart");
        var down = clock.Elapsed;
        await _postgres.StopAsync(killPostmaster);
        // Long enough for the monitor's scan journal write (every check_interval_s) and many submits to fail.
        await Task.Delay(TimeSpan.FromSeconds(4));
        await _postgres.StartAgainAsync();
        var up = clock.Elapsed;

        await Eventually.Until(() => answers.Any(a => a.Answered > up && a.Status == HttpStatusCode.Created), TimeSpan.FromSeconds(60), "a write served after the restart");
        var firstServed = answers.Where(a => a.Answered > up && a.Status == HttpStatusCode.Created).Min(a => a.Answered) - up;
        // Then writes are served steadily: none sent 3 s after the first one was served is refused (shards whose home
        // the coordinator was still writing may answer a moment after the first).
        var steady = firstServed + up + TimeSpan.FromSeconds(3);
        await Eventually.Until(() => answers.Count(a => a.At > steady) >= 40, TimeSpan.FromSeconds(60), "writes after the restart");
        stop.Cancel();
        await Task.WhenAll(submitters);

        var during = answers.Where(a => a.At > down).ToList();
        output.WriteLine($"{(killPostmaster ? "SIGKILL" : "fast shutdown")}: {during.Count} writes from the stop on; first served " +
                         $"{firstServed.TotalSeconds:F1} s after the database accepted connections; answers: " +
                         string.Join(", ", during.GroupBy(a => a.Status).Select(g => $"{(int)g.Key} x{g.Count()}")));
        foreach (var r in refusals) output.WriteLine(r);
        Assert.All(during, a => Assert.True(a.Status is HttpStatusCode.Created or HttpStatusCode.ServiceUnavailable,
            $"{(int)a.Status} at {a.At.TotalSeconds:F1} s (database down at {down.TotalSeconds:F1} s, up at {up.TotalSeconds:F1} s)"));
        Assert.True(firstServed < TimeSpan.FromSeconds(15), $"writes came back {firstServed.TotalSeconds:F1} s after the database did");
        var refusedLate = answers.Where(a => a.At > steady && a.Status != HttpStatusCode.Created).ToList();
        Assert.True(refusedLate.Count == 0, $"{refusedLate.Count} writes refused after writes came back, the first at {refusedLate.FirstOrDefault().At.TotalSeconds:F1} s");

        // The monitor scans again: a run stuck after the restart is found and cancelled, and /health says the monitor is up.
        await SubmitStuck("dl-after");
        await _node.Client.AwaitRun("dl-after", r => r.Str("status") == "CANCELLED", "dl-after auto-cancelled by the monitor", TimeSpan.FromSeconds(30));
        var health = await (await _node.Client.GetAsync("/health")).ReadObject();
        Assert.Equal("ok", health["dependencies"]!["deadlock_monitor"]!["state"]!.GetValue<string>());
    }

    /// <summary>A run whose only task waits for a pool nobody serves: stale_pending after its own 1 s.</summary>
    private async Task SubmitStuck(string runId)
    {
        var created = await _node.Client.PostJson("/runs", $$"""
            {"run_id":"{{runId}}","deadlock":{"pending_stale_s":1},"tasks":[{"task_id":"x","type":"x","pool":"nobody"}]}
            """);
        Assert.Equal(HttpStatusCode.Created, created.StatusCode);
    }
}
