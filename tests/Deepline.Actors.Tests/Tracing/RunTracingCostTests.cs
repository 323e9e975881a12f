using System.Diagnostics;
using Deepline.Actors.Tracing;
using Deepline.Domain;

namespace Deepline.Actors.Tests.Tracing;

/// <summary>
/// Every span site of a run's hot path (each command, each dispatch, each task) allocates nothing when no listener is
/// attached: the node without an OTLP endpoint. No test in this assembly attaches a listener.
/// </summary>
public sealed class RunTracingCostTests
{
    private static readonly SubmitRun Submit = new(new RunSpec("cost-1", "wf", "team", [new TaskSpec("a", "noop", TaskSpec.DefaultPool, null, [])]));
    private static readonly ReportTaskEvent Succeeded = new("cost-1", "a", TaskEventKind.TASK_SUCCEEDED, "w-1", null, null);
    private static readonly IRunCommand[] Commands = [Submit, Succeeded];
    private static readonly TaskEventAccepted Accepted = new("cost-1", "a", TaskState.SUCCEEDED, RunStatus.SUCCEEDED);

    [Fact]
    public void Without_a_listener_the_span_sites_allocate_nothing()
    {
        Assert.False(RunTracing.Source.HasListeners());

        Assert.Equal(0, AllocatedByHotPath());
    }

    private static long AllocatedByHotPath()
    {
        HotPath(); // JIT and static initialisation first
        var before = GC.GetAllocatedBytesForCurrentThread();
        for (var i = 0; i < 1_000; i++) HotPath();
        return GC.GetAllocatedBytesForCurrentThread() - before;
    }

    private static void HotPath()
    {
        ActivityContext trace = default;
        foreach (var command in Commands)
        {
            var span = RunTracing.StartDecide(command, ref trace);
            _ = RunTracing.WithTrace(command, span);
            _ = RunTracing.Stamp(Accepted, span);
            using (RunTracing.Enter(span))
            {
                var dispatch = RunTracing.Start("pool dispatch", ActivityKind.Producer, null, trace);
                RunTracing.End(dispatch);
            }
        }
        var task = RunTracing.Start("task execution", ActivityKind.Consumer, null);
        RunTracing.Mark("task cancel", task, "cost-1", "a");
        RunTracing.End(task);
    }
}
