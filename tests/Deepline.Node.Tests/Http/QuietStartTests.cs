using System.Net;
using Deepline.Tests.Shared;

namespace Deepline.Node.Tests.Http;

/// <summary>What an operator reads on a node's very first start: no warning, no stack trace (issue 28).</summary>
public sealed class QuietStartTests : IDisposable
{
    private readonly string _dataDir = Directory.CreateTempSubdirectory("deepline-quiet-").FullName;

    public void Dispose()
    {
        try { Directory.Delete(_dataDir, true); } catch (IOException) { }
    }

    [Fact]
    public async Task The_first_start_on_an_empty_directory_logs_no_warning()
    {
        await using var node = new NodeProcess("quiet", Loopback.FreePort(), 0, _dataDir, new Dictionary<string, string>
        {
            ["DEEPLINE_LOGGING_DIR"] = "logs",
        });
        node.Start();
        await node.AwaitHealthyAsync(TimeSpan.FromSeconds(60));
        // The journal's tables come with the first write: a run is submitted and read back through the run index.
        Assert.Equal(HttpStatusCode.Created, (await node.Client.PostJson("/runs", """{"run_id":"quiet-1","tasks":[{"task_id":"a","type":"noop"}]}""")).StatusCode);
        await node.Client.AwaitRun("quiet-1", r => r.Str("status") == "SUCCEEDED", "the run finishes");
        await Eventually.Until(async () => System.Text.Json.Nodes.JsonNode.Parse(await node.Client.GetStringAsync("/health"))!["status"]!.GetValue<string>() == "ok",
            TimeSpan.FromSeconds(30), "health ok: the run index caught up with the journal");
        await node.StopAsync(TimeSpan.FromSeconds(30));

        var log = Path.Combine(_dataDir, "logs", Deepline.Node.Logging.FileLogging.OrchestratorFile);
        Assert.True(File.Exists(log), $"{log} written");
        var loud = File.ReadLines(log).Where(l => l.Contains(" WARN ", StringComparison.Ordinal) || l.Contains(" ERROR ", StringComparison.Ordinal)).ToList();
        Assert.True(loud.Count == 0, "warnings or errors on a first start:\n" + string.Join('\n', loud.Take(20)));
        Assert.DoesNotContain("Exception", node.StandardError, StringComparison.Ordinal);
    }
}
