using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net;
using Deepline.Tests.Shared;

namespace Deepline.Node.Tests.Http;

/// <summary>A request's W3C trace context reaches the node's own span of the run it asks.</summary>
public sealed class TracingTests(NodeFixture node) : IClassFixture<NodeFixture>
{
    [Fact]
    public async Task The_ask_of_a_run_is_a_span_in_the_callers_trace()
    {
        var spans = new ConcurrentQueue<Activity>();
        using var listener = new ActivityListener
        {
            ShouldListenTo = s => s.Name is "Deepline.Actors" or "Microsoft.AspNetCore",
            Sample = (ref ActivityCreationOptions<ActivityContext> _) => ActivitySamplingResult.AllDataAndRecorded,
            ActivityStopped = spans.Enqueue,
        };
        ActivitySource.AddActivityListener(listener);
        var traceId = ActivityTraceId.CreateRandom();
        var request = new HttpRequestMessage(HttpMethod.Post, "/runs")
        {
            Content = Json.Body("""{"run_id":"traced-1","tasks":[{"task_id":"a","type":"noop"}]}"""),
        };
        request.Headers.Add("traceparent", $"00-{traceId}-{ActivitySpanId.CreateRandom()}-01");

        Assert.Equal(HttpStatusCode.Created, (await node.Client.SendAsync(request)).StatusCode);

        await Eventually.Until(() => Task.FromResult(spans.Any(a => a.OperationName == "ask run" && (string?)a.GetTagItem("deepline.run_id") == "traced-1")),
            TimeSpan.FromSeconds(5), "ask span recorded");
        var ask = spans.First(a => a.OperationName == "ask run" && (string?)a.GetTagItem("deepline.run_id") == "traced-1");
        Assert.Equal(traceId, ask.TraceId);
        Assert.Equal("SubmitRun", ask.GetTagItem("deepline.command"));
    }
}
