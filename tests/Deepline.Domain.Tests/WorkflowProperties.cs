using FsCheck.Xunit;
using Xunit;

namespace Deepline.Domain.Tests;

[Properties(Arbitrary = [typeof(Generators)], MaxTest = 200)]
public class WorkflowProperties
{
    /// <summary>
    /// Random clients, workers and timers act on a random run through the decider. After every step the run must
    /// be consistent, and at the end replaying the journal must rebuild it.
    /// </summary>
    [Property]
    public void Every_sequence_of_commands_keeps_the_run_consistent(Scenario scenario)
    {
        var h = RunHarness.Submitted(scenario.Dag.ToSpec(), Dag.Policy(100));
        AssertConsistent(h.S);

        foreach (var step in scenario.Steps)
        {
            var before = h.S;
            h.Advance(step.Seconds);
            var command = Interpret(h, step);

            var d = h.Send(command);

            if (command is not CancelTimeoutElapsed) Assert.NotNull(d.Reply);
            // The run actor takes the decision's state instead of applying its events again: it must be that state.
            if (d.After is { } after && d.Transient.IsEmpty) Assert.Equal(Dag.Render(h.S), Dag.Render(after));
            AssertDecisionShape(d, h.S);
            AssertConsistent(h.S);
            AssertWriteOnce(before, h.S);
        }

        var replayed = h.Journal.Skip(1).Aggregate(WorkflowState.Create((RunSubmitted)h.Journal[0]), (s, e) => s.Apply(e));
        // Ignored events past the journalled bound are, like heartbeats, applied but not journalled: the replay has
        // the same run, and at most the live count of ignored events.
        static WorkflowState WithoutIgnored(WorkflowState s) => s with { Ignored = [], IgnoredTotal = 0 };
        Assert.Equal(Dag.Render(WithoutIgnored(h.S), heartbeats: false), Dag.Render(WithoutIgnored(replayed), heartbeats: false));
        Assert.True(replayed.IgnoredTotal <= h.S.IgnoredTotal);
        Assert.Equal(Math.Min(h.S.IgnoredTotal, WorkflowState.IgnoredKept), replayed.IgnoredTotal);
    }

    /// <summary>
    /// The run actor arms its deadlock timer from a constant-time bound after each transition: along any sequence of
    /// commands the bound is never later than the exact next deadline (a late timer would miss a stuck run), and it
    /// is exact whenever nothing is running.
    /// </summary>
    [Property]
    public void The_constant_time_deadline_bound_is_never_later_than_the_exact_deadline(Scenario scenario)
    {
        var thresholds = new DetectorThresholds(PendingStaleS: 900, WorkflowStaleS: 3600, HeartbeatTimeoutS: 60);
        var h = RunHarness.Submitted(scenario.Dag.ToSpec(), Dag.Policy(100));
        var armed = StuckDetector.NextDeadline(h.S, thresholds);
        foreach (var step in scenario.Steps)
        {
            h.Advance(step.Seconds);
            h.Send(Interpret(h, step));
            var exact = StuckDetector.NextDeadline(h.S, thresholds);
            var bound = armed is { } a ? StuckDetector.NextDeadlineBound(h.S, thresholds, a) : exact;
            Assert.Equal(exact is null, bound is null);
            if (exact is { } e)
            {
                Assert.True(bound <= e, $"bound {bound:O} is later than the exact deadline {e:O}");
                if (h.S.Counts.Running == 0) Assert.Equal(e, bound);
            }
            // As the actor does: the timer fires (or is re-armed exactly) once the bound is reached.
            armed = bound is { } b && b <= h.Now ? exact : bound;
        }
    }

    /// <summary>Starting and finishing whatever is QUEUED, round after round, completes any DAG in depth + 1 rounds.</summary>
    [Property]
    public void A_dag_where_every_task_succeeds_completes_round_by_round(RandomDag dag)
    {
        var h = RunHarness.Submitted(dag.ToSpec(), Dag.Policy(100));
        var rounds = 0;
        while (h.S.Status == RunStatus.RUNNING)
        {
            var queued = h.S.OrderedTasks.Where(t => t.State == TaskState.QUEUED).Select(t => t.TaskId).ToList();
            Assert.NotEmpty(queued); // never stuck
            foreach (var id in queued) h.Accept(h.Send(new ReportTaskEvent(h.RunId, id, TaskEventKind.TASK_STARTED, "w1", null, null)));
            foreach (var id in queued) h.Accept(h.Send(new ReportTaskEvent(h.RunId, id, TaskEventKind.TASK_SUCCEEDED, "w1", null, null)));
            rounds++;
        }

        Assert.Equal(RunStatus.SUCCEEDED, h.S.Status);
        Assert.Equal(dag.LongestChain() + 1, rounds);
        Assert.Equal(dag.Count, h.S.Counts.Succeeded);
    }

