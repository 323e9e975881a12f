using System.Globalization;
using System.Net;
using Deepline.Node.Configuration;
using Deepline.Node.Tests.Http;
using Microsoft.Extensions.Logging;
using Xunit;
using Deepline.Tests.Shared;

namespace Deepline.Node.Tests.Configuration;

/// <summary>
/// Every documented integer range, end to end: the loader accepts both ends and refuses one beyond each, and a node
/// really starts and serves with every key at its minimum, and again at its maximum. alert_retries: 0 was accepted
/// by the loader and then crashed the node at start (issue 13): accepting a value is only half of supporting it.
/// </summary>
public sealed class RangeAuditTests : IDisposable
{
    private const int Max = int.MaxValue;

    /// <summary>Each integer key with its documented range (docs/configuration.md, config.yaml, the key table's descriptions).</summary>
    public static readonly IReadOnlyDictionary<string, (long Min, long Max)> Ranges = new Dictionary<string, (long, long)>
    {
        ["orchestrator.deadlock.check_interval_s"] = (1, Max),
        ["orchestrator.deadlock.pending_stale_s"] = (1, Max),
        ["orchestrator.deadlock.workflow_stale_s"] = (1, Max),
        ["orchestrator.deadlock.max_dependency_depth"] = (1, 100_000),
        ["orchestrator.deadlock.heartbeat_timeout_s"] = (1, Max),
        ["orchestrator.deadlock.cancel_timeout_s"] = (1, Max),
        ["orchestrator.deadlock.alert_timeout_s"] = (1, 300),
        ["orchestrator.deadlock.alert_retries"] = (0, 10),
        ["orchestrator.http.port"] = (1, 65535),
        ["orchestrator.remoting.port"] = (0, 65535),
        ["orchestrator.remoting.down_unreachable_after_s"] = (1, 600),
        ["orchestrator.workers.slots"] = (0, 1024),
        ["orchestrator.workers.cancel_grace_s"] = (1, 3600),
        ["orchestrator.runs.snapshot_every"] = (1, 100_000),
        ["orchestrator.runs.passivate_after_s"] = (1, Max),
        ["orchestrator.redis.retention_s"] = (1, Max),
        ["orchestrator.limits.max_tasks_per_run"] = (1, 1_000_000),
        ["orchestrator.limits.max_edges_per_run"] = (1, 10_000_000),
        ["orchestrator.limits.max_value_bytes"] = (1, 16_777_216),
        ["orchestrator.limits.max_body_bytes"] = (1024, 268_435_456),
        ["orchestrator.limits.body_timeout_s"] = (1, 3600),
        ["orchestrator.limits.rate_per_second"] = (0, 1_000_000),
        ["orchestrator.limits.rate_burst"] = (1, 1_000_000),
        ["orchestrator.limits.run_threshold_min_s"] = (1, Max),
        ["orchestrator.limits.run_threshold_max_s"] = (1, Max),
        ["orchestrator.limits.max_open_runs_per_client"] = (0, 10_000_000),
        ["orchestrator.limits.max_open_tasks_per_client"] = (0, 100_000_000),
        ["orchestrator.limits.bulk_cancel_rate"] = (1, 100_000),
        ["orchestrator.retention.succeeded_s"] = (0, 315_360_000),
        ["orchestrator.retention.failed_s"] = (0, 315_360_000),
        ["orchestrator.retention.cancelled_s"] = (0, 315_360_000),
        ["orchestrator.retention.max_finished_runs"] = (0, 1_000_000_000),
        ["orchestrator.resources.default_capacity"] = (1, 1_000_000),
        ["orchestrator.resources.claim_lease_s"] = (1, 86_400),
        ["orchestrator.resources.max_claims_per_key"] = (1, 100_000),
        ["orchestrator.retry.max_attempts"] = (1, 100),
        ["orchestrator.retry.initial_interval_s"] = (0, 86_400),
        ["orchestrator.retry.backoff_coefficient"] = (1, 100),
        ["orchestrator.retry.max_interval_s"] = (0, 86_400),
        ["orchestrator.retry.poison_after"] = (1, 100),
    };

    private readonly string _dir = Directory.CreateTempSubdirectory("deepline-ranges-").FullName;

    public void Dispose()
    {
        try { Directory.Delete(_dir, recursive: true); } catch (IOException) { }
    }

    private static string Variable(string path) => ConfigLoader.Keys.Single(k => k.Path == path).EnvironmentVariable;

