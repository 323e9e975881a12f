using System.Collections.Immutable;
using Deepline.Domain.Resources;
using Xunit;

namespace Deepline.Domain.Tests;

public class ResourceValidationTests
{
    private static readonly DateTimeOffset T0 = new(2026, 1, 1, 0, 0, 0, TimeSpan.Zero);

    private static TaskSpec Task(string id, string[] deps, params (string Name, int Count)[] resources) =>
        Dag.Task(id, deps) with { Resources = [.. resources.Select(r => new ResourceRequest(r.Name, r.Count))] };

    private static SubmissionError? Validate(params TaskSpec[] tasks) => DagValidator.Validate(Dag.Spec(tasks), Dag.Policy());

    [Fact]
    public void Resources_and_hold_until_downstream_are_accepted()
    {
        Assert.Null(Validate(
            Task("a", [], ("warehouse-db", 1)) with { HoldUntil = "c" },
            Task("b", ["a"], ("gpu", 2)),
            Task("c", ["b"], ("warehouse-db", 1))));
    }

    [Theory]
    [InlineData("bad name", 1, "tasks[0].resources[0].name")]
    [InlineData("", 1, "tasks[0].resources[0].name")]
    [InlineData("db", 0, "tasks[0].resources[0].count")]
    [InlineData("db", ResourceLimits.MaxCapacity + 1, "tasks[0].resources[0].count")]
    public void A_bad_resource_is_refused_naming_the_field(string name, int count, string field)
    {
        var error = Validate(Task("a", [], (name, count)));
        Assert.Equal((RejectionKind.Invalid, field), (error?.Kind, error?.Field));
    }

    [Fact]
    public void Hold_until_must_be_downstream_of_the_acquiring_task()
    {
        var upstream = Validate(Task("a", []), Task("b", ["a"], ("db", 1)) with { HoldUntil = "a" });
        Assert.Equal("tasks[1].hold_until", upstream?.Field);
        var unknown = Validate(Task("a", [], ("db", 1)) with { HoldUntil = "zz" });
        Assert.Equal("tasks[0].hold_until", unknown?.Field);
        var withoutResources = Validate(Task("a", []) with { HoldUntil = "a" });
        Assert.Equal("tasks[0].hold_until", withoutResources?.Field);
        Assert.Null(Validate(Task("a", [], ("db", 1)) with { HoldUntil = "a" }));
    }

    [Fact]
    public void Counts_of_one_resource_agree_within_a_run_and_priority_is_bounded()
    {
        Assert.Equal("tasks[1].resources[0].count", Validate(Task("a", [], ("db", 1)), Task("b", [], ("db", 2)))?.Field);
        Assert.Equal("tasks[0].resources[1].name", Validate(Task("a", [], ("db", 1), ("db", 1)))?.Field);
        var spec = Dag.Spec([Task("a", [], ("db", 1))]) with { Priority = ResourceLimits.MaxPriority + 1 };
        Assert.Equal("priority", DagValidator.Validate(spec, Dag.Policy())?.Field);
    }

    [Fact]
    public void A_run_keeps_a_resource_until_its_hold_until_task_ends_and_waits_visibly_until_granted()
    {
        var s = WorkflowState.Create(new RunSubmitted(Dag.Spec([
            Task("a", [], ("db", 1)) with { HoldUntil = "c" },
            Task("b", ["a"]),
            Task("c", ["b"])]), T0));

        Assert.Equal(["db"], s.Tasks["a"].WaitingFor.ToArray());
        Assert.False(s.Tasks["a"].Ready);
        var started = WorkflowDecider.Decide(s, new ReportTaskEvent(s.RunId, "a", TaskEventKind.TASK_STARTED, "w", null, null), T0, Dag.Policy());
        Assert.Equal(RejectionKind.Conflict, Assert.IsType<CommandRejected>(started.Reply).Kind);
        Assert.Equal(["a"], RunResources.Sync(s)!.Wants.Keys.ToArray());

        s = Apply(s, WorkflowDecider.Decide(s, new ResourcesGranted(s.RunId, ["a"], 0), T0, Dag.Policy()));
        Assert.True(s.Tasks["a"].Ready);
        Assert.Empty(RunResources.Sync(s)!.Wants);
        Assert.Equal(["db"], RunResources.Sync(s)!.Keep.ToArray());

        s = s.Apply(new TaskStarted("a", "w", T0)).Apply(new TaskSucceeded("a", null, T0));
        Assert.Equal(["db"], RunResources.Sync(s)!.Keep.ToArray());
        s = s.Apply(new TaskStarted("b", "w", T0)).Apply(new TaskSucceeded("b", null, T0));
        Assert.Equal(["db"], RunResources.Sync(s)!.Keep.ToArray());
        s = s.Apply(new TaskStarted("c", "w", T0)).Apply(new TaskSucceeded("c", null, T0));
        var last = RunResources.Sync(s)!;
        Assert.True(last.Terminal);
        Assert.Empty(last.Keep);
    }

    [Fact]
    public void A_run_without_resources_never_syncs()
    {
        Assert.Null(RunResources.Sync(WorkflowState.Create(new RunSubmitted(Dag.Spec(Dag.Diamond), T0))));
    }

    private static WorkflowState Apply(WorkflowState s, Decision d) => d.Persist.Aggregate(s, (x, e) => x.Apply(e));
}
