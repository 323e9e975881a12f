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
}
