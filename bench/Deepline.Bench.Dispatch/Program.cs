using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Deepline.Bench;
using Deepline.Node;
using Deepline.Node.Configuration;
using Deepline.Tests.Shared;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.Logging;

// Usage: dotnet run -c Release --project bench/Deepline.Bench.Dispatch -- [--dp-deliveries 500] [--dp-runs 400] [--dp-tasks 10]
//          [--dp-workers 16] [--dp-retries 200] [--dp-report FILE]
// One node on the embedded defaults (SQLite, in-process pool), everything over its HTTP API on loopback:
//  1. queued -> delivered: pollers wait (wait_s 30) on an external pool; single-task runs are submitted one at a time;
//     latency = the poll answer's arrival - the task's queued_at (the node's clock; same machine).
//  2. throughput: the same runs (tasks noop, no dependencies) once in an in-cluster pool, once in an external pool
//     drained by N HTTP workers (poll max_tasks 10, then TASK_SUCCEEDED per task); completed tasks per second each.
//  3. retry accuracy: a task fails its first attempt with a 0.5 s backoff; lateness = attempt 2 delivered - retry_at.
if (args.Contains("--help"))
{
    Console.WriteLine("Deepline.Bench.Dispatch: --dp-deliveries N (500), --dp-runs N (400), --dp-tasks N per run (10), --dp-workers N (16), --dp-retries N (200), --dp-report FILE");
    return;
}
var deliveries = int.Parse(Arg("--dp-deliveries", "500"));
var runs = int.Parse(Arg("--dp-runs", "400"));
var tasksPerRun = int.Parse(Arg("--dp-tasks", "10"));
var workers = int.Parse(Arg("--dp-workers", "16"));
var retries = int.Parse(Arg("--dp-retries", "200"));
var reportPath = Arg("--dp-report", "");

var dir = Directory.CreateTempSubdirectory("deepline-dispatch-").FullName;
var port = Loopback.FreePort();
var config = DeeplineConfig.Defaults with
{
    Http = DeeplineConfig.Defaults.Http with { Port = port },
    Remoting = DeeplineConfig.Defaults.Remoting with { Port = 0 },
    Data = new DataConfig(dir),
    Workers = DeeplineConfig.Defaults.Workers with { Slots = 64 },
    Limits = DeeplineConfig.Defaults.Limits with { RatePerSecond = 0 },
};
var app = DeeplineNode.Build(config, logging: l => l.ClearProviders().AddConsole().SetMinimumLevel(LogLevel.Warning));
await app.StartAsync();
using var http = new HttpClient(new SocketsHttpHandler { MaxConnectionsPerServer = 512 }) { BaseAddress = new Uri($"http://127.0.0.1:{port}"), Timeout = TimeSpan.FromSeconds(90) };
while (true)
{
    try { if ((await http.GetAsync("/healthz/ready")).IsSuccessStatusCode) break; } catch (HttpRequestException) { }
    await Task.Delay(100);
}
var started = DateTime.UtcNow;
Console.WriteLine($"# Deepline dispatch benchmark  {started:yyyy-MM-dd HH:mm} UTC");
Console.WriteLine($"machine: {Machine.Describe()}");
var lines = new List<string>();

// Warm-up: the JIT and the first journal writes are not what a running node pays.
await Throughput("warmup-incluster", "default", "noop", 50, 5, 0);
await Throughput("warmup-ext", "warm", "etl", 50, 5, workers);

// 1. queued -> delivered to a waiting poller.
{
    var latencies = new ConcurrentBag<double>();
    var pool = "deliver";
    using var stop = new CancellationTokenSource();
    var pollers = Enumerable.Range(0, 4).Select(i => Task.Run(async () =>
    {
        while (!stop.IsCancellationRequested)
        {
            var answer = await Poll(pool, $"d{i}", 30, 1, stop.Token);
            foreach (var t in answer)
            {
                var arrived = DateTimeOffset.UtcNow;
                latencies.Add((arrived - t["queued_at"]!.GetValue<DateTimeOffset>()).TotalMilliseconds);
                await Report(t, "TASK_SUCCEEDED", $"d{i}");
            }
        }
    })).ToList();
    await Task.Delay(500);
    for (var i = 0; i < deliveries; i++)
    {
        await Submit($"deliver-{i}", pool, "etl", 1);
        // One at a time: each submission finds its pollers waiting (this measures the hand-over, not a backlog).
        while (latencies.Count <= i) await Task.Delay(1);
    }
    stop.Cancel();
    var sorted = latencies.Order().ToArray();
    lines.Add("## Queued -> delivered to a waiting poller (HTTP long poll, 4 pollers, one task at a time)");
    lines.Add("");
    lines.Add("| tasks | p50 ms | p90 ms | p99 ms | max ms |");
    lines.Add("| ---: | ---: | ---: | ---: | ---: |");
    lines.Add($"| {sorted.Length} | {P(sorted, 0.5):0.00} | {P(sorted, 0.9):0.00} | {P(sorted, 0.99):0.00} | {sorted[^1]:0.00} |");
    lines.Add("");
    try { await Task.WhenAll(pollers); } catch (OperationCanceledException) { }
}

