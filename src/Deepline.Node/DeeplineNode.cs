using System.Collections.Immutable;
using Akka.Configuration;
using Akka.Hosting;
using Deepline.Actors.Alerting;
using Deepline.Actors.Cancellation;
using Deepline.Actors.Hosting;
using Deepline.Actors.Index;
using Deepline.Actors.Monitoring;
using Deepline.Actors.Operations;
using Deepline.Actors.Resources;
using Deepline.Actors.Retention;
using Deepline.Domain.Resources;
using Deepline.Actors.Queues;
using Deepline.Actors.Workers;
using Deepline.Actors.Workflows;
using Deepline.Domain;
using Deepline.Node.Configuration;
using Deepline.Node.Http;
using Deepline.Node.Observability;
using Deepline.Node.Security;
using Deepline.Node.Ui;

namespace Deepline.Node;

/// <summary>Composes a node from its configuration: the web host, the actor system, the endpoints.</summary>
public static class DeeplineNode
{
    public const string SystemName = "deepline";

    /// <param name="onForeignStore">Called when the node leaves its cluster because its store is not the cluster's.</param>
    public static WebApplication Build(DeeplineConfig config, IEnumerable<ITaskHandler>? extraHandlers = null, Action<ILoggingBuilder>? logging = null,
        Action? onForeignStore = null)
    {
        // No reload of appsettings.json on change: its watcher follows the whole content root recursively, and the data
        // directory usually sits below it, so every journal write woke it (8 % of the node's CPU under load).
        var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions { Args = ["--hostBuilder:reloadConfigOnChange=false"] });
        builder.WebHost.UseUrls($"http://{config.Http.Host}:{config.Http.Port}");
        builder.WebHost.ConfigureKestrel(k =>
        {
            k.Limits.MaxRequestBodySize = config.Limits.MaxBodyBytes;
            k.Limits.RequestHeadersTimeout = TimeSpan.FromSeconds(Math.Min(30, config.Limits.BodyTimeoutS));
        });
        Logging.ConsoleLogging.Add(builder.Logging, config.Logging);
        // orchestrator.logging.level (appsettings.json sets no Default for it to fight with; ASP.NET Core's own category
        // stays at Warning there). A host's own logging callback, run next, may still lower or raise it.
        builder.Logging.SetMinimumLevel(config.Logging.MinimumLevel);
        logging?.Invoke(builder.Logging);
        Logging.FileLogging.Add(builder.Logging, config.Logging);

