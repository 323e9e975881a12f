using System.Collections.Concurrent;
using System.Diagnostics;
using System.Text;
using Deepline.Actors.Tracing;

namespace Deepline.Bench;

/// <summary>
/// Where each cancel's time went, from the node's own spans ("ask run" in the HTTP gateway, "run decide" from the run's
/// decision to its journal write) noted on this process's monotonic clock, so that a slow cancel can be put down to the
/// HTTP way in, the mailbox, the journal or the way out to the pool; and whether a garbage collection ran meanwhile.
/// Attaching the listener makes every span real (a few hundred bytes each), so its rows run a little slower than the
/// plain ones: it explains a tail, the plain row measures it.
/// </summary>
public sealed class CancelBreakdown : IDisposable
{
    private readonly ActivityListener _listener;
    private readonly ConcurrentDictionary<(string Run, string Span), (long Start, long End)> _spans = new();

    public CancelBreakdown()
    {
        _listener = new ActivityListener
        {
            ShouldListenTo = s => s.Name == RunTracing.SourceName,
            Sample = (ref ActivityCreationOptions<ActivityContext> _) => ActivitySamplingResult.AllData,
            // Tags are set after a span starts, so a span is recognised when it stops; its start is its duration before.
            ActivityStopped = a =>
            {
                if (!IsCancel(a, out var run)) return;
                var end = Stopwatch.GetTimestamp();
                _spans[(run, a.DisplayName)] = (end - (long)(a.Duration.TotalSeconds * Stopwatch.Frequency), end);
            },
        };
        ActivitySource.AddActivityListener(_listener);
    }

    private static bool IsCancel(Activity a, out string run)
    {
        run = a.GetTagItem(RunTracing.RunIdTag) as string ?? "";
        return run.Length > 0 && a.GetTagItem(RunTracing.CommandTag) as string == "CancelRun"
            && a.DisplayName is "ask run" or "run decide";
    }

    /// <summary>
    /// Per cancel: call sent → the gateway's ask (HTTP in), → the run's decision (region and mailbox), the decision and
    /// its journal write (which the reply waits for), the decision → the token fired (pub/sub and pool, while the
    /// journal write is under way), and the reply's way back to the caller.
    /// </summary>
    public string Table(IReadOnlyList<string> runs, IReadOnlyList<(long Sent, long Returned)> calls, IReadOnlyList<long?> fired,
        IReadOnlyList<(int Gcs, TimeSpan Pause)> gcs)
    {
        var rows = new List<double[]>();
        for (var i = 0; i < runs.Count; i++)
        {
            if (fired[i] is not { } f
                || !_spans.TryGetValue((runs[i], "ask run"), out var ask)
                || !_spans.TryGetValue((runs[i], "run decide"), out var decide)) continue;
            static double Ms(long from, long to) => Stopwatch.GetElapsedTime(from, to).TotalMilliseconds;
            rows.Add([
                Ms(calls[i].Sent, f), Ms(calls[i].Sent, ask.Start), Ms(ask.Start, decide.Start), Ms(decide.Start, decide.End),
                Ms(decide.Start, f), Ms(ask.End, calls[i].Returned), gcs[i].Gcs, gcs[i].Pause.TotalMilliseconds,
            ]);
        }
        if (rows.Count == 0) return "breakdown: no cancel had both spans (was the listener attached?)";
        string[] names = ["sent → fired", "HTTP in", "region + mailbox", "decide + journal (the reply waits for it)", "decided → pool → token", "reply out", "GCs", "GC pause ms"];
        var sorted = rows.OrderBy(r => r[0]).ToList();
        var tail = sorted.Skip((int)(sorted.Count * 0.99)).ToList();
        var sb = new StringBuilder();
        sb.AppendLine($"Where the time went ({rows.Count} cancels with both spans; ms; the last column group is the slowest 1% by sent → fired):");
        sb.AppendLine("| segment | p50 | p99 | max | mean of the slowest 1% |");
        sb.AppendLine("| --- | ---: | ---: | ---: | ---: |");
        for (var c = 0; c < names.Length; c++)
        {
            var column = rows.Select(r => r[c]).Order().ToArray();
            sb.AppendLine($"| {names[c]} | {Measurement.Percentile(column, 0.5):0.00} | {Measurement.Percentile(column, 0.99):0.00} | {column[^1]:0.00} | {tail.Average(r => r[c]):0.00} |");
        }
        sb.AppendLine($"cancels with a GC between sent and fired: {rows.Count(r => r[6] > 0)}; their p50 sent → fired " +
            $"{Median(rows.Where(r => r[6] > 0))}, the others' {Median(rows.Where(r => r[6] == 0))} ms");
        return sb.ToString();

        static string Median(IEnumerable<double[]> rs)
        {
            var xs = rs.Select(r => r[0]).Order().ToArray();
            return xs.Length == 0 ? "-" : $"{Measurement.Percentile(xs, 0.5):0.00}";
        }
    }

    public void Dispose() => _listener.Dispose();
}
