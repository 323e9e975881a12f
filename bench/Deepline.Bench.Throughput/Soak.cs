using System.Collections.Concurrent;
using System.Collections.Immutable;
using System.Diagnostics;
using Akka.Actor;
using Deepline.Bench;
using Deepline.Domain;
using ScottPlot;

/// <summary>
/// A node held at a steady rate for a long time, with and without retention: every <c>sample</c> seconds the data
/// directory's size, the run index's and the journal's rows, the transitions/s of that interval and the latency of
/// cancels of unrelated open runs. With retention the store must stop growing once the first runs are due; without it,
/// it grows for ever. The load is open loop (runs are submitted at the rate whatever the node does), so a node that
/// falls behind shows it as fewer transitions than offered, not as a slower submitter.
/// </summary>
internal static class Soak
{
    /// <summary>Events one diamond run journals: RunSubmitted, then TaskStarted and TaskSucceeded for each of 5 tasks.</summary>
    private const int EventsPerRun = 11;

    public sealed record Sample(double AtS, double StoreMiB, double WalMiB, long IndexRows, long JournalRows, double TransitionsPerS,
        double CancelP99Ms, long Behind);

    public sealed record Pass(string Label, int RetentionS, IReadOnlyList<Sample> Samples, double[] CancelMs, long Submitted,
        long SubmitFailures, long Removed)
    {
        public IEnumerable<Sample> LastHalf => Samples.Where(s => s.AtS > Samples[^1].AtS / 2);

        /// <summary>(max - min) / mean of the store's size over the last half: 0.1 is flat within 10 %.</summary>
        public double SizeSpread => LastHalf.ToList() is { Count: > 0 } h ? (h.Max(s => s.StoreMiB) - h.Min(s => s.StoreMiB)) / h.Average(s => s.StoreMiB) : double.NaN;

        public double TransitionsPerS => LastHalf.Average(s => s.TransitionsPerS);
    }