// 2. completed tasks per second, in-cluster and external, same runs.
{
    var inCluster = await Throughput("incluster", "default", "noop", runs, tasksPerRun, 0);
    var external = await Throughput("external", "ext", "etl", runs, tasksPerRun, workers);
    lines.Add($"## Tasks completed per second ({runs} runs x {tasksPerRun} independent tasks, submitted 32 at a time)");
    lines.Add("");
    lines.Add("| execution | tasks | seconds | tasks/s | HTTP requests/s |");
    lines.Add("| --- | ---: | ---: | ---: | ---: |");
    lines.Add($"| in-cluster pool (64 slots, noop) | {inCluster.Tasks} | {inCluster.Seconds:0.0} | {inCluster.Tasks / inCluster.Seconds:0} | {inCluster.Requests / inCluster.Seconds:0} |");
    lines.Add($"| external over HTTP ({workers} workers, poll max_tasks 10, the tasks of a poll reported side by side) | {external.Tasks} | {external.Seconds:0.0} | {external.Tasks / external.Seconds:0} | {external.Requests / external.Seconds:0} |");
    lines.Add("");
    lines.Add($"External / in-cluster: {external.Tasks / external.Seconds / (inCluster.Tasks / inCluster.Seconds):0.00}.");
    lines.Add("");
}

// 3. retry scheduling accuracy.
{
    var pool = "retry";
    var lateness = new ConcurrentBag<double>();
    var retryAt = new ConcurrentDictionary<string, DateTimeOffset>();
    using var stop = new CancellationTokenSource();
    var pollers = Enumerable.Range(0, 8).Select(i => Task.Run(async () =>
    {
        while (!stop.IsCancellationRequested)
        {
            foreach (var t in await Poll(pool, $"r{i}", 30, 10, stop.Token))
            {
                var arrived = DateTimeOffset.UtcNow;
                var runId = t["run_id"]!.GetValue<string>();
                if (t["attempt"]!.GetValue<int>() == 1)
                {
                    var answer = await Report(t, "TASK_FAILED", $"r{i}");
                    retryAt[runId] = answer["retry_at"]!.GetValue<DateTimeOffset>();
                }
                else
                {
                    // The failure's answer may still be on its way in another poller's loop.
                    while (!retryAt.ContainsKey(runId)) await Task.Delay(1);
                    lateness.Add((arrived - retryAt[runId]).TotalMilliseconds);
                    await Report(t, "TASK_SUCCEEDED", $"r{i}");
                }
            }
        }
    })).ToList();
    for (var i = 0; i < retries; i++)
        await Submit($"retry-{i}", pool, "etl", 1, ""","retry":{"max_attempts":2,"initial_interval_s":0.5}""");
    var watch = Stopwatch.StartNew();
    while (lateness.Count < retries && watch.Elapsed < TimeSpan.FromSeconds(120)) await Task.Delay(20);
    stop.Cancel();
    var sorted = lateness.Order().ToArray();
    lines.Add("## Retry scheduling accuracy (backoff 0.5 s; lateness = attempt 2 delivered to a waiting poller - retry_at)");
    lines.Add("");
    lines.Add("| retries | p50 ms | p99 ms | max ms | min ms |");
    lines.Add("| ---: | ---: | ---: | ---: | ---: |");
    lines.Add($"| {sorted.Length} | {P(sorted, 0.5):0.0} | {P(sorted, 0.99):0.0} | {sorted[^1]:0.0} | {sorted[0]:0.0} |");
    lines.Add("");
    try { await Task.WhenAll(pollers); } catch (OperationCanceledException) { }
}

var report = new StringBuilder();
report.AppendLine($"### {started:yyyy-MM-dd HH:mm} UTC, `dotnet run -c Release --project bench/Deepline.Bench.Dispatch -- {string.Join(' ', args)}`");
report.AppendLine();
report.AppendLine($"machine: {Machine.Describe()}; store: SQLite (embedded default); one node, HTTP on loopback");
report.AppendLine();
foreach (var l in lines) report.AppendLine(l);
Console.WriteLine(report);
if (reportPath.Length > 0) await File.AppendAllTextAsync(reportPath, report + "\n");
await app.StopAsync();
try { Directory.Delete(dir, true); } catch (IOException) { }
return;

