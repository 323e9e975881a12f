using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net;
using System.Text;
using System.Text.Json.Nodes;
using Deepline.Bench;
using Deepline.Tests.Shared;
using Npgsql;

// One node against three nodes on one durable PostgreSQL, driven over HTTP by the same number of clients, each of which
// submits its next run as soon as the last one was answered (runs of 5 noop tasks: a -> b,c,d -> e, in-cluster pool).
// With --cl-kill-at-s N, the last node is killed (SIGKILL) N s into the load: its clients move to the survivors (as a load
// balancer would) and the failed submissions are counted per second around the moment the cluster removed the member.
//
//   dotnet run -c Release --project bench/Deepline.Bench.Cluster -- --cl-nodes 1,3 --cl-clients 64 --cl-runs 6000
//   dotnet run -c Release --project bench/Deepline.Bench.Cluster -- --cl-nodes 3 --cl-clients 64 --cl-seconds 60 --cl-kill-at-s 15
//   dotnet run -c Release --project bench/Deepline.Bench.Cluster -- --cl-bulk 100000   (a bulk cancel of 100,000 open runs beside live cancels)
if (args.Contains("--help") || args.Contains("--cl-help"))
{
    Console.WriteLine("--cl-nodes 1,3 (cluster sizes, each on a fresh database), --cl-clients N (64), --cl-runs N (runs submitted per size; 6000), " +
                      "--cl-seconds N (submit for N s instead of a number of runs), --cl-kill-at-s N (SIGKILL the last node N s into the load), " +
                      "--cl-freeze-s N (with --cl-kill-at-s: SIGSTOP it instead, SIGCONT after N s, restarted as a process manager would if it exits), " +
                      "--cl-slots N (in-cluster worker slots per node; 16), --cl-passivate-s N (the nodes' runs.passivate_after_s), --cl-report FILE (append the table, machine and command), " +
                      "--cl-bulk N (instead: one node with N open runs, cancel latency of live runs without and during a bulk cancel of them), --cl-bulk-rate N (its bulk_cancel_rate; 1000)");
    return 0;
}

var sizes = Arg("--cl-nodes", "1,3").Split(',').Select(int.Parse).ToArray();
var clients = int.Parse(Arg("--cl-clients", "64"));
var runLimit = int.Parse(Arg("--cl-runs", "6000"));
var seconds = int.Parse(Arg("--cl-seconds", "0"));
var killAt = int.Parse(Arg("--cl-kill-at-s", "0"));
var freezeS = int.Parse(Arg("--cl-freeze-s", "0"));
var slots = int.Parse(Arg("--cl-slots", "16"));
var passivateS = Arg("--cl-passivate-s", "");
var report = Arg("--cl-report", "");

var started = DateTime.UtcNow;
var machine = Machine.Describe();
Console.WriteLine($"# Deepline cluster benchmark  {started:yyyy-MM-dd HH:mm} UTC");
Console.WriteLine($"machine: {machine}");
await using var postgres = await PostgresServer.StartAsync(durable: true);

if (int.Parse(Arg("--cl-bulk", "0")) is > 0 and var bulkRuns)
{
    var bulkLines = await BulkMeasure(bulkRuns, int.Parse(Arg("--cl-bulk-rate", "1000")));
    bulkLines.Add($"Load average (1/5/15 min) after: {(File.Exists("/proc/loadavg") ? string.Join(' ', File.ReadAllText("/proc/loadavg").Split(' ').Take(3)) : "n/a")} ({Environment.ProcessorCount} cores).");
    Console.WriteLine();
    foreach (var l in bulkLines) Console.WriteLine(l);
    if (report.Length > 0)
    {
        var sb = new StringBuilder($"### Run of {started:yyyy-MM-dd HH:mm} UTC\n\n- machine: {machine}\n- command: `dotnet run -c Release --project bench/Deepline.Bench.Cluster -- {string.Join(' ', args)}`\n\n");
        foreach (var l in bulkLines) sb.AppendLine(l.StartsWith("## ", StringComparison.Ordinal) ? "#" + l : l);
        File.AppendAllText(report, sb.ToString());
    }
    return 0;
}

