using Deepline.Node.Configuration;

namespace Deepline.Node.Logging;

/// <summary>
/// The console's line format (<c>orchestrator.logging.console_format</c>): ASP.NET Core's text lines by default, or one
/// JSON object per line for log shippers, with the message template's fields (<c>run_id</c>, <c>task_id</c>, ...) as
/// properties of <c>State</c> instead of text to be parsed back.
/// </summary>
public static class ConsoleLogging
{
    public static void Add(ILoggingBuilder logging, LoggingConfig config)
    {
        if (config.ConsoleFormat != LoggingConfig.Json) return;
        logging.AddJsonConsole(o =>
        {
            o.IncludeScopes = true;
            o.UseUtcTimestamp = true;
            // The HTTP API's timestamp form, so that a line and an API answer about the same moment read alike.
            o.TimestampFormat = "yyyy-MM-dd'T'HH:mm:ss.fff'Z'";
        });
    }
}