async Task<(int Tasks, double Seconds, long Requests)> Throughput(string prefix, string pool, string type, int runCount, int tasks, int workerCount)
{
    long requests = 0;
    var total = runCount * tasks;
    var done = 0;
    using var stop = new CancellationTokenSource();
    var drainers = Enumerable.Range(0, workerCount).Select(i => Task.Run(async () =>
    {
        while (!stop.IsCancellationRequested)
        {
            var leased = await Poll(pool, $"{prefix}-w{i}", 1, 10, stop.Token);
            Interlocked.Increment(ref requests);
            // A worker runs the tasks of one poll side by side, and reports each as it ends.
            await Task.WhenAll(leased.Select(async t =>
            {
                await Report(t, "TASK_SUCCEEDED", $"{prefix}-w{i}");
                Interlocked.Increment(ref requests);
                Interlocked.Increment(ref done);
            }));
        }
    })).ToList();
    var watch = Stopwatch.StartNew();
    var ids = Enumerable.Range(0, runCount).Select(i => $"{prefix}-{i}").ToList();
    await Parallel.ForEachAsync(ids, new ParallelOptions { MaxDegreeOfParallelism = 32 }, async (id, _) =>
    {
        await Submit(id, pool, type, tasks);
        Interlocked.Increment(ref requests);
    });
    if (workerCount == 0)
    {
        // In-cluster: count finished runs by reading them (as a user would), until all are done.
        var pending = new ConcurrentQueue<string>(ids);
        while (!pending.IsEmpty)
        {
            var check = new List<string>();
            while (check.Count < 64 && pending.TryDequeue(out var id)) check.Add(id);
            var states = await Task.WhenAll(check.Select(async id => (id, JsonNode.Parse(await http.GetStringAsync($"/runs/{id}"))!["status"]!.GetValue<string>())));
            Interlocked.Add(ref requests, check.Count);
            foreach (var (id, status) in states)
                if (status == "RUNNING") pending.Enqueue(id);
        }
        done = total;
    }
    else
    {
        while (Volatile.Read(ref done) < total && watch.Elapsed < TimeSpan.FromMinutes(10)) await Task.Delay(5);
    }
    var seconds = watch.Elapsed.TotalSeconds;
    stop.Cancel();
    try { await Task.WhenAll(drainers); } catch (OperationCanceledException) { }
    Console.WriteLine($"{prefix}: {done} tasks in {seconds:0.0} s");
    return (done, seconds, requests);
}

async Task Submit(string runId, string pool, string type, int tasks, string extra = "")
{
    var body = $$"""{"run_id":"{{runId}}","tasks":[{{string.Join(",", Enumerable.Range(0, tasks).Select(i => $$"""{"task_id":"t{{i}}","type":"{{type}}","pool":"{{pool}}"{{extra}}}"""))}}]}""";
    using var response = await http.PostAsync("/runs", new StringContent(body, Encoding.UTF8, "application/json"));
    if (!response.IsSuccessStatusCode) throw new InvalidOperationException($"submit {runId}: {(int)response.StatusCode} {await response.Content.ReadAsStringAsync()}");
}

async Task<List<JsonObject>> Poll(string pool, string worker, int waitS, int max, CancellationToken ct)
{
    try
    {
        using var response = await http.PostAsync($"/pools/{pool}/tasks/poll",
            new StringContent($$"""{"worker_id":"{{worker}}","wait_s":{{waitS}},"max_tasks":{{max}}}""", Encoding.UTF8, "application/json"), ct);
        var body = JsonNode.Parse(await response.Content.ReadAsStringAsync(ct))!;
        return [.. body["tasks"]!.AsArray().Select(t => t!.AsObject())];
    }
    catch (OperationCanceledException) when (ct.IsCancellationRequested)
    {
        return [];
    }
}

async Task<JsonObject> Report(JsonObject task, string kind, string worker)
{
    var body = new JsonObject
    {
        ["event"] = kind, ["worker_id"] = worker, ["attempt"] = task["attempt"]!.GetValue<int>(),
        ["error"] = kind == "TASK_FAILED" ? "planned failure" : null,
    };
    using var response = await http.PostAsync($"/runs/{task["run_id"]}/tasks/{task["task_id"]}/events",
        new StringContent(body.ToJsonString(), Encoding.UTF8, "application/json"));
    return JsonNode.Parse(await response.Content.ReadAsStringAsync())!.AsObject();
}

static double P(double[] sorted, double q) => Measurement.Percentile(sorted, q);

string Arg(string name, string fallback)
{
    var i = Array.IndexOf(args, name);
    return i >= 0 && i + 1 < args.Length ? args[i + 1] : fallback;
}
