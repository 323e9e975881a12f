using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net;
using Deepline.Actors.Tracing;
using Deepline.Tests.Shared;

namespace Deepline.Node.Tests.Http;

/// <summary>A request's W3C trace context reaches the node's own spans of the run it asks, down to the task and its cancel.</summary>
public sealed class TracingTests(NodeFixture node) : IClassFixture<NodeFixture>
{
    [Fact]
    public async Task The_ask_of_a_run_is_a_span_in_the_callers_trace()
    {
        var traceId = ActivityTraceId.CreateRandom();
        using var spans = new SpanRecorder(traceId);
        var request = new HttpRequestMessage(HttpMethod.Post, "/runs")
        {
            Content = Json.Body("""{"run_id":"traced-1","tasks":[{"task_id":"a","type":"noop"}]}"""),
        };
        request.Headers.Add("traceparent", $"00-{traceId}-{ActivitySpanId.CreateRandom()}-01");

        Assert.Equal(HttpStatusCode.Created, (await node.Client.SendAsync(request)).StatusCode);

        var ask = await spans.Await("ask run", "traced-1");
        Assert.Equal(traceId, ask.TraceId);
        Assert.Equal("SubmitRun", ask.GetTagItem("deepline.command"));
    }

    [Fact]
    public async Task A_polled_task_carries_the_trace_its_run_was_submitted_in()
    {
        var submitTrace = ActivityTraceId.CreateRandom();
        using var spans = new SpanRecorder(submitTrace);
        var pool = "traced-" + Guid.NewGuid().ToString("N")[..8];
        var submit = new HttpRequestMessage(HttpMethod.Post, "/runs")
        {
            Content = Json.Body($$"""{"run_id":"traced-{{pool}}","tasks":[{"task_id":"a","type":"etl","pool":"{{pool}}"}]}"""),
        };
        submit.Headers.Add("traceparent", $"00-{submitTrace}-{ActivitySpanId.CreateRandom()}-01");
        Assert.Equal(HttpStatusCode.Created, (await node.Client.SendAsync(submit)).StatusCode);

        var polled = await (await node.Client.PostJson($"/pools/{pool}/tasks/poll", """{"worker_id":"tw","wait_s":10}""")).ReadObject();

        var traceparent = polled["tasks"]![0]!["traceparent"]!.GetValue<string>();
        Assert.Equal(submitTrace.ToString(), traceparent.Split('-')[1]);
    }

    [Fact]
    public async Task A_submitted_run_is_one_trace_from_the_request_to_the_task_and_its_cancel()
    {
        var submitTrace = ActivityTraceId.CreateRandom();
        var cancelTrace = ActivityTraceId.CreateRandom();
        using var spans = new SpanRecorder(submitTrace, cancelTrace);

        var submit = new HttpRequestMessage(HttpMethod.Post, "/runs")
        {
            Content = Json.Body("""{"run_id":"traced-2","tasks":[{"task_id":"h","type":"hang"}]}"""),
        };
        submit.Headers.Add("traceparent", $"00-{submitTrace}-{ActivitySpanId.CreateRandom()}-01");
        Assert.Equal(HttpStatusCode.Created, (await node.Client.SendAsync(submit)).StatusCode);
        await node.Client.AwaitRun("traced-2", r => r.TaskState("h") == "RUNNING", "task running");

        // submit (HTTP) -> ask run -> run decide (decision and journal write) -> pool dispatch -> task execution.
        var ask = await spans.Await("ask run", "traced-2");
        var decide = await spans.Await("run decide", "traced-2", s => (string?)s.GetTagItem(RunTracing.CommandTag) == "SubmitRun");
        var dispatch = await spans.Await("pool dispatch", "traced-2");
        Assert.Equal(ask.SpanId, decide.ParentSpanId);
        Assert.Equal(decide.SpanId, dispatch.ParentSpanId);
        Assert.All(new[] { ask, decide, dispatch }, s => Assert.Equal(submitTrace, s.TraceId));

        var cancel = new HttpRequestMessage(HttpMethod.Put, "/runs/traced-2/cancel") { Content = Json.Body("""{"reason":"traced stop"}""") };
        cancel.Headers.Add("traceparent", $"00-{cancelTrace}-{ActivitySpanId.CreateRandom()}-01");
        Assert.Equal(HttpStatusCode.OK, (await node.Client.SendAsync(cancel)).StatusCode);
        await node.Client.AwaitRun("traced-2", r => r.Str("status") == "CANCELLED", "run cancelled");

        // The handler's span ends when the cancel made it return; the cancel reaching it is a span inside it.
        var execution = await spans.Await("task execution", "traced-2");
        Assert.Equal(submitTrace, execution.TraceId);
        Assert.Equal(dispatch.SpanId, execution.ParentSpanId);
        Assert.Equal("TASK_CANCELLED", execution.GetTagItem("deepline.outcome"));
        var reached = await spans.Await("task cancel", "traced-2");
        Assert.Equal(execution.SpanId, reached.ParentSpanId);
        // The cancel itself is decided in the trace of the request that asked for it.
        var cancelDecide = await spans.Await("run decide", "traced-2", s => (string?)s.GetTagItem(RunTracing.CommandTag) == "CancelRun");
        Assert.Equal(cancelTrace, cancelDecide.TraceId);
    }

    /// <summary>
    /// Records the spans of the given traces only: a listener is process-wide, and sampling every span would put
    /// trace context into the answers other tests compare.
    /// </summary>
    private sealed class SpanRecorder : IDisposable
    {
        private readonly ConcurrentQueue<Activity> _spans = new();
        private readonly ActivityListener _listener;

        public SpanRecorder(params ActivityTraceId[] traces)
        {
            _listener = new ActivityListener
            {
                ShouldListenTo = s => s.Name is RunTracing.SourceName or "Microsoft.AspNetCore",
                Sample = (ref ActivityCreationOptions<ActivityContext> o) =>
                    traces.Contains(o.Parent.TraceId) ? ActivitySamplingResult.AllDataAndRecorded : ActivitySamplingResult.None,
                ActivityStopped = _spans.Enqueue,
            };
            ActivitySource.AddActivityListener(_listener);
        }

        public async Task<Activity> Await(string name, string runId, Func<Activity, bool>? also = null)
        {
            bool Match(Activity a) => a.OperationName == name && (string?)a.GetTagItem(RunTracing.RunIdTag) == runId && (also?.Invoke(a) ?? true);
            await Eventually.Until(() => Task.FromResult(_spans.Any(Match)), TimeSpan.FromSeconds(10), $"span '{name}' of {runId}");
            return _spans.First(Match);
        }

        public void Dispose() => _listener.Dispose();
    }
}
