using System.Collections.Immutable;
using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;
using Akka.Actor;
using Akka.Cluster;
using Akka.Hosting;
using Deepline.Actors.Hosting;
using Deepline.Actors.Index;
using Deepline.Actors.Monitoring;
using Deepline.Bench;
using Deepline.Domain;
using Deepline.Node;
using Deepline.Node.Configuration;
using Deepline.Tests.Shared;
using Microsoft.AspNetCore.Builder;
using Microsoft.Data.Sqlite;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

// Usage: dotnet run -c Release --project bench/Deepline.Bench.Throughput -- [--tp-runs 1000] [--tp-tasks 5] [--tp-slots 256] [--tp-concurrency 64]
//          [--tp-active 10000] [--tp-sample 200] [--tp-skip-transitions] [--tp-skip-active] [--tp-report docs/benchmarks-throughput.md]
// Flags carry a tp- prefix from when `./build.sh bench` handed the same arguments to every benchmark (kept: documented commands use them).
// The defaults finish in about three minutes on 2 cores; --tp-runs 2000 --tp-active 100000 is the design target.
if (args.Contains("--help"))
{
    Console.WriteLine("Deepline.Bench.Throughput: --tp-runs N (workflows, default 1000), --tp-tasks N (noop tasks per run: 5 is a diamond, " +
        "more are layers of 10 where each task waits for one of the layer before; default 5), --tp-slots N (pool slots, 256), " +
        "--tp-soak-s N (instead: a steady load for N s without and with retention, each pass on a fresh store of --tp-store (sqlite or postgresql); --tp-soak-rate runs/s (300), --tp-soak-retention-s (60), --tp-soak-sample-s (10), --tp-slots (64 here), --tp-plot-dir), --tp-concurrency N (submissions in flight, 64), --tp-active N (open runs held, 10000), --tp-active-tasks N (tasks per open run, 1), --tp-sample N (GETs, 200), " +
        "--tp-warmup-runs N (runs of the same shape first, not counted; 500), --tp-sweep 8,32,128 (transitions/s and run latency at each number of submissions in flight; --tp-plot-dir DIR writes PNG plots), --tp-skip-transitions, --tp-skip-active, --tp-hold-s N (keep the open runs up N s after measuring their memory, for a heap dump), --tp-http (submit and poll over HTTP), --tp-passivate-s N (the node's passivate_after_s), --tp-alloc-types N (the types most allocated while measuring transitions), --tp-store sqlite|postgresql|both (PostgreSQL: --tp-connection CS, or a throwaway server started here), --tp-report FILE (append the tables, machine and command to FILE)");
    return;
}
var runs = int.Parse(Arg("--tp-runs", "1000"));
var tasksPerRun = int.Parse(Arg("--tp-tasks", "5"));
// A node runs for days: the measured pass starts after tiered JIT has compiled the hot path (a short cold pass spent a
// third of its CPU in the JIT's background thread).
var warmupRuns = int.Parse(Arg("--tp-warmup-runs", "500"));
// Layers of 10, wider when a run would otherwise be deeper than max_dependency_depth (50): 10,000 tasks are 50 layers of 200.
static int LayerWidth(int tasks) => Math.Max(10, (tasks + 49) / 50);
var slots = int.Parse(Arg("--tp-slots", "256"));
var concurrency = int.Parse(Arg("--tp-concurrency", "64"));
var active = int.Parse(Arg("--tp-active", "10000"));
// --tp-active-tasks N: each open run holds N tasks, all QUEUED in an external pool (memory per open task, not only per run).
var activeTasks = int.Parse(Arg("--tp-active-tasks", "1"));
var sample = int.Parse(Arg("--tp-sample", "200"));
var reportPath = Arg("--tp-report", "");
// --tp-store sqlite | postgresql | both. PostgreSQL: --tp-connection "Host=...;Database=..." (an empty database), or
// without it a throwaway PostgreSQL 15 server started here on loopback with a production server's durability (fsync,
// synchronous_commit and full_page_writes on: a commit returns after its WAL flush). The table names what the server had.
var storeArg = Arg("--tp-store", "sqlite");
var stores = storeArg switch
{
    "sqlite" => new[] { "sqlite" },
    "postgresql" => ["postgresql"],
    "both" => ["sqlite", "postgresql"],
    _ => throw new ArgumentException($"--tp-store: expected sqlite, postgresql or both, got '{storeArg}'"),
};
await using var postgres = stores.Contains("postgresql") && Arg("--tp-connection", "").Length == 0 ? await PostgresServer.StartAsync(durable: true) : null;
async Task<StoreConfig?> UseStore(string store) => store == "sqlite"
    ? null
    : new StoreConfig(StoreConfig.PostgreSql, postgres is null ? Arg("--tp-connection", "") : await postgres.CreateDatabaseAsync($"bench_{Guid.NewGuid():N}"));
