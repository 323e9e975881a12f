using System.Net;
using Deepline.Tests.Shared;

namespace Deepline.Node.Tests.Http;

/// <summary>
/// The node as operators run it, in its own process, killed with SIGKILL: every accepted run and every
/// cancel answered before the kill must be there when it starts again on the same data directory.
/// </summary>
public sealed class CrashRecoveryTests : IDisposable
{
    private readonly string _dataDir = Directory.CreateTempSubdirectory("deepline-crash-").FullName;

    public void Dispose()
    {
        try { Directory.Delete(_dataDir, true); } catch (IOException) { }
    }

    [Fact]
    public async Task Runs_and_cancels_survive_SIGKILL()
    {
        var port = Loopback.FreePort();
        var cancelledAt = new Dictionary<string, string>();
        const int runs = 20;
        await using (var first = new NodeProcess("first", port, 0, _dataDir))
        {
            first.Start();
            await first.AwaitHealthyAsync(TimeSpan.FromSeconds(60));
            for (var i = 0; i < runs; i++)
            {
                var created = await first.Client.PostJson("/runs", $$"""{"run_id":"crash-{{i}}","tasks":[{"task_id":"h","type":"hang"},{"task_id":"after","type":"noop","depends_on":["h"]}]}""");
                Assert.Equal(HttpStatusCode.Created, created.StatusCode);
            }
            for (var i = 0; i < runs; i += 2)
            {
                var cancel = await (await first.Client.PutJson($"/runs/crash-{i}/cancel", """{"reason":"before the crash","force":true}""")).ReadObject();
                cancelledAt[$"crash-{i}"] = cancel.Str("cancelled_at");
            }
            await first.KillAsync();
        }

        await using var second = new NodeProcess("second", port, 0, _dataDir);
        second.Start();
        await second.AwaitHealthyAsync(TimeSpan.FromSeconds(60));
        for (var i = 0; i < runs; i++)
        {
            var run = await second.Client.GetRun($"crash-{i}");
            if (cancelledAt.TryGetValue($"crash-{i}", out var at))
            {
                Assert.Equal("CANCELLED", run.Str("status"));
                Assert.Equal(at, run["cancellation"]!["cancelled_at"]!.GetValue<string>());
                Assert.Equal("before the crash", run["cancellation"]!["reason"]!.GetValue<string>());
            }
            else
            {
                Assert.Equal("RUNNING", run.Str("status"));
                Assert.Equal("PENDING", run.TaskState("after"));
            }
        }
    }

    [Fact]
    public async Task Tasks_running_when_the_node_was_killed_are_rerun_after_the_restart_with_no_incident()
    {
        var port = Loopback.FreePort();
        const int runs = 12;
        var environment = new Dictionary<string, string> { ["DEEPLINE_WORKERS_SLOTS"] = "16" };
        await using (var first = new NodeProcess("first", port, 0, _dataDir, environment))
        {
            first.Start();
            await first.AwaitHealthyAsync(TimeSpan.FromSeconds(60));
            for (var i = 0; i < runs; i++)
            {
                var created = await first.Client.PostJson("/runs", $$"""
                    {"run_id":"resume-{{i}}","tasks":[{"task_id":"slow","type":"delay","params":{"ms":6000} },{"task_id":"after","type":"noop","depends_on":["slow"]}]}
                    """);
                Assert.Equal(HttpStatusCode.Created, created.StatusCode);
            }
            await Eventually.Until(async () =>
            {
                for (var i = 0; i < runs; i++)
                    if ((await first.Client.GetRun($"resume-{i}")).TaskState("slow") != "RUNNING") return false;
                return true;
            }, TimeSpan.FromSeconds(30), "every run's first task RUNNING");
            await first.KillAsync();
        }

        await using var second = new NodeProcess("second", port, 0, _dataDir, environment);
        second.Start();
        await second.AwaitHealthyAsync(TimeSpan.FromSeconds(60));

        // Long before the 60 s heartbeat timeout: the node knows its previous incarnation is dead.
        await Eventually.Until(async () =>
        {
            for (var i = 0; i < runs; i++)
                if ((await second.Client.GetRun($"resume-{i}")).Str("status") != "SUCCEEDED") return false;
            return true;
        }, TimeSpan.FromSeconds(30), "every run SUCCEEDED after the restart");
        for (var i = 0; i < runs; i++)
        {
            var slow = (await second.Client.GetRun($"resume-{i}"))["tasks"]![0]!;
            Assert.Equal(2, slow["attempts"]!.GetValue<int>());
            Assert.StartsWith("interrupted:", slow["error"]!.GetValue<string>());
        }
        var monitor = (await (await second.Client.GetAsync("/stats")).ReadObject())["deadlock_monitor"]!;
        Assert.Equal(0, monitor["deadlocks_detected"]!.GetValue<int>());
        Assert.Equal(0, monitor["workflows_cancelled"]!.GetValue<int>());
    }

