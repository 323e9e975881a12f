using Deepline.Node.Configuration;
using Serilog;
using Serilog.Core;
using Serilog.Events;
using Serilog.Extensions.Logging;

namespace Deepline.Node.Logging;

/// <summary>
/// The seed's log files, when <c>orchestrator.logging.dir</c> is set: <c>orchestrator.log</c> for the node and
/// <c>worker.log</c> for its worker pools, each rolled at <see cref="FileSizeLimitBytes"/> with <see cref="FilesKept"/>
/// kept, beside the console. Lines carry the seed's level names (INFO, WARN, ERROR, DEBUG), so its greps work as written.
/// </summary>
public static class FileLogging
{
    public const string OrchestratorFile = "orchestrator.log";
    public const string WorkerFile = "worker.log";
    public const long FileSizeLimitBytes = 10 * 1024 * 1024;
    public const int FilesKept = 10;

    private const string Template = "{Timestamp:yyyy-MM-dd HH:mm:ss.fff zzz} {SeedLevel,-5} {SourceContext}: {Message:lj}{NewLine}{Exception}";

    public static void Add(ILoggingBuilder logging, LoggingConfig config)
    {
        if (!config.Enabled) return;
        Directory.CreateDirectory(config.Dir);
        var logger = new LoggerConfiguration()
            .MinimumLevel.Debug()
            .Enrich.With<SeedLevel>()
            .WriteTo.Logger(l => l.Filter.ByExcluding(IsWorker).WriteTo.File(Path.Combine(config.Dir, OrchestratorFile),
                outputTemplate: Template, fileSizeLimitBytes: FileSizeLimitBytes, rollOnFileSizeLimit: true, retainedFileCountLimit: FilesKept))
            .WriteTo.Logger(l => l.Filter.ByIncludingOnly(IsWorker).WriteTo.File(Path.Combine(config.Dir, WorkerFile),
                outputTemplate: Template, fileSizeLimitBytes: FileSizeLimitBytes, rollOnFileSizeLimit: true, retainedFileCountLimit: FilesKept))
            .CreateLogger();
        logging.AddProvider(new SerilogLoggerProvider(logger, dispose: true));
        // The configured level in the files even where the console is set quieter (tests, a host that lowers its console).
        logging.AddFilter<SerilogLoggerProvider>(null, config.MinimumLevel);
    }

    /// <summary>
    /// The pools' own lines (task starts, cancels, aborts): the seed's worker.log. Akka's lines all have the category
    /// Akka.Actor.ActorSystem; the actor that wrote one is in its ActorPath property.
    /// </summary>
    private static bool IsWorker(LogEvent e) =>
        (e.Properties.TryGetValue("ActorPath", out var path) && path is ScalarValue { Value: string p }
            && p.Contains("/user/" + WorkerPoolActorPrefix, StringComparison.Ordinal))
        || (e.Properties.TryGetValue("SourceContext", out var source) && source is ScalarValue { Value: string s }
            && s.StartsWith("Deepline.Actors.Workers", StringComparison.Ordinal));

    /// <summary>How the hosting names pool actors (worker-pool-&lt;pool&gt;).</summary>
    private const string WorkerPoolActorPrefix = "worker-pool-";

    private sealed class SeedLevel : ILogEventEnricher
    {
        public void Enrich(LogEvent e, ILogEventPropertyFactory factory) =>
            e.AddPropertyIfAbsent(factory.CreateProperty("SeedLevel", e.Level switch
            {
                LogEventLevel.Verbose or LogEventLevel.Debug => "DEBUG",
                LogEventLevel.Information => "INFO",
                LogEventLevel.Warning => "WARN",
                LogEventLevel.Error => "ERROR",
                _ => "FATAL",
            }));
    }
}
