using System.Collections.Concurrent;
using Deepline.Actors.Index;

namespace Deepline.Node.Http;

/// <summary>
/// Per-client quotas on what a client keeps open: runs (RUNNING or CANCELLING) and their tasks not yet ended. Without
/// them one submitter key within every per-request limit took a node from 0.5 to 3.1 GB (72 runs of 10,000 tasks) and
/// would have reached out-of-memory at the default rate; every other client's runs live in the same memory.
/// Counted from the run index (cluster-wide, a moment behind the journal), read at most once a second per client on
/// each node; what this node admitted since that read is added, so a burst cannot outrun the index. Another node's
/// admissions in that second are not seen: a cluster can overshoot by one second of a client's submissions.
/// </summary>
public sealed class ClientQuotas(RunIndexStore index, int maxOpenRuns, int maxOpenTasks)
{
    private const long FreshMs = 1_000;
    private const int MaxClientsCached = 10_000;
    private readonly ConcurrentDictionary<string, Count> _counts = new(StringComparer.Ordinal);

    /// <returns>Null when the run fits the client's quotas, else the problem's detail naming the quota.</returns>
    public async Task<string?> RefusalAsync(string clientId, int tasks, CancellationToken ct)
    {
        if (maxOpenRuns == 0 && maxOpenTasks == 0) return null;
        // Admins and open nodes may name any client: the cache of counts must not grow with them without bound.
        if (_counts.Count > MaxClientsCached) _counts.Clear();
        var count = _counts.GetOrAdd(clientId, _ => new Count());
        long runs, openTasks;
        try
        {
            (runs, openTasks) = await count.ReadAsync(() => index.OpenLoadAsync(clientId, CancellationToken.None), ct);
        }
        catch (Exception e) when (e is System.Data.Common.DbException or InvalidOperationException or TimeoutException or IOException)
        {
            // The index cannot be read (store down, first start): the run's own write decides; a quota is no reason to refuse.
            return null;
        }
        var name = clientId.Length == 0 ? "the unnamed client" : $"client '{clientId}'";
        if (maxOpenRuns > 0 && runs + 1 > maxOpenRuns)
            return $"{name} has {runs} open runs, its quota is {maxOpenRuns} (orchestrator.limits.max_open_runs_per_client); " +
                   "submit again when some have finished or been cancelled";
        if (maxOpenTasks > 0 && openTasks + tasks > maxOpenTasks)
            return $"{name} has {openTasks} open tasks and this run adds {tasks}; its quota is {maxOpenTasks} " +
                   "(orchestrator.limits.max_open_tasks_per_client); submit again when some have finished or been cancelled";
        return null;
    }

    /// <summary>A run of the client was accepted by this node (counted until the next read of the index).</summary>
    public void Admitted(string clientId, int tasks)
    {
        if (_counts.TryGetValue(clientId, out var count)) count.Add(tasks);
    }

    private sealed class Count
    {
        private readonly Lock _gate = new();
        private Task<(long Runs, long Tasks)>? _read;
        private long _readAt;
        private long _runsSince;
        private long _tasksSince;

        public async Task<(long Runs, long Tasks)> ReadAsync(Func<Task<(long, long)>> read, CancellationToken ct)
        {
            Task<(long Runs, long Tasks)> current;
            lock (_gate)
            {
                if (_read is null || (_read.IsCompleted && Environment.TickCount64 - _readAt >= FreshMs))
                {
                    _read = read();
                    _readAt = Environment.TickCount64;
                    _runsSince = 0;
                    _tasksSince = 0;
                }
                current = _read;
            }
            var (runs, tasks) = await current.WaitAsync(ct);
            return (runs + Interlocked.Read(ref _runsSince), tasks + Interlocked.Read(ref _tasksSince));
        }

        public void Add(int tasks)
        {
            Interlocked.Increment(ref _runsSince);
            Interlocked.Add(ref _tasksSince, tasks);
        }
    }
}
