using System.Globalization;
using System.Text;

namespace Deepline.Bench;

public static class Report
{
    public static string Table(IReadOnlyList<Measurement> results, (Measurement? Result, string? NotMeasured) redis)
    {
        var inv = CultureInfo.InvariantCulture;
        var sb = new StringBuilder();
        sb.AppendLine("| system | cancel call | tasks | after the call returned: p50 / p99 / max ms | after the call was sent: p50 / p99 / max ms | the call itself: p50 / p99 ms | fired before the call returned | never fired |");
        sb.AppendLine("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |");
        foreach (var m in results.Append(redis.Result).OfType<Measurement>())
        {
            sb.AppendLine(string.Create(inv,
                $"| {m.System} | `{m.CancelCall}` | {m.Tasks} | {m.P(0.50):0.00} / {m.P(0.99):0.00} / {m.Max:0.00} | " +
                $"{m.SentP(0.50):0.00} / {m.SentP(0.99):0.00} / {m.SentMax:0.00} | " +
                $"{Measurement.Percentile(m.CallMs, 0.5):0.00} / {Measurement.Percentile(m.CallMs, 0.99):0.00} | {m.FiredBeforeReply} | {m.NotFired} |"));
        }
        if (redis.NotMeasured is { } reason)
            sb.AppendLine($"| redis SDK (external worker) | `PUT /runs/{{id}}/cancel` | - | {reason} | | | | |");

        var deepline = results.FirstOrDefault(r => r.System.StartsWith("deepline", StringComparison.Ordinal));
        if (deepline is not null && results.Count > 1)
            sb.AppendLine();
        foreach (var other in results.Where(r => r != deepline && deepline is not null))
        {
            sb.AppendLine(string.Create(inv,
                $"- {other.System} vs deepline, measured from the call being sent: p50 {Ratio(other.SentP(0.5), deepline!.SentP(0.5))}, " +
                $"p99 {Ratio(other.SentP(0.99), deepline.SentP(0.99))}, max {Ratio(other.SentMax, deepline.SentMax)} " +
                $"(after the call returned: p99 {other.P(0.99):0.00} ms vs {deepline.P(0.99):0.00} ms)"));
        }
        if (redis.NotMeasured is { } why)
            sb.AppendLine().AppendLine($"redis: {why}");
        return sb.ToString().TrimEnd() + Environment.NewLine;
    }

    private static string Ratio(double a, double b) =>
        b <= 0 || double.IsNaN(a) || double.IsNaN(b) ? "n/a" : string.Create(CultureInfo.InvariantCulture, $"{a / b:0.#}x slower");

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
        sb.AppendLine("- **redis SDK**: the external-worker path (the worker SDK subscribed to the Redis channel) is measured once");
        sb.AppendLine("  the SDK is on the branch (`bench/Deepline.Bench/RedisSdkBench.cs` is the hook).");
        sb.AppendLine();
        sb.AppendLine($"- date: {date:yyyy-MM-dd HH:mm} UTC");
        sb.AppendLine($"- machine: {machine}");
        sb.AppendLine($"- command: `{command}`");
        sb.AppendLine($"- tasks: {options.Tasks} (Deepline), {options.HangfireTasks} (Hangfire), after {options.Warmup} warm-up cancels each; " +
                      $"cancel calls at most one every {options.PaceMs} ms, one at a time, for every system");
        sb.AppendLine();
        sb.Append(table);
        return sb.ToString();
    }
}
