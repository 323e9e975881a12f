using System.Collections.Immutable;
using Akka.Actor;
using Akka.Cluster;
using Akka.Hosting;
using Deepline.Actors.Alerting;
using Deepline.Actors.Cancellation;
using Deepline.Actors.Hosting;
using Deepline.Actors.Index;
using Deepline.Actors.Monitoring;
using Deepline.Actors.Resources;
using Deepline.Actors.Workers;
using Deepline.Actors.Workflows;
using Deepline.Domain;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Data.Sqlite;

namespace Deepline.Actors.Tests;

/// <summary>
/// A real single-node cluster, composed as the node composes it (the same per-feature Akka.Hosting extensions), on a
/// SQLite file the test owns, so a test can stop it and start another on the same file.
/// </summary>
public sealed class TestNode : IAsyncDisposable
{
    private readonly IHost _host;

    private TestNode(IHost host, ActorSystem system, IActorRef region, WorkflowSettings settings)
    {
        _host = host;
        System = system;
        Region = region;
        Settings = settings;
    }

    public ActorSystem System { get; }

    public IActorRef Region { get; }

    public WorkflowSettings Settings { get; }

    /// <summary>How the region spreads runs over shards (to put two runs in one shard).</summary>
    public int NumberOfShards { get; private init; }

    /// <summary>The deadlock supervisor's singleton proxy, when the node runs a monitor.</summary>
    public IActorRef? Supervisor { get; private init; }

    public async Task<MonitorStatus> MonitorStatus() =>
        await Supervisor!.Ask<MonitorStatus>(GetMonitorStatus.Instance, TimeSpan.FromSeconds(10));

    public static async Task<TestNode> StartAsync(
        string dataDir,
        IEnumerable<ITaskHandler>? handlers = null,
        int slots = 4,
        TimeSpan? cancelTimeout = null,
        int snapshotEvery = 100,
        MonitorSettings? monitor = null,
        bool runTimers = true,
        WebhookSettings? webhook = null,
        TimeSpan? passivateAfter = null,
        ProcessAllowlist? processes = null,
        Deepline.Actors.Resources.ResourceSettings? resources = null,
        RetrySettings? retry = null)
    {
        processes ??= ProcessAllowlist.Disabled;
        var registry = new TaskHandlerRegistry(TaskHandlerRegistry.BuiltIns.Where(h => h.Type != ProcessAllowlist.TaskType)
            .Append(new ProcessHandler(processes)).Concat(handlers ?? []));
        var store = SqliteStore.Prepare(dataDir);
        var settings = new WorkflowSettings(
            new SubmissionPolicy(50, ImmutableDictionary<string, ImmutableHashSet<string>>.Empty
                .Add(TaskSpec.DefaultPool, [.. registry.Types])) { Processes = processes, Retry = retry ?? RetrySettings.Off },
            cancelTimeout ?? TimeSpan.FromSeconds(30), snapshotEvery, passivateAfter ?? TimeSpan.FromMinutes(2),
            runTimers ? monitor?.Thresholds : null);
        // Fixed: a node restarted on the same data directory is the only one that ever used it.
        settings = settings with { SingleNodeStore = true };
        var pools = new[] { new WorkerPoolSettings(TaskSpec.DefaultPool, slots, TimeSpan.FromMilliseconds(300), TimeSpan.FromSeconds(3)) };
        var roles = ClusterHosting.NodeRoles(servesPools: true, [], storeRole: null);

        var builder = Host.CreateApplicationBuilder();
        builder.Logging.ClearProviders().SetMinimumLevel(LogLevel.Warning);
        builder.Services.AddWebhookAlerting(webhook);
        builder.Services.AddAkka("deepline", (akka, _) =>
        {
            akka.WithDeeplineCluster(new NodeClusterSettings("127.0.0.1", 0, [], roles))
                .WithDeeplinePersistence(store.ConnectionString, store.ProviderName)
                .WithWorkflowRuns(settings, roles)
                .WithResourceCoordinator(resources ?? Deepline.Actors.Resources.ResourceSettings.Default)
                .WithIntegrityWatch()
                .WithCancellationMirror(() => new SqliteConnection(store.ConnectionString))
                .WithWorkerPools(pools, registry);
            if (monitor is not null)
                akka.WithDeadlockMonitor(monitor, new RunIndexStore(() => new SqliteConnection(store.ConnectionString), monitor.Thresholds));
        });
        var host = builder.Build();
        await host.StartAsync();
        var system = host.Services.GetRequiredService<ActorSystem>();
        await Await.Until(() => Cluster.Get(system).SelfMember.Status == MemberStatus.Up, TimeSpan.FromSeconds(20), "node is Up");
        var region = await ActorRegistry.For(system).GetAsync<WorkflowRegion>();
        var supervisor = monitor is null ? null : await ActorRegistry.For(system).GetAsync<DeadlockSupervisor>();
        return new TestNode(host, system, region, settings) { Supervisor = supervisor, NumberOfShards = WorkflowRunsHosting.DefaultNumberOfShards };
    }

    public async Task<T> Ask<T>(IRunCommand command) => await Region.Ask<T>(command, TimeSpan.FromSeconds(10));

    public async Task<WorkflowState> Run(string runId) => (await Ask<RunReply>(new GetRun(runId))).State;

    /// <summary>Polls the run until it satisfies <paramref name="condition"/>, failing after the deadline with its last state.</summary>
    public async Task<WorkflowState> AwaitRun(string runId, Func<WorkflowState, bool> condition, string what, TimeSpan? within = null)
    {
        WorkflowState? last = null;
        await Await.Until(async () => condition(last = await Run(runId)), within ?? TimeSpan.FromSeconds(15),
            () => $"{what}; last seen: {Describe(last)}");
        return last!;
    }

    public static string Describe(WorkflowState? s) => s is null
        ? "(none)"
        : $"{s.Status} [{string.Join(", ", s.OrderedTasks.Select(t => $"{t.TaskId}:{t.State}"))}]";

    public async ValueTask DisposeAsync()
    {
        await _host.StopAsync();
        _host.Dispose();
    }
}

public static class Await
{
    public static Task Until(Func<bool> condition, TimeSpan within, string what) =>
        Until(() => Task.FromResult(condition()), within, () => what);

    public static async Task Until(Func<Task<bool>> condition, TimeSpan within, Func<string> what)
    {
        var deadline = DateTime.UtcNow + within;
        while (true)
        {
            if (await condition()) return;
            if (DateTime.UtcNow > deadline) throw new TimeoutException($"not reached within {within.TotalSeconds} s: {what()}");
            await Task.Delay(25);
        }
    }
}

public static class Specs
{
    /// <summary>The node's default shape (3 attempts) without backoff: what a restarted node does with interrupted tasks.</summary>
    public static RetrySettings ThreeAttempts { get; } = new(new RetryPolicy(3, 0, 1, 0), 3);

    public static TaskSpec Task(string id, string type = "noop", params string[] deps) =>
        new(id, type, TaskSpec.DefaultPool, null, [.. deps]);

    public static RunSpec Run(string runId, params TaskSpec[] tasks) => new(runId, "test workflow", "tests", [.. tasks]);
}

/// <summary>Temp directory per test, removed afterwards.</summary>
public sealed class TempDir : IDisposable
{
    public string Path { get; } = Directory.CreateTempSubdirectory("deepline-test-").FullName;

    public void Dispose()
    {
        try { Directory.Delete(Path, recursive: true); } catch (IOException) { }
    }
}
