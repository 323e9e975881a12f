using Deepline.Actors.Hosting;
using Deepline.Actors.Index;
using Deepline.Domain;
using Deepline.Node.Http;
using Microsoft.Data.Sqlite;

namespace Deepline.Node.Tests.Security;

/// <summary>
/// The quota counts what this node admitted until the index is seen to hold it: an index that lags behind (here: one
/// that never moves until rows are written by hand) cannot let a client past its quota, and once it holds the runs they
/// are counted once.
/// </summary>
public sealed class ClientQuotaCountTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("deepline-quota-count-").FullName;
    private readonly string _connection;

    public ClientQuotaCountTests() => _connection = SqliteStore.Prepare(_dir).ConnectionString;

    public void Dispose()
    {
        SqliteConnection.ClearAllPools();
        try { Directory.Delete(_dir, true); } catch (IOException) { }
    }

    private void IndexRow(string runId, string client, int openTasks)
    {
        using var db = new SqliteConnection(_connection);
        db.Open();
        using var cmd = db.CreateCommand();
        cmd.CommandText = $"""
            INSERT INTO run_index (run_id, last_seq, workflow_name, client_id, status, created_at, updated_at, task_count,
              pending, queued, running, succeeded, failed, cancelled, skipped)
            VALUES ('{runId}', 1, 'wf', '{client}', 'RUNNING', 1, 1, {openTasks}, {openTasks}, 0, 0, 0, 0, 0, 0)
            """;
        cmd.ExecuteNonQuery();
    }

    [Fact]
    public async Task Admitted_runs_count_across_every_reread_until_the_index_holds_them_and_then_count_once()
    {
        var index = new RunIndexStore(() => new SqliteConnection(_connection), new DetectorThresholds(900, 3600, 60));
        await index.InitializeAsync();
        // Every call reads the index again: each one is a read boundary, where admissions used to be forgotten.
        var quotas = new ClientQuotas(index, maxOpenRuns: 3, maxOpenTasks: 100) { FreshMs = 0 };

        for (var i = 0; i < 3; i++)
        {
            Assert.Null(await quotas.RefusalAsync("team-a", 5, CancellationToken.None));
            quotas.Admitted("team-a", $"run-{i}", 5);
        }
        var refused = await quotas.RefusalAsync("team-a", 5, CancellationToken.None);
        Assert.Contains("has 3 open runs", refused);
        Assert.Contains("has 3 open runs", await quotas.RefusalAsync("team-a", 5, CancellationToken.None));
        Assert.Null(await quotas.RefusalAsync("team-b", 5, CancellationToken.None));

        // The index catches up with two of them: still three, not five.
        IndexRow("run-0", "team-a", 5);
        IndexRow("run-1", "team-a", 5);
        Assert.Contains("has 3 open runs", await quotas.RefusalAsync("team-a", 5, CancellationToken.None));
        Assert.Contains("has 3 open runs", await quotas.RefusalAsync("team-a", 5, CancellationToken.None));

        // One ends in the index: room for one more.
        using (var db = new SqliteConnection(_connection))
        {
            db.Open();
            using var cmd = db.CreateCommand();
            cmd.CommandText = "UPDATE run_index SET status = 'SUCCEEDED', pending = 0 WHERE run_id = 'run-0'";
            cmd.ExecuteNonQuery();
        }
        Assert.Null(await quotas.RefusalAsync("team-a", 5, CancellationToken.None));
    }
}
