using Deepline.Actors.Hosting;
using Deepline.Actors.Index;
using Deepline.Domain;
using Microsoft.Data.Sqlite;
using static Deepline.Actors.Tests.Specs;

namespace Deepline.Actors.Tests;

/// <summary>
/// A large run's heartbeat column (its running tasks' oldest start or heartbeat, where the no-heartbeat detector's
/// clock starts) is kept from the tasks each batch touched rather than a walk over every task; along random batches
/// of starts, successes, failures and a restart of the index it must always equal the walk.
/// </summary>
public sealed class RunIndexHeartbeatTests : IDisposable
{
    private static readonly DateTimeOffset T0 = new(2026, 12, 6, 9, 0, 0, TimeSpan.Zero);
    private readonly string _dir = Directory.CreateTempSubdirectory("deepline-index-heartbeat-").FullName;
    private readonly string _connection;

    public RunIndexHeartbeatTests() => _connection = SqliteStore.Prepare(_dir).ConnectionString;

    public void Dispose()
    {
        SqliteConnection.ClearAllPools();
        try { Directory.Delete(_dir, true); } catch (IOException) { }
    }

    private RunIndexStore Store() => new(() => new SqliteConnection(_connection), new DetectorThresholds(900, 3600, 60));

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    public async Task The_heartbeat_column_of_a_large_run_always_equals_the_walk_over_its_tasks(int seed)
    {
        const int tasks = RunningSigns.FromTasks * 2;
        var random = new Random(seed);
        var spec = Run("big", [.. Enumerable.Range(0, tasks).Select(i => new TaskSpec($"t{i}", "noop", TaskSpec.DefaultPool, null, []))]);
        var journal = new List<IndexedEvent>();
        var state = WorkflowState.Create(new RunSubmitted(spec, T0));
        journal.Add(new IndexedEvent("big", 1, 1, new RunSubmitted(spec, T0)));
        var store = Store();
        await store.InitializeAsync();
        RunHistory history = (ids, _) => System.Threading.Tasks.Task.FromResult<IReadOnlyList<IndexedEvent>>(journal.Where(e => ids.Contains(e.RunId)).ToList());
        await store.ApplyAsync([journal[0]], 1, history);

        var clock = T0;
        for (var batch = 0; batch < 40 && state.Status == RunStatus.RUNNING; batch++)
        {
            var events = new List<IndexedEvent>();
            for (var n = random.Next(1, 12); n > 0; n--)
            {
                clock = clock.AddMilliseconds(random.Next(1, 500));
                var queued = state.Tasks.Values.Where(t => t.State == TaskState.QUEUED).Select(t => t.TaskId).ToList();
                var running = state.Tasks.Values.Where(t => t.State == TaskState.RUNNING).Select(t => t.TaskId).ToList();
                IRunEvent e = running.Count > 0 && (queued.Count == 0 || random.Next(3) == 0)
                    ? random.Next(5) == 0
                        ? new TaskFailed(running[random.Next(running.Count)], "boom", clock)
                        : new TaskSucceeded(running[random.Next(running.Count)], null, clock)
                    : new TaskStarted(queued[random.Next(queued.Count)], "w1", clock);
                state = state.Apply(e);
                var seq = journal.Count + 1L;
                var evt = new IndexedEvent("big", seq, seq, e);
                journal.Add(evt);
                events.Add(evt);
                if (state.Status != RunStatus.RUNNING) break;
            }
            // Now and then the index restarts: it rebuilds the run from the journal and walks it once.
            if (random.Next(8) == 0)
            {
                store = Store();
                await store.InitializeAsync();
            }
            await store.ApplyAsync(events, journal.Count, history);
            Assert.Equal(IndexColumns.HeartbeatBase(state), HeartbeatColumn());
        }
    }

    private long? HeartbeatColumn()
    {
        using var db = new SqliteConnection(_connection);
        db.Open();
        using var cmd = db.CreateCommand();
        cmd.CommandText = "SELECT heartbeat_base FROM run_index WHERE run_id = 'big'";
        var v = cmd.ExecuteScalar();
        return v is null or DBNull ? null : Convert.ToInt64(v);
    }
}
