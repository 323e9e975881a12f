using System.Collections.Immutable;

namespace Deepline.Actors.Workers;

public readonly record struct TaskKey(string RunId, string TaskId)
{
    public override string ToString() => RunId + "/" + TaskId;
}

/// <summary>
/// A pool's bookkeeping: tasks waiting for a slot, tasks being claimed from their run (a slot is held while
/// the claim is in flight), tasks running, and recently cancelled runs (checked before any task starts).
/// Every transition is a pure function; the actor holds only the running tasks' cancellation sources.
/// </summary>
public sealed record PoolState(
    int Slots,
    ImmutableQueue<ExecuteTask> Waiting,
    ImmutableHashSet<TaskKey> Known,
    ImmutableDictionary<TaskKey, ExecuteTask> Claiming,
    ImmutableDictionary<TaskKey, ExecuteTask> Running,
    ImmutableHashSet<string> CancelledRuns,
    ImmutableQueue<string> CancelledOrder)
{
    public const int CancelledRunsKept = 10_000;

    public static PoolState Empty(int slots) =>
        new(slots, [], [], ImmutableDictionary<TaskKey, ExecuteTask>.Empty, ImmutableDictionary<TaskKey, ExecuteTask>.Empty, [], []);

    /// <summary>Running tasks whose token fired: each gets the cancel grace period, then is abandoned.</summary>
    public ImmutableHashSet<TaskKey> Stopping { get; init; } = [];

    public int Busy => Claiming.Count + Running.Count;

    public int WaitingCount => Known.Count - Busy;

    /// <summary>A ready task arrives; repeats (a run re-dispatching after recovery) and cancelled runs are ignored.</summary>
    public PoolState Offer(ExecuteTask task)
    {
        var key = new TaskKey(task.RunId, task.TaskId);
        if (Known.Contains(key) || CancelledRuns.Contains(task.RunId)) return this;
        return this with { Waiting = Waiting.Enqueue(task), Known = Known.Add(key) };
    }

    /// <summary>Fills free slots from the queue: the returned tasks are to be claimed from their runs.</summary>
    public (PoolState State, IReadOnlyList<ExecuteTask> ToClaim) TakeClaims()
    {
        var state = this;
        var claims = new List<ExecuteTask>();
        while (state.Busy < Slots && !state.Waiting.IsEmpty)
        {
            var waiting = state.Waiting.Dequeue(out var task);
            var key = new TaskKey(task.RunId, task.TaskId);
            state = state with { Waiting = waiting };
            if (!state.Known.Contains(key)) continue; // dropped by a cancel while it waited
            state = state with { Claiming = state.Claiming.Add(key, task) };
            claims.Add(task);
        }
        return (state, claims);
    }

    /// <summary>The run accepted the claim: the task may start, unless its run was cancelled meanwhile.</summary>
    public (PoolState State, ExecuteTask? Start) Claimed(TaskKey key)
    {
        if (!Claiming.TryGetValue(key, out var task)) return (this, null);
        var state = this with { Claiming = Claiming.Remove(key) };
        if (CancelledRuns.Contains(key.RunId)) return (state with { Known = Known.Remove(key) }, null);
        return (state with { Running = Running.Add(key, task) }, task);
    }

    /// <summary>
    /// The answer of the pre-start check against the shared cancel set (Redis) for a claimed task: whether it may
    /// start. A run cancelled elsewhere is remembered like a topic cancel, and its other running tasks are named
    /// to be aborted; a run cancelled here while the check was in flight does not start either.
    /// </summary>
    public (PoolState State, bool Start, IReadOnlyList<TaskKey> Abort) Checked(TaskKey key, bool cancelledElsewhere)
    {
        if (!Running.ContainsKey(key)) return (this, false, []);
        var (state, abort) = cancelledElsewhere ? RunCancelled(key.RunId) : (this, []);
        if (!state.CancelledRuns.Contains(key.RunId)) return (state, true, abort);
        return (state.Finished(key), false, [.. abort.Where(k => k != key)]);
    }

    /// <summary>The claim was refused or failed: the slot is free again.</summary>
    public PoolState ClaimDropped(TaskKey key) =>
        this with { Claiming = Claiming.Remove(key), Known = Known.Remove(key) };

    public PoolState Finished(TaskKey key) =>
        this with { Running = Running.Remove(key), Known = Known.Remove(key), Stopping = Stopping.Remove(key) };

    /// <summary>A running task is told to stop; true the first time, when its grace period starts.</summary>
    public (PoolState State, bool StartGrace) StopRequested(TaskKey key) =>
        Running.ContainsKey(key) && !Stopping.Contains(key)
            ? (this with { Stopping = Stopping.Add(key) }, true)
            : (this, false);

    /// <summary>The grace period is over: a task still running is abandoned (its slot is free again).</summary>
    public (PoolState State, bool Abandon) GraceExpired(TaskKey key) =>
        Running.ContainsKey(key) && Stopping.Contains(key) ? (Finished(key), true) : (this, false);

    /// <summary>
    /// The run's cancel was announced but its journal write failed: its later tasks are offered again like any other
    /// run's (what was stopped stays stopped). The forgotten id stays in the order queue until it is evicted as usual.
    /// </summary>
    public PoolState CancelWithdrawn(string runId) =>
        CancelledRuns.Contains(runId) ? this with { CancelledRuns = CancelledRuns.Remove(runId) } : this;

    /// <summary>Remembers the cancelled run, drops its waiting tasks and names its running ones (to be aborted).</summary>
    public (PoolState State, IReadOnlyList<TaskKey> Abort) RunCancelled(string runId)
    {
        if (CancelledRuns.Contains(runId)) return (this, []);
        var cancelled = CancelledRuns.Add(runId);
        var order = CancelledOrder.Enqueue(runId);
        if (cancelled.Count > CancelledRunsKept)
        {
            order = order.Dequeue(out var oldest);
            cancelled = cancelled.Remove(oldest);
        }
        var waiting = Known.Where(k => k.RunId == runId && !Claiming.ContainsKey(k) && !Running.ContainsKey(k));
        var abort = Running.Keys.Where(k => k.RunId == runId).ToList();
        return (this with { Known = Known.Except(waiting), CancelledRuns = cancelled, CancelledOrder = order }, abort);
    }
}