var lines = new List<string>
{
    $"## One node against three on one PostgreSQL (durable), {clients} HTTP clients submitting without pause (runs of 5 noop tasks, in-cluster pools of {slots} slots per node)",
    "| nodes | runs accepted | failed submissions | failures by answer | submit s | submissions/s | first submit to last run finished s | transitions/s | submit p50 ms | submit p99 ms |",
    "|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|",
};
var failover = new List<string>();
foreach (var size in sizes)
{
    var r = await Measure(size);
    lines.Add($"| {size} | {r.Accepted:N0} | {r.Failed:N0} | {(r.Failures.Count == 0 ? "none" : string.Join(", ", r.Failures.OrderByDescending(f => f.Value).Select(f => $"{f.Key}: {f.Value:N0}")))} | " +
              $"{r.SubmitS:0.0} | {r.Accepted / r.SubmitS:N0} | {r.WallS:0.0} | {r.Transitions / r.WallS:N0} | {r.P50:0.0} | {r.P99:0.0} |");
    if (r.Windows is { } w) failover.AddRange(w);
}
lines.Add("");
if (failover.Count > 0)
{
    lines.Add(freezeS > 0
        ? $"## SIGSTOP of one of three nodes {killAt} s into the load for {freezeS} s (its clients move to the survivors); failed submissions around the member's removal"
        : $"## SIGKILL of one of three nodes {killAt} s into the load (its clients move to the survivors); failed submissions around the member's removal");
    lines.Add("| window (s from removal) | submissions | failed | failed % | failures by answer |");
    lines.Add("|---|---:|---:|---:|---|");
    lines.AddRange(failover);
    lines.Add("");
}
lines.Add($"Load average (1/5/15 min) after: {(File.Exists("/proc/loadavg") ? string.Join(' ', File.ReadAllText("/proc/loadavg").Split(' ').Take(3)) : "n/a")} ({Environment.ProcessorCount} cores).");
Console.WriteLine();
foreach (var l in lines) Console.WriteLine(l);
if (report.Length > 0)
{
    var sb = new StringBuilder();
    sb.AppendLine($"### Run of {started:yyyy-MM-dd HH:mm} UTC").AppendLine();
    sb.AppendLine($"- machine: {machine}");
    sb.AppendLine($"- command: `dotnet run -c Release --project bench/Deepline.Bench.Cluster -- {string.Join(' ', args)}`").AppendLine();
    foreach (var l in lines) sb.AppendLine(l.StartsWith("## ", StringComparison.Ordinal) ? "#" + l : l);
    File.AppendAllText(report, sb.ToString());
    Console.WriteLine($"appended to {report}");
}
return 0;

