using System.Collections.Immutable;
using System.Text.Json;
using System.Text.Json.Serialization;
using Deepline.Domain.Resources;

namespace Deepline.Domain;

public sealed record TaskRecord(
    string TaskId,
    string Type,
    string Pool,
    JsonElement? Params,
    ImmutableArray<string> DependsOn,
    TaskState State,
    int Attempts,
    DateTimeOffset UpdatedAt,
    DateTimeOffset? LastHeartbeatAt,
    string? WorkerId,
    JsonElement? Result,
    string? Error)
{
    /// <summary>Default (not written to snapshots) for a task without resources.</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingDefault)]
    public ImmutableArray<ResourceRequest> Resources { get; init; }

    public string? HoldUntil { get; init; }

    /// <summary>Every resource of the task has been granted to the run (journalled): it may start.</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingDefault)]
    public bool Granted { get; init; }

    [JsonIgnore]
    public bool NeedsResources => !Resources.IsDefaultOrEmpty;

    /// <summary>The task's own retry policy (null: the node's).</summary>
    public RetryPolicy? Retry { get; init; }

    /// <summary>A QUEUED task waiting for the backoff of its next attempt: not dispatched before this time.</summary>
    public DateTimeOffset? RetryAt { get; init; }

    /// <summary>Attempts in a row that ended with their worker lost (lease run out, node gone): poison past a limit.</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingDefault)]
    public int LostInARow { get; init; }

    /// <summary>The cluster member whose in-cluster pool runs the current attempt (address#uid); null for external workers.</summary>
    public string? Incarnation { get; init; }

    /// <summary>The key an external worker holds the current attempt by: reports over HTTP from any other key are refused.</summary>
    public string? Holder { get; init; }

    /// <summary>The error type of the last failed attempt, as its worker reported it.</summary>
    public string? ErrorType { get; init; }

    /// <summary>Attempts made before the task was last re-run by a person: its retry budget counts from here.</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingDefault)]
    public int AttemptsBefore { get; init; }

    /// <summary>QUEUED and free to start: nothing to wait for (resources granted, backoff over).</summary>
    [JsonIgnore]
    public bool Ready => State == TaskState.QUEUED && (!NeedsResources || Granted) && RetryAt is null;

    /// <summary>The resources a QUEUED task still waits for (shown as waiting_for); empty otherwise.</summary>
    [JsonIgnore]
    public ImmutableArray<string> WaitingFor => State == TaskState.QUEUED && NeedsResources && !Granted ? [.. Resources.Select(r => r.Name)] : [];
}

/// <summary>How many tasks of a run are in each state; kept so that no decision has to walk every task.</summary>
public sealed record TaskCounts(int Pending, int Queued, int Running, int Succeeded, int Failed, int Cancelled, int Skipped)
{
    public static TaskCounts Zero { get; } = new(0, 0, 0, 0, 0, 0, 0);

    public int Open => Pending + Queued + Running;

    public int Of(TaskState s) => s switch
    {
        TaskState.PENDING => Pending,
        TaskState.QUEUED => Queued,
        TaskState.RUNNING => Running,
        TaskState.SUCCEEDED => Succeeded,
        TaskState.FAILED => Failed,
        TaskState.CANCELLED => Cancelled,
        _ => Skipped,
    };

    public TaskCounts Add(TaskState s, int n) => s switch
    {
        TaskState.PENDING => this with { Pending = Pending + n },
        TaskState.QUEUED => this with { Queued = Queued + n },
        TaskState.RUNNING => this with { Running = Running + n },
        TaskState.SUCCEEDED => this with { Succeeded = Succeeded + n },
        TaskState.FAILED => this with { Failed = Failed + n },
        TaskState.CANCELLED => this with { Cancelled = Cancelled + n },
        _ => this with { Skipped = Skipped + n },
    };
}

/// <summary>
/// The cancel record. <see cref="Forced"/> is true when the run was closed while some worker had not yet
/// acknowledged (force, admin finalisation or cancel_timeout_s).
/// </summary>
public sealed record CancelRecord(
    string Reason,
    string CancelledBy,
    DateTimeOffset CancelledAt,
    int CancelledTasks,
    bool Forced,
    DateTimeOffset? FinalisedAt,
    string? FinalisedBy)
{
    /// <summary>
    /// Which detector an auto-cancel came from, beside the seed's fixed reason <c>auto-cancel: deadlock detected</c>,
    /// so that operators can filter on the reason and still see why. Null for a cancel by a caller.
    /// </summary>
    public string? DeadlockReason { get; init; }
}

