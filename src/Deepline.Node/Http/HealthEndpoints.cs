using Akka.Actor;
using Akka.Cluster;
using Akka.Hosting;
using Deepline.Actors.Hosting;
using Deepline.Actors.Monitoring;
using Deepline.Node.Configuration;
using LinqToDB;
using LinqToDB.Data;

namespace Deepline.Node.Http;

public static class HealthEndpoints
{
    public static IEndpointRouteBuilder MapHealthEndpoints(this IEndpointRouteBuilder app)
    {
        app.MapGet("/health", async (ActorSystem system, PersistenceTarget persistence, DeeplineConfig config,
            IRequiredActor<DeadlockSupervisor> supervisor, CancellationToken ct) =>
        {
            var cluster = Cluster.Get(system);
            var self = cluster.SelfMember;
            var state = cluster.State;
            var (reachable, error) = await ProbeAsync(persistence, ct);
            var up = self.Status == MemberStatus.Up;
            var monitor = await MonitorEndpoints.StatusAsync(supervisor, ct);
            var healthy = up && reachable && monitor is { Running: true };
            var body = new Dictionary<string, object?>
            {
                ["status"] = healthy ? "ok" : "degraded",
                ["cluster"] = new Dictionary<string, object?>
                {
                    ["self"] = self.Address.ToString(),
                    ["status"] = self.Status.ToString(),
                    ["roles"] = self.Roles.ToArray(),
                    ["leader"] = state.Leader?.ToString(),
                    ["members"] = state.Members.Count,
                    ["unreachable"] = state.Unreachable.Count,
                },
                ["persistence"] = new Dictionary<string, object?>
                {
                    ["reachable"] = reachable,
                    ["store"] = persistence.Description,
                    ["error"] = error,
                },
                ["deadlock_monitor"] = MonitorEndpoints.HealthBlock(config, monitor),
            };
            return Results.Json(body, statusCode: healthy ? 200 : 503);
        }).AllowAnonymous(); // load balancers ask without a key; the body names no run
        return app;
    }

    private static async Task<(bool Reachable, string? Error)> ProbeAsync(PersistenceTarget target, CancellationToken ct)
    {
        try
        {
            await using var db = new DataConnection(new DataOptions().UseConnectionString(target.ProviderName, target.ConnectionString));
            await db.ExecuteAsync("SELECT 1", ct);
            return (true, null);
        }
        catch (Exception ex)
        {
            return (false, ex.GetType().Name + ": " + ex.Message);
        }
    }
}