    public static async Task<Pass> RunAsync(int seconds, int ratePerS, int retentionS, int sampleS, int slots)
    {
        BenchNode.Retention = retentionS > 0 ? new RetentionPolicy(retentionS, retentionS, retentionS) : RetentionPolicy.Forever;
        var label = retentionS > 0 ? $"retention {retentionS} s" : "no retention";
        await using var node = await BenchNode.StartAsync(slots);
        await node.WarmUpAsync(64, 500, Diamond);
        Console.Error.WriteLine($"soak ({label}): {ratePerS} runs/s ({ratePerS * EventsPerRun:N0} transitions/s offered) for {seconds} s");

        var stop = new CancellationTokenSource(TimeSpan.FromSeconds(seconds));
        long submitted = 0, failures = 0, finished0 = node.Finished().Succeeded;
        var cancels = new ConcurrentQueue<(double AtS, double Ms)>();
        var clock = Stopwatch.StartNew();

        // Open loop: every 10 ms the runs the rate owes are sent, at most 1,024 unanswered (then the node is behind).
        var inFlight = new SemaphoreSlim(1024);
        var load = Task.Run(async () =>
        {
            using var tick = new PeriodicTimer(TimeSpan.FromMilliseconds(10));
            while (await tick.WaitForNextTickAsync(CancellationToken.None) && !stop.IsCancellationRequested)
            {
                var owed = (long)(clock.Elapsed.TotalSeconds * ratePerS) - Interlocked.Read(ref submitted);
                for (var i = 0; i < owed; i++)
                {
                    if (!inFlight.Wait(0)) break;
                    var id = $"soak-{Interlocked.Increment(ref submitted):D9}";
                    _ = node.Region.Ask<IDeeplineMessage>(new SubmitRun(new RunSpec(id, "soak", "soak", Diamond(id))), TimeSpan.FromSeconds(30))
                        .ContinueWith(t =>
                        {
                            inFlight.Release();
                            if (t.IsFaulted || t.Result is not RunReply) Interlocked.Increment(ref failures);
                        }, TaskScheduler.Default);
                }
            }
        });

        // Live cancels beside the load: an open run (its pool has no worker) is submitted, then cancelled, ten a second.
        var live = Task.Run(async () =>
        {
            ImmutableArray<TaskSpec> open = [new TaskSpec("x", "etl", "nobody-polls", null, [])];
            var n = 0;
            using var tick = new PeriodicTimer(TimeSpan.FromMilliseconds(100));
            while (await tick.WaitForNextTickAsync(CancellationToken.None) && !stop.IsCancellationRequested)
            {
                var id = $"live-{n++:D7}";
                try
                {
                    if (await node.Region.Ask<IDeeplineMessage>(new SubmitRun(new RunSpec(id, "live", "live", open)), TimeSpan.FromSeconds(30)) is not RunReply) continue;
                    var t = Stopwatch.GetTimestamp();
                    if (await node.Region.Ask<IDeeplineMessage>(new CancelRun(id, "soak", "bench", false), TimeSpan.FromSeconds(30)) is CancelReply)
                        cancels.Enqueue((clock.Elapsed.TotalSeconds, Stopwatch.GetElapsedTime(t).TotalMilliseconds));
                }
                catch (AskTimeoutException)
                {
                    Interlocked.Increment(ref failures);
                }
            }
        });

        var samples = new List<Sample>();
        var lastFinished = finished0;
        var lastAt = 0.0;
        using (var tick = new PeriodicTimer(TimeSpan.FromSeconds(sampleS)))
        {
            while (await tick.WaitForNextTickAsync() && clock.Elapsed.TotalSeconds < seconds + sampleS / 2.0)
            {
                var at = clock.Elapsed.TotalSeconds;
                var finished = node.Finished().Succeeded;
                var interval = cancels.Where(c => c.AtS > lastAt).Select(c => c.Ms).Order().ToArray();
                var (db, wal) = node.StoreBytes();
                var s = new Sample(at, db / 1048576.0, wal / 1048576.0, node.Count("SELECT COUNT(*) FROM run_index"),
                    node.Count("SELECT COUNT(*) FROM journal"), (finished - lastFinished) * EventsPerRun / (at - lastAt),
                    interval.Length > 0 ? Measurement.Percentile(interval, 0.99) : double.NaN,
                    Interlocked.Read(ref submitted) - (finished - finished0));
                samples.Add(s);
                Console.Error.WriteLine($"  {s.AtS,5:0} s  store {s.StoreMiB,7:0.0} MiB (wal {s.WalMiB:0.0})  index {s.IndexRows,8:N0}  journal {s.JournalRows,9:N0}  " +
                                        $"{s.TransitionsPerS,7:N0} transitions/s  cancel p99 {s.CancelP99Ms,6:0.0} ms  open {s.Behind,6:N0}");
                (lastFinished, lastAt) = (finished, at);
            }
        }
        await Task.WhenAll(load, live);
        Console.Error.WriteLine($"  journal rows at the end: {node.Count("SELECT COUNT(*) FROM journal WHERE persistence_id LIKE 'run-%'"):N0} of runs " +
                                $"({node.Count("SELECT COUNT(*) FROM journal WHERE persistence_id LIKE 'run-%' AND deleted")} marked deleted), " +
                                $"{node.Count("SELECT COUNT(*) FROM journal WHERE persistence_id NOT LIKE 'run-%'"):N0} of other entities " +
                                $"({node.Count("SELECT COUNT(*) FROM journal WHERE persistence_id NOT LIKE 'run-%' AND deleted")} marked deleted); " +
                                (node.IsPostgreSql
                                    ? $"{node.Count("SELECT COALESCE(SUM(n_dead_tup), 0) FROM pg_stat_user_tables"):N0} dead tuples"
                                    : $"{node.Count("PRAGMA freelist_count"):N0} free pages"));
        var removed = Interlocked.Read(ref submitted) + cancels.Count - node.Count("SELECT COUNT(*) FROM run_index WHERE run_id LIKE 'soak-%' OR run_id LIKE 'live-%'");
        return new Pass(label, retentionS, samples, [.. cancels.Select(c => c.Ms).Order()], Interlocked.Read(ref submitted), Interlocked.Read(ref failures),
            retentionS > 0 ? removed : 0);
    }

