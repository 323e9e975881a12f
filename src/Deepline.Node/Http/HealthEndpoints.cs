using Akka.Actor;
using Akka.Cluster;
using Akka.Hosting;
using Deepline.Actors.Hosting;
using Deepline.Actors.Index;
using Deepline.Actors.Monitoring;
using Deepline.Node.Configuration;
using LinqToDB;
using LinqToDB.Data;

using Deepline.Node.Security;

namespace Deepline.Node.Http;

public static class HealthEndpoints
{
    /// <summary>
    /// Every dependency is reported as ok / degraded / down under <c>dependencies</c>; the answer is 503 only for what
    /// stops this node from serving (the store does not answer, run requests time out, or the node is not an Up cluster
    /// member). A Redis
    /// outage, a lagging or stalled run index, a monitor that is away or unreadable runs make the node "degraded",
    /// still 200: it keeps accepting and answering runs, and a load balancer must not take it out for that.
    /// </summary>
    public static IEndpointRouteBuilder MapHealthEndpoints(this IEndpointRouteBuilder app)
    {
        app.MapGet("/health", async (ActorSystem system, PersistenceTarget persistence, StoreProbe store, DeeplineConfig config,
            IRequiredActor<DeadlockSupervisor> supervisor, IRequiredActor<IntegrityWatch> integrity, RunIndexReadings index,
            RunIndexProgress progress, NodeDependencies dependencies, RunServing runServing, RunsGateway gateway, KeyRing keys,
            System.Security.Claims.ClaimsPrincipal user, CancellationToken ct) =>
        {
            var cluster = Cluster.Get(system);
            var self = cluster.SelfMember;
            var state = cluster.State;
            var (reachable, error) = await store.CheckAsync(ct);
            // The node's address, its store and the store's errors (which may name hosts) only to those who may read every run.
            var detailed = MayReadAllRuns(user);
            var up = self.Status == MemberStatus.Up;
            var answering = !runServing.Failing || await gateway.ProbeAsync(ct);
            var monitor = await MonitorEndpoints.StatusAsync(supervisor, ct);
            var unreadable = await IntegrityAsync(integrity, ct);
            var full = gateway.StoreFull;

            var deps = new Dictionary<string, Dictionary<string, object?>>
            {
                ["store"] = Dependency(
                    !reachable || full is not null ? DependencyState.down : unreadable is { UnreadableRuns: > 0 } ? DependencyState.degraded : DependencyState.ok,
                    !reachable ? (detailed ? error : "the store does not answer") : full is not null ? $"writes refused: {full}"
                    : unreadable is { UnreadableRuns: > 0 } u ? $"{u.UnreadableRuns} run(s) with an unreadable history" : null,
                    ("store", detailed ? persistence.Description : null),
                    ("unreadable_runs", unreadable?.UnreadableRuns ?? 0),
                    // Anyone may ask /health (load balancers do); run ids only go to those who may read every run.
                    ("unreadable", MayReadAllRuns(user)
                        ? unreadable?.Recent.Select(r => new UnreadableRunResponse(r.RunId, r.SequenceNr, r.Error, r.At)).ToArray() ?? []
                        : null)),
                ["runs"] = Dependency(answering ? DependencyState.ok : DependencyState.down,
                    answering ? null : $"run requests time out (the latest {runServing.SinceTimeOut.TotalSeconds:0} s ago) and the run shards did not answer a probe"),
                ["cluster"] = Dependency(
                    !up ? DependencyState.down : state.Unreachable.Count > 0 ? DependencyState.degraded : DependencyState.ok,
                    !up ? $"this node is {self.Status}, not Up" : state.Unreachable.Count > 0 ? $"{state.Unreachable.Count} member(s) unreachable" : null),
            };
            if (config.Redis.Enabled)
            {
                var connected = dependencies.Redis?.IsConnected ?? false;
                deps["redis"] = Dependency(connected ? DependencyState.ok : DependencyState.down,
                    connected ? null : "not connected; cancels are journalled and mirrored to Redis when it is back");
            }
            if (keys.Enabled) deps["keys"] = Dependency(keys.Problem is null ? DependencyState.ok : DependencyState.degraded, keys.Problem, ("count", keys.Count));
            deps["run_index"] = reachable ? await IndexAsync(index, progress, ct) : Dependency(DependencyState.down, "the store does not answer");
            deps["deadlock_monitor"] = Dependency(monitor is { Running: true } ? DependencyState.ok : DependencyState.down,
                monitor is { Running: true } ? null : "the deadlock supervisor did not answer; runs are not scanned for being stuck");

            var serving = up && reachable && answering;
            var allOk = deps.Values.All(b => (string?)b["state"] == nameof(DependencyState.ok));
            var body = new HealthResponse(
                serving && allOk ? "ok" : "degraded",
                new ClusterHealthResponse(detailed ? self.Address.ToString() : null, self.Status.ToString(), detailed ? [.. self.Roles] : [],
                    detailed ? state.Leader?.ToString() : null, state.Members.Count, state.Unreachable.Count),
                new PersistenceHealthResponse(reachable, detailed ? persistence.Description : null, detailed ? error : null),
                deps,
                MonitorEndpoints.HealthBlock(config, monitor));
            return TypedResults.Json(body, statusCode: serving ? 200 : 503);
        }).AllowAnonymous() // load balancers ask without a key; the body names no run
            .WithTags("health").WithSummary("The seed's diagnostic page: cluster, store, dependencies and the deadlock_monitor block (anyone)")
            .Produces<HealthResponse>(200).Produces<HealthResponse>(503);
        return app;
    }

    private static Dictionary<string, object?> Dependency(DependencyState state, string? detail, params (string Key, object? Value)[] extra)
    {
        var block = new Dictionary<string, object?> { ["state"] = state.ToString(), ["detail"] = detail };
        foreach (var (key, value) in extra) block[key] = value;
        return block;
    }

    private static async Task<Dictionary<string, object?>> IndexAsync(RunIndexReadings index, RunIndexProgress progress, CancellationToken ct)
    {
        try
        {
            var (offset, lag, quarantined) = await index.ReadAsync(ct);
            var (state, reason) = progress.Observe(offset, lag, DateTimeOffset.UtcNow);
            return Dependency(state, reason, ("lag", lag), ("offset", offset), ("quarantined", quarantined));
        }
        catch (Exception ex) when (ex is System.Data.Common.DbException or InvalidOperationException)
        {
            // The index tables are created by the projection: missing right after a first start.
            return Dependency(DependencyState.degraded, $"not readable yet: {ex.GetType().Name}: {ex.Message}");
        }
    }

    private static Task<IntegrityReport?> IntegrityAsync(IRequiredActor<IntegrityWatch> watch, CancellationToken ct) =>
        ActorQueries.AskOrNullAsync<IntegrityWatch, IntegrityReport>(watch, GetIntegrity.Instance, TimeSpan.FromSeconds(1), ct);

    private static bool MayReadAllRuns(System.Security.Claims.ClaimsPrincipal user) =>
        user.IsOpen() || user.IsInRole(Role.@operator.ToString()) || user.IsInRole(Role.admin.ToString());
}
