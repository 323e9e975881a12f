using System.Globalization;
using System.Threading.RateLimiting;
using Deepline.Node.Configuration;
using Deepline.Node.Http;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Authorization;
using Microsoft.AspNetCore.RateLimiting;

namespace Deepline.Node.Security;

/// <summary>Keys, roles and per-caller rate limits, wired from ASP.NET Core's own authentication, authorization and rate limiter.</summary>
public static class SecurityServices
{
    public static IServiceCollection AddDeeplineSecurity(this IServiceCollection services, DeeplineConfig config)
    {
        services.AddSingleton(sp => new KeyRing(config.Auth, sp.GetRequiredService<ILogger<KeyRing>>()));
        services.AddAuthentication(KeyAuthentication.SchemeName)
            .AddScheme<AuthenticationSchemeOptions, KeyAuthentication>(KeyAuthentication.SchemeName, null);
        services.AddAuthorization(Policies.Add);
        services.AddSingleton<IAuthorizationMiddlewareResultHandler, AuthorizationProblems>();

        var limits = config.Limits;
        if (limits.RatePerSecond > 0)
        {
            services.AddSingleton(sp => new SharedRateLimit(sp.GetRequiredService<Deepline.Actors.Hosting.NodeDependencies>(), limits.RatePerSecond, limits.RateBurst));
            services.AddRateLimiter(o =>
            {
                o.GlobalLimiter = PartitionedRateLimiter.Create<HttpContext, string>(context =>
                {
                    // /health and the /healthz probes are for load balancers and must answer even while a client floods the node.
                    if (context.Request.Path.StartsWithSegments("/health") || context.Request.Path.StartsWithSegments("/healthz"))
                        return RateLimitPartition.GetNoLimiter("health");
                    var caller = context.User.Identity?.IsAuthenticated == true && !context.User.IsOpen()
                        ? "key:" + context.User.Name()
                        : "addr:" + context.Connection.RemoteIpAddress;
                    var local = new TokenBucketRateLimiterOptions
                    {
                        TokenLimit = limits.RateBurst,
                        TokensPerPeriod = limits.RatePerSecond,
                        ReplenishmentPeriod = TimeSpan.FromSeconds(1),
                        QueueLimit = 0,
                        AutoReplenishment = true,
                    };
                    // With Redis, one bucket per caller for the whole cluster (SharedRateLimit); without, the node's own.
                    return config.Redis.Enabled
                        ? RateLimitPartition.Get(caller, key => context.RequestServices.GetRequiredService<SharedRateLimit>().For(key, new TokenBucketRateLimiter(local)))
                        : RateLimitPartition.GetTokenBucketLimiter(caller, _ => local);
                });
                o.OnRejected = async (context, ct) =>
                {
                    var retry = context.Lease.TryGetMetadata(MetadataName.RetryAfter, out var after) ? Math.Max(1, (int)Math.Ceiling(after.TotalSeconds)) : 1;
                    context.HttpContext.Response.Headers.RetryAfter = retry.ToString(CultureInfo.InvariantCulture);
                    await Problems.Of(429, "Too many requests",
                        $"this caller sent more than {limits.RatePerSecond} requests per second (burst {limits.RateBurst}){(config.Redis.Enabled ? " to the cluster" : "")}; retry after {retry} s (orchestrator.limits.rate_per_second)")
                        .ExecuteAsync(context.HttpContext);
                };
            });
        }
        return services;
    }

    public static WebApplication UseDeeplineSecurity(this WebApplication app)
    {
        // Load the keys now: a bad keys file stops the start, not the first request.
        app.Services.GetRequiredService<KeyRing>();
        app.UseAuthentication();
        if (app.Services.GetRequiredService<DeeplineConfig>().Limits.RatePerSecond > 0) app.UseRateLimiter();
        app.UseAuthorization();
        return app;
    }
}
