using Deepline.Domain;

namespace Deepline.Actors.Index;

/// <summary>
/// A large run's RUNNING tasks ordered by their last sign of life (start or heartbeat), kept by the index between
/// batches, so that the run's heartbeat column is found from the tasks a batch touched instead of a walk over all of
/// its tasks per batch (which was 64% of the node's CPU on 10,000-task runs). Owned by the projection, one batch at a
/// time; it is changed only after the batch is committed.
/// </summary>
internal sealed class RunningSigns
{
    /// <summary>Runs with more tasks than this are tracked; a walk over fewer costs less than the bookkeeping.</summary>
    public const int FromTasks = 64;

    private static readonly Comparer<(long Sign, string TaskId)> Order =
        Comparer<(long Sign, string TaskId)>.Create((a, b) => a.Sign != b.Sign ? a.Sign.CompareTo(b.Sign) : string.CompareOrdinal(a.TaskId, b.TaskId));

    private readonly Dictionary<string, long> _signOf = new(StringComparer.Ordinal);
    private readonly SortedSet<(long Sign, string TaskId)> _order = new(Order);

    /// <summary>The run's running tasks, by one walk (a run new to the index's memory, or after an event on no one task).</summary>
    public static RunningSigns Of(WorkflowState s)
    {
        var signs = new RunningSigns();
        foreach (var t in s.Tasks.Values) signs.Set(t.TaskId, t);
        return signs;
    }

    /// <summary>The oldest sign once the <paramref name="touched"/> tasks hold their values in <paramref name="s"/> (nothing changes here).</summary>
    public long? OldestAfter(WorkflowState s, IReadOnlySet<string> touched)
    {
        long? oldest = null;
        foreach (var (sign, taskId) in _order)
        {
            if (touched.Contains(taskId)) continue;
            oldest = sign;
            break;
        }
        foreach (var taskId in touched)
            if (s.Tasks.TryGetValue(taskId, out var t) && t.State == TaskState.RUNNING && Sign(t) is var v && (oldest is null || v < oldest))
                oldest = v;
        return oldest;
    }

    /// <summary>Takes the <paramref name="touched"/> tasks' values from <paramref name="s"/>.</summary>
    public void Apply(WorkflowState s, IEnumerable<string> touched)
    {
        foreach (var taskId in touched) Set(taskId, s.Tasks.GetValueOrDefault(taskId));
    }

    private void Set(string taskId, TaskRecord? t)
    {
        if (_signOf.Remove(taskId, out var old)) _order.Remove((old, taskId));
        if (t is not { State: TaskState.RUNNING }) return;
        var sign = Sign(t);
        _signOf[taskId] = sign;
        _order.Add((sign, taskId));
    }

    private static long Sign(TaskRecord t) => IndexColumns.Ms(t.LastHeartbeatAt ?? t.UpdatedAt);
}
