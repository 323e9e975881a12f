using System.Collections.Immutable;
using System.Diagnostics;
using Deepline.Actors.Hosting;
using Deepline.Bench;
using Deepline.Domain;
using ScottPlot;

/// <summary>
/// Throughput and latency against load: one node per store, warmed up once, then the same batch of runs at each level of
/// submissions in flight. A run's latency is the node's own clock from its submission being accepted to its last
/// transition (created_at to updated_at of the SUCCEEDED run), so polling does not blur it.
/// </summary>
internal static class LoadSweep
{
    public sealed record Point(string Store, int InFlight, double TransitionsPerS, double SubmissionsPerS, double LatencyP50Ms, double LatencyP99Ms, double RowsPerCommit);

    public static async Task<IReadOnlyList<Point>> RunAsync(string store, IReadOnlyList<int> levels, int runs, int slots, int warmupRuns,
        Func<string, ImmutableArray<TaskSpec>> shape)
    {
        await using var node = await BenchNode.StartAsync(slots);
        await node.WarmUpAsync(levels.Max(), warmupRuns, shape);
        var points = new List<Point>();
        foreach (var inFlight in levels)
        {
            var ids = Enumerable.Range(0, runs).Select(i => $"sweep-{inFlight}-{i:D7}").ToList();
            Console.Error.WriteLine($"sweep ({store}): {runs:N0} runs with {inFlight} submissions in flight");
            var baseline = node.JournalRows();
            var (commits0, rows0) = (GroupCommitJournal.Commits, GroupCommitJournal.Rows);
            var clock = Stopwatch.StartNew();
            await node.SubmitAllAsync(ids, shape, inFlight);
            var submitS = clock.Elapsed.TotalSeconds;
            await node.WaitAllAsync(ids, RunStatus.SUCCEEDED, TimeSpan.FromMinutes(10));
            var wallS = clock.Elapsed.TotalSeconds;
            var events = node.JournalRows() - baseline;
            var rowsPerCommit = (double)(GroupCommitJournal.Rows - rows0) / Math.Max(1, GroupCommitJournal.Commits - commits0);
            var latencies = new List<double>(ids.Count);
            foreach (var id in ids)
                if (await node.GetAsync(id) is { } s) latencies.Add((s.UpdatedAt - s.CreatedAt).TotalMilliseconds);
            var sorted = latencies.Order().ToArray();
            points.Add(new Point(store, inFlight, events / wallS, runs / submitS, Measurement.Percentile(sorted, 0.50), Measurement.Percentile(sorted, 0.99), rowsPerCommit));
            await node.WaitIndexAsync(TimeSpan.FromMinutes(5));
        }
        return points;
    }

    /// <summary>Titles, labels, a y axis from 0 with a tenth of headroom and the legend upper left: the benchmarks' plots look alike.</summary>
    public static void Style(Plot plot, string title, string x, string y)
    {
        plot.Title(title);
        plot.XLabel(x);
        plot.YLabel(y);
        plot.Axes.AutoScale();
        plot.Axes.SetLimitsY(0, plot.Axes.GetLimits().Top * 1.1);
        plot.ShowLegend(Alignment.UpperLeft);
    }

    /// <summary>Two PNGs: transitions/s, and run latency p50/p99, each against submissions in flight (log2 axis).</summary>
    public static IReadOnlyList<string> Plot(IReadOnlyList<Point> points, string dir, string caption)
    {
        Directory.CreateDirectory(dir);
        var levels = points.Select(p => p.InFlight).Distinct().Order().ToArray();
        var ticks = new ScottPlot.TickGenerators.NumericManual(levels.Select(l => Math.Log2(l)).ToArray(), levels.Select(l => l.ToString()).ToArray());

        var throughput = new Plot();
        var latency = new Plot();
        foreach (var store in points.Select(p => p.Store).Distinct())
        {
            var mine = points.Where(p => p.Store == store).OrderBy(p => p.InFlight).ToArray();
            var xs = mine.Select(p => Math.Log2(p.InFlight)).ToArray();
            var t = throughput.Add.Scatter(xs, mine.Select(p => p.TransitionsPerS).ToArray());
            t.LegendText = store;
            var p50 = latency.Add.Scatter(xs, mine.Select(p => p.LatencyP50Ms).ToArray());
            p50.LegendText = $"{store} p50";
            var p99 = latency.Add.Scatter(xs, mine.Select(p => p.LatencyP99Ms).ToArray());
            p99.LegendText = $"{store} p99";
            p99.LinePattern = LinePattern.Dashed;
        }
        foreach (var (plot, title, y) in new[] { (throughput, "Journalled task transitions per second", "transitions/s"),
                     (latency, "Run latency (submission accepted to last transition)", "ms") })
        {
            plot.Axes.Bottom.TickGenerator = ticks;
            Style(plot, title, $"submissions in flight — {caption}", y);
        }
        var files = new[] { Path.Combine(dir, "throughput-vs-load.png"), Path.Combine(dir, "latency-vs-load.png") };
        throughput.SavePng(files[0], 900, 520);
        latency.SavePng(files[1], 900, 520);
        return files;
    }
}