// One node with `openRuns` open runs of one client (a task each on a pool nobody polls): the cancel latency (PUT, p50/p99)
// of unrelated live runs submitted and cancelled by 8 clients, without a bulk cancel and while one cancels all of them.
async Task<List<string>> BulkMeasure(int openRuns, int rate)
{
    var database = await postgres.CreateDatabaseAsync($"bulk_{Guid.NewGuid():N}");
    var dir = Directory.CreateTempSubdirectory("deepline-bulk-bench-").FullName;
    var environment = new Dictionary<string, string>
    {
        ["DEEPLINE_STORE_PROVIDER"] = "postgresql",
        ["DEEPLINE_STORE_CONNECTION"] = database,
        ["DEEPLINE_LIMITS_RATE_PER_SECOND"] = "0",
        ["DEEPLINE_LIMITS_MAX_OPEN_RUNS_PER_CLIENT"] = "0",
        ["DEEPLINE_LIMITS_MAX_OPEN_TASKS_PER_CLIENT"] = "0",
        ["DEEPLINE_LIMITS_BULK_CANCEL_RATE"] = rate.ToString(),
        ["Logging__LogLevel__Default"] = "Warning",
    };
    await using var node = new Node("bulk", Loopback.FreePort(), Loopback.FreePort(), Path.Combine(dir, "node"), environment);
    node.Start();
    await node.AwaitHealthyAsync();
    Console.Error.WriteLine($"submitting {openRuns:N0} open runs");
    var next = -1;
    var clock = Stopwatch.StartNew();
    await Task.WhenAll(Enumerable.Range(0, clients).Select(_ => Task.Run(async () =>
    {
        for (var i = Interlocked.Increment(ref next); i < openRuns; i = Interlocked.Increment(ref next))
        {
            using var response = await node.Client.PostAsync("/runs", new StringContent(
                $$"""{"run_id":"open-{{i:D7}}","client_id":"bulk-bench","tasks":[{"task_id":"x","type":"etl","pool":"nobody-polls"}]}""", Encoding.UTF8, "application/json"));
            if (response.StatusCode != HttpStatusCode.Created) throw new InvalidOperationException($"submit open-{i}: {(int)response.StatusCode}");
        }
    })));
    Console.Error.WriteLine($"{openRuns:N0} open runs in {clock.Elapsed.TotalSeconds:0.0} s; waiting for the index");
    await Until(async () => await OpenRuns(database) >= openRuns, TimeSpan.FromMinutes(5), "every open run indexed");

    var baseline = await LiveCancels(node, "live-a", () => false, TimeSpan.FromSeconds(20));
    Console.Error.WriteLine($"without a bulk cancel: {baseline.Count} live cancels, p99 {P(baseline, 0.99):0.0} ms");

    var bulkClock = Stopwatch.StartNew();
    var started = await node.Client.PostAsync("/runs/cancel", new StringContent("""{"filter":{"client_id":"bulk-bench"},"reason":"bench"}""", Encoding.UTF8, "application/json"));
    if (started.StatusCode != HttpStatusCode.Accepted) throw new InvalidOperationException($"bulk cancel: {(int)started.StatusCode} {await started.Content.ReadAsStringAsync()}");
    var operation = JsonNode.Parse(await started.Content.ReadAsStringAsync())!["operation_id"]!.GetValue<string>();
    var done = false;
    JsonNode? finalOp = null;
    var watcher = Task.Run(async () =>
    {
        await Until(async () =>
        {
            finalOp = JsonNode.Parse(await node.Client.GetStringAsync($"/operations/{operation}"));
            return finalOp!["state"]!.GetValue<string>() == "done";
        }, TimeSpan.FromHours(1), "the bulk cancel done");
        done = true;
    });
    var during = await LiveCancels(node, "live-b", () => done, TimeSpan.FromHours(1));
    await watcher;
    var opS = bulkClock.Elapsed.TotalSeconds;
    await Until(async () => await OpenRuns(database) == 0, TimeSpan.FromMinutes(10), "every run CANCELLED in the index");
    var allS = bulkClock.Elapsed.TotalSeconds;
    Console.Error.WriteLine($"bulk cancel of {openRuns:N0}: operation done in {opS:0.0} s, all CANCELLED in {allS:0.0} s");
    try { Directory.Delete(dir, true); } catch (IOException) { }
    return
    [
        $"## Bulk cancel of {openRuns:N0} open runs on one node (PostgreSQL, bulk_cancel_rate {rate}/s), and the cancels of live runs meanwhile",
        "| phase | live runs cancelled (8 clients) | cancel p50 ms | cancel p99 ms |",
        "|---|---:|---:|---:|",
        $"| no bulk cancel (20 s) | {baseline.Count:N0} | {P(baseline, 0.5):0.0} | {P(baseline, 0.99):0.0} |",
        $"| during the bulk cancel ({opS:0} s) | {during.Count:N0} | {P(during, 0.5):0.0} | {P(during, 0.99):0.0} |",
        "",
        $"Operation: {finalOp?["cancelled"]} cancelled, {finalOp?["skipped"]} skipped, {finalOp?["failed"]} failed of {finalOp?["matched"]} matched; " +
        $"done {opS:0.0} s after it started ({openRuns / opS:N0} runs/s), every run CANCELLED in the index {allS:0.0} s after it started.",
        "",
    ];
}

static double P(List<double> values, double q) => values.Count == 0 ? double.NaN : Measurement.Percentile([.. values.Order()], q);