/// <summary>One run as its entity holds it: built only by <see cref="Apply"/> over the run's events.</summary>
public sealed record WorkflowState(
    string RunId,
    string WorkflowName,
    string ClientId,
    RunStatus Status,
    DateTimeOffset CreatedAt,
    DateTimeOffset UpdatedAt,
    ImmutableArray<string> TaskOrder,
    ImmutableDictionary<string, TaskRecord> Tasks,
    ImmutableDictionary<string, ImmutableArray<string>> Dependents,
    TaskCounts Counts,
    CancelRecord? Cancel,
    ImmutableList<TaskEventIgnored> Ignored) : IDeeplineMessage
{
    /// <summary>
    /// Ignored events kept in the state (the newest), and also how many a run journals: past that, a misbehaving worker
    /// is only counted (<see cref="IgnoredTotal"/>), so it cannot grow the run's journal or state without bound.
    /// </summary>
    public const int IgnoredKept = 50;

    /// <summary>Every ignored event this run has seen, journalled or only counted (see <see cref="IgnoredKept"/>).</summary>
    public long IgnoredTotal { get; init; }

    public IEnumerable<TaskRecord> OrderedTasks => TaskOrder.Select(id => Tasks[id]);

    public DeadlockOverrides? Deadlock { get; init; }

    public int? Priority { get; init; }

    /// <summary>Some task declares resources: only then does the run talk to the resource coordinator.</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingDefault)]
    public bool UsesResources { get; init; }

    // Every run's maps start from these, so all share one comparer object, and a run without dependencies one empty
    // map: about 130 bytes per open single-task run (measured with dumpheap), across 100,000 open runs per node.
    private static readonly ImmutableDictionary<string, TaskRecord> NoTasks = ImmutableDictionary.Create<string, TaskRecord>(StringComparer.Ordinal);
    private static readonly ImmutableDictionary<string, ImmutableArray<string>> NoDependents =
        ImmutableDictionary.Create<string, ImmutableArray<string>>(StringComparer.Ordinal);

    public static WorkflowState Create(RunSubmitted e)
    {
        var spec = e.Spec;
        var tasks = NoTasks.ToBuilder();
        var dependents = new Dictionary<string, List<string>>(StringComparer.Ordinal);
        var counts = TaskCounts.Zero;
        foreach (var t in spec.Tasks)
        {
            var deps = t.DependsOn.IsDefault ? [] : t.DependsOn.Distinct(StringComparer.Ordinal).ToImmutableArray();
            var state = deps.IsEmpty ? TaskState.QUEUED : TaskState.PENDING;
            tasks[t.TaskId] = new TaskRecord(t.TaskId, t.Type, t.Pool, t.Params, deps, state, 0, e.At, null, null, null, null)
            {
                Resources = t.Resources,
                HoldUntil = t.HoldUntil,
                Retry = t.Retry,
            };
            counts = counts.Add(state, 1);
            foreach (var d in deps)
            {
                if (!dependents.TryGetValue(d, out var list)) dependents[d] = list = [];
                list.Add(t.TaskId);
            }
        }
        return new WorkflowState(
            spec.RunId, spec.WorkflowName, spec.ClientId, RunStatus.RUNNING, e.At, e.At,
            [.. spec.Tasks.Select(t => t.TaskId)],
            tasks.ToImmutable(),
            dependents.Count == 0 ? NoDependents : NoDependents.AddRange(dependents.Select(kv => KeyValuePair.Create(kv.Key, kv.Value.ToImmutableArray()))),
            counts, null, [])
        {
            Deadlock = spec.Deadlock,
            Priority = spec.Priority,
            UsesResources = spec.Tasks.Any(t => !t.Resources.IsDefaultOrEmpty),
        };
    }

    /// <summary>Applies one event. Unknown tasks or transitions the decider never emits leave the state unchanged.</summary>
    public WorkflowState Apply(IRunEvent e) => e switch
    {
        TaskStarted s => Move(s.TaskId, TaskState.RUNNING, s.At, t => t with
        {
            Attempts = t.Attempts + 1, WorkerId = s.WorkerId, LastHeartbeatAt = s.At, Incarnation = s.Incarnation, Holder = s.Holder,
        }).Touch(s.At),
        // Back to QUEUED: the run is not settled (its counts still hold an open task), dependents stay PENDING.
        TaskAttemptFailed a => Move(a.TaskId, TaskState.QUEUED, a.At, t => t with
        {
            Error = a.Error, ErrorType = a.ErrorType, RetryAt = a.RetryAt, WorkerId = null, LastHeartbeatAt = null, Incarnation = null, Holder = null,
            LostInARow = a.Cause == AttemptCauses.Failed ? 0 : t.LostInARow + 1,
        }).Touch(a.At),
        TaskRetryReleased r => Tasks.TryGetValue(r.TaskId, out var rt) && rt.State == TaskState.QUEUED && rt.RetryAt is not null
            ? (this with { Tasks = Tasks.SetItem(r.TaskId, rt with { RetryAt = null, UpdatedAt = r.At }) }).Touch(r.At)
            : this,
        TaskHeartbeat h => Tasks.TryGetValue(h.TaskId, out var ht) && ht.State == TaskState.RUNNING
            ? this with { Tasks = Tasks.SetItem(h.TaskId, ht with { LastHeartbeatAt = h.At }) }
            : this,
        TaskSucceeded s => Move(s.TaskId, TaskState.SUCCEEDED, s.At, t => t with { Result = s.Result })
            .ReleaseDependents(s.TaskId, s.At).Touch(s.At).Settle(s.At),
        TaskFailed f => Move(f.TaskId, TaskState.FAILED, f.At, t => t with { Error = f.Error, ErrorType = f.ErrorType ?? t.ErrorType })
            .SkipDependents(f.TaskId, f.At).Touch(f.At).Settle(f.At),
        TaskCancelled c => Move(c.TaskId, TaskState.CANCELLED, c.At, t => t with { Error = c.Detail })
            .SkipDependents(c.TaskId, c.At).Touch(c.At).Settle(c.At),
        TaskResourcesGranted g => Tasks.TryGetValue(g.TaskId, out var gt) && gt.State == TaskState.QUEUED && !gt.Granted
            ? this with { Tasks = Tasks.SetItem(g.TaskId, gt with { Granted = true }) }
            : this,
        RunCancelRequested r => RequestCancel(r),
        RunRetried r => Rerun(r),
        RunCancelFinalised f => Finalise(f.By, f.At),
        TaskEventIgnored i => this with
        {
            Ignored = (Ignored.Count >= IgnoredKept ? Ignored.RemoveAt(0) : Ignored).Add(i),
            IgnoredTotal = Math.Max(IgnoredTotal, Ignored.Count) + 1,
        },
        _ => this,
    };

    private WorkflowState Touch(DateTimeOffset at) => this with { UpdatedAt = at };

    private WorkflowState Move(string taskId, TaskState to, DateTimeOffset at, Func<TaskRecord, TaskRecord>? change = null)
    {
        if (!Tasks.TryGetValue(taskId, out var t) || t.State == to) return this;
        var moved = (change?.Invoke(t) ?? t) with { State = to, UpdatedAt = at };
        return this with { Tasks = Tasks.SetItem(taskId, moved), Counts = Counts.Add(t.State, -1).Add(to, 1) };
    }

    private WorkflowState MoveMany(IEnumerable<string> ids, TaskState to, DateTimeOffset at)
    {
        var tasks = Tasks.ToBuilder();
        var counts = Counts;
        foreach (var id in ids)
        {
            var t = tasks[id];
            if (t.State == to) continue;
            tasks[id] = t with { State = to, UpdatedAt = at };
            counts = counts.Add(t.State, -1).Add(to, 1);
        }
        return this with { Tasks = tasks.ToImmutable(), Counts = counts };
    }

    /// <summary>Dependents whose dependencies have now all succeeded become QUEUED (only while the run runs).</summary>
    private WorkflowState ReleaseDependents(string taskId, DateTimeOffset at)
    {
        if (Status != RunStatus.RUNNING || !Dependents.TryGetValue(taskId, out var ds)) return this;
        var ready = ds.Where(d => Tasks[d].State == TaskState.PENDING
                                  && Tasks[d].DependsOn.All(x => Tasks[x].State == TaskState.SUCCEEDED));
        return MoveMany(ready.ToList(), TaskState.QUEUED, at);
    }

    /// <summary>Every task downstream of a task that did not succeed can never run: it is SKIPPED.</summary>
    private WorkflowState SkipDependents(string taskId, DateTimeOffset at)
    {
        var skip = new List<string>();
        var seen = new HashSet<string>(StringComparer.Ordinal);
        var stack = new Stack<string>();
        stack.Push(taskId);
        while (stack.Count > 0)
        {
            if (!Dependents.TryGetValue(stack.Pop(), out var ds)) continue;
            foreach (var d in ds)
            {
                if (!seen.Add(d) || Tasks[d].State != TaskState.PENDING) continue;
                skip.Add(d);
                stack.Push(d);
            }
        }
        return skip.Count == 0 ? this : MoveMany(skip, TaskState.SKIPPED, at);
    }

    /// <summary>Closes the run once no task is open.</summary>
    private WorkflowState Settle(DateTimeOffset at)
    {
        if (Counts.Open > 0) return this;
        return Status switch
        {
            RunStatus.RUNNING => this with
            {
                Status = Counts.Failed + Counts.Cancelled + Counts.Skipped > 0 ? RunStatus.FAILED : RunStatus.SUCCEEDED,
            },
            RunStatus.CANCELLING => this with
            {
                Status = RunStatus.CANCELLED,
                Cancel = Cancel! with { FinalisedAt = at, FinalisedBy = "workers" },
            },
            _ => this,
        };
    }

    /// <summary>
    /// The named tasks open again: QUEUED where every dependency succeeded, PENDING otherwise (a dependency re-run with
    /// them releases them when it succeeds).
    /// </summary>
    private WorkflowState Rerun(RunRetried r)
    {
        if (Status != RunStatus.FAILED) return this;
        var reset = r.TaskIds.Where(id => Tasks.TryGetValue(id, out var t) && t.State.IsTerminal() && t.State != TaskState.SUCCEEDED).ToHashSet(StringComparer.Ordinal);
        var tasks = Tasks.ToBuilder();
        var counts = Counts;
        foreach (var id in TaskOrder)
        {
            if (!reset.Contains(id)) continue;
            var t = tasks[id];
            var to = t.DependsOn.All(d => !reset.Contains(d) && tasks[d].State == TaskState.SUCCEEDED) ? TaskState.QUEUED : TaskState.PENDING;
            tasks[id] = t with
            {
                State = to, UpdatedAt = r.At, RetryAt = null, LostInARow = 0, AttemptsBefore = t.Attempts, WorkerId = null,
                LastHeartbeatAt = null, Incarnation = null, Holder = null, Granted = false,
            };
            counts = counts.Add(t.State, -1).Add(to, 1);
        }
        return this with { Tasks = tasks.ToImmutable(), Counts = counts, Status = RunStatus.RUNNING, UpdatedAt = r.At };
    }

    private WorkflowState RequestCancel(RunCancelRequested r)
    {
        var waiting = OrderedTasks.Where(t => t.State is TaskState.PENDING or TaskState.QUEUED).Select(t => t.TaskId).ToList();
        var next = MoveMany(waiting, TaskState.CANCELLED, r.At) with
        {
            Status = RunStatus.CANCELLING,
            UpdatedAt = r.At,
            Cancel = new CancelRecord(r.Reason, r.CancelledBy, r.At, waiting.Count, false, null, null) { DeadlockReason = r.DeadlockReason },
        };
        return r.Force || next.Counts.Running == 0 ? next.Finalise(r.CancelledBy, r.At) : next;
    }

    private WorkflowState Finalise(string by, DateTimeOffset at)
    {
        if (Status != RunStatus.CANCELLING) return this;
        var running = OrderedTasks.Where(t => t.State == TaskState.RUNNING).Select(t => t.TaskId).ToList();
        return MoveMany(running, TaskState.CANCELLED, at) with
        {
            Status = RunStatus.CANCELLED,
            UpdatedAt = at,
            Cancel = Cancel! with { Forced = running.Count > 0, FinalisedAt = at, FinalisedBy = by },
        };
    }
}

/// <summary>A heartbeat is applied like an event but never journalled: it changes no decision that must survive a crash.</summary>
public sealed record TaskHeartbeat(string TaskId, DateTimeOffset At) : ITaskEvent;
