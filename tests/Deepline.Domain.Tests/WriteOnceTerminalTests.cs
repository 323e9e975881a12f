using Xunit;

namespace Deepline.Domain.Tests;

/// <summary>Terminal states are write-once: a late report is journalled as ignored, answered 409, never applied.</summary>
public class WriteOnceTerminalTests
{
    private const string Dag3 = "a b<a c";

    [Theory]
    // the Dagster/Argo case: the worker of a force-cancelled task reports success afterwards
    [InlineData(Dag3, "start:a@w1 cancel!", "ok:a@w1", TaskEventKind.TASK_SUCCEEDED)]
    [InlineData(Dag3, "start:a@w1 cancel!", "fail:a@w1", TaskEventKind.TASK_FAILED)]
    [InlineData(Dag3, "start:a@w1 cancel!", "ack:a@w1", TaskEventKind.TASK_CANCELLED)]
    [InlineData(Dag3, "start:a@w1 cancel timeout", "ok:a@w1", TaskEventKind.TASK_SUCCEEDED)]
    // tasks cancelled while waiting, reported on by a worker that picked them up anyway
    [InlineData(Dag3, "start:a@w1 cancel ack:a", "ok:b@w2", TaskEventKind.TASK_SUCCEEDED)]
    [InlineData(Dag3, "start:a@w1 cancel", "ok:c@w2", TaskEventKind.TASK_SUCCEEDED)] // run still CANCELLING
    [InlineData(Dag3, "start:a@w1 cancel", "start:c@w2", TaskEventKind.TASK_STARTED)]
    [InlineData(Dag3, "cancel", "start:c@w2", TaskEventKind.TASK_STARTED)]
    // other terminal states
    [InlineData("a", "start:a ok:a", "ok:a", TaskEventKind.TASK_SUCCEEDED)] // a duplicate report
    [InlineData("a", "start:a ok:a", "fail:a", TaskEventKind.TASK_FAILED)]
    [InlineData("a b", "start:a fail:a", "ok:a", TaskEventKind.TASK_SUCCEEDED)]
    [InlineData("a b<a c", "start:a fail:a", "start:b@w9", TaskEventKind.TASK_STARTED)] // SKIPPED
    [InlineData("a b<a c", "start:a fail:a", "ok:b@w9", TaskEventKind.TASK_SUCCEEDED)]
    public void A_late_event_on_a_terminal_task_is_recorded_as_ignored_and_never_applied(
        string dag, string setup, string late, TaskEventKind kind)
    {
        var h = RunHarness.Submitted(dag, setup);
        var task = h.Parse(late) is ReportTaskEvent r ? r.TaskId : throw new ArgumentException(late);
        var taskBefore = h.S.Tasks[task];
        var runBefore = h.S.Status;
        var counts = h.S.Counts;
        h.Advance(5);

        var d = h.Send(h.Parse(late));

        var ignored = Assert.IsType<TaskEventIgnored>(Assert.Single(d.Persist));
        Assert.Empty(d.Transient);
        Assert.Equal(task, ignored.TaskId);
        Assert.Equal(kind, ignored.Event);
        Assert.Equal(h.Now, ignored.At);
        Assert.Equal(RejectionKind.Conflict, Assert.IsType<CommandRejected>(d.Reply).Kind);
        Assert.Equal(taskBefore, h.S.Tasks[task]);
        Assert.Equal(runBefore, h.S.Status);
        Assert.Equal(counts, h.S.Counts);
        Assert.Equal(ignored, h.S.Ignored[^1]);
    }

    [Fact]
    public void A_late_success_after_cancel_leaves_the_task_and_the_run_cancelled()
    {
        var h = RunHarness.Submitted(Dag3, "start:a@w1 cancel!");
        h.Advance();

        var d = h.Send(new ReportTaskEvent(h.RunId, "a", TaskEventKind.TASK_SUCCEEDED, "w1", RunHarness.Json("{}"), null));

        Assert.Single(d.Persist);
        Assert.Equal(TaskState.CANCELLED, h["a"]);
        Assert.Null(h.S.Tasks["a"].Result);
        Assert.Equal(RunStatus.CANCELLED, h.S.Status);
        Assert.Equal(TaskState.CANCELLED, h["b"]); // nothing released
        Assert.Single(h.S.Ignored);
    }

    [Fact]
    public void Ignored_events_are_journalled_up_to_the_bound_then_only_counted()
    {
        var h = RunHarness.Submitted(Dag3, "start:a@w1 cancel!");
        var journalled = h.Journal.Count;
        var late = new[] { "ok:a", "fail:b", "start:c", "ack:a", "ok:c" };
        const int sent = 300;

        for (var i = 0; i < sent; i++)
        {
            h.Advance();
            var d = h.Send(h.Parse(late[i % late.Length]));
            Assert.Equal(RejectionKind.Conflict, Assert.IsType<CommandRejected>(d.Reply).Kind);
            Assert.True(h.S.Ignored.Count <= WorkflowState.IgnoredKept);
        }

        // A worker repeating a late event cannot grow the journal past the bound, but every event is counted.
        Assert.Equal(journalled + WorkflowState.IgnoredKept, h.Journal.Count);
        Assert.Equal(sent, h.S.IgnoredTotal);
        Assert.Equal(WorkflowState.IgnoredKept, h.S.Ignored.Count);
        Assert.Equal(RunStatus.CANCELLED, h.S.Status);
        Assert.Equal(TaskState.CANCELLED, h["a"]);
    }
}
