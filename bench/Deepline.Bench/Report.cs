using System.Globalization;
using System.Text;

namespace Deepline.Bench;

public static class Report
{
    public static string Table(IReadOnlyList<Measurement> results, string? redisNotMeasured)
    {
        var inv = CultureInfo.InvariantCulture;
        var sb = new StringBuilder();
        sb.AppendLine("| system | cancel call | tasks | after the call returned: p50 / p99 / max ms | after the call was sent: p50 / p99 / max ms | the call itself: p50 / p99 ms | fired before the call returned | never fired |");
        sb.AppendLine("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |");
        foreach (var m in results)
        {
            sb.AppendLine(string.Create(inv,
                $"| {m.System} | `{m.CancelCall}` | {m.Tasks} | {m.P(0.50):0.00} / {m.P(0.99):0.00} / {m.Max:0.00} | " +
                $"{m.SentP(0.50):0.00} / {m.SentP(0.99):0.00} / {m.SentMax:0.00} | " +
                $"{Measurement.Percentile(m.CallMs, 0.5):0.00} / {Measurement.Percentile(m.CallMs, 0.99):0.00} | {m.FiredBeforeReply} | {m.NotFired} |"));
        }
        if (redisNotMeasured is { } reason)
            sb.AppendLine($"| {RedisSdkBench.Name} | `PUT /runs/{{id}}/cancel` | - | {reason} | | | | |");

        // Every other row against each Deepline path: Hangfire against in-cluster and against Redis, Redis against in-cluster.
        var baselines = results.Where(r => r.System.StartsWith("deepline", StringComparison.Ordinal)).ToList();
        var lines = new List<string>();
        foreach (var other in results)
        {
            foreach (var baseline in baselines.TakeWhile(b => b != other))
            {
                lines.Add(string.Create(inv,
                    $"- {other.System} vs {baseline.System}, measured from the call being sent: p50 {Ratio(other.SentP(0.5), baseline.SentP(0.5))}, " +
                    $"p99 {Ratio(other.SentP(0.99), baseline.SentP(0.99))}, max {Ratio(other.SentMax, baseline.SentMax)} " +
                    $"(after the call returned: p99 {other.P(0.99):0.00} ms vs {baseline.P(0.99):0.00} ms)"));
            }
        }
        if (lines.Count > 0)
        {
            sb.AppendLine();
            foreach (var line in lines) sb.AppendLine(line);
        }
        if (redisNotMeasured is { } why)
            sb.AppendLine().AppendLine($"redis: {why}");
        return sb.ToString().TrimEnd() + Environment.NewLine;
    }

    private static string Ratio(double a, double b)
    {
        if (a <= 0 || b <= 0 || double.IsNaN(a) || double.IsNaN(b)) return "n/a";
        return a >= b
            ? string.Create(CultureInfo.InvariantCulture, $"{a / b:0.0}x slower")
            : string.Create(CultureInfo.InvariantCulture, $"{b / a:0.0}x faster");
    }

    public static string Markdown(string machine, string command, DateTime date, BenchOptions options, string table, IReadOnlyList<Measurement> results)
    {
        var sb = new StringBuilder();
        sb.AppendLine("# Benchmarks");
        sb.AppendLine();
        sb.AppendLine("## Cancel propagation");
        sb.AppendLine();
        sb.AppendLine("What is measured: with N tasks running at once, each task's cancel is issued one after the other, and for each");
        sb.AppendLine("the time from the cancel call *returning* to the running handler's `CancellationToken` firing (the token's");
        sb.AppendLine("callback notes `Stopwatch.GetTimestamp()` on the thread that cancels it). A token that fired before the caller");
        sb.AppendLine("had read the reply counts as 0 ms and is counted in its own column.");
        sb.AppendLine();
        sb.AppendLine("- **deepline in-cluster**: a real node in the bench process (`DeeplineNode.Build`: HTTP API on loopback,");
        sb.AppendLine("  single-node Akka cluster, SQLite journal in a temp directory), one pool with a slot per task, N runs of one");
        sb.AppendLine("  task each; cancel = `PUT /runs/{id}/cancel` over HTTP, which answers once the cancel is journalled. The");
        sb.AppendLine("  notice reaches the pool through the cluster's DistributedPubSub topic.");
        sb.AppendLine("- **hangfire**: Hangfire.Core 1.8.25 with Hangfire.InMemory 1.0.0 in the same process, a worker per job, each");
        sb.AppendLine("  job awaiting its `CancellationToken`; cancel = `BackgroundJobClient.Delete(id)` (what `BackgroundJob.Delete`");
        sb.AppendLine("  calls). Hangfire finds deleted running jobs by polling their state every `CancellationCheckInterval` (5 s by");
        sb.AppendLine("  default), so its latency is spread over that interval; the second row shows it tuned down.");
        sb.AppendLine("- **deepline redis SDK (external worker)**: a redis-server started by the bench on a free 127.0.0.1 port");
        sb.AppendLine("  (`--save \"\" --appendonly no`), a second real node with `orchestrator.redis.connection` set to it, N runs of");
        sb.AppendLine("  one task on a pool no node serves. The bench process is the external worker: it claims each task with");
        sb.AppendLine("  `TASK_STARTED` over HTTP (`TaskEventsClient`), waits on `CancellationSignals.TokenFor(runId)` and reports");
        sb.AppendLine("  `TASK_CANCELLED` when it fires. Same `PUT /runs/{id}/cancel`, same pacing; the notice travels node ->");
        sb.AppendLine("  CancellationBroadcaster -> Redis (`SADD`/`HSET`/`ZADD`/`PUBLISH` in one script) -> the SDK's subscription.");
        sb.AppendLine("  The worker sends no heartbeats, so this node's `heartbeat_timeout_s` is raised to 3600 s for the run.");
        sb.AppendLine();
        sb.AppendLine($"- date: {date:yyyy-MM-dd HH:mm} UTC");
        sb.AppendLine($"- machine: {machine}");
        sb.AppendLine($"- command: `{command}`");
        sb.AppendLine($"- tasks: {options.Tasks} (Deepline in-cluster), {options.RedisTasks} (Deepline redis SDK), {options.HangfireTasks} (Hangfire), " +
                      $"after {options.Warmup} warm-up cancels each; " +
                      $"cancel calls at most one every {options.PaceMs} ms, one at a time, for every system");
        sb.AppendLine();
        sb.Append(table);
        return sb.ToString();
    }
}
