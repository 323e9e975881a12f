using System.Collections.Concurrent;
using Deepline.Actors.Index;

namespace Deepline.Node.Http;

/// <summary>
/// Per-client quotas on what a client keeps open: runs (RUNNING or CANCELLING) and their tasks not yet ended. Without
/// them one submitter key within every per-request limit took a node from 0.5 to 3.1 GB (72 runs of 10,000 tasks) and
/// would have reached out-of-memory at the default rate; every other client's runs live in the same memory.
/// Counted from the run index (cluster-wide, a moment behind the journal), read at most once a second per client on
/// each node. The runs this node admitted are added until the index is seen to hold them (asked by run id before each
/// read of the counts), so neither a burst nor an index that lags more than a second can outrun the quota on one node.
/// Another node's admissions not yet indexed are not seen: a cluster can overshoot by its index lag of a client's
/// submissions.
/// </summary>
public sealed class ClientQuotas(RunIndexStore index, int maxOpenRuns, int maxOpenTasks)
{
    /// <summary>How long one read of a client's counts is used (tests read every time).</summary>
    internal long FreshMs { get; init; } = 1_000;

    private const int MaxClientsCached = 10_000;
    private readonly ConcurrentDictionary<string, Count> _counts = new(StringComparer.Ordinal);

    /// <returns>Null when the run fits the client's quotas, else the problem's detail naming the quota.</returns>
    public async Task<string?> RefusalAsync(string clientId, int tasks, CancellationToken ct)
    {
        if (maxOpenRuns == 0 && maxOpenTasks == 0) return null;
        // Admins and open nodes may name any client: the cache of counts must not grow with them without bound.
        if (_counts.Count > MaxClientsCached) _counts.Clear();
        var count = _counts.GetOrAdd(clientId, _ => new Count(FreshMs));
        long runs, openTasks;
        try
        {
            (runs, openTasks) = await count.ReadAsync(
                async pending =>
                {
                    // Confirmed first, counted second: a run indexed between the two reads is counted twice for a
                    // moment (a refusal a little early), never not at all.
                    var indexed = await index.IndexedAsync(pending, CancellationToken.None);
                    var (r, t) = await index.OpenLoadAsync(clientId, CancellationToken.None);
                    return (r, t, indexed);
                }, ct);
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

    /// <summary>A run of the client was accepted by this node: counted until the index is seen to hold it.</summary>
    public void Admitted(string clientId, string runId, int tasks)
    {
        if (_counts.TryGetValue(clientId, out var count)) count.Add(runId, tasks);
    }

    private sealed class Count(long freshMs)
    {
        /// <summary>Admissions remembered per client: beyond, the oldest are dropped (the quota may then overshoot by them).</summary>
        private const int MaxPending = 10_000;

        /// <summary>An admission the index has not shown for this long is dropped (it is indexed, or its run is gone).</summary>
        private const long PendingForMs = 60_000;

        private readonly Lock _gate = new();
        private readonly Dictionary<string, (int Tasks, long At)> _pending = new(StringComparer.Ordinal);
        private readonly Queue<string> _order = new();
        private Task<(long Runs, long Tasks)>? _read;
        private long _readAt;
        private long _pendingTasks;

        public async Task<(long Runs, long Tasks)> ReadAsync(
            Func<IReadOnlyCollection<string>, Task<(long Runs, long Tasks, HashSet<string> Indexed)>> read, CancellationToken ct)
        {
            Task<(long Runs, long Tasks)> current;
            lock (_gate)
            {
                if (_read is null || (_read.IsCompleted && Environment.TickCount64 - _readAt >= freshMs))
                {
                    Prune();
                    _read = ReadAndConfirm(read, [.. _pending.Keys]);
                    _readAt = Environment.TickCount64;
                }
                current = _read;
            }
            var (runs, tasks) = await current.WaitAsync(ct);
            lock (_gate) return (runs + _pending.Count, tasks + _pendingTasks);
        }

        private async Task<(long Runs, long Tasks)> ReadAndConfirm(
            Func<IReadOnlyCollection<string>, Task<(long Runs, long Tasks, HashSet<string> Indexed)>> read, string[] asked)
        {
            var (runs, tasks, indexed) = await read(asked);
            lock (_gate)
                foreach (var id in indexed)
                    if (_pending.Remove(id, out var gone)) _pendingTasks -= gone.Tasks;
            return (runs, tasks);
        }

        public void Add(string runId, int tasks)
        {
            lock (_gate)
            {
                if (!_pending.TryAdd(runId, (tasks, Environment.TickCount64))) return;
                _order.Enqueue(runId);
                _pendingTasks += tasks;
                while (_pending.Count > MaxPending || _order.Count > 2 * MaxPending) DropOldest();
            }
        }

        private void Prune()
        {
            while (_order.TryPeek(out var oldest) &&
                   (!_pending.TryGetValue(oldest, out var p) || Environment.TickCount64 - p.At > PendingForMs))
                DropOldest();
        }

        /// <summary>The order queue also holds ids already confirmed (removed from the map only): skipped here.</summary>
        private void DropOldest()
        {
            if (_order.TryDequeue(out var id) && _pending.Remove(id, out var gone)) _pendingTasks -= gone.Tasks;
        }
    }
}
