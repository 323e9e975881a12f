using System.Diagnostics;

namespace Deepline.Bench;

/// <summary>
/// One system's result. Latency per task = token fired - cancel call returned (clamped at 0: the token may fire
/// before the caller has read the reply, which counts as instant and is reported separately).
/// </summary>
/// <param name="FromSentMs">Token fired - cancel call sent: the whole way, including the call itself.</param>
public sealed record Measurement(
    string System, string CancelCall, int Tasks, double[] LatencyMs, double[] FromSentMs, double[] CallMs, int FiredBeforeReply, int NotFired)
{
    public static Measurement From(string system, string cancelCall, IReadOnlyList<(long Sent, long Returned)> calls,
        IReadOnlyList<long?> fired)
    {
        var latency = new List<double>();
        var fromSent = new List<double>();
        var before = 0;
        var missing = 0;
        for (var i = 0; i < calls.Count; i++)
        {
            if (fired[i] is not { } f)
            {
                missing++;
                continue;
            }
            var ms = Stopwatch.GetElapsedTime(calls[i].Returned, f).TotalMilliseconds;
            if (ms < 0) before++;
            latency.Add(Math.Max(0, ms));
            fromSent.Add(Stopwatch.GetElapsedTime(calls[i].Sent, f).TotalMilliseconds);
        }
        var call = calls.Select(c => Stopwatch.GetElapsedTime(c.Sent, c.Returned).TotalMilliseconds).ToArray();
        return new Measurement(system, cancelCall, calls.Count, [.. latency.Order()], [.. fromSent.Order()], [.. call.Order()], before, missing);
    }

    public double P(double q) => Percentile(LatencyMs, q);

    public double Max => LatencyMs.Length == 0 ? double.NaN : LatencyMs[^1];

    public double SentP(double q) => Percentile(FromSentMs, q);

    public double SentMax => FromSentMs.Length == 0 ? double.NaN : FromSentMs[^1];

    public static double Percentile(double[] sorted, double q)
    {
        if (sorted.Length == 0) return double.NaN;
        var rank = (int)Math.Ceiling(q * sorted.Length);
        return sorted[Math.Clamp(rank - 1, 0, sorted.Length - 1)];
    }
}

/// <summary>Waits for a condition with a deadline, printing progress while it waits.</summary>
public static class Wait
{
    public static async Task Until(Func<int> count, int target, TimeSpan within, string what)
    {
        var deadline = Stopwatch.GetTimestamp() + (long)(within.TotalSeconds * Stopwatch.Frequency);
        var lastPrint = Stopwatch.GetTimestamp();
        while (count() < target)
        {
            if (Stopwatch.GetTimestamp() > deadline)
                throw new TimeoutException($"{what}: {count()} of {target} after {within.TotalSeconds} s");
            if (Stopwatch.GetElapsedTime(lastPrint) > TimeSpan.FromSeconds(2))
            {
                Console.WriteLine($"  {what}: {count()}/{target}");
                lastPrint = Stopwatch.GetTimestamp();
            }
            await Task.Delay(5);
        }
    }
}

/// <summary>Spaces calls out: each starts no earlier than <c>pace</c> after the previous one started.</summary>
public sealed class Pacer(TimeSpan pace)
{
    private long _last;

    public async Task NextAsync()
    {
        if (_last != 0)
        {
            var due = Stopwatch.GetElapsedTime(_last);
            if (due < pace) await Task.Delay(pace - due);
            while (Stopwatch.GetElapsedTime(_last) < pace) Thread.SpinWait(50);
        }
        _last = Stopwatch.GetTimestamp();
    }
}
