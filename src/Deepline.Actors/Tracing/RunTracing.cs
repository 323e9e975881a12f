using System.Diagnostics;
using Deepline.Domain;

namespace Deepline.Actors.Tracing;

/// <summary>
/// Spans of a run's way through the cluster: the ask of a request ("ask run"), the run's decision and journal write
/// ("run decide"), the hand-over to a pool ("pool dispatch"), the handler ("task execution") and a cancel reaching
/// it ("task cancel"). Actor messages do not carry .NET's ambient context, so the W3C <c>traceparent</c> travels in
/// the messages themselves (optional fields: null when nothing listens) and a run remembers the trace it was
/// submitted in, to parent what happens to it later (while its entity stays in memory).
/// <para>
/// Nothing here costs anything while no listener is attached: every entry returns null at
/// <see cref="ActivitySource.HasListeners"/> before it parses, allocates or tags, and an unsampled span is null too.
/// A span is never left as the thread's current activity: actors share dispatcher threads, and a span left current
/// would become the parent of another run's work.
/// </para>
/// </summary>
public static class RunTracing
{
    public const string SourceName = "Deepline";

    public const string RunIdTag = "deepline.run_id";
    public const string TaskIdTag = "deepline.task_id";
    public const string CommandTag = "deepline.command";

    public static readonly ActivitySource Source = new(SourceName);

    /// <summary>
    /// A span under <paramref name="traceParent"/> (W3C), else under the span of ours this thread is in
    /// (<see cref="Enter"/>), else under <paramref name="fallback"/>; it is not made current.
    /// </summary>
    public static Activity? Start(string name, ActivityKind kind, string? traceParent, ActivityContext fallback = default)
    {
        if (!Source.HasListeners()) return null;
        var parent = traceParent is not null && ActivityContext.TryParse(traceParent, null, isRemote: true, out var remote) ? remote
            : Activity.Current?.Source == Source ? Activity.Current.Context
            : fallback;
        var previous = Activity.Current;
        var span = Source.StartActivity(name, kind, parent);
        Activity.Current = previous;
        return span;
    }

    /// <summary>Ends a span without disturbing the thread's current activity (Activity.Stop would set it to the span's parent).</summary>
    public static void End(Activity? span, string? error = null)
    {
        if (span is null) return;
        if (error is not null) span.SetStatus(ActivityStatusCode.Error, error);
        var current = Activity.Current;
        span.Stop();
        Activity.Current = current;
    }

    /// <summary>Makes <paramref name="span"/> current for a block (so what the block starts nests under it), then ends it.</summary>
    public static Scope Enter(Activity? span) => new(span);

    public readonly struct Scope : IDisposable
    {
        private readonly Activity? _span;
        private readonly Activity? _previous;

        internal Scope(Activity? span)
        {
            _span = span;
            if (span is null) return;
            _previous = Activity.Current;
            Activity.Current = span;
        }

        public void Dispose()
        {
            if (_span is null) return;
            _span.Stop();
            Activity.Current = _previous;
        }
    }

    /// <summary>
    /// The run's span for one command, from its decision to its journal write. Queries and heartbeats get none (they
    /// change nothing worth a span, and heartbeats would drown the trace). <paramref name="runTrace"/> is the trace the
    /// run was submitted in, used when the command brings no context of its own; set here from the first span.
    /// </summary>
    public static Activity? StartDecide(IRunCommand command, ref ActivityContext runTrace)
    {
        if (!Source.HasListeners()) return null;
        string? traceParent;
        switch (command)
        {
            case SubmitRun s: traceParent = s.TraceParent; break;
            case CancelRun c: traceParent = c.TraceParent; break;
            case ReportTaskEvent { Event: not TaskEventKind.TASK_HEARTBEAT } r: traceParent = r.TraceParent; break;
            // A lease continues the run's own trace: the polling worker's task span joins the run it works for.
            case FinaliseCancel or CancelTimeoutElapsed or ResourcesGranted or LeaseTask: traceParent = null; break;
            default: return null;
        }
        var span = Start("run decide", ActivityKind.Internal, traceParent, runTrace);
        if (span is null) return null;
        span.SetTag(RunIdTag, command.RunId);
        span.SetTag(CommandTag, command.GetType().Name);
        if (command is ReportTaskEvent e)
        {
            span.SetTag(TaskIdTag, e.TaskId);
            span.SetTag("deepline.event", e.Event.ToString());
        }
        if (runTrace == default) runTrace = span.Context;
        return span;
    }

    /// <summary>The command with the span's context in it, for the commands that carry one; the command itself otherwise.</summary>
    public static IRunCommand WithTrace(IRunCommand command, Activity? span) => span is null
        ? command
        : command switch
        {
            SubmitRun s => s with { TraceParent = span.Id },
            CancelRun c => c with { TraceParent = span.Id },
            ReportTaskEvent r => r with { TraceParent = span.Id },
            _ => command,
        };

    /// <summary>A reply to an external worker's task event or lease names the run's span, so the worker can continue the trace.</summary>
    public static IDeeplineMessage? Stamp(IDeeplineMessage? reply, Activity? span) => (span, reply) switch
    {
        (null, _) => reply,
        (_, TaskEventAccepted a) => a with { TraceParent = span.Id },
        (_, TaskLeased l) => l with { TraceParent = span.Id },
        _ => reply,
    };

    /// <summary>A zero-length span under <paramref name="parent"/> marking a moment (a cancel reaching a running task).</summary>
    public static void Mark(string name, Activity? parent, string runId, string taskId)
    {
        if (parent is null) return;
        var span = Start(name, ActivityKind.Internal, null, parent.Context);
        if (span is null) return;
        span.SetTag(RunIdTag, runId);
        span.SetTag(TaskIdTag, taskId);
        End(span);
    }
}
