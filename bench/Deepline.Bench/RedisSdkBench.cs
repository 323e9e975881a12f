using Deepline.Cancellation.Tests;
using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;
using Deepline.Node;
using Deepline.Node.Configuration;
using Deepline.Worker.Sdk;
using Microsoft.Extensions.Logging;

namespace Deepline.Bench;

/// <summary>
/// (b) in the issue: an external worker. A redis-server of our own on a free loopback port, a real node that mirrors
/// cancels to it, N runs of one task on a pool no node serves; this process is the external worker: it claims every
/// task with TASK_STARTED over HTTP (TaskEventsClient), waits on <c>CancellationSignals.TokenFor(runId)</c>, and
/// acknowledges with TASK_CANCELLED when the token fires, as the SDK's README example does. Then each run is cancelled
/// over HTTP exactly as <see cref="DeeplineBench"/> does it.
/// </summary>
public static class RedisSdkBench
{
    public const string Name = "deepline redis SDK (external worker)";
    private const string Pool = "bench-external";

    /// <summary>A measurement, or the reason there is none (no redis-server here).</summary>
    public static async Task<(Measurement? Result, string? NotMeasured)> RunAsync(int tasks, int warmup, TimeSpan pace)
    {
        if (RedisServer.FindBinary() is null) return (null, "not measured (redis-server not installed)");

        await using var redis = await RedisServer.StartAsync();
        Console.WriteLine($"redis: redis-server on 127.0.0.1:{redis.Port} (--save \"\" --appendonly no); starting a node mirroring cancels to it");
        var dataDir = Directory.CreateTempSubdirectory("deepline-bench-redis-").FullName;
        var port = DeeplineBench.FreePort();
        var d = DeeplineConfig.Defaults;
        var config = d with
        {
            Http = d.Http with { Port = port },
            Remoting = d.Remoting with { Port = 0 },
            Data = new DataConfig(dataDir),
            // The bench's worker claims and then only waits for the cancel: no heartbeats, so the monitor must not
            // flag (and cancel) its tasks as stuck before the bench cancels them.
            Deadlock = d.Deadlock with { HeartbeatTimeoutS = 3600 },
            Redis = new RedisConfig(redis.Connection, 3600),
            // One client on loopback sends the whole load: measure the node, not the per-caller rate limit.
            Limits = d.Limits with { RatePerSecond = 0 },
        };
        var app = DeeplineNode.Build(config, [], l => l.ClearProviders());
        await app.StartAsync();
        var baseAddress = new Uri($"http://127.0.0.1:{port}/");
        using var http = new HttpClient { BaseAddress = baseAddress, Timeout = TimeSpan.FromSeconds(30) };
        // The worker's own connection to the node, as a worker on another machine would have.
        using var workerHttp = new HttpClient { BaseAddress = baseAddress, Timeout = TimeSpan.FromSeconds(30) };
        var events = new TaskEventsClient(workerHttp, "bench-sdk-worker");
        var signals = await CancellationSignals.ConnectAsync(redis.Connection);
        var worker = new ExternalWorker(signals, events);
        try
        {
            await Wait.Until(() => DeeplineBench.Healthy(http) ? 1 : 0, 1, TimeSpan.FromSeconds(60), "redis: node healthy");

            var warm = Enumerable.Range(0, warmup).Select(i => $"rwarm-{i}").ToList();
            await DeeplineBench.Submit(http, warm, "bench-external-wait", Pool);
            await worker.ClaimAllAsync(warm);
            await CancelAndWait(http, worker, warm, pace, "redis: warm-up tokens fired");

            var runs = Enumerable.Range(0, tasks).Select(i => $"rbench-{i}").ToList();
            var submitted = Stopwatch.StartNew();
            await DeeplineBench.Submit(http, runs, "bench-external-wait", Pool);
            var submittedIn = submitted.Elapsed;
            await worker.ClaimAllAsync(runs);
            Console.WriteLine($"redis: {runs.Count} runs submitted in {submittedIn.TotalSeconds:0.0} s, their tasks claimed by the SDK worker " +
                              $"{(submitted.Elapsed - submittedIn).TotalSeconds:0.0} s later; cancelling each run");

            var calls = await CancelAndWait(http, worker, runs, pace, "redis: tokens fired");
            var fired = runs.Select(r => worker.Fired.TryGetValue(r, out var t) ? t : (long?)null).ToList();
            var early = runs.Where((r, n) => fired[n] is { } f && f < calls[n].Sent).ToList();
            if (early.Count > 0) Console.WriteLine($"redis: {early.Count} tokens fired before their cancel was sent: {string.Join(", ", early.Take(10))}");
            await Wait.Until(() => worker.Acknowledged, warm.Count + runs.Count, TimeSpan.FromSeconds(30), "redis: TASK_CANCELLED acknowledged");
            if (worker.Errors.FirstOrDefault() is { } error) Console.WriteLine($"redis: {worker.Errors.Count} worker errors, first: {error}");
            return (Measurement.From(Name, "PUT /runs/{id}/cancel", calls, fired), null);
        }
        finally
        {
            await signals.DisposeAsync();
            await app.StopAsync();
            await app.DisposeAsync();
            try { Directory.Delete(dataDir, recursive: true); } catch (IOException) { }
        }
    }