// Eight clients, each submitting a live run and cancelling it at once, until `stop` or `within`: the cancel latencies (ms).
static async Task<List<double>> LiveCancels(Node node, string prefix, Func<bool> stop, TimeSpan within)
{
    var latencies = new ConcurrentBag<double>();
    var clock = Stopwatch.StartNew();
    var next = -1;
    await Task.WhenAll(Enumerable.Range(0, 8).Select(_ => Task.Run(async () =>
    {
        while (!stop() && clock.Elapsed < within)
        {
            var id = $"{prefix}-{Interlocked.Increment(ref next):D7}";
            using (var created = await node.Client.PostAsync("/runs", new StringContent(
                       $$"""{"run_id":"{{id}}","client_id":"live","tasks":[{"task_id":"x","type":"etl","pool":"nobody-polls"}]}""", Encoding.UTF8, "application/json")))
                if (created.StatusCode != HttpStatusCode.Created) continue;
            var t = Stopwatch.GetTimestamp();
            using var cancel = await node.Client.PutAsync($"/runs/{id}/cancel", new StringContent("""{"reason":"live"}""", Encoding.UTF8, "application/json"));
            if (cancel.StatusCode == HttpStatusCode.OK) latencies.Add(Stopwatch.GetElapsedTime(t).TotalMilliseconds);
        }
    })));
    return [.. latencies];
}

async Task<Result> Measure(int size)
{
    var database = await postgres.CreateDatabaseAsync($"cluster_{size}_{Guid.NewGuid():N}");
    var dir = Directory.CreateTempSubdirectory("deepline-cluster-bench-").FullName;
    var ports = Enumerable.Range(0, size).Select(_ => (Http: Loopback.FreePort(), Remoting: Loopback.FreePort())).ToArray();
    var seeds = string.Join(",", ports.Select(p => $"akka.tcp://deepline@127.0.0.1:{p.Remoting}"));
    var environment = new Dictionary<string, string>
    {
        ["DEEPLINE_STORE_PROVIDER"] = "postgresql",
        ["DEEPLINE_STORE_CONNECTION"] = database,
        ["DEEPLINE_REMOTING_SEED_NODES"] = seeds,
        ["DEEPLINE_REMOTING_DOWN_UNREACHABLE_AFTER"] = "3",
        ["DEEPLINE_WORKERS_SLOTS"] = slots.ToString(),
        // The clients all come from loopback without a key: the node's per-client rate limit would be the measure.
        ["DEEPLINE_LIMITS_RATE_PER_SECOND"] = "0",
        // Likewise its quotas of open runs and tasks: the bench measures the cluster, not one client's share of it.
        ["DEEPLINE_LIMITS_MAX_OPEN_RUNS_PER_CLIENT"] = "0",
        ["DEEPLINE_LIMITS_MAX_OPEN_TASKS_PER_CLIENT"] = "0",
        // One info line per request is what the node logs by default; at thousands of requests a second that is the
        // measure too (issue 28 is about it): warnings only, through ASP.NET Core's own variable.
        ["Logging__LogLevel__Default"] = "Warning",
    };
    if (passivateS.Length > 0) environment["DEEPLINE_RUNS_PASSIVATE_AFTER"] = passivateS;
    Result result;
    var nodes = ports.Select((p, i) => new Node($"node{i + 1}", p.Http, p.Remoting, Path.Combine(dir, $"node{i + 1}"), environment)).ToArray();
    try
    {
        nodes[0].Start();
        await nodes[0].AwaitHealthyAsync();
        foreach (var n in nodes.Skip(1)) n.Start();
        foreach (var n in nodes.Skip(1)) await n.AwaitHealthyAsync();
        await Until(async () => await nodes[0].UpMembersAsync() == size, TimeSpan.FromSeconds(60), $"{size} members up");
        Console.Error.WriteLine($"{size} node(s) up; warming up");
        await Load(nodes, clients, $"warm-{size}", runs: 500, seconds: 0, killAt: 0);
        await Until(async () => await OpenRuns(database) == 0, TimeSpan.FromMinutes(5), "the warm-up runs finished");

        Console.Error.WriteLine($"{size} node(s): {clients} clients submitting");
        var rowsBefore = await JournalRows(database);
        var clock = Stopwatch.StartNew();
        var load = await Load(nodes, clients, $"run-{size}", runLimit, seconds, size > 1 ? killAt : 0);
        var submitS = clock.Elapsed.TotalSeconds;
        var alive = nodes.First(n => !n.Killed);
        try
        {
            await Until(async () => await OpenRuns(database) == 0, TimeSpan.FromMinutes(3), "every accepted run finished");
        }
        catch (TimeoutException)
        {
            await Explain(database, alive);
            throw;
        }
        var wallS = clock.Elapsed.TotalSeconds;
        var transitions = await JournalRows(database) - rowsBefore;
        Console.Error.WriteLine($"{size} node(s): {load.Accepted:N0} accepted, {load.Failed:N0} failed, {transitions:N0} events in {wallS:0.0} s");
        result = new Result(load.Accepted, load.Failed, load.Failures, submitS, wallS, transitions, load.P50, load.P99, load.Windows);
    }
    catch
    {
        Console.Error.WriteLine($"the nodes' logs are kept in {dir}");
        foreach (var n in nodes) await n.DisposeAsync();
        throw;
    }
    foreach (var n in nodes) await n.DisposeAsync();
    try { Directory.Delete(dir, true); } catch (IOException) { }
    return result;
}

