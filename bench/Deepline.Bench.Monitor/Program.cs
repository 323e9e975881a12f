using System.Collections.Immutable;
using System.Diagnostics;
using Akka.Actor;
using Akka.Cluster;
using Akka.Hosting;
using Deepline.Actors.Hosting;
using Deepline.Actors.Index;
using Deepline.Actors.Monitoring;
using Deepline.Actors.Resources;
using Deepline.Actors.Workers;
using Deepline.Actors.Workflows;
using Deepline.Bench;
using Deepline.Domain;
using Microsoft.Data.Sqlite;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

// Usage: dotnet run -c Release --project bench/Deepline.Bench.Monitor -- [--sizes 10000,100000,1000000] [--stuck 100] [--latency-runs 200]
//        dotnet run -c Release --project bench/Deepline.Bench.Monitor -- --resources 10000 --waiting 100000 [--edges 200]
//        dotnet run -c Release --project bench/Deepline.Bench.Monitor -- --resource-e2e 100 [--resources 10000 --waiting 100000]
const string Usage = """
    Deadlock monitor and resource benchmarks (an in-process node on SQLite; nothing else needed).
      [--sizes 10000,100000,1000000] [--stuck 100] [--latency-runs 200]   index scans at each size, detection latency
      --resources N [--waiting 100000] [--edges 200]                       wait-for graph over N resources
      --resource-e2e PAIRS [--resources N --waiting M]                     resource deadlocks found end to end
    """;
if (args.Contains("--help") || args.Contains("-h"))
{
    Console.WriteLine(Usage);
    return;
}
var known = new HashSet<string> { "--sizes", "--stuck", "--latency-runs", "--resources", "--waiting", "--edges", "--resource-e2e" };
if (args.Where((a, i) => i % 2 == 0).FirstOrDefault(a => !known.Contains(a)) is { } unknown)
{
    Console.Error.WriteLine($"unknown option {unknown}\n{Usage}");
    Environment.Exit(2);
}
if (Arg("--resource-e2e", "") is { Length: > 0 } pairs)
{
    await ResourceBench.EndToEnd(int.Parse(pairs), int.Parse(Arg("--resources", "0")), int.Parse(Arg("--waiting", "0")));
    return;
}
if (Arg("--resources", "") is { Length: > 0 } resourceCount)
{
    ResourceBench.Run(int.Parse(resourceCount), int.Parse(Arg("--waiting", "100000")), int.Parse(Arg("--edges", "200")));
    return;
}
var sizes = Arg("--sizes", "10000,100000,1000000").Split(',').Select(int.Parse).ToArray();
var stuck = int.Parse(Arg("--stuck", "100"));
var latencyRuns = int.Parse(Arg("--latency-runs", "200"));

Console.WriteLine($"# Deepline monitor benchmark  {DateTime.UtcNow:yyyy-MM-dd HH:mm} UTC  ({Environment.ProcessorCount} cores, {Environment.OSVersion})");
Console.WriteLine();
Console.WriteLine("## Stuck-run scan over the run index (SQLite, WAL)");
Console.WriteLine("| indexed runs | stuck runs | scan p50 ms | scan p99 ms | due rows returned (a stuck run can be due on two detectors) |");
Console.WriteLine("|---:|---:|---:|---:|---:|");
foreach (var size in sizes) await ScanBench(size, stuck);

Console.WriteLine();
Console.WriteLine($"## Detection latency beyond the threshold ({latencyRuns} stuck runs, threshold 2 s, check_interval_s 1)");
Console.WriteLine("| path | p50 ms | p99 ms | max ms |");
Console.WriteLine("|---|---:|---:|---:|");
await LatencyBench(latencyRuns, runTimers: true);
await LatencyBench(latencyRuns, runTimers: false);
return;

string Arg(string name, string fallback)
{
    var i = Array.IndexOf(args, name);
    return i >= 0 && i + 1 < args.Length ? args[i + 1] : fallback;
}

static async Task ScanBench(int size, int stuckCount)
{
    var dir = Directory.CreateTempSubdirectory("deepline-bench-").FullName;
    try
    {
        var target = SqliteStore.Prepare(dir);
        var thresholds = new DetectorThresholds(900, 3600, 60);
        var store = new RunIndexStore(() => new SqliteConnection(target.ConnectionString), thresholds);
        await store.InitializeAsync();
        var now = DateTimeOffset.UtcNow;
        var sw = Stopwatch.StartNew();
        await Fill(target.ConnectionString, size, stuckCount, now, thresholds);
        Console.Error.WriteLine($"  filled {size:N0} rows in {sw.Elapsed.TotalSeconds:0.0} s");

        var samples = new List<double>();
        var found = 0;
        for (var i = 0; i < 30; i++)
        {
            var t = Stopwatch.GetTimestamp();
            found = (await store.DueAsync(now, 1000)).Count;
            samples.Add(Stopwatch.GetElapsedTime(t).TotalMilliseconds);
        }
        samples.Sort();
        Console.WriteLine($"| {size:N0} | {stuckCount} | {Measurement.Percentile([.. samples], 0.5):0.00} | {Measurement.Percentile([.. samples], 0.99):0.00} | {found} |");
    }
    finally
    {
        SqliteConnection.ClearAllPools();
        Directory.Delete(dir, true);
    }
}

