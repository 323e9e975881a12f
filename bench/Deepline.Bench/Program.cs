using System.Diagnostics;
using System.Globalization;
using Deepline.Bench;

// Cancel propagation: from the cancel call returning to the running handler's CancellationToken firing, with N tasks
// running at once, for Deepline (in-cluster pool, and an external worker using the SDK through Redis; both cancelled
// with HTTP PUT /runs/{id}/cancel) and Hangfire (BackgroundJob.Delete).
var options = BenchOptions.Parse(args);
if (options is null) return 2;

var machine = Machine.Describe();
Console.WriteLine($"machine: {machine}");
Console.WriteLine($"tasks: {options.Tasks} running at once (+{options.Warmup} warm-up), redis SDK tasks: {options.RedisTasks}, hangfire tasks: {options.HangfireTasks}");

var results = new List<Measurement>();
var total = Stopwatch.StartNew();
var pace = TimeSpan.FromMilliseconds(options.PaceMs);
if (options.Tasks > 0) results.Add(await DeeplineBench.RunAsync(options.Tasks, options.Warmup, pace, breakdown: options.Breakdown));
if (options.Tasks > 0 && options.WriteLoad > 0) results.Add(await DeeplineBench.RunAsync(options.Tasks, options.Warmup, pace, options.WriteLoad));
string? redisNotMeasured = null;
if (options.RedisTasks > 0)
{
    var (measured, reason) = await RedisSdkBench.RunAsync(options.RedisTasks, options.Warmup, pace);
    if (measured is not null) results.Add(measured);
    redisNotMeasured = reason;
    if (reason is not null) Console.WriteLine($"redis: {reason}");
}
if (options.HangfireTasks > 0)
{
    results.Add(await HangfireBench.RunAsync(options.HangfireTasks, options.Warmup, pace, checkInterval: null));
    if (options.HangfireTunedMs > 0)
        results.Add(await HangfireBench.RunAsync(options.HangfireTasks, options.Warmup, pace, TimeSpan.FromMilliseconds(options.HangfireTunedMs)));
}
Console.WriteLine($"total time: {total.Elapsed.TotalSeconds:0.0} s");

var table = Report.Table(results, redisNotMeasured);
Console.WriteLine();
Console.WriteLine(table);
if (options.ReportPath is { } path)
{
    var command = "./build.sh bench" + (args.Length > 0 ? " " + string.Join(' ', args) : "");
    await File.WriteAllTextAsync(path, Report.Markdown(machine, command, DateTime.UtcNow, options, table, results));
    Console.WriteLine($"report written to {Path.GetFullPath(path)}");
}
// Our guarantee is that every cancel reaches its running handler: a Deepline token that never fired fails the run.
// Hangfire's misses are data, shown in the table.
return results.Where(r => r.System.StartsWith("deepline", StringComparison.Ordinal)).All(r => r.NotFired == 0) ? 0 : 1;

namespace Deepline.Bench
{
    public sealed record BenchOptions(int Tasks, int RedisTasks, int HangfireTasks, int Warmup, int HangfireTunedMs, int PaceMs, string? ReportPath, int WriteLoad = 0, bool Breakdown = false)
    {
        private const string Usage = """
            usage: ./build.sh bench cancel [--tasks N] [--redis-tasks N] [--hangfire-tasks N] [--warmup N] [--hangfire-tuned-ms MS] [--pace-ms MS] [--write-load N] [--breakdown] [--report PATH]
              --tasks N              Deepline tasks running at once, each cancelled once (default 1000, 0..1024; 0 skips Deepline)
              --redis-tasks N        runs held by an external SDK worker, cancels through Redis (default: --tasks;
                                     0 skips it; needs redis-server on PATH, started on a free 127.0.0.1 port)
              --hangfire-tasks N     Hangfire jobs running at once (default: --tasks; 0 skips Hangfire)
              --warmup N             runs started and cancelled first, not measured (default 50)
              --hangfire-tuned-ms MS a second Hangfire row with CancellationCheckInterval = MS (default 100; 0 skips it)
              --pace-ms MS           at most one cancel call every MS ms, for every system alike (default 5: 1,000 cancels
                                     span a whole Hangfire polling interval instead of landing in one poll)
              --write-load N         a second Deepline in-cluster row measured while N runs of 5 noop tasks are kept in flight
                                     (journal writes queued behind which a cancel must not wait; default 0: skipped)
              --breakdown            after the in-cluster row, where each cancel's time went (HTTP in, mailbox, journal,
                                     pub/sub to the pool, reply out) and whether a GC ran, from the node's own spans
              --report PATH          also write the results as markdown to PATH (e.g. docs/benchmarks-cancel.md)
            """;

        public static BenchOptions? Parse(string[] args)
        {
            int tasks = 1000, warmup = 50, tuned = 100, pace = 5, writeLoad = 0;
            var breakdown = false;
            int? hangfire = null, redis = null;
            string? report = null;
            for (var i = 0; i < args.Length; i++)
            {
                string Next() => i + 1 < args.Length ? args[++i] : throw new ArgumentException($"{args[i]} needs a value");
                int Int(string name, int min, int max)
                {
                    var text = Next();
                    return int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var n) && n >= min && n <= max
                        ? n
                        : throw new ArgumentException($"{name} must be an integer from {min} to {max}, got \"{text}\"");
                }
                try
                {
                    switch (args[i])
                    {
                        case "--tasks": tasks = Int("--tasks", 0, 1024); break;
                        case "--redis-tasks": redis = Int("--redis-tasks", 0, 2000); break;
                        case "--hangfire-tasks": hangfire = Int("--hangfire-tasks", 0, 2000); break;
                        case "--warmup": warmup = Int("--warmup", 0, 1000); break;
                        case "--hangfire-tuned-ms": tuned = Int("--hangfire-tuned-ms", 0, 60_000); break;
                        case "--pace-ms": pace = Int("--pace-ms", 0, 1000); break;
                        case "--write-load": writeLoad = Int("--write-load", 0, 1024); break;
                        case "--report": report = Next(); break;
                        case "--breakdown": breakdown = true; break;
                        case "-h" or "--help": Console.WriteLine(Usage); return null;
                        default: throw new ArgumentException($"unknown argument \"{args[i]}\"");
                    }
                }
                catch (ArgumentException e)
                {
                    Console.Error.WriteLine(e.Message);
                    Console.Error.WriteLine(Usage);
                    return null;
                }
            }
            return new BenchOptions(tasks, redis ?? tasks, hangfire ?? (tasks > 0 ? tasks : 1000), warmup, tuned, pace, report, writeLoad, breakdown);
        }
    }
}
