using System.Collections.Immutable;
using System.Diagnostics;
using Deepline.Domain.Resources;

/// <summary>
/// The coordinator's decision at a closing wait edge, on a graph of the size: every resource held by one run,
/// the waiting runs queued on random resources (no cycle among them), then pairs of holders crossing each other. Times
/// the decision alone (cycle search, reduction, victim choice, the events); the journal write and the victim's own
/// cancel come on top and are not measured here.
/// </summary>
public static class ResourceBench
{
    public static void Run(int resources, int waiting, int edges)
    {
        var t0 = DateTimeOffset.UtcNow;
        var none = ImmutableDictionary<string, ImmutableArray<ResourceRequest>>.Empty;
        var sw = Stopwatch.StartNew();
        var book = ResourceBook.Empty;
        for (var r = 0; r < resources; r++)
        {
            var holder = $"holder-{r}";
            book = book.Apply(new ResourceWantsRecorded(holder, new RunFacts(t0.AddMilliseconds(r), 0, 0), none, t0))
                .Apply(new ResourceGranted(holder, $"res-{r}", 1, t0));
        }
        var rnd = new Random(12);
        for (var w = 0; w < waiting; w++)
        {
            var run = $"waiter-{w}";
            book = book.Apply(new ResourceWantsRecorded(run, new RunFacts(t0, 0, 0), none, t0))
                .Apply(new ResourceWaiting(run, $"res-{rnd.Next(resources)}", 1, t0));
        }
        Console.Error.WriteLine($"  built {resources:N0} resources, {waiting:N0} waiting runs in {sw.Elapsed.TotalSeconds:0.0} s");

        var samples = new List<double>();
        var victims = 0;
        for (var i = 0; i < edges; i++)
        {
            // Holders 2i and 2i+1 cross: the first wait closes nothing, the second closes the cycle.
            var (a, b) = (2 * i % resources, (2 * i + 1) % resources);
            ResourceSync Wish(int holder, int other) => new($"holder-{holder}", new RunFacts(t0.AddMilliseconds(holder), 0, 0),
                none.Add("t", [new ResourceRequest($"res-{other}", 1)]), [$"res-{holder}"], false);
            foreach (var e in ResourceDecider.Sync(book, Wish(a, b), 1, VictimPolicy.youngest, t0).Events) book = book.Apply(e);
            var started = Stopwatch.GetTimestamp();
            var closing = ResourceDecider.Sync(book, Wish(b, a), 1, VictimPolicy.youngest, t0);
            samples.Add(Stopwatch.GetElapsedTime(started).TotalMilliseconds);
            victims += closing.Victims.Count();
            foreach (var e in closing.Events) book = book.Apply(e);
        }
        samples.Sort();
        double P(double q) => samples[Math.Min(samples.Count - 1, (int)(q * samples.Count))];
        Console.WriteLine($"# Resource deadlock decision  {DateTime.UtcNow:yyyy-MM-dd HH:mm} UTC  ({Environment.ProcessorCount} cores)");
        Console.WriteLine("| resources | waiting runs | closing edges | victims | decision p50 ms | p99 ms | max ms |");
        Console.WriteLine("|---:|---:|---:|---:|---:|---:|---:|");
        Console.WriteLine($"| {resources:N0} | {waiting:N0} | {edges} | {victims} | {P(0.5):0.000} | {P(0.99):0.000} | {samples[^1]:0.000} |");
    }
}