    /// <summary>One failing task skips exactly its transitive dependents; every other task still runs and succeeds.</summary>
    [Property]
    public void A_failure_skips_exactly_the_downstream_tasks(RandomDag dag, byte pick)
    {
        var failing = pick % dag.Count;
        var downstream = Enumerable.Range(0, dag.Count).Where(i => i != failing && dag.UpstreamOf(i).Contains(failing))
            .Select(RandomDag.Id).ToHashSet();
        var h = RunHarness.Submitted(dag.ToSpec(), Dag.Policy(100));

        while (h.S.Status == RunStatus.RUNNING)
        {
            var queued = h.S.OrderedTasks.Where(t => t.State == TaskState.QUEUED).Select(t => t.TaskId).ToList();
            Assert.NotEmpty(queued);
            foreach (var id in queued)
            {
                h.Accept(h.Send(new ReportTaskEvent(h.RunId, id, TaskEventKind.TASK_STARTED, "w1", null, null)));
                var kind = id == RandomDag.Id(failing) ? TaskEventKind.TASK_FAILED : TaskEventKind.TASK_SUCCEEDED;
                h.Accept(h.Send(new ReportTaskEvent(h.RunId, id, kind, "w1", null, "boom")));
            }
        }

        Assert.Equal(RunStatus.FAILED, h.S.Status);
        foreach (var t in h.S.Tasks.Values)
        {
            var expected = t.TaskId == RandomDag.Id(failing) ? TaskState.FAILED
                : downstream.Contains(t.TaskId) ? TaskState.SKIPPED
                : TaskState.SUCCEEDED;
            Assert.True(expected == t.State, $"{t.TaskId}: expected {expected}, was {t.State}");
        }
    }

    // ---- the random walk ----------------------------------------------------------------------------------

    private static IRunCommand Interpret(RunHarness h, Step step)
    {
        var s = h.S;
        var k = step.Kind;
        if (k >= 80)
        {
            return k switch
            {
                < 84 => new CancelRun(h.RunId, "r", "alice", false),
                < 86 => new CancelRun(h.RunId, "r", "alice", true),
                < 88 => new FinaliseCancel(h.RunId, "admin"),
                < 92 => new CancelTimeoutElapsed(h.RunId),
                _ => new GetRun(h.RunId),
            };
        }

        var (kind, wanted) = k switch
        {
            < 30 => (TaskEventKind.TASK_STARTED, TaskState.QUEUED),
            < 55 => (TaskEventKind.TASK_SUCCEEDED, TaskState.RUNNING),
            < 63 => (TaskEventKind.TASK_FAILED, TaskState.RUNNING),
            < 68 => (TaskEventKind.TASK_CANCELLED, TaskState.RUNNING),
            _ => (TaskEventKind.TASK_HEARTBEAT, TaskState.RUNNING),
        };
        // Mostly a task the event makes sense for; one time in five any task, to exercise the refusals.
        var candidates = s.OrderedTasks.Where(t => t.State == wanted).ToList();
        if (candidates.Count == 0 || step.Pick % 5 == 0) candidates = [.. s.OrderedTasks];
        var task = candidates[step.Pick / 5 % candidates.Count];
        var worker = step.Worker < 3 ? $"w{step.Worker}" : task.WorkerId ?? "w0";
        return new ReportTaskEvent(h.RunId, task.TaskId, kind, worker, null, kind == TaskEventKind.TASK_FAILED ? "boom" : null);
    }