    [Fact]
    public async Task A_lease_kept_by_a_live_worker_survives_the_restart_of_the_node_that_holds_the_run()
    {
        var port = Loopback.FreePort();
        var environment = new Dictionary<string, string> { ["DEEPLINE_DEADLOCK_HEARTBEAT_TIMEOUT"] = "6" };
        await using (var first = new NodeProcess("first", port, 0, _dataDir, environment))
        {
            first.Start();
            await first.AwaitHealthyAsync(TimeSpan.FromSeconds(60));
            Assert.Equal(HttpStatusCode.Created, (await first.Client.PostJson("/runs",
                """{"run_id":"kept","tasks":[{"task_id":"t","type":"etl","pool":"outside"}]}""")).StatusCode);
            var leased = (await (await first.Client.PostJson("/pools/outside/tasks/poll", """{"worker_id":"w","wait_s":10}""")).ReadObject())["tasks"]!.AsArray();
            Assert.Single(leased);
            // The worker keeps its lease well past the time it started (heartbeats are not journalled).
            var until = DateTime.UtcNow.AddSeconds(7);
            while (DateTime.UtcNow < until)
            {
                Assert.Equal(HttpStatusCode.OK, (await first.Client.PostJson("/runs/kept/tasks/t/events",
                    """{"event":"TASK_HEARTBEAT","worker_id":"w","attempt":1}""")).StatusCode);
                await Task.Delay(1000); // about the worker's heartbeat interval (a third of the lease), not synchronisation
            }
            await first.KillAsync();
        }

        await using var second = new NodeProcess("second", port, 0, _dataDir, environment);
        second.Start();
        await second.AwaitHealthyAsync(TimeSpan.FromSeconds(60));

        // The recovered run measures the lease from its recovery, not from the journalled start 7 s ago: the live worker's
        // next heartbeat, one interval after the run is back, renews attempt 1 instead of finding it taken back.
        Assert.Equal("RUNNING", (await second.Client.GetRun("kept")).TaskState("t"));
        await Task.Delay(1000); // about the worker's heartbeat interval (a third of the 6 s lease), not synchronisation
        var heartbeat = await second.Client.PostJson("/runs/kept/tasks/t/events", """{"event":"TASK_HEARTBEAT","worker_id":"w","attempt":1}""");
        Assert.Equal(HttpStatusCode.OK, heartbeat.StatusCode);
        var run = await second.Client.GetRun("kept");
        Assert.Equal("RUNNING", run.TaskState("t"));
        Assert.Equal(1, run["tasks"]![0]!["attempts"]!.GetValue<int>());
        Assert.Equal(HttpStatusCode.OK, (await second.Client.PostJson("/runs/kept/tasks/t/events",
            """{"event":"TASK_SUCCEEDED","worker_id":"w","attempt":1}""")).StatusCode);
    }
}
