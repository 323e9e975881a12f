using System.Collections.Concurrent;
using System.Diagnostics;
using Hangfire;
using Hangfire.InMemory;

namespace Deepline.Bench;

/// <summary>
/// Hangfire 1.8 with its in-memory storage in this process: N jobs that wait on their CancellationToken, a worker per
/// job, then each job deleted with BackgroundJobClient.Delete (what BackgroundJob.Delete does), one after the other.
/// Hangfire notices a deleted running job by polling its state every CancellationCheckInterval (5 s by default).
/// </summary>
public static class HangfireBench
{
    public static async Task<Measurement> RunAsync(int tasks, int warmup, TimeSpan pace, TimeSpan? checkInterval)
    {
        var label = checkInterval is { } i ? $"hangfire, CancellationCheckInterval {i.TotalMilliseconds:0} ms" : "hangfire, default settings";
        Console.WriteLine($"{label}: starting a server with {tasks + warmup} workers");
        HangfireProbe.Reset();
        using var storage = new InMemoryStorage();
        var client = new BackgroundJobClient(storage);
        var options = new BackgroundJobServerOptions { WorkerCount = tasks + warmup, ShutdownTimeout = TimeSpan.FromSeconds(10) };
        if (checkInterval is { } interval) options.CancellationCheckInterval = interval;
        using var server = new BackgroundJobServer(options, storage);

        var warm = Enqueue(client, Enumerable.Range(0, warmup).Select(n => $"warm-{n}").ToList());
        await Wait.Until(() => HangfireProbe.Started, warm.Count, TimeSpan.FromSeconds(60), $"{label}: warm-up jobs running");
        await DeleteEach(client, warm, pace);
        await Wait.Until(() => warm.Count(w => HangfireProbe.Fired.ContainsKey(w.Key)), warm.Count, TimeSpan.FromSeconds(60),
            $"{label}: warm-up tokens fired");

        var jobs = Enqueue(client, Enumerable.Range(0, tasks).Select(n => $"job-{n}").ToList());
        await Wait.Until(() => HangfireProbe.Started, warm.Count + jobs.Count, TimeSpan.FromSeconds(120), $"{label}: jobs running");
        Console.WriteLine($"{label}: {jobs.Count} jobs running; deleting each");
        var calls = await DeleteEach(client, jobs, pace);
        try
        {
            // Two polling intervals and then some: a token that has not fired by then is reported as never fired.
            var patience = 2 * (checkInterval ?? TimeSpan.FromSeconds(5)) + TimeSpan.FromSeconds(10);
            await Wait.Until(() => jobs.Count(j => HangfireProbe.Fired.ContainsKey(j.Key)), jobs.Count, patience, $"{label}: tokens fired");
        }
        catch (TimeoutException e)
        {
            Console.WriteLine(e.Message);
        }
        var fired = jobs.Select(j => HangfireProbe.Fired.TryGetValue(j.Key, out var t) ? t : (long?)null).ToList();
        var again = HangfireProbe.Executions.Where(e => e.Value > 1).Select(e => e.Key).Order().ToList();
        if (again.Count > 0) Console.WriteLine($"{label}: {again.Count} jobs were executed more than once: {string.Join(", ", again.Take(10))}");
        var early = jobs.Where((j, n) => fired[n] is { } f && f < calls[n].Sent).Select(j => j.Key).ToList();
        if (early.Count > 0) Console.WriteLine($"{label}: {early.Count} tokens fired before their Delete was sent: {string.Join(", ", early.Take(10))}");
        var missing = jobs.Where((j, n) => fired[n] is null).Select(j => j.Key).ToList();
        if (missing.Count > 0) Console.WriteLine($"{label}: {missing.Count} tokens never fired: {string.Join(", ", missing.Take(10))}");
        server.SendStop();
        return Measurement.From(label, "BackgroundJob.Delete(id)", calls, fired);
    }

    private static List<(string Key, string JobId)> Enqueue(BackgroundJobClient client, IReadOnlyList<string> keys) =>
        keys.Select(k => (k, client.Enqueue(() => HangfireProbe.WaitForCancel(k, CancellationToken.None)))).ToList();

    private static async Task<List<(long Sent, long Returned)>> DeleteEach(
        BackgroundJobClient client, IReadOnlyList<(string Key, string JobId)> jobs, TimeSpan pace)
    {
        var calls = new List<(long, long)>(jobs.Count);
        var pacer = new Pacer(pace);
        foreach (var (key, jobId) in jobs)
        {
            await pacer.NextAsync();
            var sent = Stopwatch.GetTimestamp();
            if (!client.Delete(jobId)) throw new InvalidOperationException($"hangfire refused to delete job {jobId} ({key})");
            calls.Add((sent, Stopwatch.GetTimestamp()));
        }
        return calls;
    }
}

/// <summary>The job: waits on the token Hangfire passes in and notes when it fired.</summary>
public static class HangfireProbe
{
    private static int s_started;

    public static ConcurrentDictionary<string, long> Fired { get; private set; } = new();

    /// <summary>Executions per job: Hangfire may run a job again (at-least-once), which the report points out.</summary>
    public static ConcurrentDictionary<string, int> Executions { get; private set; } = new();

    public static int Started => Volatile.Read(ref s_started);

    public static void Reset()
    {
        Fired = new ConcurrentDictionary<string, long>();
        Executions = new ConcurrentDictionary<string, int>();
        s_started = 0;
    }

    public static async Task WaitForCancel(string key, CancellationToken cancellationToken)
    {
        var fired = Fired;
        Executions.AddOrUpdate(key, 1, (_, n) => n + 1);
        using var registration = cancellationToken.Register(() => fired.TryAdd(key, Stopwatch.GetTimestamp()));
        Interlocked.Increment(ref s_started);
        try
        {
            await Task.Delay(Timeout.Infinite, cancellationToken);
        }
        catch (OperationCanceledException)
        {
        }
    }
}
