using Deepline.Actors.Hosting;
using Deepline.Actors.Index;
using Deepline.Domain;
using Microsoft.Data.Sqlite;
using static Deepline.Actors.Tests.Specs;

namespace Deepline.Actors.Tests;

/// <summary>
/// What the run index keeps of a run between batches, and how it does without it. Runs it no longer holds in memory (a
/// restart, or more open runs than it keeps) are rebuilt from their journal history before new events are applied:
/// all of a batch's in one read, each only up to its own row, and a run new in the batch is not looked up at all (one
/// read per run made a PostgreSQL index fall minutes behind). A large run's heartbeat column (its running tasks' oldest
/// start or heartbeat, where the no-heartbeat detector's clock starts) is kept from the tasks each batch touched rather
/// than a walk over every task, and must always equal the walk.
/// </summary>
public sealed class RunIndexMemoryTests : IDisposable
{
    private static readonly DateTimeOffset T0 = new(2026, 12, 6, 9, 0, 0, TimeSpan.Zero);
    private readonly string _dir = Directory.CreateTempSubdirectory("deepline-index-memory-").FullName;
    private readonly string _connection;

    public RunIndexMemoryTests() => _connection = SqliteStore.Prepare(_dir).ConnectionString;

    public void Dispose()
    {
        SqliteConnection.ClearAllPools();
        try { Directory.Delete(_dir, true); } catch (IOException) { }
    }

    private RunIndexStore Store() => new(() => new SqliteConnection(_connection), new DetectorThresholds(900, 3600, 60));

    private static IReadOnlyList<IndexedEvent> Journal(string runId, long firstOffset) =>
    [
        new(runId, 1, firstOffset, new RunSubmitted(Run(runId, new TaskSpec("a", "noop", TaskSpec.DefaultPool, null, []), new TaskSpec("b", "noop", TaskSpec.DefaultPool, null, ["a"])), T0)),
        new(runId, 2, firstOffset + 1, new TaskStarted("a", "w1", T0.AddSeconds(1))),
        new(runId, 3, firstOffset + 2, new TaskSucceeded("a", null, T0.AddSeconds(2))),
        new(runId, 4, firstOffset + 3, new TaskStarted("b", "w1", T0.AddSeconds(3))),
    ];

    [Fact]
    public async Task Runs_not_in_memory_are_rebuilt_in_one_read_up_to_their_rows_and_new_runs_are_not_looked_up()
    {
        var x = Journal("x", 1);
        var y = Journal("y", 5);
        // The first life of the index saw each run's first three events.
        var first = Store();
        await first.InitializeAsync();
        await first.ApplyAsync([.. x.Take(3), .. y.Take(3)], 7, (_, _) => throw new InvalidOperationException("nothing to rebuild"));

        // After a restart: x's and y's next events come with a new run z.
        var reads = new List<IReadOnlyCollection<string>>();
        var restarted = Store();
        await restarted.InitializeAsync();
        var z = Journal("z", 9);
        await restarted.ApplyAsync([x[3], y[3], .. z.Take(2)], 11, (ids, _) =>
        {
            reads.Add([.. ids]);
            // The journal holds every event of the runs asked for, including those above their rows.
            return System.Threading.Tasks.Task.FromResult<IReadOnlyList<IndexedEvent>>(x.Concat(y).Concat(z).Where(e => ids.Contains(e.RunId)).ToList());
        });

        var read = Assert.Single(reads);
        Assert.Equal(["x", "y"], read.Order());
        foreach (var run in new[] { "x", "y" })
            Assert.Equal((4L, 1L, 1L), Row(run)); // last_seq 4: a succeeded, b running; TaskStarted b applied once, on the rebuilt state
        Assert.Equal((2L, 1L, 0L), Row("z"));
    }

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

    private (long LastSeq, long Running, long Succeeded) Row(string runId)
    {
        using var db = new SqliteConnection(_connection);
        db.Open();
        using var cmd = db.CreateCommand();
        cmd.CommandText = "SELECT last_seq, running, succeeded FROM run_index WHERE run_id = @id";
        cmd.Parameters.AddWithValue("@id", runId);
        using var r = cmd.ExecuteReader();
        Assert.True(r.Read(), $"no row for {runId}");
        return (r.GetInt64(0), r.GetInt64(1), r.GetInt64(2));
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