        EnsureArchiveWritable(config.RetentionArchiveDir);
        var persistence = config.Store.IsPostgreSql ? PostgresStore.Prepare(config.Store.Connection) : SqliteStore.Prepare(config.Data.Dir);
        var processes = new ProcessAllowlist([.. config.Workers.ProcessAllowedCommands]);
        var processHandler = new ProcessHandler(processes,
            config.Workers.ProcessUser.Length == 0 ? null : ProcessUser.Find(config.Workers.ProcessUser));
        var handlers = new TaskHandlerRegistry(TaskHandlerRegistry.BuiltIns.Where(h => h.Type != processHandler.Type)
            .Append(processHandler).Concat(extraHandlers ?? []));
        var pools = Pools(config, handlers);
        var heartbeatInterval = TimeSpan.FromSeconds(Math.Max(1, config.Deadlock.HeartbeatTimeoutS) / 3.0);
        var retry = config.Retry.ToSettings();
        var thresholds = new DetectorThresholds(config.Deadlock.PendingStaleS, config.Deadlock.WorkflowStaleS, config.Deadlock.HeartbeatTimeoutS) { Retry = retry };
        var dependencies = new NodeDependencies();
        var index = new RunIndexStore(persistence.CreateConnection, thresholds);
        var l = config.Limits;
        var workflow = new WorkflowSettings(
            new SubmissionPolicy(config.Deadlock.MaxDependencyDepth,
                pools.ToImmutableDictionary(p => p.Name, _ => handlers.Types.ToImmutableHashSet(StringComparer.Ordinal)))
            {
                Processes = processes,
                Retry = retry,
                Limits = new RunLimits(l.MaxTasksPerRun, l.MaxEdgesPerRun, l.MaxValueBytes, l.RunThresholdMinS, l.RunThresholdMaxS,
                    Math.Min(config.Deadlock.HeartbeatTimeoutS, l.RunThresholdMaxS)),
            },
            TimeSpan.FromSeconds(config.Deadlock.CancelTimeoutS),
            config.Runs.SnapshotEvery,
            TimeSpan.FromSeconds(config.Runs.PassivateAfterS),
            thresholds) { SingleNodeStore = !config.Store.IsPostgreSql };
        // With TLS the transport's scheme is akka.ssl.tcp; operators write seeds once, as akka.tcp, either way.
        var seeds = config.Remoting.TlsCertificate.Length == 0
            ? config.Remoting.SeedNodes
            : [.. config.Remoting.SeedNodes.Select(a => a.StartsWith("akka.tcp://", StringComparison.Ordinal) ? "akka.ssl.tcp://" + a["akka.tcp://".Length..] : a)];
        var storeRole = StoreIdentity.RoleOf(StoreIdentity.Ensure(persistence));
        var roles = ClusterHosting.NodeRoles(pools.Count > 0, config.Remoting.Roles, storeRole);
        var cluster = new NodeClusterSettings(config.Remoting.Host, config.Remoting.Port, seeds, roles)
        {
            DownUnreachableAfter = TimeSpan.FromSeconds(config.Remoting.DownUnreachableAfterS),
            Certificate = config.Remoting.TlsCertificate.Length == 0
                ? null
                : System.Security.Cryptography.X509Certificates.X509CertificateLoader.LoadPkcs12FromFile(
                    config.Remoting.TlsCertificate, config.Remoting.TlsCertificatePassword),
        };
        var poolSettings = pools.Select(p => new WorkerPoolSettings(p.Name, p.Slots, heartbeatInterval, TimeSpan.FromSeconds(5),
            CancelGrace: TimeSpan.FromSeconds(config.Workers.CancelGraceS))).ToList();
        var monitor = new MonitorSettings(thresholds, TimeSpan.FromSeconds(config.Deadlock.CheckIntervalS), config.Deadlock.CancelOnDeadlock,
            !string.IsNullOrEmpty(config.Deadlock.AlertWebhook));
        var resources = new ResourceSettings(config.Resources.DefaultCapacity, Enum.Parse<VictimPolicy>(config.Deadlock.Victim))
        {
            ClaimLease = TimeSpan.FromSeconds(config.Resources.ClaimLeaseS),
            MaxClaimsPerKey = config.Resources.MaxClaimsPerKey,
        };

        builder.Services.AddWebhookAlerting(string.IsNullOrEmpty(config.Deadlock.AlertWebhook)
            ? null
            : new WebhookSettings(new Uri(config.Deadlock.AlertWebhook), Enum.Parse<AlertFormat>(config.Deadlock.AlertFormat),
                string.IsNullOrEmpty(config.Deadlock.AlertRoutingKey) ? null : config.Deadlock.AlertRoutingKey,
                TimeSpan.FromSeconds(config.Deadlock.AlertTimeoutS), config.Deadlock.AlertRetries, TimeSpan.FromMilliseconds(500)));
        builder.Services.AddCancellationMirror(config.Redis.Enabled
            ? RedisMirrorSettings.For(config.Redis.Connection, TimeSpan.FromSeconds(config.Redis.RetentionS))
            : null);
        builder.Services.ConfigureHttpJsonOptions(o => HttpJson.Configure(o.SerializerOptions));
        builder.Services.AddProblemDetails();
        builder.Services.AddExceptionHandler<BadRequestProblems>();
        builder.Services.AddDeeplineSecurity(config);
        builder.Services.AddDeeplineUi();
        builder.Services.AddSingleton(config);
        builder.Services.AddDeeplineOptions(config);
        builder.Services.AddSingleton(persistence);
        builder.Services.AddSingleton(index);
        builder.Services.AddSingleton(dependencies);
        builder.Services.AddHostedService<StoreMarkerService>();
        builder.Services.AddSingleton(new RunIndexProgress(config.Integrity.IndexStalledAfter, config.Integrity.IndexLagDegradedEvents));
        var telemetryScope = new Observability.Telemetry.NodeScope();
        var monitorMetrics = new Observability.MonitorMetrics(config.Deadlock.MonitorRole);
        builder.Services.AddDeeplineHealthChecks(config);
        builder.Services.AddDeeplineOpenApi();
        builder.Services.AddDeeplineTelemetry(telemetryScope, $"{config.Http.Host}:{config.Http.Port}",
            Environment.GetEnvironmentVariable(Telemetry.OtlpEndpointVariable));
        builder.Services.AddSingleton<RunServing>();
        builder.Services.AddSingleton<StoreProbe>();
        builder.Services.AddSingleton<RunIndexReadings>();
        builder.Services.AddSingleton<RunHistoryReader>();
        builder.Services.AddSingleton(sp => new ClientQuotas(sp.GetRequiredService<Deepline.Actors.Index.RunIndexStore>(),
            config.Limits.MaxOpenRunsPerClient, config.Limits.MaxOpenTasksPerClient));
        builder.Services.AddSingleton(sp => new RunsGateway(sp.GetRequiredService<IRequiredActor<WorkflowRegion>>(), TimeSpan.FromSeconds(10),
            sp.GetRequiredService<RunServing>(), StoreSpace.For(sp.GetRequiredService<Akka.Actor.ActorSystem>())));
        builder.Services.AddAkka(SystemName, (akka, _) =>
        {
            akka.AddHocon(LoadHocon(), HoconAddMode.Prepend)
                .AddHocon($"akka.loglevel = {config.Logging.AkkaLevel}", HoconAddMode.Prepend)
                .ConfigureLoggers(l =>
                {
                    l.ClearLoggers();
                    l.AddLogger<Logging.AkkaLogBridge>();
                })
                .AddSetup(new NodeMeterSetup(telemetryScope))
                .WithDeeplineCluster(cluster)
                .WithDeeplinePersistence(persistence.ConnectionString, persistence.ProviderName)
                .WithTaskQueues()
                .WithWorkflowRuns(workflow, roles, config.Runs.WorkflowRole)
                .WithDeadlockMonitor(monitor, index, config.Deadlock.MonitorRole)
                .WithResourceCoordinator(resources, config.Deadlock.MonitorRole)
                .WithBulkCancels(index, config.Limits.BulkCancelRate, config.Deadlock.MonitorRole)
                .WithRetention(config.Retention, index, config.Deadlock.MonitorRole, config.RetentionArchiveDir)
                .WithStoreGuard(storeRole, persistence.Description, onForeignStore)
                .WithStoreLease(persistence, onForeignStore)
                .WithCancellationMirror(persistence.CreateConnection, dependencies)
                .WithWorkerPools(poolSettings, handlers)
                .WithDeeplineHealthChecks()
                .AddStartup((system, _) => monitorMetrics.Register(system));
        });