// Healthy runs: finished, or running with deadlines far ahead. Stuck ones: deadlines in the past.
static async Task Fill(string connectionString, int size, int stuckCount, DateTimeOffset now, DetectorThresholds t)
{
    await using var db = new SqliteConnection(connectionString);
    await db.OpenAsync();
    var nowMs = now.ToUnixTimeMilliseconds();
    const int batch = 50_000;
    for (var start = 0; start < size; start += batch)
    {
        await using var tx = (SqliteTransaction)await db.BeginTransactionAsync();
        await using var cmd = db.CreateCommand();
        cmd.Transaction = tx;
        cmd.CommandText = """
            INSERT INTO run_index (run_id, last_seq, workflow_name, client_id, status, created_at, updated_at, task_count,
              pending, queued, running, succeeded, failed, cancelled, skipped, stale_base, heartbeat_base, timeout_base,
              stale_deadline, heartbeat_deadline, timeout_deadline)
            VALUES (@id, 3, 'wf', 'c', @status, @created, @updated, 3, 0, @queued, @running, @succ, 0, 0, 0,
              @stale_base, @hb_base, @timeout_base, @stale_deadline, @hb_deadline, @timeout_deadline)
            """;
        var p = new Dictionary<string, SqliteParameter>();
        foreach (var name in new[] { "id", "status", "created", "updated", "queued", "running", "succ", "stale_base", "hb_base", "timeout_base", "stale_deadline", "hb_deadline", "timeout_deadline" })
            p[name] = cmd.Parameters.Add("@" + name, SqliteType.Integer);
        p["id"].SqliteType = SqliteType.Text;
        p["status"].SqliteType = SqliteType.Text;
        cmd.Prepare();
        for (var i = start; i < Math.Min(size, start + batch); i++)
        {
            var isStuck = i % Math.Max(1, size / stuckCount) == 0 && i / Math.Max(1, size / stuckCount) < stuckCount;
            var running = i % 3 == 0;
            var finished = !isStuck && i % 2 == 0;
            var created = isStuck ? nowMs - 7_200_000 : nowMs - 60_000;
            p["id"].Value = $"run-{i:D8}";
            p["status"].Value = finished ? "SUCCEEDED" : "RUNNING";
            p["created"].Value = created;
            p["updated"].Value = created;
            p["queued"].Value = running ? 0 : 1;
            p["running"].Value = running ? 1 : 0;
            p["succ"].Value = finished ? 3 : 0;
            object Nullable(bool on, long v) => on && !finished ? v : DBNull.Value;
            p["stale_base"].Value = Nullable(!running, created);
            p["hb_base"].Value = Nullable(running, created);
            p["timeout_base"].Value = Nullable(true, created);
            p["stale_deadline"].Value = Nullable(!running, created + t.PendingStaleS * 1000L);
            p["hb_deadline"].Value = Nullable(running, created + t.HeartbeatTimeoutS * 1000L + (isStuck ? 0 : 3_600_000));
            p["timeout_deadline"].Value = Nullable(true, created + t.WorkflowStaleS * 1000L);
            await cmd.ExecuteNonQueryAsync();
        }
        await tx.CommitAsync();
    }
}

static async Task LatencyBench(int runs, bool runTimers)
{
    var dir = Directory.CreateTempSubdirectory("deepline-bench-").FullName;
    try
    {
        var target = SqliteStore.Prepare(dir);
        var thresholds = new DetectorThresholds(2, 3600, 3600);
        var monitor = new MonitorSettings(thresholds, TimeSpan.FromSeconds(1), CancelOnDeadlock: true, AlertWebhookConfigured: false);
        var settings = new WorkflowSettings(new SubmissionPolicy(50, ImmutableDictionary<string, ImmutableHashSet<string>>.Empty),
            TimeSpan.FromSeconds(30), 100, TimeSpan.FromMinutes(2), runTimers ? thresholds : null);
        var (host, system, region) = await MonitorNode.StartAsync(target, settings, monitor);
        using var _ = host;

        var ids = Enumerable.Range(0, runs).Select(i => $"lat-{i}").ToList();
        await Task.WhenAll(ids.Select(id => region.Ask<RunReply>(new SubmitRun(new RunSpec(id, "bench", "bench",
            [new TaskSpec("t", "x", "unserved", null, [])])), TimeSpan.FromSeconds(30))));

        var latencies = new List<double>();
        var deadline = DateTime.UtcNow.AddSeconds(60);
        foreach (var id in ids)
        {
            while (true)
            {
                var s = (await region.Ask<RunReply>(new GetRun(id), TimeSpan.FromSeconds(10))).State;
                if (s.Cancel is { } c)
                {
                    latencies.Add((c.CancelledAt - (s.CreatedAt + TimeSpan.FromSeconds(thresholds.PendingStaleS))).TotalMilliseconds);
                    break;
                }
                if (DateTime.UtcNow > deadline) throw new TimeoutException($"{id} was never detected");
                await Task.Delay(100);
            }
        }
        latencies.Sort();
        Console.WriteLine($"| {(runTimers ? "run timer" : "index scan")} | {Measurement.Percentile([.. latencies], 0.5):0.0} | {Measurement.Percentile([.. latencies], 0.99):0.0} | {latencies[^1]:0.0} |");
        await host.StopAsync();
    }
    finally
    {
        SqliteConnection.ClearAllPools();
        Directory.Delete(dir, true);
    }
}

