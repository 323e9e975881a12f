using Akka.Actor;
using Akka.Cluster;
using Deepline.Actors.Hosting;
using LinqToDB;
using LinqToDB.Data;

namespace Deepline.Node.Http;

public static class HealthEndpoints
{
    public static IEndpointRouteBuilder MapHealthEndpoints(this IEndpointRouteBuilder app)
    {
        app.MapGet("/health", async (ActorSystem system, PersistenceTarget persistence, CancellationToken ct) =>
        {
            var cluster = Cluster.Get(system);
            var self = cluster.SelfMember;
            var state = cluster.State;
            var (reachable, error) = await ProbeAsync(persistence, ct);
            var up = self.Status == MemberStatus.Up;
            var body = new Dictionary<string, object?>
            {
                ["status"] = up && reachable ? "ok" : "degraded",
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
            };
            return Results.Json(body, statusCode: up && reachable ? 200 : 503);
        });
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
