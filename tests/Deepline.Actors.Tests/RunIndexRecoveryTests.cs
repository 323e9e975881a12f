using Deepline.Actors.Hosting;
using Deepline.Actors.Index;
using Deepline.Actors.Monitoring;
using Deepline.Domain;
using Microsoft.Data.Sqlite;
using static Deepline.Actors.Tests.Specs;

namespace Deepline.Actors.Tests;

/// <summary>
/// The projection keeps open runs' states in memory; after a restart it has none, and must rebuild each run it meets
/// again from the journal before applying the new events, so the row ends exactly as if nothing had restarted.
/// </summary>
public sealed class RunIndexRecoveryTests : IDisposable
{
    private readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    private static readonly MonitorSettings Quiet = new(new DetectorThresholds(3600, 3600, 3600), TimeSpan.FromSeconds(1), false, false);

    [Fact]
    public async Task After_a_restart_the_index_continues_runs_it_had_indexed_before()
    {
        await using (var node = await TestNode.StartAsync(_dir.Path, monitor: Quiet))
        {
            await node.Ask<RunReply>(new SubmitRun(Run("long", new TaskSpec("x", "python", "external", null, []), new TaskSpec("y", "python", "external", null, ["x"]))));
            await node.Ask<TaskEventAccepted>(new ReportTaskEvent("long", "x", TaskEventKind.TASK_STARTED, "ext-1", null, null));
            await Await.Until(async () => (await node.MonitorStatus()).ProjectionLag == 0, TimeSpan.FromSeconds(15), () => "index caught up");
        }

        await using var restarted = await TestNode.StartAsync(_dir.Path, monitor: Quiet);
        await restarted.Ask<TaskEventAccepted>(new ReportTaskEvent("long", "x", TaskEventKind.TASK_SUCCEEDED, "ext-1", null, null));
        await restarted.Ask<CancelReply>(new CancelRun("long", "operator stopped it", "ops", Force: true));

        var index = new RunIndexStore(() => new SqliteConnection(new SqliteConnectionStringBuilder { DataSource = Path.Combine(_dir.Path, SqliteStore.FileName) }.ToString()), Quiet.Thresholds);
        RunIndexRow? row = null;
        await Await.Until(async () => (row = (await index.CancelledAsync(10, 0, null)).SingleOrDefault(r => r.RunId == "long")) is not null,
            TimeSpan.FromSeconds(15), () => "the cancel indexed");
        var run = await restarted.Run("long");
        Assert.Equal((RunStatus.CANCELLED, "operator stopped it", "ops"), (row!.Status, row.CancelReason, row.CancelledBy));
        Assert.Equal(run.Counts, row.Counts);
        Assert.Equal(1, row.Counts.Succeeded);
    }
}