    private static void AssertDecisionShape(Decision d, WorkflowState now)
    {
        Assert.All(d.Transient, e => Assert.True(e is TaskHeartbeat or TaskEventIgnored, e.GetType().Name));
        switch (d.Reply)
        {
            case CommandRejected r:
                // An ignored event is journalled (up to the bound) or only counted, never both.
                Assert.True(d.Persist.Length + d.Transient.Length <= 1);
                if (d.Persist.Length + d.Transient.Length > 0)
                {
                    Assert.Equal(RejectionKind.Conflict, r.Kind);
                    Assert.IsType<TaskEventIgnored>(Assert.Single(d.Persist.Concat(d.Transient)));
                }
                break;
            case RunReply rr:
                Assert.Equal(Dag.Render(now), Dag.Render(rr.State));
                break;
            case CancelReply cr:
                Assert.Equal(Dag.Render(now), Dag.Render(cr.State));
                break;
            case TaskEventAccepted a:
                Assert.Equal(new TaskEventAccepted(now.RunId, a.TaskId, now.Tasks[a.TaskId].State, now.Status) { Attempt = now.Tasks[a.TaskId].Attempts, RetryAt = now.Tasks[a.TaskId].RetryAt }, a);
                break;
        }
    }

    private static void AssertConsistent(WorkflowState s)
    {
        var c = s.Counts;
        Assert.Equal(Dag.Recount(s), c);
        switch (s.Status)
        {
            case RunStatus.RUNNING:
                Assert.True(c.Running + c.Queued > 0, $"RUNNING run with nothing runnable and nothing running: {c}");
                break;
            case RunStatus.CANCELLING:
                Assert.True(c.Running > 0, $"CANCELLING with nothing running: {c}");
                Assert.Equal(0, c.Pending + c.Queued);
                Assert.NotNull(s.Cancel);
                Assert.Null(s.Cancel.FinalisedAt);
                break;
            case RunStatus.SUCCEEDED:
                Assert.Equal(s.Tasks.Count, c.Succeeded);
                Assert.Null(s.Cancel);
                break;
            case RunStatus.FAILED:
                Assert.Equal(0, c.Open);
                Assert.True(c.Failed + c.Cancelled + c.Skipped > 0);
                Assert.Null(s.Cancel);
                break;
            case RunStatus.CANCELLED:
                Assert.Equal(0, c.Open);
                Assert.NotNull(s.Cancel);
                Assert.NotNull(s.Cancel.FinalisedAt);
                break;
        }
        Assert.True(s.Ignored.Count <= WorkflowState.IgnoredKept);

        foreach (var t in s.Tasks.Values)
        {
            var deps = t.DependsOn.Select(d => s.Tasks[d].State).ToList();
            switch (t.State)
            {
                case TaskState.QUEUED:
                    Assert.All(deps, d => Assert.Equal(TaskState.SUCCEEDED, d));
                    Assert.Equal(RunStatus.RUNNING, s.Status);
                    break;
                case TaskState.RUNNING:
                    Assert.All(deps, d => Assert.Equal(TaskState.SUCCEEDED, d));
                    Assert.NotNull(t.WorkerId);
                    Assert.Equal(1, t.Attempts);
                    break;
                case TaskState.PENDING:
                    Assert.Equal(RunStatus.RUNNING, s.Status);
                    Assert.Contains(deps, d => d != TaskState.SUCCEEDED);
                    Assert.DoesNotContain(deps, d => d is TaskState.FAILED or TaskState.CANCELLED or TaskState.SKIPPED);
                    break;
                case TaskState.SKIPPED:
                    Assert.Contains(deps, d => d is TaskState.FAILED or TaskState.CANCELLED or TaskState.SKIPPED);
                    break;
            }
        }
    }

    private static void AssertWriteOnce(WorkflowState before, WorkflowState after)
    {
        foreach (var t in before.Tasks.Values.Where(t => t.State.IsTerminal()))
            Assert.Equal(t, after.Tasks[t.TaskId]);
        if (before.Status.IsTerminal())
        {
            Assert.Equal(before.Status, after.Status);
            Assert.Equal(before.Cancel, after.Cancel);
        }
        if (before.Cancel is { } c)
        {
            Assert.Equal(c.CancelledAt, after.Cancel!.CancelledAt);
            Assert.Equal(c.CancelledBy, after.Cancel.CancelledBy);
            Assert.Equal(c.CancelledTasks, after.Cancel.CancelledTasks);
        }
        Assert.True(after.UpdatedAt >= before.UpdatedAt);
    }
}
