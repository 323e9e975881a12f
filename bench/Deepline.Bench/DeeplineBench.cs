using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using Deepline.Actors.Workers;
using Deepline.Node;
using Deepline.Node.Configuration;
using Microsoft.Extensions.Logging;

namespace Deepline.Bench;

/// <summary>
/// A real node in this process (HTTP API, single-node cluster, SQLite journal in a temp directory), one pool with a
/// slot per task; N runs of one task each, all running; then each run cancelled over HTTP, one after the other.
/// </summary>
public static class DeeplineBench
{
    /// <param name="writeLoad">Runs of 5 noop tasks kept in flight while the cancels are measured (0: none).</param>
    /// <param name="breakdown">Also print where each cancel's time went (<see cref="CancelBreakdown"/>).</param>
    public static async Task<Measurement> RunAsync(int tasks, int warmup, TimeSpan pace, int writeLoad = 0, bool breakdown = false)
    {
        Console.WriteLine($"deepline: starting a node with {tasks + warmup} slots" + (writeLoad > 0 ? $", {writeLoad} runs of write load in flight" : ""));
        var dataDir = Directory.CreateTempSubdirectory("deepline-bench-").FullName;
        var port = FreePort();
        var d = DeeplineConfig.Defaults;
        var config = d with
        {
            Http = d.Http with { Port = port },
            Remoting = d.Remoting with { Port = 0 },
            Data = new DataConfig(dataDir),
            Workers = d.Workers with { Slots = tasks + warmup + writeLoad },
            // One client on loopback sends the whole load: measure the node, not the per-caller rate limit.
            Limits = d.Limits with { RatePerSecond = 0 },
        };
        var probe = new TokenProbeHandler();
        var app = DeeplineNode.Build(config, [probe], l => l.ClearProviders());
        await app.StartAsync();
        using var http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{port}"), Timeout = TimeSpan.FromSeconds(30) };
        try
        {
            await Wait.Until(() => Healthy(http) ? 1 : 0, 1, TimeSpan.FromSeconds(60), "deepline: node healthy");

            // Warm-up: JIT, connection pool, SQLite pages; measured the same way and thrown away.
            var warm = Enumerable.Range(0, warmup).Select(i => $"warm-{i}").ToList();
            await Submit(http, warm);
            await Wait.Until(() => probe.Started, warm.Count, TimeSpan.FromSeconds(60), "deepline: warm-up tasks running");
            await CancelEach(http, warm, pace);
            await Wait.Until(() => warm.Count(probe.Fired.ContainsKey), warm.Count, TimeSpan.FromSeconds(30), "deepline: warm-up tokens fired");

            var runs = Enumerable.Range(0, tasks).Select(i => $"bench-{i}").ToList();
            var submitted = Stopwatch.StartNew();
            await Submit(http, runs);
            await Wait.Until(() => probe.Started, warm.Count + runs.Count, TimeSpan.FromSeconds(120), "deepline: tasks running");
            Console.WriteLine($"deepline: {runs.Count} tasks running after {submitted.Elapsed.TotalSeconds:0.0} s; cancelling each run");

            using var load = new CancellationTokenSource();
            var rows0 = Deepline.Actors.Hosting.GroupCommitJournal.Rows;
            var loadClock = Stopwatch.StartNew();
            var background = writeLoad > 0 ? WriteLoad(http, writeLoad, load.Token) : Task.CompletedTask;
            if (writeLoad > 0)
                await Wait.Until(() => Deepline.Actors.Hosting.GroupCommitJournal.Rows - rows0 > 5_000 ? 1 : 0, 1, TimeSpan.FromSeconds(60),
                    "deepline: write load under way");
            var rows1 = Deepline.Actors.Hosting.GroupCommitJournal.Rows;
            var cancelClock = Stopwatch.StartNew();
            using var spans = breakdown ? new CancelBreakdown() : null;
            var gcAtSent = new List<(int, TimeSpan)>(runs.Count);
            var calls = await CancelEach(http, runs, pace, breakdown ? gcAtSent : null);
            var loadRate = (Deepline.Actors.Hosting.GroupCommitJournal.Rows - rows1) / cancelClock.Elapsed.TotalSeconds;
            await load.CancelAsync();
            await background;
            if (writeLoad > 0) Console.WriteLine($"deepline: {loadRate:N0} journal rows/s of write load while cancelling");
            try
            {
                await Wait.Until(() => runs.Count(probe.Fired.ContainsKey), runs.Count, TimeSpan.FromSeconds(30), "deepline: tokens fired");
            }
            catch (TimeoutException e)
            {
                Console.WriteLine(e.Message);
                // What became of them, as the node recorded it (a task cancelled before it started never had a token).
                foreach (var runId in runs.Where(r => !probe.Fired.ContainsKey(r)).Take(10))
                    Console.WriteLine($"  not fired: {runId} (handler calls: {probe.Runs.GetValueOrDefault(runId)}): {(await http.GetStringAsync($"/runs/{runId}"))[..120]}");
            }
            var fired = runs.Select(r => probe.Fired.TryGetValue(r, out var t) ? t : (long?)null).ToList();
            if (spans is not null)
            {
                var gcs = runs.Select((r, i) => probe.FiredGc.TryGetValue(r, out var g)
                    ? (g.Gcs - gcAtSent[i].Item1, g.Pause - gcAtSent[i].Item2) : (0, TimeSpan.Zero)).ToList();
                Console.WriteLine(spans.Table(runs, calls, fired, gcs));
            }
            return Measurement.From(writeLoad > 0 ? $"deepline in-cluster, write load {loadRate:N0} rows/s" : "deepline in-cluster",
                "PUT /runs/{id}/cancel", calls, fired);
        }
        finally
        {
            await app.StopAsync();
            await app.DisposeAsync();
            try { Directory.Delete(dataDir, recursive: true); } catch (IOException) { }
        }
    }