// --tp-http: runs are submitted and polled over the node's HTTP API (as a user would), not sent to the shard region.
BenchNode.OverHttp = args.Contains("--tp-http");
// --tp-alloc-types N: the N types that took most of the measured window's allocated bytes (sampled by the runtime).
AllocationSampler.Top = int.Parse(Arg("--tp-alloc-types", "0"), System.Globalization.CultureInfo.InvariantCulture);
// --tp-passivate-s N: orchestrator.runs.passivate_after_s of the node (how long a finished run stays in memory).
if (Arg("--tp-passivate-s", "") is { Length: > 0 } passivate) BenchNode.PassivateAfterS = int.Parse(passivate, System.Globalization.CultureInfo.InvariantCulture);

var started = DateTime.UtcNow;
var machine = Machine.Describe();
var lines = new List<string>();

// --tp-soak-s N: a steady load for N s without retention, then the same with --tp-soak-retention-s (60); nothing else.
if (int.Parse(Arg("--tp-soak-s", "0")) is > 0 and var soakS)
{
    var rate = int.Parse(Arg("--tp-soak-rate", "300"));
    var sampleS = int.Parse(Arg("--tp-soak-sample-s", "10"));
    var soakSlots = int.Parse(Arg("--tp-slots", "64"));
    Console.WriteLine($"# Deepline soak benchmark  {started:yyyy-MM-dd HH:mm} UTC\nmachine: {machine}\nstore: {stores[0]}");
    var loadAtStart = LoadAverage();
    BenchNode.LogLevel = LogLevel.Error;
    // Each pass on a fresh store (with --tp-store postgresql, a new database on the same server).
    BenchNode.Store = await UseStore(stores[0]);
    var baseline = await Soak.RunAsync(soakS, rate, 0, sampleS, soakSlots);
    BenchNode.Store = await UseStore(stores[0]);
    var retained = await Soak.RunAsync(soakS, rate, int.Parse(Arg("--tp-soak-retention-s", "60")), sampleS, soakSlots);
    lines.AddRange(Soak.Table(baseline, retained, rate));
    if (Arg("--tp-plot-dir", "") is { Length: > 0 } soakPlots)
        foreach (var file in Soak.Plot(baseline, retained, soakPlots, $"{Environment.ProcessorCount} cores, {rate} runs/s"))
            lines.Add($"plot: {file}");
    lines.Add($"Load average (1/5/15 min) before: {loadAtStart}, after: {LoadAverage()} ({Environment.ProcessorCount} cores).");
    lines.Add("");
    foreach (var l in lines) Console.WriteLine(l);
    if (reportPath.Length > 0)
    {
        var sb = new StringBuilder($"### Run of {started:yyyy-MM-dd HH:mm} UTC\n\n- machine: {machine}\n- command: `dotnet run -c Release --project bench/Deepline.Bench.Throughput -- {string.Join(' ', args)}`\n\n");
        foreach (var l in lines) sb.AppendLine(l.StartsWith("## ", StringComparison.Ordinal) ? "#" + l : l);
        File.AppendAllText(reportPath, sb.ToString());
    }
    return;
}
Console.WriteLine($"# Deepline throughput benchmark  {started:yyyy-MM-dd HH:mm} UTC");
Console.WriteLine($"machine: {machine}");
var loadBefore = LoadAverage();

