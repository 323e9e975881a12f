using System.Net;
using Deepline.Examples.CustomHandler;
using Deepline.Tests.Shared;

namespace Deepline.Node.Tests.Http;

/// <summary>examples/Deepline.Examples.CustomHandler works as its README says: a node with it runs word-count tasks.</summary>
public sealed class ExampleHandlerTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("deepline-example-").FullName;

    public void Dispose()
    {
        try { Directory.Delete(_dir, true); } catch (IOException) { }
    }

    [Fact]
    public async Task A_node_with_the_example_handler_runs_its_tasks_and_reports_its_failures_as_messages()
    {
        var port = Loopback.FreePort();
        await using var app = DeeplineNode.Build(SingleNode.LoopbackConfig(_dir, port), [new WordCountHandler()]);
        await app.StartAsync();
        using var client = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{port}") };

        Assert.Equal(HttpStatusCode.Created, (await client.PostJson("/runs",
            """{"run_id":"wc-1","tasks":[{"task_id":"count","type":"word-count","params":{"text":"one two\nthree"}}]}""")).StatusCode);
        var done = await client.AwaitRun("wc-1", r => r.Str("status") == "SUCCEEDED", "the word count runs");
        Assert.Equal(3, done["tasks"]![0]!["result"]!["words"]!.GetValue<int>());

        Assert.Equal(HttpStatusCode.Created, (await client.PostJson("/runs",
            """{"run_id":"wc-2","tasks":[{"task_id":"count","type":"word-count","params":{},"retry":{"max_attempts":1}}]}""")).StatusCode);
        var failed = (await client.AwaitRun("wc-2", r => r.Str("status") == "FAILED", "the bad input fails"))["tasks"]![0]!;
        Assert.Equal("word-count needs params {\"text\": \"...\"}", failed["error"]!.GetValue<string>());
        Assert.Equal("ArgumentException", failed["error_type"]!.GetValue<string>());
        await app.StopAsync();
    }
}
