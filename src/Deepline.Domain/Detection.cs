using System.Collections.Immutable;

namespace Deepline.Domain;

/// <summary>Why a run is stuck. resource_deadlock comes from the resource coordinator's wait-for graph, not from <see cref="StuckDetector"/>.</summary>
public enum StuckReason { no_runnable_task, no_heartbeat, stale_pending, run_timeout, resource_deadlock }

/// <summary>The node's detector thresholds (config orchestrator.deadlock), in seconds.</summary>
public sealed record DetectorThresholds(int PendingStaleS, int WorkflowStaleS, int HeartbeatTimeoutS)
{
    /// <summary>
    /// The node's retry rules: a RUNNING task whose worker went silent is not stuck while it has an attempt left (its run
    /// queues it again at the lease's end); only one that cannot be retried is no_heartbeat.
    /// </summary>
    public RetrySettings Retry { get; init; } = RetrySettings.Off;

    /// <summary>The thresholds in force for one run: its own overrides win.</summary>
    public DetectorThresholds For(DeadlockOverrides? o) => o is null
        ? this
        : this with
        {
            PendingStaleS = o.PendingStaleS ?? PendingStaleS,
            WorkflowStaleS = o.WorkflowStaleS ?? WorkflowStaleS,
            HeartbeatTimeoutS = o.HeartbeatTimeoutS ?? HeartbeatTimeoutS,
        };
}

/// <summary>
/// A stuck run: why, since when it has been stuck (for detection latency), which tasks are stuck, and an
/// explanation a person can act on.
/// </summary>
public sealed record Detection(
    string RunId,
    string WorkflowName,
    StuckReason Reason,
    DateTimeOffset StuckSince,
    DateTimeOffset LastUpdate,
    ImmutableArray<string> StuckTasks,
    string Explanation) : IDeeplineMessage;

/// <summary>The four runtime detectors as pure functions of a run's state and the time.</summary>
public static class StuckDetector
{
    /// <summary>The most specific detector that holds now, or null when the run is healthy (or finished).</summary>
    public static Detection? Evaluate(WorkflowState s, DetectorThresholds node, DateTimeOffset now)
    {
        if (s.Status != RunStatus.RUNNING) return null;
        var t = node.For(s.Deadlock);

        if (s.Counts.Running == 0 && s.Counts.Queued == 0 && s.Counts.Pending > 0)
        {
            var pending = s.OrderedTasks.Where(x => x.State == TaskState.PENDING).ToList();
            var blockers = pending.Take(5).Select(x =>
                $"{x.TaskId} waits on {string.Join(", ", x.DependsOn.Where(d => s.Tasks[d].State != TaskState.SUCCEEDED).Select(d => $"{d} ({s.Tasks[d].State})"))}");
            return new Detection(s.RunId, s.WorkflowName, StuckReason.no_runnable_task, s.UpdatedAt, s.UpdatedAt,
                [.. pending.Select(x => x.TaskId)],
                $"nothing is runnable and nothing is running: {pending.Count} task(s) PENDING on dependencies that can no longer succeed ({string.Join("; ", blockers)})");
        }

        var silent = s.OrderedTasks
            .Where(x => x.State == TaskState.RUNNING && now - LastSign(x) >= TimeSpan.FromSeconds(t.HeartbeatTimeoutS) && !t.Retry.HasAttemptLeft(x))
            .ToList();
        if (silent.Count > 0)
        {
            var since = silent.Min(LastSign);
            return new Detection(s.RunId, s.WorkflowName, StuckReason.no_heartbeat, since + TimeSpan.FromSeconds(t.HeartbeatTimeoutS), s.UpdatedAt,
                [.. silent.Select(x => x.TaskId)],
                $"{silent.Count} RUNNING task(s) without a heartbeat for more than {t.HeartbeatTimeoutS} s: " +
                string.Join("; ", silent.Take(5).Select(x => $"{x.TaskId} on {x.WorkerId ?? "?"} (last sign {LastSign(x):O})")));
        }

        // A task waiting for its next attempt's backoff is not stale: the clock starts when the backoff is over.
        if (s.Counts.Running == 0 && s.Counts.Open > 0 && now - StaleBase(s) >= TimeSpan.FromSeconds(t.PendingStaleS))
        {
            var waiting = s.OrderedTasks.Where(x => x.State is TaskState.PENDING or TaskState.QUEUED).ToList();
            var queued = waiting.Where(x => x.State == TaskState.QUEUED && x.WaitingFor.IsEmpty).ToList();
            var granting = waiting.Where(x => x.State == TaskState.QUEUED && !x.WaitingFor.IsEmpty).ToList();
            var pools = string.Join(", ", queued.GroupBy(x => x.Pool).Select(g => $"{g.Count()} in pool '{g.Key}'"));
            // Starvation on resources is named as such: the operator looks for the holders (GET /resources/{name}), not for workers.
            var resources = granting.Count == 0 ? "" :
                $", {granting.Count} QUEUED waiting for resources ({string.Join("; ", granting.Take(5).Select(x => $"{x.TaskId} waits for {string.Join(", ", x.WaitingFor)}"))})";
            return new Detection(s.RunId, s.WorkflowName, StuckReason.stale_pending, s.UpdatedAt + TimeSpan.FromSeconds(t.PendingStaleS), s.UpdatedAt,
                [.. waiting.Select(x => x.TaskId)],
                $"no task RUNNING and no transition for more than {t.PendingStaleS} s (since {s.UpdatedAt:O}): " +
                $"{queued.Count} QUEUED waiting for a worker slot{(queued.Count > 0 ? $" ({pools})" : "")}{resources}, {waiting.Count - queued.Count - granting.Count} PENDING");
        }

        if (now - s.CreatedAt >= TimeSpan.FromSeconds(t.WorkflowStaleS))
        {
            var open = s.OrderedTasks.Where(x => !x.State.IsTerminal()).ToList();
            return new Detection(s.RunId, s.WorkflowName, StuckReason.run_timeout, s.CreatedAt + TimeSpan.FromSeconds(t.WorkflowStaleS), s.UpdatedAt,
                [.. open.Select(x => x.TaskId)],
                $"run older than workflow_stale_s {t.WorkflowStaleS} s (created {s.CreatedAt:O}) and not finished: {open.Count} task(s) open");
        }
        return null;
    }