        var app = builder.Build();
        if (persistence.Notice is { } notice)
            app.Services.GetRequiredService<ILoggerFactory>().CreateLogger("Deepline.Store").LogWarning("{Notice}", notice);
        telemetryScope.Factory = app.Services.GetRequiredService<System.Diagnostics.Metrics.IMeterFactory>();
        app.UseExceptionHandler();
        app.UseStatusCodePages();
        app.UseDeeplineSecurity();
        app.UseApiDocsHeaders();
        app.MapRunEndpoints(config.Deadlock.HeartbeatTimeoutS);
        app.MapCancelEndpoints();
        app.MapRunHistoryEndpoints();
        app.MapBulkCancelEndpoints();
        app.MapStoreEndpoints();
        app.MapHealthEndpoints();
        app.MapDeeplineHealthChecks();
        app.MapMonitorEndpoints();
        app.MapResourceEndpoints();
        app.MapPoolEndpoints();
        app.MapMetricsEndpoints(monitorMetrics);
        app.MapManagementEndpoints();
        app.MapDeeplineOpenApi();
        app.MapDeeplineUi();
        return app;
    }

    private static IReadOnlyList<(string Name, int Slots)> Pools(DeeplineConfig config, TaskHandlerRegistry handlers)
    {
        if (!config.Workers.Enabled) return [];
        var pools = new List<(string, int)>();
        if (config.Workers.Slots > 0) pools.Add((TaskSpec.DefaultPool, config.Workers.Slots));
        pools.AddRange(config.Workers.Pools.Select(kv => (kv.Key, kv.Value)));
        return pools;
    }

    private static Config LoadHocon()
    {
        var path = Path.Combine(AppContext.BaseDirectory, "hocon", "deepline.hocon");
        return File.Exists(path) ? ConfigurationFactory.ParseString(File.ReadAllText(path)) : Config.Empty;
    }

    /// <summary>An archive directory the node cannot write would fail every sweep: refused at start, as bad configuration.</summary>
    private static void EnsureArchiveWritable(string dir)
    {
        if (string.IsNullOrEmpty(dir)) return;
        try
        {
            Directory.CreateDirectory(dir);
            var probe = Path.Combine(dir, $".write-check-{Environment.ProcessId}");
            File.WriteAllBytes(probe, []);
            File.Delete(probe);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or ArgumentException or NotSupportedException)
        {
            throw new ConfigException($"orchestrator.retention.archive_dir (DEEPLINE_RETENTION_ARCHIVE_DIR): cannot write to '{dir}': {e.Message}");
        }
    }
}
