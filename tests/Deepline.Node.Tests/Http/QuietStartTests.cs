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

    [Fact]
    public async Task Redis_down_is_one_warning_line_with_the_retry_plan_and_no_stack_trace()
    {
        // Nothing listens on this port: the cancel mirror fails at once and keeps retrying while the node serves.
        await using var node = new NodeProcess("redis-down", Loopback.FreePort(), 0, _dataDir, new Dictionary<string, string>
        {
            ["DEEPLINE_LOGGING_DIR"] = "logs",
            ["DEEPLINE_REDIS"] = $"127.0.0.1:{Loopback.FreePort()},connectTimeout=200",
        });
        node.Start();
        await node.AwaitHealthyAsync(TimeSpan.FromSeconds(60));
        var log = Path.Combine(_dataDir, "logs", Deepline.Node.Logging.FileLogging.OrchestratorFile);
        await Eventually.Until(() => Task.FromResult(File.Exists(log) && Lines(log).Any(l => l.Contains("Redis unreachable", StringComparison.Ordinal))),
            TimeSpan.FromSeconds(30), "the mirror's warning");
        // A cancel accepted while Redis is down (it stays in the journal) and the retries that go on meanwhile.
        Assert.Equal(HttpStatusCode.Created, (await node.Client.PostJson("/runs", """{"run_id":"rd-1","tasks":[{"task_id":"a","type":"hang"}]}""")).StatusCode);
        await node.Client.AwaitRun("rd-1", r => r.Str("status") == "RUNNING", "the run runs");
        Assert.Equal(HttpStatusCode.OK, (await node.Client.PutJson("/runs/rd-1/cancel", """{"reason":"redis is down"}""")).StatusCode);
        await node.Client.AwaitRun("rd-1", r => r.Str("status") == "CANCELLED", "the run is cancelled without Redis");
        await node.StopAsync(TimeSpan.FromSeconds(30));

        // The seed's cancel line is a warning by contract; everything else loud must be the one Redis line.
        var loud = Lines(log).Where(l => (l.Contains(" WARN ", StringComparison.Ordinal) || l.Contains(" ERROR ", StringComparison.Ordinal))
                                         && !l.Contains("Workflow rd-1 cancelled: redis is down", StringComparison.Ordinal)).ToList();
        var warning = Assert.Single(loud);
        Assert.Contains("retrying with backoff", warning, StringComparison.Ordinal);
        Assert.DoesNotContain(Lines(log), l => l.TrimStart().StartsWith("at ", StringComparison.Ordinal));
    }

    [Theory]
    [InlineData("debug")]
    [InlineData("warning")]
    public async Task The_log_level_reaches_the_files_debug_shows_the_monitors_quiet_scans_warning_hides_info(string level)
    {
        var dir = Path.Combine(_dataDir, level);
        await using var node = new NodeProcess("level-" + level, Loopback.FreePort(), 0, dir, new Dictionary<string, string>
        {
            ["DEEPLINE_LOGGING_DIR"] = "logs",
            ["DEEPLINE_LOGGING_LEVEL"] = level,
            ["DEEPLINE_DEADLOCK_CHECK_INTERVAL"] = "1",
        });
        node.Start();
        await node.AwaitHealthyAsync(TimeSpan.FromSeconds(60));
        var log = Path.Combine(dir, "logs", Deepline.Node.Logging.FileLogging.OrchestratorFile);
        if (level == "debug")
        {
            await Eventually.Until(() => Task.FromResult(File.Exists(log) && Lines(log).Any(l => l.Contains(" DEBUG ") && l.Contains("No deadlocks detected in current scan"))),
                TimeSpan.FromSeconds(30), "the monitor's debug line in the file");
            return;
        }
        // Two scans later (the monitor scans every second here), then stopped: nothing below warning was written.
        Assert.Equal(HttpStatusCode.Created, (await node.Client.PostJson("/runs", """{"run_id":"lvl-1","tasks":[{"task_id":"a","type":"noop"}]}""")).StatusCode);
        await node.Client.AwaitRun("lvl-1", r => r.Str("status") == "SUCCEEDED", "a run completes");
        await node.StopAsync(TimeSpan.FromSeconds(30));
        var quiet = File.Exists(log) ? Lines(log).Where(l => l.Contains(" INFO ") || l.Contains(" DEBUG ")).ToList() : [];
        Assert.True(quiet.Count == 0, "below warning in the file:\n" + string.Join('\n', quiet.Take(10)));
    }

    // The node may still hold the file open for appends: read it shared.
    private static List<string> Lines(string path)
    {
        using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
        using var reader = new StreamReader(stream);
        var lines = new List<string>();
        while (reader.ReadLine() is { } line) lines.Add(line);
        return lines;
    }
}