    /// <summary>When a detector could next fire if nothing changes (so an actor can arm one timer), or null.</summary>
    public static DateTimeOffset? NextDeadline(WorkflowState s, DetectorThresholds node)
    {
        if (s.Status != RunStatus.RUNNING) return null;
        var t = node.For(s.Deadlock);
        var next = s.CreatedAt + TimeSpan.FromSeconds(t.WorkflowStaleS);
        if (s.Counts.Running == 0)
        {
            var stale = StaleBase(s) + TimeSpan.FromSeconds(t.PendingStaleS);
            if (stale < next) next = stale;
        }
        else
        {
            foreach (var task in s.Tasks.Values)
            {
                if (task.State != TaskState.RUNNING) continue;
                var due = LastSign(task) + TimeSpan.FromSeconds(t.HeartbeatTimeoutS);
                if (due < next) next = due;
            }
        }
        return next;
    }

    /// <summary>
    /// A deadline no later than <see cref="NextDeadline"/>, in constant time, from one armed earlier that was no later
    /// than the run's next deadline then. A task starts only at the run's latest transition (due one heartbeat timeout
    /// later) and a running task's last sign only moves forward, so every other running task is still due no earlier
    /// than <paramref name="armed"/>. Walking every task on every event made a 10,000-task run quadratic; the exact walk
    /// is left to the timer, when it fires.
    /// </summary>
    public static DateTimeOffset? NextDeadlineBound(WorkflowState s, DetectorThresholds node, DateTimeOffset armed)
    {
        if (s.Status != RunStatus.RUNNING) return null;
        var t = node.For(s.Deadlock);
        var next = s.CreatedAt + TimeSpan.FromSeconds(t.WorkflowStaleS);
        if (s.Counts.Running == 0) return Min(next, s.UpdatedAt + TimeSpan.FromSeconds(t.PendingStaleS));
        return Min(Min(next, s.UpdatedAt + TimeSpan.FromSeconds(t.HeartbeatTimeoutS)), armed);
    }

    private static DateTimeOffset Min(DateTimeOffset a, DateTimeOffset b) => a < b ? a : b;

    /// <summary>When the run's stale_pending clock started: its last transition, or the end of the latest retry backoff.</summary>
    private static DateTimeOffset StaleBase(WorkflowState s)
    {
        var at = s.UpdatedAt;
        if (s.Counts.Queued == 0) return at;
        foreach (var task in s.Tasks.Values)
            if (task.RetryAt is { } due && due > at) at = due;
        return at;
    }

    /// <summary>When a RUNNING task's lease runs out: its last sign of life plus the run's heartbeat timeout.</summary>
    public static DateTimeOffset LeaseEnd(TaskRecord task, DetectorThresholds forRun) => LastSign(task) + TimeSpan.FromSeconds(forRun.HeartbeatTimeoutS);

    private static DateTimeOffset LastSign(TaskRecord t) => t.LastHeartbeatAt ?? t.UpdatedAt;
}
