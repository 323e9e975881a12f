using System.Diagnostics.Metrics;
using System.Text;
using System.Text.RegularExpressions;
using Akka.Actor;
using Deepline.Actors.Monitoring;
using OpenTelemetry.Metrics;
using OpenTelemetry.Resources;
using OpenTelemetry.Trace;

namespace Deepline.Node.Observability;

/// <summary>
/// OpenTelemetry metrics of one node: its own meter (<see cref="NodeMeter"/>), ASP.NET Core's and the runtime's,
/// exported at /metrics in Prometheus text by OpenTelemetry's exporter.
/// </summary>
public static partial class Telemetry
{
    public const string MetricsPath = "/metrics";

    /// <summary>OpenTelemetry's own variable: when set, traces and metrics also go to that OTLP collector.</summary>
    public const string OtlpEndpointVariable = "OTEL_EXPORTER_OTLP_ENDPOINT";

    /// <summary>
    /// Spans of the node's own work (<see cref="Deepline.Actors.Tracing.RunTracing"/>: the ask of a run on behalf of a
    /// request, under ASP.NET Core's request span, then the run, the pool, the task and the cancel).
    /// </summary>
    public static readonly System.Diagnostics.ActivitySource Source = Deepline.Actors.Tracing.RunTracing.Source;

    /// <summary>Whose instruments this node's provider keeps; set as soon as the host and the actor system exist.</summary>
    public sealed class NodeScope
    {
        public IMeterFactory? Factory { get; set; }

        /// <summary>
        /// A MeterListener sees every meter of a name in the process. With several nodes in one process (tests, benches)
        /// each would count the others' runs and requests, so a meter scoped to another node's actor system or another
        /// host's meter factory is dropped. Unscoped meters (the runtime's) describe the process and are kept.
        /// </summary>
        public bool IsForeign(Instrument instrument) => instrument.Meter.Scope switch
        {
            NodeScope s => !ReferenceEquals(s, this),
            ActorSystem => true,
            IMeterFactory f => !ReferenceEquals(f, Factory),
            _ => false,
        };
    }

    public static IServiceCollection AddDeeplineTelemetry(this IServiceCollection services, NodeScope scope, string instance, string? otlpEndpoint)
    {
        var otlp = !string.IsNullOrWhiteSpace(otlpEndpoint);
        var telemetry = services.AddOpenTelemetry()
            .ConfigureResource(r => r.AddService("deepline", serviceInstanceId: instance));
        // Traces only with a collector to send them to: without one, recording spans would be work for nobody.
        if (otlp)
        {
            telemetry.WithTracing(t => t
                .AddSource(Source.Name)
                .AddAspNetCoreInstrumentation(o => o.Filter = context =>
                    !context.Request.Path.StartsWithSegments(MetricsPath) && !context.Request.Path.StartsWithSegments("/health")
                    && !context.Request.Path.StartsWithSegments("/healthz"))
                .AddOtlpExporter());
            telemetry.WithMetrics(m => m.AddOtlpExporter());
        }
        telemetry
            .WithMetrics(m => m
                .AddMeter(NodeMeter.MeterName)
                .AddAspNetCoreInstrumentation()
                .AddRuntimeInstrumentation()
                .AddView(i => scope.IsForeign(i) ? MetricStreamConfiguration.Drop : null)
                .AddPrometheusExporter(o =>
                {
                    // Every scrape reads the current numbers: a cached answer would hide the cancel a test (or a person) just made.
                    o.ScrapeResponseCacheDurationMilliseconds = 0;
                    // otel_scope_name on every sample would change every series the dashboards and alerts select.
                    o.ScopeInfoEnabled = false;
                }));
        return services;
    }

    /// <summary>Role operator or admin: a Prometheus job sends an operator key as its bearer token.</summary>
    public static IEndpointRouteBuilder MapMetricsEndpoints(this IEndpointRouteBuilder app, MonitorMetrics monitor)
    {
        app.MapPrometheusScrapingEndpoint(MetricsPath, meterProvider: null, configureBranchedPipeline: branch => branch.Use(async (context, next) =>
        {
            await monitor.RefreshAsync(context.RequestServices, context.RequestAborted);
            // The body is rewritten below; a compressed one could not be.
            context.Request.Headers.AcceptEncoding = default;
            var original = context.Response.Body;
            using var buffer = new MemoryStream();
            context.Response.Body = buffer;
            try
            {
                await next(context);
            }
            finally
            {
                context.Response.Body = original;
            }
            var text = Encoding.UTF8.GetString(buffer.GetBuffer(), 0, (int)buffer.Length);
            var bytes = Encoding.UTF8.GetBytes(WithoutEmptyLabelSets(text));
            context.Response.ContentLength = bytes.Length;
            await original.WriteAsync(bytes, context.RequestAborted);
        }), optionsName: null)
            .RequireAuthorization(Security.Policies.Operate)
            .WithDisplayName("Prometheus metrics");
        return app;
    }

    /// <summary>
    /// With scope labels off the exporter writes an unlabelled sample as <c>name{} 1</c>. Prometheus reads both forms, but
    /// the node has always written <c>name 1</c>, and scripts that grep a sample (and our own tests) match that form.
    /// </summary>
    public static string WithoutEmptyLabelSets(string exposition) => EmptyLabelSet().Replace(exposition, "$1 ");

    [GeneratedRegex(@"(?m)^([A-Za-z_:][A-Za-z0-9_:]*)\{\} ")]
    private static partial Regex EmptyLabelSet();
}
