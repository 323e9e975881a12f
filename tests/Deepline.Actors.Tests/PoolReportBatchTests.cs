using Akka.Actor;
using Deepline.Actors.Workers;
using Deepline.Domain;
using static Deepline.Actors.Tests.Specs;

namespace Deepline.Actors.Tests;

/// <summary>
/// A pool's reports that waited for its previous one to a run arrive together (<see cref="PoolReports"/>): the run
/// decides them in order, each on the state the ones before it leave, journals them in one write and answers each by
/// its id; what it answered is what a restarted node reads back.
/// </summary>
public sealed class PoolReportBatchTests : IDisposable
{
    private readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    private static PoolReport Report(long id, string task, TaskEventKind kind) =>
        new(new ReportTaskEvent("batch", task, kind, "pool-w", null, kind == TaskEventKind.TASK_FAILED ? "boom" : null), id);

    [Fact]
    public async Task Reports_decided_together_are_answered_each_on_the_state_before_it_and_all_are_durable()
    {
        await using (var node = await TestNode.StartAsync(_dir.Path))
        {
            await node.Ask<RunReply>(new SubmitRun(Run("batch",
                new TaskSpec("a", "x", "external", null, []), new TaskSpec("b", "x", "external", null, []), new TaskSpec("c", "x", "external", null, ["a"]))));
            var inbox = Inbox.Create(node.System);
            node.Region.Tell(new PoolReports("batch", [
                Report(1, "a", TaskEventKind.TASK_STARTED),
                Report(2, "b", TaskEventKind.TASK_STARTED),
                Report(3, "a", TaskEventKind.TASK_SUCCEEDED),
                Report(4, "a", TaskEventKind.TASK_STARTED), // a finished two reports earlier: refused
                Report(5, "c", TaskEventKind.TASK_STARTED), // queued by a's success in the same batch
            ]), inbox.Receiver);

            var answers = Enumerable.Range(0, 5).Select(_ => (PoolReportAnswer)inbox.Receive(TimeSpan.FromSeconds(10))).OrderBy(a => a.Id).ToList();
            Assert.Equal([1L, 2, 3, 4, 5], answers.Select(a => a.Id));
            Assert.All(answers.Where(a => a.Id != 4), a => Assert.NotNull(a.Accepted));
            Assert.Equal(RejectionKind.Conflict, answers.Single(a => a.Id == 4).Rejected?.Kind);
        }

        // Everything answered was journalled: a node started afresh reads the same run back.
        await using var restarted = await TestNode.StartAsync(_dir.Path);
        var run = await restarted.Run("batch");
        Assert.Equal((TaskState.SUCCEEDED, TaskState.RUNNING, TaskState.RUNNING),
            (run.Tasks["a"].State, run.Tasks["b"].State, run.Tasks["c"].State));
        Assert.Equal(1, run.Tasks["a"].Attempts);
    }
}
