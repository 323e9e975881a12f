using Deepline.Domain;

namespace Deepline.Domain.Tests;

/// <summary>
/// Reports decided together (a pool's reports that waited for its previous one) give what deciding them one write at
/// a time gives: the same events in the same order, the same replies, the same state.
/// </summary>
public sealed class DecideAllTests
{
    private static readonly DateTimeOffset T0 = RunHarness.T0;

    [Fact]
    public void Deciding_reports_together_equals_deciding_them_one_after_another()
    {
        var state = WorkflowState.Create(new RunSubmitted(Dag.Spec("a b c<a"), T0));
        IRunCommand Report(string task, TaskEventKind kind) => new ReportTaskEvent(state.RunId, task, kind, "w", null, kind == TaskEventKind.TASK_FAILED ? "boom" : null);
        IRunCommand[] commands =
        [
            Report("a", TaskEventKind.TASK_STARTED), Report("b", TaskEventKind.TASK_STARTED), Report("b", TaskEventKind.TASK_HEARTBEAT),
            Report("a", TaskEventKind.TASK_SUCCEEDED), Report("a", TaskEventKind.TASK_STARTED), Report("c", TaskEventKind.TASK_STARTED),
            Report("b", TaskEventKind.TASK_FAILED), Report("c", TaskEventKind.TASK_SUCCEEDED),
        ];

        var one = state;
        var events = new List<IRunEvent>();
        var replies = new List<IDeeplineMessage?>();
        foreach (var c in commands)
        {
            var d = WorkflowDecider.Decide(one, c, T0.AddSeconds(1), Dag.Policy());
            foreach (var t in d.Transient) one = one.Apply(t);
            foreach (var e in d.Persist) one = one.Apply(e);
            events.AddRange(d.Persist);
            replies.Add(d.Reply);
        }

        var together = WorkflowDecider.DecideAll(state, commands, T0.AddSeconds(1), Dag.Policy());
        Assert.Equal(events, together.Persist);
        Assert.Equal(replies, together.Replies);
        Assert.Equal(one.Counts, together.After!.Counts);
        Assert.Equal(one.Status, together.After.Status);
        Assert.Equal(one.Tasks.Values.OrderBy(t => t.TaskId).Select(t => (t.TaskId, t.State, t.Attempts)),
            together.After.Tasks.Values.OrderBy(t => t.TaskId).Select(t => (t.TaskId, t.State, t.Attempts)));
        // The refused second start of "a" and the run's failure are in there, not only successes.
        Assert.Contains(together.Replies, r => r is CommandRejected);
        Assert.Equal(RunStatus.FAILED, together.After.Status);
    }
}