async Task<LoadResult> Load(Node[] nodes, int clientCount, string prefix, int runs, int seconds, int killAt)
{
    var next = -1;
    var accepted = 0;
    var failures = new ConcurrentDictionary<string, int>();
    var latencies = new ConcurrentBag<double>();
    // Per second since the start of the load: (submissions, failed, failures by answer).
    var perSecond = new ConcurrentDictionary<int, (int Sent, int Failed)>();
    var answersPerSecond = new ConcurrentDictionary<(int Second, string Answer), int>();
    var clock = Stopwatch.StartNew();
    var stopAt = seconds > 0 ? TimeSpan.FromSeconds(seconds) : TimeSpan.MaxValue;
    double? removedAtS = null;
    double? servedAgainS = null;
    double killedAtS = 0;
    var killer = killAt <= 0 ? Task.CompletedTask : Task.Run(async () =>
    {
        await Task.Delay(TimeSpan.FromSeconds(killAt));
        var victim = nodes[^1];
        killedAtS = clock.Elapsed.TotalSeconds;
        if (freezeS > 0) victim.Freeze();
        else victim.Kill();
        Console.Error.WriteLine($"{(freezeS > 0 ? "froze" : "killed")} {victim.Name} at {killedAtS:0.0} s");
        var thawed = freezeS <= 0 ? Task.CompletedTask : Task.Run(async () =>
        {
            await Task.Delay(TimeSpan.FromSeconds(freezeS));
            victim.Thaw();
            var thawedAt = Stopwatch.StartNew();
            Console.Error.WriteLine($"thawed {victim.Name} at {clock.Elapsed.TotalSeconds:0.0} s");
            // Downed while frozen, it leaves the cluster and exits: a process manager starts it again.
            await victim.ServeAgainAsync(nodes[0]);
            victim.Rejoined();
            Console.Error.WriteLine($"{victim.Name} serving again {thawedAt.Elapsed.TotalSeconds:0.0} s after SIGCONT (at {clock.Elapsed.TotalSeconds:0.0} s)");
            servedAgainS = thawedAt.Elapsed.TotalSeconds;
        });
        await Until(async () => await nodes[0].MembersAsync() is { } m && !m.Contains(victim.RemotingPort.ToString()), TimeSpan.FromSeconds(120), "the member removed");
        removedAtS = clock.Elapsed.TotalSeconds;
        Console.Error.WriteLine($"{victim.Name} removed at {removedAtS:0.0} s");
        await thawed;
    });

    await Task.WhenAll(Enumerable.Range(0, clientCount).Select(client => Task.Run(async () =>
    {
        while (clock.Elapsed < stopAt)
        {
            var i = Interlocked.Increment(ref next);
            if (seconds == 0 && i >= runs) break;
            var live = nodes.Where(n => !n.Killed).ToArray();
            var node = live[client % live.Length];
            var body = $$"""{"run_id":"{{prefix}}-{{i:D7}}","tasks":[{"task_id":"a","type":"noop"},{"task_id":"b","type":"noop","depends_on":["a"]},{"task_id":"c","type":"noop","depends_on":["a"]},{"task_id":"d","type":"noop","depends_on":["a"]},{"task_id":"e","type":"noop","depends_on":["b","c","d"]}]}""";
            var t = Stopwatch.GetTimestamp();
            var second = (int)clock.Elapsed.TotalSeconds;
            string? failure;
            try
            {
                using var response = await node.Client.PostAsync("/runs", new StringContent(body, Encoding.UTF8, "application/json"));
                failure = response.StatusCode == HttpStatusCode.Created ? null
                    : $"{(int)response.StatusCode} {(JsonNode.Parse(await response.Content.ReadAsStringAsync()) as JsonObject)?["title"]}";
                if (failure is not null && Environment.GetEnvironmentVariable("BENCH_SHOW_FAILURES") == "1")
                    Console.Error.WriteLine($"{clock.Elapsed.TotalSeconds:0.0} s {node.Name}: {failure}: {await response.Content.ReadAsStringAsync()}");
            }
            catch (Exception e) when (e is HttpRequestException or TaskCanceledException)
            {
                failure = node.Killed ? "to the killed node" : e is TaskCanceledException ? "client timeout" : "connection";
            }
            latencies.Add(Stopwatch.GetElapsedTime(t).TotalMilliseconds);
            perSecond.AddOrUpdate(second, (1, failure is null ? 0 : 1), (_, v) => (v.Sent + 1, v.Failed + (failure is null ? 0 : 1)));
            if (failure is null) Interlocked.Increment(ref accepted);
            else
            {
                failures.AddOrUpdate(failure, 1, (_, v) => v + 1);
                answersPerSecond.AddOrUpdate((second, failure), 1, (_, v) => v + 1);
            }
        }
    })));
    await killer;
    var sorted = latencies.OrderBy(x => x).ToArray();
    List<string>? windows = null;
    if (removedAtS is { } removed)
    {
        windows = [];
        var killS = killedAtS;
        (string Label, double From, double To)[] spans =
        [
            // Asks sent up to 10 s before the kill may wait for a shard of the killed node.
            ("10 s before the kill", Math.Max(0, killS - 10), killS),
            ("kill to removal", killS, removed),
            ("0 to 10", removed, removed + 10),
            ("10 to 20", removed + 10, removed + 20),
            ("20 to end", removed + 20, clock.Elapsed.TotalSeconds),
        ];
        foreach (var (label, from, to) in spans)
        {
            var secondsIn = perSecond.Keys.Where(s => s >= Math.Floor(from) && s < Math.Floor(to)).ToList();
            var sent = secondsIn.Sum(s => perSecond[s].Sent);
            var failed = secondsIn.Sum(s => perSecond[s].Failed);
            var by = answersPerSecond.Where(kv => secondsIn.Contains(kv.Key.Second)).GroupBy(kv => kv.Key.Answer)
                .Select(g => $"{g.Key}: {g.Sum(kv => kv.Value)}");
            windows.Add($"| {label} ({Math.Floor(from):0}-{Math.Floor(to):0} s of the load) | {sent:N0} | {failed:N0} | {(sent == 0 ? 0 : 100.0 * failed / sent):0.00} | {(failed == 0 ? "none" : string.Join(", ", by))} |");
        }
    }
    if (servedAgainS is { } again) windows?.Add($"| the frozen node serves again (ready, a member, a submission to it accepted) {again:0.0} s after SIGCONT | | | | |");
    return new LoadResult(accepted, failures.Values.Sum(), new Dictionary<string, int>(failures),
        sorted.Length == 0 ? 0 : Measurement.Percentile(sorted, 0.5), sorted.Length == 0 ? 0 : Measurement.Percentile(sorted, 0.99), windows);
}