    /// <summary>Diamonds of noop tasks submitted over HTTP, <paramref name="inFlight"/> at a time, until cancelled.</summary>
    private static async Task WriteLoad(HttpClient http, int inFlight, CancellationToken stop)
    {
        var next = 0;
        var workers = Enumerable.Range(0, inFlight).Select(async _ =>
        {
            while (!stop.IsCancellationRequested)
            {
                var id = $"load-{Interlocked.Increment(ref next)}";
                var body = JsonSerializer.Serialize(new
                {
                    run_id = id,
                    tasks = new object[]
                    {
                        new { task_id = "a", type = "noop" }, new { task_id = "b", type = "noop", depends_on = new[] { "a" } },
                        new { task_id = "c", type = "noop", depends_on = new[] { "a" } }, new { task_id = "d", type = "noop", depends_on = new[] { "a" } },
                        new { task_id = "e", type = "noop", depends_on = new[] { "b", "c", "d" } },
                    },
                });
                try
                {
                    using var response = await http.PostAsync("/runs", new StringContent(body, Encoding.UTF8, "application/json"), stop);
                    if (response.StatusCode != HttpStatusCode.Created)
                        throw new InvalidOperationException($"POST /runs {id}: {(int)response.StatusCode}");
                }
                catch (OperationCanceledException) when (stop.IsCancellationRequested)
                {
                    return;
                }
            }
        });
        await Task.WhenAll(workers);
    }

    internal static bool Healthy(HttpClient http)
    {
        try { return http.GetAsync("/health").GetAwaiter().GetResult().StatusCode == HttpStatusCode.OK; }
        catch (HttpRequestException) { return false; }
    }

    /// <summary>One run per id, each with a single task "t"; <paramref name="pool"/> null means the in-cluster default pool.</summary>
    internal static async Task Submit(HttpClient http, IReadOnlyList<string> runIds, string type = TokenProbeHandler.TypeName, string? pool = null)
    {
        await Parallel.ForEachAsync(runIds, new ParallelOptions { MaxDegreeOfParallelism = 16 }, async (runId, ct) =>
        {
            object task = pool is null ? new { task_id = "t", type } : new { task_id = "t", type, pool };
            var body = JsonSerializer.Serialize(new { run_id = runId, tasks = new[] { task } });
            using var response = await http.PostAsync("/runs", new StringContent(body, Encoding.UTF8, "application/json"), ct);
            if (response.StatusCode != HttpStatusCode.Created)
                throw new InvalidOperationException($"POST /runs {runId}: {(int)response.StatusCode} {await response.Content.ReadAsStringAsync(ct)}");
        });
    }

    /// <summary>One cancel at a time: each measurement sees a quiet system, as one operator's cancel would.</summary>
    /// <param name="gcAtSent">If given, the collections so far and their pauses when each call was sent.</param>
    internal static async Task<List<(long Sent, long Returned)>> CancelEach(HttpClient http, IReadOnlyList<string> runIds, TimeSpan pace,
        List<(int Gcs, TimeSpan Pause)>? gcAtSent = null)
    {
        var calls = new List<(long, long)>(runIds.Count);
        var pacer = new Pacer(pace);
        foreach (var runId in runIds)
        {
            await pacer.NextAsync();
            using var content = new StringContent("{\"reason\": \"bench\"}", Encoding.UTF8, "application/json");
            gcAtSent?.Add((GC.CollectionCount(0), GC.GetTotalPauseDuration()));
            var sent = Stopwatch.GetTimestamp();
            using var response = await http.PutAsync($"/runs/{runId}/cancel", content);
            var returned = Stopwatch.GetTimestamp();
            if (response.StatusCode != HttpStatusCode.OK)
                throw new InvalidOperationException($"PUT /runs/{runId}/cancel: {(int)response.StatusCode} {await response.Content.ReadAsStringAsync()}");
            calls.Add((sent, returned));
        }
        return calls;
    }

    internal static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    /// <summary>Runs until cancelled and notes when its token fired (the callback runs on the cancelling thread).</summary>
    private sealed class TokenProbeHandler : ITaskHandler
    {
        public const string TypeName = "bench-wait";
        private int _started;

        public string Type => TypeName;

        public ConcurrentDictionary<string, long> Fired { get; } = new();

        public ConcurrentDictionary<string, int> Runs { get; } = new();

        /// <summary>Collections so far and their pauses when each token fired (for <see cref="CancelBreakdown"/>).</summary>
        public ConcurrentDictionary<string, (int Gcs, TimeSpan Pause)> FiredGc { get; } = new();

        private void Fire(string runId)
        {
            if (Fired.TryAdd(runId, Stopwatch.GetTimestamp())) FiredGc.TryAdd(runId, (GC.CollectionCount(0), GC.GetTotalPauseDuration()));
        }

        public int Started => Volatile.Read(ref _started);

        public async Task<JsonElement?> ExecuteAsync(TaskContext context, CancellationToken cancellationToken)
        {
            using var registration = cancellationToken.Register(() => Fire(context.RunId));
            Interlocked.Increment(ref _started);
            Runs.AddOrUpdate(context.RunId, 1, (_, n) => n + 1);
            try
            {
                await Task.Delay(Timeout.Infinite, cancellationToken);
            }
            catch (OperationCanceledException)
            {
                // Cancel() runs Task.Delay's callback before ours (last registered, first run); when this continuation
                // runs inline on the cancelling thread, disposing our registration on the way out drops our callback
                // before it ran. The token fired all the same: note it here (a few microseconds later).
                Fire(context.RunId);
                throw;
            }
            return null;
        }
    }
}
