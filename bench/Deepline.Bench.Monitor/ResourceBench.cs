using System.Collections.Immutable;
using System.Diagnostics;
using Akka.Actor;
using Akka.Cluster;
using Akka.Hosting;
using Deepline.Actors.Hosting;
using Deepline.Actors.Index;
using Deepline.Actors.Monitoring;
using Deepline.Actors.Resources;
using Deepline.Actors.Workers;
using Deepline.Actors.Workflows;
using Deepline.Bench;
using Deepline.Domain;
using Deepline.Domain.Resources;
using Microsoft.Data.Sqlite;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

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

    /// <summary>
    /// End to end on a real node (SQLite, monitor on): pairs of runs cross two resources through an external pool whose
    /// worker is this bench; the latency is from the event that closes the cycle (the victim's first task succeeding,
    /// its second then waiting) to the victim's cancel being decided, through the run's journal write, the coordinator's
    /// decision and write, the supervisor's incident write and the cancel. Optionally over a background of holders and
    /// waiters synced straight into the coordinator.
    /// </summary>
    public static async Task EndToEnd(int pairs, int resources, int waiting)
    {
        var dir = Directory.CreateTempSubdirectory("deepline-bench-").FullName;
        try
        {
            var target = SqliteStore.Prepare(dir);
            var thresholds = new DetectorThresholds(3600, 3600, 3600);
            var settings = new WorkflowSettings(new SubmissionPolicy(50, ImmutableDictionary<string, ImmutableHashSet<string>>.Empty),
                TimeSpan.FromSeconds(30), 100, TimeSpan.FromMinutes(2), thresholds);
            var monitorSettings = new MonitorSettings(thresholds, TimeSpan.FromSeconds(60), CancelOnDeadlock: true, AlertWebhookConfigured: false);
            var (host, system, region) = await MonitorNode.StartAsync(target, settings, monitorSettings);
            using var _ = host;
            var coordinator = await ActorRegistry.For(system).GetAsync<ResourceCoordinator>();

            var t0 = DateTimeOffset.UtcNow;
            var none = ImmutableDictionary<string, ImmutableArray<ResourceRequest>>.Empty;
            var sw = Stopwatch.StartNew();
            var rnd = new Random(12);
            async Task Background(IEnumerable<ResourceSync> wishes)
            {
                foreach (var chunk in wishes.Chunk(500))
                    await Task.WhenAll(chunk.Select(w => coordinator.Ask<ResourcesGranted>(new SyncRunResources(w, 1), TimeSpan.FromSeconds(60))));
            }
            await Background(Enumerable.Range(0, resources).Select(r => new ResourceSync($"bg-holder-{r}", new RunFacts(t0, 0, 0),
                none.Add("t", [new ResourceRequest($"bg-{r}", 1)]), [], false)));
            if (resources > 0)
                await Background(Enumerable.Range(0, waiting).Select(w => new ResourceSync($"bg-waiter-{w}", new RunFacts(t0, 0, 0),
                    none.Add("t", [new ResourceRequest($"bg-{rnd.Next(resources)}", 1)]), [], false)));
            if (resources > 0) Console.Error.WriteLine($"  background of {resources:N0} held resources and {waiting:N0} waiting runs in {sw.Elapsed.TotalSeconds:0.0} s");

            TaskSpec Needs(string id, string resource, string? holdUntil, params string[] deps) =>
                new TaskSpec(id, "x", "bench-external", null, [.. deps]) { Resources = [new ResourceRequest(resource, 1)], HoldUntil = holdUntil };
            RunSpec Crossing(string runId, string held, string wanted) =>
                new(runId, "bench", "bench", [Needs("first", held, "second"), Needs("second", wanted, null, "first")]);
            async Task<WorkflowState> Get(string id) => (await region.Ask<RunReply>(new GetRun(id), TimeSpan.FromSeconds(10))).State;
            async Task<WorkflowState> Until(string id, Func<WorkflowState, bool> condition)
            {
                var deadline = DateTime.UtcNow.AddSeconds(30);
                while (true)
                {
                    var s = await Get(id);
                    if (condition(s)) return s;
                    if (DateTime.UtcNow > deadline) throw new TimeoutException($"{id}: {s.Status}");
                    await Task.Delay(2);
                }
            }
            async Task Finish(string id, string task)
            {
                await region.Ask<IDeeplineMessage>(new ReportTaskEvent(id, task, TaskEventKind.TASK_STARTED, "bench", null, null), TimeSpan.FromSeconds(10));
                await region.Ask<IDeeplineMessage>(new ReportTaskEvent(id, task, TaskEventKind.TASK_SUCCEEDED, "bench", null, null), TimeSpan.FromSeconds(10));
            }

            var latencies = new List<double>();
            for (var i = 0; i < pairs; i++)
            {
                var (a, b) = ($"e2e-a-{i}", $"e2e-b-{i}");
                await region.Ask<RunReply>(new SubmitRun(Crossing(a, $"ra-{i}", $"rb-{i}")), TimeSpan.FromSeconds(10));
                await region.Ask<RunReply>(new SubmitRun(Crossing(b, $"rb-{i}", $"ra-{i}")), TimeSpan.FromSeconds(10));
                await Until(a, s => s.Tasks["first"].Ready);
                await Until(b, s => s.Tasks["first"].Ready);
                await Finish(a, "first");
                await Until(a, s => !s.Tasks["second"].WaitingFor.IsEmpty);
                await Finish(b, "first");
                var victim = await Until(b, s => s.Cancel is not null);
                latencies.Add((victim.Cancel!.CancelledAt - victim.Tasks["first"].UpdatedAt).TotalMilliseconds);
            }
            latencies.Sort();
            double P(double q) => Measurement.Percentile([.. latencies], q);
            Console.WriteLine($"# Resource deadlock end to end  {DateTime.UtcNow:yyyy-MM-dd HH:mm} UTC  ({Environment.ProcessorCount} cores, SQLite)");
            Console.WriteLine("| background resources | background waiting runs | pairs | closing edge -> victim cancel p50 ms | p99 ms | max ms |");
            Console.WriteLine("|---:|---:|---:|---:|---:|---:|");
            Console.WriteLine($"| {resources:N0} | {waiting:N0} | {pairs} | {P(0.5):0.0} | {P(0.99):0.0} | {latencies[^1]:0.0} |");
            await host.StopAsync();
        }
        finally
        {
            SqliteConnection.ClearAllPools();
            Directory.Delete(dir, true);
        }
    }
}