    /// <summary>Markdown: one row per pass, then the samples side by side.</summary>
    public static IEnumerable<string> Table(Pass baseline, Pass retained, int ratePerS)
    {
        yield return $"## Soak: {ratePerS} runs/s of 5 noop tasks ({ratePerS * EventsPerRun:N0} transitions/s offered) and 10 cancels/s of open runs, without and with retention";
        yield return "| pass | runs submitted | failed submits | runs removed | store MiB at end | size spread over last half | transitions/s (last half) | vs no retention | cancel p50 ms | cancel p99 ms |";
        yield return "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|";
        foreach (var p in new[] { baseline, retained })
            yield return $"| {p.Label} | {p.Submitted:N0} | {p.SubmitFailures:N0} | {p.Removed:N0} | {p.Samples[^1].StoreMiB:0.0} | {p.SizeSpread:P1} | {p.TransitionsPerS:N0} | " +
                         $"{p.TransitionsPerS / baseline.TransitionsPerS:P1} | {Measurement.Percentile(p.CancelMs, 0.5):0.0} | {Measurement.Percentile(p.CancelMs, 0.99):0.0} |";
        yield return "";
        yield return "| s | store MiB (no retention) | store MiB (retention) | index rows (no retention) | index rows (retention) | transitions/s (no retention) | transitions/s (retention) | cancel p99 ms (no retention) | cancel p99 ms (retention) |";
        yield return "|---:|---:|---:|---:|---:|---:|---:|---:|---:|";
        for (var i = 0; i < Math.Min(baseline.Samples.Count, retained.Samples.Count); i++)
        {
            var (a, b) = (baseline.Samples[i], retained.Samples[i]);
            yield return $"| {b.AtS:0} | {a.StoreMiB:0.0} | {b.StoreMiB:0.0} | {a.IndexRows:N0} | {b.IndexRows:N0} | {a.TransitionsPerS:N0} | {b.TransitionsPerS:N0} | {a.CancelP99Ms:0.0} | {b.CancelP99Ms:0.0} |";
        }
        yield return "";
    }

    /// <summary>Two PNGs over time: store size, and transitions/s, each pass a line.</summary>
    public static IReadOnlyList<string> Plot(Pass baseline, Pass retained, string dir, string caption)
    {
        Directory.CreateDirectory(dir);
        var size = new Plot();
        var rate = new Plot();
        foreach (var p in new[] { baseline, retained })
        {
            var xs = p.Samples.Select(s => s.AtS).ToArray();
            size.Add.Scatter(xs, p.Samples.Select(s => s.StoreMiB).ToArray()).LegendText = p.Label;
            rate.Add.Scatter(xs, p.Samples.Select(s => s.TransitionsPerS).ToArray()).LegendText = p.Label;
        }
        foreach (var (plot, title, y) in new[] { (size, "Data directory size (SQLite database + WAL)", "MiB"), (rate, "Task transitions per second", "transitions/s") })
            LoadSweep.Style(plot, title, $"seconds — {caption}", y);
        var files = new[] { Path.Combine(dir, "soak-store-size.png"), Path.Combine(dir, "soak-transitions.png") };
        size.SavePng(files[0], 900, 520);
        rate.SavePng(files[1], 900, 520);
        return files;
    }

    private static ImmutableArray<TaskSpec> Diamond(string runId) =>
    [
        new TaskSpec("a", "noop", TaskSpec.DefaultPool, null, []),
        new TaskSpec("b", "noop", TaskSpec.DefaultPool, null, ["a"]),
        new TaskSpec("c", "noop", TaskSpec.DefaultPool, null, ["a"]),
        new TaskSpec("d", "noop", TaskSpec.DefaultPool, null, ["a"]),
        new TaskSpec("e", "noop", TaskSpec.DefaultPool, null, ["b", "c", "d"]),
    ];
}