static async Task<long> JournalRows(string connection)
{
    await using var db = new NpgsqlConnection(connection);
    await db.OpenAsync();
    await using var cmd = new NpgsqlCommand("SELECT COUNT(*) FROM journal WHERE persistence_id LIKE 'run-%'", db);
    return (long)(await cmd.ExecuteScalarAsync())!;
}

// What holds the runs that did not finish: each one's state as the cluster serves it, and how far the index got.
static async Task Explain(string connection, Node alive)
{
    await using var db = new NpgsqlConnection(connection);
    await db.OpenAsync();
    await using (var lag = new NpgsqlCommand("SELECT (SELECT MAX(ordering) FROM journal), (SELECT offset_value FROM run_index_offset)", db))
    await using (var r = await lag.ExecuteReaderAsync())
    {
        await r.ReadAsync();
        Console.Error.WriteLine($"journal ends at {r.GetValue(0)}, the run index at {r.GetValue(1)}");
    }
    var open = new List<string>();
    await using (var cmd = new NpgsqlCommand("SELECT run_id FROM run_index WHERE status IN ('RUNNING', 'CANCELLING') ORDER BY run_id LIMIT 5", db))
    await using (var r = await cmd.ExecuteReaderAsync())
        while (await r.ReadAsync()) open.Add(r.GetString(0));
    foreach (var id in open)
    {
        using var answer = await alive.Client.GetAsync($"/runs/{id}");
        Console.Error.WriteLine($"{id}: {(int)answer.StatusCode} {await answer.Content.ReadAsStringAsync()}");
        await using var rows = new NpgsqlCommand("SELECT sequence_number, ordering, manifest, writer_uuid, deleted FROM journal WHERE persistence_id = @p ORDER BY sequence_number", db);
        rows.Parameters.AddWithValue("p", "run-" + id);
        await using var r = await rows.ExecuteReaderAsync();
        var events = new List<string>();
        while (await r.ReadAsync()) events.Add($"{r.GetInt64(0)}@{r.GetInt64(1)}:{r.GetValue(2)} writer {r.GetValue(3)}{(r.GetBoolean(4) ? " deleted" : "")}");
        Console.Error.WriteLine($"  journal: {string.Join(", ", events)}");
    }
}