if (!args.Contains("--tp-skip-transitions"))
{
    lines.Add(tasksPerRun == 5
        ? "## Task transitions (5 noop tasks per run: a -> b,c,d -> e; in-cluster pool)"
        : $"## Task transitions ({tasksPerRun} noop tasks per run in layers of {LayerWidth(tasksPerRun)}; in-cluster pool)");
    if (BenchNode.OverHttp) lines[^1] += ", submitted and polled over HTTP";
    lines.Add("| store | runs | tasks | slots | journalled events | submit s | submissions/s | first submit to last SUCCEEDED s | transitions/s | index caught up s | process CPU ms per 1,000 events | journal rows per commit | store's single-row commits/s | transitions/s ÷ single-row commits/s |");
    lines.Add("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    foreach (var store in stores)
    {
        BenchNode.Store = await UseStore(store);
        var r = await TransitionsBench(runs, tasksPerRun, slots, concurrency, warmupRuns);
        lines.Add($"| {r.Store} | {r.Runs:N0} | {r.Runs * tasksPerRun:N0} | {slots} | {r.Events:N0} | {r.SubmitS:0.0} | {r.Runs / r.SubmitS:N0} | {r.WallS:0.0} | {r.Events / r.WallS:N0} | {r.IndexS:0.0} | {r.CpuMs / r.Events * 1000:N0} | {r.RowsPerCommit:0.0} | {r.RawCommits:N0} | {r.Events / r.WallS / r.RawCommits:0.00} |");
    }
    lines.Add("");
}

// --tp-sweep 8,32,128: the same batch at each number of submissions in flight, per store; --tp-plot-dir DIR writes PNGs.
if (Arg("--tp-sweep", "") is { Length: > 0 } sweepArg)
{
    var levels = sweepArg.Split(',').Select(int.Parse).ToList();
    var points = new List<LoadSweep.Point>();
    foreach (var store in stores)
    {
        BenchNode.Store = await UseStore(store);
        points.AddRange(await LoadSweep.RunAsync(store, levels, runs, slots, warmupRuns, tasksPerRun == 5 ? Diamond : _ => Layers(tasksPerRun)));
    }
    lines.Add($"## Load sweep ({runs:N0} runs of {tasksPerRun} noop tasks at each level; latency: submission accepted to last transition)");
    lines.Add("| store | submissions in flight | transitions/s | submissions/s | run latency p50 ms | run latency p99 ms | journal rows per commit |");
    lines.Add("|---|---:|---:|---:|---:|---:|---:|");
    foreach (var p in points)
        lines.Add($"| {p.Store} | {p.InFlight} | {p.TransitionsPerS:N0} | {p.SubmissionsPerS:N0} | {p.LatencyP50Ms:N1} | {p.LatencyP99Ms:N1} | {p.RowsPerCommit:0.0} |");
    lines.Add("");
    if (Arg("--tp-plot-dir", "") is { Length: > 0 } plotDir)
        foreach (var file in LoadSweep.Plot(points, plotDir, $"{Environment.ProcessorCount} cores, load average {LoadAverage()}"))
            lines.Add($"plot: {file}");
    lines.Add("");
}

if (!args.Contains("--tp-skip-active"))
{
    BenchNode.Store = await UseStore(stores[0]);
    var r = await ActiveBench(active, activeTasks, concurrency, sample, int.Parse(Arg("--tp-hold-s", "0")));
    lines.Add(activeTasks == 1
        ? "## Active runs (one task each in an external pool, so every run stays open with its task QUEUED)"
        : $"## Active runs ({activeTasks} tasks each in an external pool, so every run stays open with its tasks QUEUED)");
    lines.Add("| open runs | open tasks | submit s | submissions/s | managed heap MiB (full GC) | heap KiB/run | heap KiB/open task | working set MiB | working set KiB/run | GET sample | GET p50 ms | GET p99 ms | index caught up s |");
    lines.Add("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    lines.Add($"| {r.Runs:N0} | {r.Runs * activeTasks:N0} | {r.SubmitS:0.0} | {r.Runs / r.SubmitS:N0} | {r.HeapMiB:0} | {r.HeapKiBPerRun:0.0} | {r.HeapKiBPerRun / activeTasks:0.00} | {r.WorkingSetMiB:0} | {r.WorkingSetKiBPerRun:0.0} | {r.Sampled} | {r.GetP50:0.0} | {r.GetP99:0.0} | {r.IndexS:0.0} |");
    lines.Add("");
}

lines.Add($"Load average (1/5/15 min) before: {loadBefore}, after: {LoadAverage()} ({Environment.ProcessorCount} cores).");
lines.Add("");
Console.WriteLine();
foreach (var l in lines) Console.WriteLine(l);

if (reportPath.Length > 0)
{
    var command = "dotnet run -c Release --project bench/Deepline.Bench.Throughput -- " + string.Join(' ', args);
    var sb = new StringBuilder();
    sb.AppendLine($"### Run of {started:yyyy-MM-dd HH:mm} UTC");
    sb.AppendLine();
    sb.AppendLine($"- machine: {machine}");
    sb.AppendLine($"- command: `{command.Trim()}`");
    sb.AppendLine();
    foreach (var l in lines) sb.AppendLine(l.StartsWith("## ", StringComparison.Ordinal) ? "#" + l : l);
    File.AppendAllText(reportPath, sb.ToString());
    Console.WriteLine($"appended to {reportPath}");
}
return;

string Arg(string name, string fallback)
{
    var i = Array.IndexOf(args, name);
    return i >= 0 && i + 1 < args.Length ? args[i + 1] : fallback;
}

static async Task<(string Store, int Runs, long Events, double SubmitS, double WallS, double IndexS, double CpuMs, double RowsPerCommit, double RawCommits)> TransitionsBench(int runs, int tasksPerRun, int slots, int concurrency, int warmupRuns)
{
    await using var node = await BenchNode.StartAsync(slots);
    Func<string, ImmutableArray<TaskSpec>> shape = tasksPerRun == 5 ? Diamond : _ => Layers(tasksPerRun);
    await node.WarmUpAsync(concurrency, warmupRuns, shape);
    var rawCommits = node.RawCommitsPerSecond(TimeSpan.FromSeconds(3));
    var storeLabel = node.Describe();
    Console.Error.WriteLine($"store: {storeLabel}, {rawCommits:N0} single-row commits/s on its own");
    var baseline = node.JournalRows();

    var ids = Enumerable.Range(0, runs).Select(i => $"tx-{i:D7}").ToList();
    Console.Error.WriteLine($"transitions: submitting {runs:N0} runs of {tasksPerRun} noop tasks ({concurrency} in flight)");
    var cpu0 = CpuMs();
    var (commits0, rows0) = (GroupCommitJournal.Commits, GroupCommitJournal.Rows);
    var finished0 = node.Finished();
    using var sampler = AllocationSampler.Top > 0 ? new AllocationSampler() : null;
    sampler?.Start();
    var clock = Stopwatch.StartNew();
    await node.SubmitAllAsync(ids, shape, concurrency);
    var submitS = clock.Elapsed.TotalSeconds;
    await node.WaitFinishedAsync(ids, finished0, TimeSpan.FromMinutes(10));
    var wallS = clock.Elapsed.TotalSeconds;
    await node.WaitIndexAsync(TimeSpan.FromMinutes(5));
    var indexS = clock.Elapsed.TotalSeconds;
    var cpuMs = CpuMs() - cpu0;
    var rowsPerCommit = (double)(GroupCommitJournal.Rows - rows0) / Math.Max(1, GroupCommitJournal.Commits - commits0);
    var events = node.JournalRows() - baseline;
    Console.Error.WriteLine($"transitions: {events:N0} events in {wallS:0.0} s");
    if (sampler is not null)
        foreach (var (type, share) in sampler.Stop(AllocationSampler.Top)) Console.WriteLine($"  allocated {share,6:P1} {type}");
    return (storeLabel, runs, events, submitS, wallS, indexS, cpuMs, rowsPerCommit, rawCommits);
}

static async Task<(int Runs, double SubmitS, double HeapMiB, double HeapKiBPerRun, double WorkingSetMiB, double WorkingSetKiBPerRun,
    int Sampled, double GetP50, double GetP99, double IndexS)> ActiveBench(int runs, int tasksPerRun, int concurrency, int sample, int holdS)
{
    await using var node = await BenchNode.StartAsync(4);
    await node.WarmUpAsync(concurrency);
    var (heap0, ws0) = Memory();

    var ids = Enumerable.Range(0, runs).Select(i => $"open-{i:D7}").ToList();
    Console.Error.WriteLine($"active: submitting {runs:N0} runs that stay open ({concurrency} in flight)");
    var clock = Stopwatch.StartNew();
    ImmutableArray<TaskSpec> open = [.. Enumerable.Range(0, tasksPerRun).Select(i => new TaskSpec(i == 0 ? "t" : $"t{i}", "noop", "external", null, []))];
    await node.SubmitAllAsync(ids, _ => open, concurrency);
    var submitS = clock.Elapsed.TotalSeconds;
    await node.WaitIndexAsync(TimeSpan.FromMinutes(10));
    var indexS = clock.Elapsed.TotalSeconds;
    var (heap1, ws1) = Memory();
    // --tp-hold-s N: the node stays up with its open runs, e.g. for `dotnet-dump collect` and `dumpheap -stat`.
    if (holdS > 0)
    {
        Console.WriteLine($"  holding {runs:N0} open runs for {holdS} s (pid {Environment.ProcessId})");
        await Task.Delay(TimeSpan.FromSeconds(holdS));
    }

    var latencies = new List<double>();
    var rng = new Random(7);
    for (var i = 0; i < sample; i++)
    {
        var id = ids[rng.Next(ids.Count)];
        var t = Stopwatch.GetTimestamp();
        var state = await node.GetAsync(id);
        latencies.Add(Stopwatch.GetElapsedTime(t).TotalMilliseconds);
        if (state is not { Status: RunStatus.RUNNING } || state.Tasks["t"].State != TaskState.QUEUED)
            throw new InvalidOperationException($"{id} is {state?.Status}, expected RUNNING with its task QUEUED");
    }
    latencies.Sort();
    const double MiB = 1024 * 1024;
    return (runs, submitS, (heap1 - heap0) / MiB, (heap1 - heap0) / 1024.0 / runs, (ws1 - ws0) / MiB, (ws1 - ws0) / 1024.0 / runs,
        sample, Measurement.Percentile([.. latencies], 0.5), Measurement.Percentile([.. latencies], 0.99), indexS);
}

// Wall time on a shared machine moves with everything else running; the CPU this process spent does much less.
static double CpuMs()
{
    using var p = Process.GetCurrentProcess();
    return p.TotalProcessorTime.TotalMilliseconds;
}

static string LoadAverage() => File.Exists("/proc/loadavg") ? string.Join(' ', File.ReadAllText("/proc/loadavg").Split(' ').Take(3)) : "n/a";

static (long Heap, long WorkingSet) Memory()
{
    GC.Collect(GC.MaxGeneration, GCCollectionMode.Forced, blocking: true, compacting: true);
    GC.WaitForPendingFinalizers();
    var heap = GC.GetTotalMemory(forceFullCollection: true);
    using var p = Process.GetCurrentProcess();
    return (heap, p.WorkingSet64);
}

static ImmutableArray<TaskSpec> Diamond(string runId) =>
[
    new TaskSpec("a", "noop", TaskSpec.DefaultPool, null, []),
    new TaskSpec("b", "noop", TaskSpec.DefaultPool, null, ["a"]),
    new TaskSpec("c", "noop", TaskSpec.DefaultPool, null, ["a"]),
    new TaskSpec("d", "noop", TaskSpec.DefaultPool, null, ["a"]),
    new TaskSpec("e", "noop", TaskSpec.DefaultPool, null, ["b", "c", "d"]),
];

// Long runs keep the node busy with transitions rather than submissions: each task waits for one task of the layer
// before, so a run has up to LayerWidth tasks queued at once and lives for tasks / LayerWidth rounds.
static ImmutableArray<TaskSpec> Layers(int tasks)
{
    var width = LayerWidth(tasks);
    return [.. Enumerable.Range(0, tasks).Select(i => new TaskSpec($"t{i}", "noop", TaskSpec.DefaultPool, null, i < width ? [] : [$"t{i - width}"]))];
}

/// <summary>
/// A real node in this process on the embedded defaults (config.yaml defaults, hocon/deepline.hocon, SQLite in WAL mode
/// in a temp directory, index projection and deadlock monitor on); runs are submitted straight to the shard region.
/// </summary>
internal sealed class BenchNode : IAsyncDisposable
{
    private readonly WebApplication _app;
    private readonly string _dir;
    private readonly IActorRef _region;
    private readonly RunIndexStore _index;
    private readonly PersistenceTarget _store;

    /// <summary>Submit and poll over HTTP (POST /runs, GET /runs/{id}) instead of asking the shard region.</summary>
    public static bool OverHttp { get; set; }

    /// <summary>The node's console log level (the soak's cancels would log one warning each).</summary>
    public static LogLevel LogLevel { get; set; } = LogLevel.Warning;

    /// <summary>The node's <c>orchestrator.retention.*</c>.</summary>
    public static RetentionPolicy Retention { get; set; } = RetentionPolicy.Forever;

    /// <summary>The node's <c>orchestrator.runs.passivate_after_s</c>; null: its default.</summary>
    public static int? PassivateAfterS { get; set; }

    private HttpClient? _http;

    /// <summary>The store every bench node uses; null: the embedded SQLite default in a temp directory.</summary>
    public static StoreConfig? Store { get; set; }

    private BenchNode(WebApplication app, string dir, IActorRef region, RunIndexStore index, PersistenceTarget store)
    {
        (_app, _dir, _region, _index, _store) = (app, dir, region, index, store);
    }

    public static async Task<BenchNode> StartAsync(int slots)
    {
        var dir = Directory.CreateTempSubdirectory("deepline-bench-throughput-").FullName;
        var d = DeeplineConfig.Defaults;
        var config = d with
        {
            Http = d.Http with { Port = FreePort() },
            Remoting = d.Remoting with { Port = 0 },
            Data = new DataConfig(dir),
            Store = Store ?? d.Store,
            Workers = d.Workers with { Slots = slots },
            Runs = PassivateAfterS is { } passivate ? d.Runs with { PassivateAfterS = passivate } : d.Runs,
            Retention = Retention,
            // One client on loopback sends the whole load: measure the node, not the per-caller rate limit.
            Limits = d.Limits with { RatePerSecond = 0 },
        };
        var app = DeeplineNode.Build(config, logging: l => l.ClearProviders().AddConsole().SetMinimumLevel(LogLevel));
        await app.StartAsync();
        var system = app.Services.GetRequiredService<ActorSystem>();
        var deadline = DateTime.UtcNow.AddSeconds(60);
        while (Cluster.Get(system).SelfMember.Status != MemberStatus.Up)
        {
            if (DateTime.UtcNow > deadline) throw new TimeoutException("node did not come up within 60 s");
            await Task.Delay(50);
        }
        var region = await ActorRegistry.For(system).GetAsync<WorkflowRegion>();
        var persistence = app.Services.GetRequiredService<PersistenceTarget>();
        return new BenchNode(app, dir, region, app.Services.GetRequiredService<RunIndexStore>(), persistence)
        {
            _http = OverHttp
                ? new HttpClient(new SocketsHttpHandler { MaxConnectionsPerServer = 256 })
                    { BaseAddress = new Uri($"http://127.0.0.1:{config.Http.Port}"), Timeout = TimeSpan.FromSeconds(60) }
                : null,
        };
    }

    /// <summary>JIT, SQLite pages, shard allocation: measured the same way as the real thing and thrown away.</summary>
    public Task WarmUpAsync(int concurrency) => WarmUpAsync(concurrency, 200, _ => [new TaskSpec("a", "noop", TaskSpec.DefaultPool, null, [])]);

    public async Task WarmUpAsync(int concurrency, int runs, Func<string, ImmutableArray<TaskSpec>> shape)
    {
        Console.Error.WriteLine($"warm-up: {runs:N0} runs of the measured shape, not counted");
        var ids = Enumerable.Range(0, runs).Select(i => $"warm-{i}").ToList();
        await SubmitAllAsync(ids, shape, concurrency);
        await WaitAllAsync(ids, RunStatus.SUCCEEDED, TimeSpan.FromMinutes(10));
        await WaitIndexAsync(TimeSpan.FromMinutes(5));
    }

    public async Task SubmitAllAsync(IReadOnlyList<string> ids, Func<string, ImmutableArray<TaskSpec>> tasks, int concurrency)
    {
        var done = 0;
        var progress = Stopwatch.StartNew();
        await Parallel.ForEachAsync(ids, new ParallelOptions { MaxDegreeOfParallelism = concurrency }, async (id, _) =>
        {
            if (_http is { } http)
            {
                var body = System.Text.Json.JsonSerializer.Serialize(new
                {
                    run_id = id, workflow_name = "bench",
                    tasks = tasks(id).Select(t => new { task_id = t.TaskId, type = t.Type, pool = t.Pool, depends_on = t.DependsOn.ToArray() }),
                });
                using var response = await http.PostAsync("/runs", new StringContent(body, Encoding.UTF8, "application/json"));
                if (response.StatusCode != HttpStatusCode.Created)
                    throw new InvalidOperationException($"submit {id}: {(int)response.StatusCode} {await response.Content.ReadAsStringAsync()}");
            }
            else
            {
                var reply = await _region.Ask<IDeeplineMessage>(new SubmitRun(new RunSpec(id, "bench", "bench", tasks(id))), TimeSpan.FromSeconds(60));
                if (reply is not RunReply) throw new InvalidOperationException($"submit {id}: {reply}");
            }
            var n = Interlocked.Increment(ref done);
            if (n % 10_000 == 0) Console.Error.WriteLine($"  submitted {n:N0} in {progress.Elapsed.TotalSeconds:0.0} s");
        });
    }

    public IActorRef Region => _region;

    /// <summary>
    /// Bytes of the store: the SQLite database (with its indexes) and its WAL in the data directory, or the PostgreSQL
    /// database's size on disk (tables, indexes, TOAST; the server's WAL is shared and not counted).
    /// </summary>
    public (long Database, long Wal) StoreBytes()
    {
        if (_store.IsPostgreSql) return (Count("SELECT pg_database_size(current_database())"), 0);
        var files = new DirectoryInfo(_dir).EnumerateFiles("*", SearchOption.AllDirectories).ToList();
        return (files.Sum(Length), files.Where(f => f.Name.EndsWith("-wal", StringComparison.Ordinal)).Sum(Length));

        // The node writes short-lived files beside the store (its high-water mark goes through a .tmp): gone is 0.
        static long Length(FileInfo f)
        {
            try
            {
                return f.Length;
            }
            catch (FileNotFoundException)
            {
                return 0;
            }
        }
    }

    public bool IsPostgreSql => _store.IsPostgreSql;

    public long Count(string sql)
    {
        using var db = _store.CreateConnection();
        db.Open();
        using var cmd = db.CreateCommand();
        cmd.CommandText = sql;
        return Convert.ToInt64(cmd.ExecuteScalar());
    }

    public async Task<WorkflowState?> GetAsync(string id) =>
        (await _region.Ask<IDeeplineMessage>(new GetRun(id), TimeSpan.FromSeconds(30))) is RunReply r ? r.State : null;

    private async Task<RunStatus?> StatusAsync(string id)
    {
        if (_http is not { } http) return (await GetAsync(id))?.Status;
        using var response = await http.GetAsync($"/runs/{id}");
        if (response.StatusCode != HttpStatusCode.OK) return null;
        using var doc = System.Text.Json.JsonDocument.Parse(await response.Content.ReadAsStreamAsync());
        return Enum.Parse<RunStatus>(doc.RootElement.GetProperty("status").GetString()!);
    }

    /// <summary>Runs of this node that finished so far, by outcome (the node's run_status_transitions counter).</summary>
    public (long Succeeded, long Failed, long Cancelled) Finished()
    {
        var meter = NodeMeter.For(_app.Services.GetRequiredService<ActorSystem>());
        return (meter.RunsEntered(RunStatus.SUCCEEDED), meter.RunsEntered(RunStatus.FAILED), meter.RunsEntered(RunStatus.CANCELLED));
    }

    /// <summary>
    /// In-process, the node's own counter says when every run succeeded, so finished runs are not asked for (asking
    /// wakes a run that passivated, a recovery the node would not otherwise make); over HTTP each run is polled.
    /// </summary>
    public async Task WaitFinishedAsync(IReadOnlyList<string> ids, (long Succeeded, long Failed, long Cancelled) before, TimeSpan timeout)
    {
        if (_http is not null)
        {
            await WaitAllAsync(ids, RunStatus.SUCCEEDED, timeout);
            return;
        }
        var deadline = DateTime.UtcNow + timeout;
        while (true)
        {
            var now = Finished();
            if (now.Failed > before.Failed || now.Cancelled > before.Cancelled)
                throw new InvalidOperationException($"{now.Failed - before.Failed} runs failed and {now.Cancelled - before.Cancelled} were cancelled; expected every run to succeed");
            if (now.Succeeded - before.Succeeded >= ids.Count) return;
            if (DateTime.UtcNow > deadline) throw new TimeoutException($"{now.Succeeded - before.Succeeded:N0} of {ids.Count:N0} runs succeeded after {timeout}");
            await Task.Delay(5);
        }
    }

    /// <summary>Runs finish roughly in submission order, so each run is polled only until it is done.</summary>
    public async Task WaitAllAsync(IReadOnlyList<string> ids, RunStatus status, TimeSpan timeout)
    {
        var deadline = DateTime.UtcNow + timeout;
        foreach (var id in ids)
        {
            while (true)
            {
                var s = await StatusAsync(id);
                if (s == status) break;
                if (s?.IsTerminal() == true) throw new InvalidOperationException($"{id} ended {s}, expected {status}");
                if (DateTime.UtcNow > deadline) throw new TimeoutException($"{id} is {s} after {timeout}");
                await Task.Delay(5);
            }
        }
    }

    public async Task WaitIndexAsync(TimeSpan timeout)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (await _index.LagAsync() > 0)
        {
            if (DateTime.UtcNow > deadline) throw new TimeoutException($"run index still behind after {timeout}");
            await Task.Delay(20);
        }
    }

    /// <summary>
    /// The store's own pace for one small durable write: single-row INSERTs, each its own transaction (SQLite in WAL mode
    /// with synchronous=FULL as the node runs it, PostgreSQL with the server's settings), into a table of the node's
    /// database while the node is idle. A node that commits one event at a time cannot pass this rate.
    /// </summary>
    public double RawCommitsPerSecond(TimeSpan duration)
    {
        using var db = _store.CreateConnection();
        db.Open();
        SqliteStore.OnOpened(db);
        void Exec(string sql)
        {
            using var c = db.CreateCommand();
            c.CommandText = sql;
            c.ExecuteNonQuery();
        }
        if (!_store.IsPostgreSql) Exec("PRAGMA synchronous=FULL");
        Exec("CREATE TABLE IF NOT EXISTS bench_raw_commit (v BIGINT NOT NULL)");
        using var insert = db.CreateCommand();
        insert.CommandText = "INSERT INTO bench_raw_commit (v) VALUES (@v)";
        var p = insert.CreateParameter();
        p.ParameterName = "@v";
        p.Value = 0L;
        insert.Parameters.Add(p);
        insert.Prepare();
        var n = 0L;
        var clock = Stopwatch.StartNew();
        while (clock.Elapsed < duration)
        {
            p.Value = n++;
            insert.ExecuteNonQuery();
        }
        var rate = n / clock.Elapsed.TotalSeconds;
        Exec("DROP TABLE bench_raw_commit");
        return rate;
    }

    /// <summary>
    /// The store and, for PostgreSQL, the settings that decide when a commit returns (a server without fsync or
    /// synchronous_commit answers before its WAL is on disk, and its numbers are not durable ones).
    /// </summary>
    public string Describe()
    {
        if (!_store.IsPostgreSql) return "sqlite (synchronous=FULL)";
        using var db = _store.CreateConnection();
        db.Open();
        string Show(string setting)
        {
            using var c = db.CreateCommand();
            c.CommandText = "SHOW " + setting;
            return $"{setting}={c.ExecuteScalar()}";
        }
        return $"postgresql ({Show("fsync")}, {Show("synchronous_commit")}, {Show("full_page_writes")})";
    }

    public long JournalRows()
    {
        using var db = _store.CreateConnection();
        db.Open();
        using var cmd = db.CreateCommand();
        cmd.CommandText = "SELECT COUNT(*) FROM journal WHERE persistence_id LIKE 'run-%'";
        return Convert.ToInt64(cmd.ExecuteScalar());
    }

    public async ValueTask DisposeAsync()
    {
        _http?.Dispose();
        await _app.StopAsync();
        await _app.DisposeAsync();
        SqliteConnection.ClearAllPools();
        try { Directory.Delete(_dir, recursive: true); } catch (IOException) { }
    }

    private static int FreePort()
    {
        using var l = new TcpListener(IPAddress.Loopback, 0);
        l.Start();
        return ((IPEndPoint)l.LocalEndpoint).Port;
    }
}
