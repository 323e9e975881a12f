using System.Text.Json;
using Deepline.Node.Configuration;
using Deepline.Tests.Shared;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Logging.Console;
using Microsoft.Extensions.Options;

namespace Deepline.Node.Tests.Http;

/// <summary>orchestrator.logging.console_format: json makes every console line one JSON object with the template's fields.</summary>
public sealed class ConsoleLoggingTests
{
    [Fact]
    public async Task A_json_console_line_is_one_object_with_the_run_id_as_a_field()
    {
        var dir = Directory.CreateTempSubdirectory("deepline-console-").FullName;
        try
        {
            var config = SingleNode.LoopbackConfig(dir, Loopback.FreePort()) with { Logging = LoggingConfig.ConsoleOnly with { ConsoleFormat = LoggingConfig.Json } };
            await using var app = DeeplineNode.Build(config);
            var options = app.Services.GetRequiredService<IOptionsMonitor<ConsoleLoggerOptions>>().CurrentValue;
            var formatter = app.Services.GetServices<ConsoleFormatter>().Single(f => f.Name == options.FormatterName);
            // What Akka's and ASP.NET Core's loggers hand a provider for a template with named fields.
            IReadOnlyList<KeyValuePair<string, object?>> state =
            [
                new("run_id", "workflow_abc123"), new("reason", "user requested cancellation"), new("{OriginalFormat}", "Workflow {run_id} cancelled: {reason}"),
            ];
            using var line = new StringWriter();

            formatter.Write(new LogEntry<IReadOnlyList<KeyValuePair<string, object?>>>(LogLevel.Warning, "Deepline.Actors.Workflows.WorkflowActor", default, state, null,
                (_, _) => "Workflow workflow_abc123 cancelled: user requested cancellation"), new LoggerExternalScopeProvider(), line);

            Assert.Equal(ConsoleFormatterNames.Json, options.FormatterName);
            var text = line.ToString().TrimEnd('\r', '\n');
            Assert.DoesNotContain('\n', text);
            using var json = JsonDocument.Parse(text);
            Assert.Equal("Workflow workflow_abc123 cancelled: user requested cancellation", json.RootElement.GetProperty("Message").GetString());
            Assert.Equal("workflow_abc123", json.RootElement.GetProperty("State").GetProperty("run_id").GetString());
            Assert.Equal("Warning", json.RootElement.GetProperty("LogLevel").GetString());
        }
        finally
        {
            try { Directory.Delete(dir, true); } catch (IOException) { }
        }
    }

    [Fact]
    public async Task Text_is_the_default()
    {
        var dir = Directory.CreateTempSubdirectory("deepline-console-").FullName;
        try
        {
            await using var app = DeeplineNode.Build(SingleNode.LoopbackConfig(dir, Loopback.FreePort()));

            Assert.NotEqual(ConsoleFormatterNames.Json, app.Services.GetRequiredService<IOptionsMonitor<ConsoleLoggerOptions>>().CurrentValue.FormatterName);
        }
        finally
        {
            try { Directory.Delete(dir, true); } catch (IOException) { }
        }
    }

    [Fact]
    public async Task A_real_nodes_seed_line_carries_its_fields_in_json_and_one_header_in_the_file()
    {
        var dir = Directory.CreateTempSubdirectory("deepline-console-").FullName;
        try
        {
            await using var node = new NodeProcess("json-log", Loopback.FreePort(), 0, dir, new Dictionary<string, string>
            {
                ["DEEPLINE_LOGGING_CONSOLE_FORMAT"] = "json",
                ["DEEPLINE_LOGGING_DIR"] = "logs",
            });
            node.Start();
            await node.AwaitHealthyAsync(TimeSpan.FromSeconds(60));
            Assert.Equal(System.Net.HttpStatusCode.Created,
                (await node.Client.PostJson("/runs", """{"run_id":"json-1","tasks":[{"task_id":"a","type":"hang"}]}""")).StatusCode);
            await node.Client.AwaitRun("json-1", r => r.Str("status") == "RUNNING", "the run runs");
            Assert.Equal(System.Net.HttpStatusCode.OK, (await node.Client.PutJson("/runs/json-1/cancel", """{"reason":"log test"}""")).StatusCode);

            // The seed's line, from the run's actor through Akka's logging: its fields are JSON properties.
            JsonElement line = default;
            await Eventually.Until(() => Task.FromResult(TryFind(node.StandardOutput, "Workflow json-1 cancelled: log test", out line)),
                TimeSpan.FromSeconds(15), "the seed's cancel line on the console");
            Assert.Equal("json-1", line.GetProperty("State").GetProperty("run_id").GetString());
            Assert.Equal("log test", line.GetProperty("State").GetProperty("reason").GetString());
            Assert.Equal("Warning", line.GetProperty("LogLevel").GetString());
            await node.StopAsync(TimeSpan.FromSeconds(30));

            // Akka's own header ([WARNING][time][thread][path]) is not repeated inside the file's line.
            var file = File.ReadAllLines(Path.Combine(dir, "logs", Deepline.Node.Logging.FileLogging.OrchestratorFile));
            var seed = Assert.Single(file, l => l.Contains("Workflow json-1 cancelled: log test", StringComparison.Ordinal));
            Assert.Contains(" WARN ", seed, StringComparison.Ordinal);
            Assert.DoesNotContain("[WARNING]", seed, StringComparison.Ordinal);
            Assert.DoesNotContain(file, l => l.Contains("][akka://", StringComparison.Ordinal));
        }
        finally
        {
            try { Directory.Delete(dir, true); } catch (IOException) { }
        }
    }

    private static bool TryFind(string output, string message, out JsonElement line)
    {
        foreach (var text in output.Split('\n', StringSplitOptions.RemoveEmptyEntries))
        {
            if (!text.TrimStart().StartsWith('{') || !text.Contains(message, StringComparison.Ordinal)) continue;
            line = JsonDocument.Parse(text).RootElement.Clone();
            if (line.GetProperty("Message").GetString() == message) return true;
        }
        line = default;
        return false;
    }
}