static async Task<long> OpenRuns(string connection)
{
    await using var db = new NpgsqlConnection(connection);
    await db.OpenAsync();
    await using var cmd = new NpgsqlCommand("SELECT COUNT(*) FROM run_index WHERE status IN ('RUNNING', 'CANCELLING')", db);
    return (long)(await cmd.ExecuteScalarAsync())!;
}

static async Task Until(Func<Task<bool>> condition, TimeSpan within, string what)
{
    var deadline = DateTime.UtcNow + within;
    while (true)
    {
        try
        {
            if (await condition()) return;
        }
        catch (Exception e) when (e is HttpRequestException or TaskCanceledException or NpgsqlException)
        {
        }
        if (DateTime.UtcNow > deadline) throw new TimeoutException($"not within {within.TotalSeconds:0} s: {what}");
        await Task.Delay(200);
    }
}

string Arg(string name, string fallback)
{
    var i = Array.IndexOf(args, name);
    return i >= 0 && i + 1 < args.Length ? args[i + 1] : fallback;
}

sealed record Result(int Accepted, int Failed, Dictionary<string, int> Failures, double SubmitS, double WallS, long Transitions, double P50, double P99,
    List<string>? Windows);

sealed record LoadResult(int Accepted, int Failed, Dictionary<string, int> Failures, double P50, double P99, List<string>? Windows);

/// <summary>A node as operators run it: `dotnet Deepline.Node.dll` beside this program, configured by DEEPLINE_* variables.</summary>
sealed class Node(string name, int httpPort, int remotingPort, string dataDir, IReadOnlyDictionary<string, string> environment) : IAsyncDisposable
{
    private Process? _process;

    public string Name => name;

    public int RemotingPort => remotingPort;

    public bool Killed { get; private set; }

