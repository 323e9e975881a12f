using System.Text.Json;
using Akka.Hosting;
using Deepline.Actors.Hosting;
using Deepline.Actors.Monitoring;
using Deepline.Node.Configuration;
using Deepline.Node.Http;
using Microsoft.AspNetCore.Diagnostics.HealthChecks;
using Microsoft.Extensions.Diagnostics.HealthChecks;

namespace Deepline.Node.Observability;

/// <summary>
/// Liveness and readiness for orchestrators (Kubernetes probes, load balancers) from ASP.NET Core's health checks.
/// <c>/healthz/live</c>: the actor system runs (Akka.Hosting's own liveness check); failing it means restart the process.
/// <c>/healthz/ready</c>: this node can serve runs: an Up cluster member (Akka.Cluster.Hosting's readiness check) whose
/// store answers and whose run requests are answered (<see cref="RunsHealthCheck"/>); Redis and the deadlock monitor are reported Degraded when away, never Unhealthy, because the node keeps
/// accepting and cancelling runs without them (cancels are journalled and mirrored when Redis is back; the monitor is
/// a singleton that may be on another node, or moving). <c>/health</c> stays the seed's diagnostic page.
/// </summary>
public static class HealthChecks
{
    public const string LivePath = "/healthz/live";
    public const string ReadyPath = "/healthz/ready";
    public const string LiveTag = "live";
    public const string ReadyTag = "ready";

    /// <summary>The Akka checks (registered on the actor system's builder) and ours.</summary>
    public static AkkaConfigurationBuilder WithDeeplineHealthChecks(this AkkaConfigurationBuilder akka)
    {
        akka.WithActorSystemLivenessCheck(tags: [LiveTag]);
        Akka.Cluster.Hosting.AkkaClusterHostingExtensions.WithAkkaClusterReadinessCheck(akka, tags: [ReadyTag]);
        return akka;
    }

    public static IServiceCollection AddDeeplineHealthChecks(this IServiceCollection services, DeeplineConfig config)
    {
        var checks = services.AddHealthChecks()
            .AddCheck<StoreHealthCheck>("store", HealthStatus.Unhealthy, [ReadyTag])
            .AddCheck<RunsHealthCheck>("runs", HealthStatus.Unhealthy, [ReadyTag])
            .AddCheck<MonitorHealthCheck>("deadlock_monitor", HealthStatus.Degraded, [ReadyTag]);
        if (config.Redis.Enabled) checks.AddCheck<RedisHealthCheck>("redis", HealthStatus.Degraded, [ReadyTag]);
        return services;
    }

    /// <summary>Anyone (probes send no key); the answers name checks and states, never a run.</summary>
    public static IEndpointRouteBuilder MapDeeplineHealthChecks(this IEndpointRouteBuilder app)
    {
        app.MapHealthChecks(LivePath, Options(LiveTag)).AllowAnonymous().WithDisplayName("Liveness");
        app.MapHealthChecks(ReadyPath, Options(ReadyTag)).AllowAnonymous().WithDisplayName("Readiness");
        return app;
    }

    private static HealthCheckOptions Options(string tag) => new()
    {
        Predicate = r => r.Tags.Contains(tag),
        // Degraded is still 200 (the default too, said here because it is the point): a probe must not take a node out
        // of service for a dependency it can serve without.
        ResultStatusCodes =
        {
            [HealthStatus.Healthy] = StatusCodes.Status200OK,
            [HealthStatus.Degraded] = StatusCodes.Status200OK,
            [HealthStatus.Unhealthy] = StatusCodes.Status503ServiceUnavailable,
        },
        ResponseWriter = WriteAsync,
    };

    /// <summary>{"status": "Healthy|Degraded|Unhealthy", "checks": {name: {status, description, duration_ms}}}.</summary>
    public static Task WriteAsync(HttpContext context, HealthReport report)
    {
        context.Response.ContentType = "application/json; charset=utf-8";
        var body = new HealthReportResponse(report.Status.ToString(),
            report.Entries.ToDictionary(e => e.Key, e => new HealthCheckEntryResponse(e.Value.Status.ToString(), e.Value.Description,
                Math.Round(e.Value.Duration.TotalMilliseconds, 1))));
        return JsonSerializer.SerializeAsync(context.Response.Body, body, HttpJson.Options, context.RequestAborted);
    }
}

/// <summary>The journal's database answers a query: without it nothing can be acknowledged.</summary>
public sealed class StoreHealthCheck(PersistenceTarget persistence, StoreProbe store) : IHealthCheck
{
    public async Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken ct = default)
    {
        var (reachable, error) = await store.CheckAsync(ct);
        return reachable
            ? HealthCheckResult.Healthy(persistence.Description)
            : new HealthCheckResult(context.Registration.FailureStatus, $"{persistence.Description} does not answer: {error}");
    }
}

/// <summary>
/// Run requests are answered: healthy while the latest one was; after a time-out, healthy again only once the region
/// answers a probe within 3 s (<see cref="RunServing"/>).
/// </summary>
public sealed class RunsHealthCheck(RunServing serving, RunsGateway gateway) : IHealthCheck
{
    public async Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken ct = default)
    {
        if (!serving.Failing || await gateway.ProbeAsync(ct)) return HealthCheckResult.Healthy("run requests are answered");
        return new HealthCheckResult(context.Registration.FailureStatus,
            $"run requests time out (the latest {serving.SinceTimeOut.TotalSeconds:0} s ago) and a probe of the run shards did not answer within " +
            $"{RunsGateway.ProbeTimeout.TotalSeconds:0} s: shards are recovering or the store does not take writes");
    }
}

/// <summary>The deadlock supervisor (a cluster singleton, possibly on another node) answers.</summary>
public sealed class MonitorHealthCheck(IRequiredActor<DeadlockSupervisor> supervisor) : IHealthCheck
{
    public async Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken ct = default)
    {
        var status = await ActorQueries.AskOrNullAsync<DeadlockSupervisor, MonitorStatus>(supervisor, GetMonitorStatus.Instance, TimeSpanFor(context), ct);
        return status is { Running: true }
            ? HealthCheckResult.Healthy("the deadlock supervisor answers")
            : new HealthCheckResult(context.Registration.FailureStatus,
                "the deadlock supervisor did not answer; runs are served but not scanned for being stuck (no node with monitor_role, or it is moving)");
    }

    private static TimeSpan TimeSpanFor(HealthCheckContext context) =>
        context.Registration.Timeout > TimeSpan.Zero && context.Registration.Timeout < TimeSpan.FromSeconds(2) ? context.Registration.Timeout : TimeSpan.FromSeconds(2);
}

/// <summary>The Redis mirror is connected (checked only when Redis is configured).</summary>
public sealed class RedisHealthCheck(NodeDependencies dependencies) : IHealthCheck
{
    public Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken ct = default) =>
        Task.FromResult(dependencies.Redis?.IsConnected == true
            ? HealthCheckResult.Healthy("connected")
            : new HealthCheckResult(context.Registration.FailureStatus, "not connected; cancels are journalled and mirrored to Redis when it is back"));
}