    private static async Task<List<(long Sent, long Returned)>> CancelAndWait(
        HttpClient http, ExternalWorker worker, IReadOnlyList<string> runs, TimeSpan pace, string what)
    {
        var calls = await DeeplineBench.CancelEach(http, runs, pace);
        try
        {
            await Wait.Until(() => runs.Count(worker.Fired.ContainsKey), runs.Count, TimeSpan.FromSeconds(30), what);
        }
        catch (TimeoutException e)
        {
            Console.WriteLine(e.Message);
        }
        return calls;
    }

    /// <summary>
    /// What an external worker does with the SDK, one task per run: check, claim, wait on the run's token, acknowledge.
    /// The token's callback notes when it fired (it runs on the thread that cancels the token).
    /// </summary>
    private sealed class ExternalWorker(CancellationSignals signals, TaskEventsClient events)
    {
        private int _acknowledged;

        public ConcurrentDictionary<string, long> Fired { get; } = new();

        public ConcurrentQueue<string> Errors { get; } = new();

        public int Acknowledged => Volatile.Read(ref _acknowledged);

        /// <summary>Claims every run's task; returns once all are held (RUNNING) with their token registered.</summary>
        public async Task ClaimAllAsync(IReadOnlyList<string> runIds)
        {
            await Parallel.ForEachAsync(runIds, new ParallelOptions { MaxDegreeOfParallelism = 16 }, async (runId, ct) =>
            {
                if (await signals.IsCancelledAsync(runId)) throw new InvalidOperationException($"run {runId} is already cancelled");
                var claim = await events.StartedAsync(runId, "t", ct);
                if (claim is not TaskEventResult.Accepted) throw new InvalidOperationException($"claim of {runId}/t refused: {claim}");
                var token = signals.TokenFor(runId);
                var registration = token.Register(() => Fired.TryAdd(runId, Stopwatch.GetTimestamp()));
                _ = HoldAsync(runId, token, registration);
            });
        }

        private async Task HoldAsync(string runId, CancellationToken token, CancellationTokenRegistration registration)
        {
            try
            {
                await Task.Delay(Timeout.Infinite, token);
            }
            catch (OperationCanceledException)
            {
                try
                {
                    await events.CancelledAsync(runId, "t", "stopped on cancel");
                    Interlocked.Increment(ref _acknowledged);
                }
                catch (HttpRequestException e)
                {
                    Errors.Enqueue($"{runId}: TASK_CANCELLED: {e.Message}");
                }
            }
            finally
            {
                await registration.DisposeAsync();
                signals.Forget(runId);
            }
        }
    }
}