    private static string S(long v) => v.ToString(CultureInfo.InvariantCulture);

    private DeeplineConfig Load(params (string Path, long Value)[] values) =>
        ConfigLoader.Load(null, values.ToDictionary(v => Variable(v.Path), v => (string?)S(v.Value)), _dir);

    public static TheoryData<string> IntegerKeys => [.. Ranges.Keys];

    [Fact]
    public void The_table_covers_every_integer_key_of_the_loader()
    {
        // Whatever the loader calls an integer must be audited here: a key added later cannot slip past.
        var integers = ConfigLoader.Keys
            .Where(k =>
            {
                var e = Record.Exception(() =>
                    ConfigLoader.Load(null, new Dictionary<string, string?> { [k.EnvironmentVariable] = "not-a-number" }, _dir));
                return e is ConfigException c && c.Errors.Any(line => line.Contains("integer", StringComparison.Ordinal));
            })
            .Select(k => k.Path);
        Assert.Equal(integers.Order(), Ranges.Keys.Order());
    }

    [Theory]
    [MemberData(nameof(IntegerKeys))]
    public void Both_ends_of_the_range_are_accepted_and_one_beyond_each_is_refused(string path)
    {
        var (min, max) = Ranges[path];
        // Keys bound to another (stale thresholds >= check interval, threshold min <= max) get a partner that lets
        // this key's whole range through, so that only the key's own range is under test.
        (string, long)[] Companions(long v) => path switch
        {
            "orchestrator.deadlock.pending_stale_s" or "orchestrator.deadlock.workflow_stale_s" =>
                [("orchestrator.deadlock.check_interval_s", 1), (path, v)],
            "orchestrator.deadlock.check_interval_s" =>
                [("orchestrator.deadlock.pending_stale_s", Max), ("orchestrator.deadlock.workflow_stale_s", Max), (path, v)],
            "orchestrator.limits.run_threshold_min_s" => [("orchestrator.limits.run_threshold_max_s", Max), (path, v)],
            "orchestrator.limits.run_threshold_max_s" => [("orchestrator.limits.run_threshold_min_s", 1), (path, v)],
            _ => [(path, v)],
        };

        Assert.Equal(S(min), Field(Load(Companions(min)), path));
        Assert.Equal(S(max), Field(Load(Companions(max)), path));

        foreach (var beyond in new[] { min - 1, max + 1 })
        {
            var e = Assert.Throws<ConfigException>(() => Load(Companions(beyond)));
            var line = Assert.Single(e.Errors);
            Assert.StartsWith(path + ": ", line);
            Assert.EndsWith($"(from {Variable(path)})", line);
        }
    }

    [Fact]
    public async Task A_node_starts_and_serves_with_every_key_at_its_minimum()
    {
        var config = Load([.. Ranges.Where(r => !IsPort(r.Key)).Select(r => (r.Key, r.Value.Min))]);
        await StartsAndServes(config);
    }

    [Fact]
    public async Task A_node_starts_and_serves_with_every_key_at_its_maximum()
    {
        var config = Load([.. Ranges.Where(r => !IsPort(r.Key)).Select(r => (r.Key, r.Value.Max))]);
        await StartsAndServes(config);
    }

    /// <summary>Ports are exercised by the loader test; a real node needs free ones.</summary>
    private static bool IsPort(string path) => path.EndsWith(".port", StringComparison.Ordinal);

    private async Task StartsAndServes(DeeplineConfig loaded)
    {
        await using var store = await Deepline.Tests.Shared.TestStore.CreateAsync();
        var port = Loopback.FreePort();
        var config = SingleNode.LoopbackConfig(Path.Combine(_dir, "data"), port, loaded) with
        {
            Store = store.Config,
            // A webhook, so that the alert pipeline (timeouts, retries) is built with these values too.
            Deadlock = loaded.Deadlock with { AlertWebhook = "http://127.0.0.1:9/hook" },
        };
        var app = DeeplineNode.Build(config, logging: l => l.ClearProviders().SetMinimumLevel(LogLevel.Warning));
        try
        {
            await app.StartAsync();
            using var client = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{port}"), Timeout = TimeSpan.FromSeconds(30) };
            await Eventually.Until(() => Json.ServingWithMonitor(client), TimeSpan.FromSeconds(30), "node healthy, monitor running");

            // It takes and answers a run: submission, the run's entity and its timers all live with these values.
            var created = await client.PostJson("/runs", """{"run_id":"extreme","tasks":[{"task_id":"t","type":"x","pool":"nobody"}]}""");
            Assert.Equal(HttpStatusCode.Created, created.StatusCode);
            Assert.Equal("RUNNING", (await client.GetRun("extreme")).Str("status"));
        }
        finally
        {
            await app.DisposeAsync();
        }
    }

