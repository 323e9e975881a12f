using Xunit;

namespace Deepline.Domain.Tests;

/// <summary>A caller's params/result deeper than the journal can hold are refused before anything is journalled.</summary>
public class JsonDepthTests
{
    private static string Nested(int depth) => new string('[', depth) + new string(']', depth);

    [Fact]
    public void Params_deeper_than_the_limit_are_refused_at_submission_naming_the_field()
    {
        var spec = Dag.Spec("a b") is var s
            ? s with { Tasks = s.Tasks.SetItem(1, s.Tasks[1] with { Params = RunHarness.Json(Nested(JsonLimits.MaxValueDepth + 1)) }) }
            : null!;

        var d = WorkflowDecider.Decide(null, new SubmitRun(spec), RunHarness.T0, Dag.Policy());

        var r = DecisionAssert.Rejected(d, RejectionKind.Invalid);
        Assert.Equal("tasks[1].params", r.Field);
    }

    [Fact]
    public void Params_at_the_limit_are_accepted()
    {
        var s = Dag.Spec("a");
        var spec = s with { Tasks = [s.Tasks[0] with { Params = RunHarness.Json(Nested(JsonLimits.MaxValueDepth)) }] };

        var d = WorkflowDecider.Decide(null, new SubmitRun(spec), RunHarness.T0, Dag.Policy());

        Assert.IsType<RunSubmitted>(Assert.Single(d.Persist));
    }

    [Fact]
    public void A_result_deeper_than_the_limit_is_refused_and_the_task_stays_running()
    {
        var h = RunHarness.Submitted("a", "start:a@w1");

        var d = h.Send(new ReportTaskEvent(h.RunId, "a", TaskEventKind.TASK_SUCCEEDED, "w1", RunHarness.Json(Nested(63)), null));

        Assert.Equal("result", DecisionAssert.Rejected(d, RejectionKind.Invalid).Field);
        Assert.Equal(TaskState.RUNNING, h["a"]);
    }

    [Fact]
    public void Depth_is_counted_without_recursion()
    {
        Assert.Equal(0, JsonLimits.Depth(RunHarness.Json("1")));
        Assert.Equal(3, JsonLimits.Depth(RunHarness.Json("""{"a":[1,{}]}""")));
        Assert.Equal(3, JsonLimits.Depth(RunHarness.Json("""[1,[2,[3]],[]]""")));
    }
}