    public HttpClient Client { get; } = new() { BaseAddress = new Uri($"http://127.0.0.1:{httpPort}"), Timeout = TimeSpan.FromSeconds(30) };

    public void Start()
    {
        Directory.CreateDirectory(dataDir);
        var info = new ProcessStartInfo("dotnet", [Path.Combine(AppContext.BaseDirectory, "Deepline.Node.dll")])
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            WorkingDirectory = dataDir,
        };
        foreach (var (k, v) in environment) info.Environment[k] = v;
        info.Environment["DEEPLINE_CONFIG"] = "";
        info.Environment["DEEPLINE_DATA_DIR"] = dataDir;
        info.Environment["DEEPLINE_HTTP_PORT"] = httpPort.ToString();
        info.Environment["DEEPLINE_REMOTING_HOST"] = "127.0.0.1";
        info.Environment["DEEPLINE_REMOTING_PORT"] = remotingPort.ToString();
        _process = Process.Start(info)!;
        var log = new StreamWriter(Path.Combine(dataDir, "node.log"), append: true) { AutoFlush = true };
        _process.OutputDataReceived += (_, e) => { if (e.Data is not null) lock (log) log.WriteLine(e.Data); };
        _process.ErrorDataReceived += (_, e) => { if (e.Data is not null) lock (log) log.WriteLine(e.Data); };
        _process.BeginOutputReadLine();
        _process.BeginErrorReadLine();
    }

    public async Task AwaitHealthyAsync()
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(90);
        while (true)
        {
            try
            {
                if ((await Client.GetAsync("/healthz/ready")).IsSuccessStatusCode) return;
            }
            catch (HttpRequestException)
            {
            }
            if (_process is { HasExited: true }) throw new InvalidOperationException($"{name} exited with {_process.ExitCode}; see {dataDir}/node.log");
            if (DateTime.UtcNow > deadline) throw new TimeoutException($"{name} not ready within 90 s; see {dataDir}/node.log");
            await Task.Delay(250);
        }
    }

    public async Task<string> MembersAsync() => await Client.GetStringAsync("/cluster/members");

    public async Task<int> UpMembersAsync() =>
        JsonNode.Parse(await MembersAsync())!["members"]!.AsArray()
            .Count(m => string.Equals(m!["status"]!.GetValue<string>(), "up", StringComparison.OrdinalIgnoreCase));

    public void Freeze()
    {
        Killed = true;
        Process.Start("kill", ["-STOP", _process!.Id.ToString()])!.WaitForExit();
    }

    public void Thaw() => Process.Start("kill", ["-CONT", _process!.Id.ToString()])!.WaitForExit();

    public void Rejoined() => Killed = false;

    /// <summary>Ready, Up in <paramref name="peer"/>'s view and accepting a submission; started again if it exited.</summary>
    public async Task ServeAgainAsync(Node peer)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromMinutes(5);
        while (DateTime.UtcNow < deadline)
        {
            if (_process is { HasExited: true })
            {
                Console.Error.WriteLine($"{name} exited ({_process.ExitCode}); starting it again");
                Start();
            }
            try
            {
                var members = await peer.MembersAsync();
                if ((await Client.GetAsync("/healthz/ready")).IsSuccessStatusCode && members.Contains(remotingPort.ToString()) &&
                    (await Client.PostAsync("/runs", new StringContent($$"""{"tasks":[{"task_id":"a","type":"noop"}]}""", Encoding.UTF8, "application/json"))).StatusCode == HttpStatusCode.Created)
                    return;
            }
            catch (Exception e) when (e is HttpRequestException or TaskCanceledException)
            {
            }
            await Task.Delay(250);
        }
        throw new TimeoutException($"{name} did not serve again within 5 minutes; see {dataDir}/node.log");
    }

    public void Kill()
    {
        Killed = true;
        _process?.Kill(entireProcessTree: true);
    }

    public async ValueTask DisposeAsync()
    {
        if (_process is { HasExited: false } p)
        {
            p.Kill(entireProcessTree: true);
            await p.WaitForExitAsync();
        }
        Client.Dispose();
    }
}