    private static string Field(DeeplineConfig c, string path) => path switch
    {
        "orchestrator.deadlock.check_interval_s" => S(c.Deadlock.CheckIntervalS),
        "orchestrator.deadlock.pending_stale_s" => S(c.Deadlock.PendingStaleS),
        "orchestrator.deadlock.workflow_stale_s" => S(c.Deadlock.WorkflowStaleS),
        "orchestrator.deadlock.max_dependency_depth" => S(c.Deadlock.MaxDependencyDepth),
        "orchestrator.deadlock.heartbeat_timeout_s" => S(c.Deadlock.HeartbeatTimeoutS),
        "orchestrator.deadlock.cancel_timeout_s" => S(c.Deadlock.CancelTimeoutS),
        "orchestrator.deadlock.alert_timeout_s" => S(c.Deadlock.AlertTimeoutS),
        "orchestrator.deadlock.alert_retries" => S(c.Deadlock.AlertRetries),
        "orchestrator.http.port" => S(c.Http.Port),
        "orchestrator.remoting.port" => S(c.Remoting.Port),
        "orchestrator.remoting.down_unreachable_after_s" => S(c.Remoting.DownUnreachableAfterS),
        "orchestrator.workers.slots" => S(c.Workers.Slots),
        "orchestrator.workers.cancel_grace_s" => S(c.Workers.CancelGraceS),
        "orchestrator.runs.snapshot_every" => S(c.Runs.SnapshotEvery),
        "orchestrator.runs.passivate_after_s" => S(c.Runs.PassivateAfterS),
        "orchestrator.redis.retention_s" => S(c.Redis.RetentionS),
        "orchestrator.limits.max_tasks_per_run" => S(c.Limits.MaxTasksPerRun),
        "orchestrator.limits.max_edges_per_run" => S(c.Limits.MaxEdgesPerRun),
        "orchestrator.limits.max_value_bytes" => S(c.Limits.MaxValueBytes),
        "orchestrator.limits.max_body_bytes" => S(c.Limits.MaxBodyBytes),
        "orchestrator.limits.body_timeout_s" => S(c.Limits.BodyTimeoutS),
        "orchestrator.limits.rate_per_second" => S(c.Limits.RatePerSecond),
        "orchestrator.limits.rate_burst" => S(c.Limits.RateBurst),
        "orchestrator.limits.run_threshold_min_s" => S(c.Limits.RunThresholdMinS),
        "orchestrator.limits.run_threshold_max_s" => S(c.Limits.RunThresholdMaxS),
        "orchestrator.limits.max_open_runs_per_client" => S(c.Limits.MaxOpenRunsPerClient),
        "orchestrator.limits.max_open_tasks_per_client" => S(c.Limits.MaxOpenTasksPerClient),
        "orchestrator.limits.bulk_cancel_rate" => S(c.Limits.BulkCancelRate),
        "orchestrator.retention.succeeded_s" => S(c.Retention.SucceededS),
        "orchestrator.retention.failed_s" => S(c.Retention.FailedS),
        "orchestrator.retention.cancelled_s" => S(c.Retention.CancelledS),
        "orchestrator.retention.max_finished_runs" => S(c.Retention.MaxFinishedRuns),
        "orchestrator.resources.default_capacity" => S(c.Resources.DefaultCapacity),
        "orchestrator.resources.claim_lease_s" => S(c.Resources.ClaimLeaseS),
        "orchestrator.resources.max_claims_per_key" => S(c.Resources.MaxClaimsPerKey),
        "orchestrator.retry.max_attempts" => S(c.Retry.MaxAttempts),
        "orchestrator.retry.initial_interval_s" => S(c.Retry.InitialIntervalS),
        "orchestrator.retry.backoff_coefficient" => S(c.Retry.BackoffCoefficient),
        "orchestrator.retry.max_interval_s" => S(c.Retry.MaxIntervalS),
        "orchestrator.retry.poison_after" => S(c.Retry.PoisonAfter),
        _ => throw new ArgumentOutOfRangeException(nameof(path), path, "add the key to Field()"),
    };
}
