using Akka.Actor;
using Akka.Hosting;
using Deepline.Actors.Resources;
using Deepline.Domain;
using Deepline.Domain.Resources;
using Deepline.Node.Security;
using System.Security.Claims;
using Microsoft.AspNetCore.Http.HttpResults;

namespace Deepline.Node.Http;

/// <summary>Named resources (issue 12): capacities, holders and waiters. Role operator or admin: they describe every client's runs.</summary>
public static class ResourceEndpoints
{
    public const int MaxListLimit = 500;
    public const int MaxGraphLimit = 200;
    private static readonly TimeSpan AskTimeout = TimeSpan.FromSeconds(10);

    public static IEndpointRouteBuilder MapResourceEndpoints(this IEndpointRouteBuilder app)
    {
        app.MapPut("/resources/{name}", async Task<Results<Ok<ResourceResponse>, ProblemHttpResult>> (string name, HttpRequest request,
            IRequiredActor<ResourceCoordinator> coordinator, CancellationToken ct) =>
        {
            if (!Identifiers.IsValid(name)) return Problems.BadRequest(Identifiers.Describe("name"), "name");
            var (body, error) = await HttpJson.ReadAsync<ResourceCapacityRequest>(request, ct);
            if (error is not null) return error;
            if (body!.Capacity is not (>= 1 and <= ResourceLimits.MaxCapacity))
                return Problems.Of(422, "Invalid resource", $"capacity must be an integer from 1 to {ResourceLimits.MaxCapacity}", "capacity");
            // Answered only once the capacity is journalled: a 200 is durable.
            return await AskAsync(coordinator, new DeclareResource(name, body.Capacity.Value), ct) switch
            {
                ResourceView view => TypedResults.Ok(ToResponse(view)),
                ResourceRefused refused => Problems.Of(422, "Invalid resource", refused.Detail, "name"),
                ResourceNotStored failed => Problems.Of(500, "Not stored", $"resource '{name}': {failed.Detail}; nothing was changed"),
                _ => Unavailable(),
            };
        }).RequireAuthorization(Policies.Operate)
            .Documented("resources", "Declare a resource's capacity (answered once journalled)", 400, 408, 413, 415, 422, 500, 503)
            .WithDescription($"Body: {{\"capacity\": 1..{ResourceLimits.MaxCapacity}}}. A larger capacity grants to waiters that now fit; a smaller one revokes nothing.");

        app.MapGet("/resources", async Task<Results<Ok<ResourceListResponse>, ProblemHttpResult>> (HttpRequest request,
            IRequiredActor<ResourceCoordinator> coordinator, CancellationToken ct) =>
        {
            if (!TryInt(request.Query["limit"], 100, out var limit) || limit is < 1 or > MaxListLimit)
                return Problems.BadRequest($"limit must be an integer from 1 to {MaxListLimit}", "limit");
            if (!TryInt(request.Query["offset"], 0, out var offset) || offset < 0)
                return Problems.BadRequest("offset must be an integer >= 0", "offset");
            return await AskAsync(coordinator, new ListResources(limit, offset), ct) is ResourceList list
                ? TypedResults.Ok(new ResourceListResponse(list.Total, [.. list.Resources.Select(ToResponse)]))
                : Unavailable();
        }).RequireAuthorization(Policies.Operate)
            .Documented("resources", "Resources by name, without holder and waiter lists", 400, 503)
            .WithDescription($"Query: limit (1..{MaxListLimit}, default 100), offset (>= 0, default 0).");

        app.MapGet("/resources/{name}", async Task<Results<Ok<ResourceResponse>, ProblemHttpResult>> (string name, HttpRequest request,
            IRequiredActor<ResourceCoordinator> coordinator, CancellationToken ct) =>
        {
            if (!Identifiers.IsValid(name)) return Problems.BadRequest(Identifiers.Describe("name"), "name");
            if (!TryInt(request.Query["limit"], MaxListLimit, out var limit) || limit is < 1 or > MaxListLimit)
                return Problems.BadRequest($"limit must be an integer from 1 to {MaxListLimit}", "limit");
            return await AskAsync(coordinator, new GetResource(name, limit), ct) is ResourceView view ? TypedResults.Ok(ToResponse(view)) : Unavailable();
        }).RequireAuthorization(Policies.Operate)
            .Documented("resources", "One resource with its holders and waiters", 400, 503)
            .WithDescription($"Query: limit (1..{MaxListLimit}, default {MaxListLimit}) on the holder and waiter lists.");

        app.MapGet("/deadlock/wait-for-graph", async Task<Results<Ok<WaitForGraphResponse>, ProblemHttpResult>> (HttpRequest request,
            IRequiredActor<ResourceCoordinator> coordinator, CancellationToken ct) =>
        {
            if (!TryInt(request.Query["limit"], 50, out var limit) || limit is < 1 or > MaxGraphLimit)
                return Problems.BadRequest($"limit must be an integer from 1 to {MaxGraphLimit}", "limit");
            return await AskAsync(coordinator, new GetWaitForGraph(limit), ct) is WaitForGraphView g
                ? TypedResults.Ok(new WaitForGraphResponse(g.WaitedResources, [.. g.Resources.Select(ToResponse)],
                    [.. g.Waits.Select(w => new WaitLineResponse(w.Waiter, w.Resource, w.Explanation))],
                    [.. g.OpenDeadlocks.Select(c => new ResourceCycleResponse([.. c.Cycle.Select(s => new CycleStepResponse(s.RunId, s.Holds, s.WaitsFor))], c.Explanation, c.Victim))]))
                : Unavailable();
        }).RequireAuthorization(Policies.Operate)
            .Documented("resources", "The wait-for graph now: resources waited for with holders, waiters and why, and the open resource deadlocks", 400, 503)
            .WithDescription($"Query: limit (1..{MaxGraphLimit}, default 50) on resources and on open deadlocks; at most 20 holders and waiters per resource.");

        MapClaims(app);
        return app;
    }

    /// <summary>
    /// External workers' claims (role worker or admin): the same grants, waits and wait-for graph as runs' tasks. A 200 is a
    /// journalled grant, a 202 a journalled wait (poll GET until granted); a claim whose wait closes a cycle of external
    /// workers alone may be refused (409 naming the cycle); a cycle with a run on it cancels a run instead. All of a
    /// worker's claims live under one lease (orchestrator.resources.claim_lease_s), renewed by repeating a claim or by
    /// PUT /claims/{worker_id}/lease; a worker that stops renewing loses its grants and waits.
    /// </summary>
    private static void MapClaims(IEndpointRouteBuilder app)
    {
        const string Route = "/resources/{name}/claims/{workerId}";
        app.MapPut(Route, async Task<IResult> (string name, string workerId, HttpRequest request, ClaimsPrincipal user,
            IRequiredActor<ResourceCoordinator> coordinator, CancellationToken ct) =>
        {
            if (Invalid(name, workerId) is { } bad) return bad;
            var (body, error) = await HttpJson.ReadAsync<ResourceClaimRequest>(request, ct);
            if (error is not null) return error;
            if (body!.Count is not (>= 1 and <= ResourceLimits.MaxCapacity))
                return Problems.Of(422, "Invalid claim", $"count must be an integer from 1 to {ResourceLimits.MaxCapacity}", "count");
            return ClaimAnswer(await AskAsync(coordinator, new ClaimResource(workerId, user.Name(), user.IsInRole(nameof(Role.admin)), name, body.Count.Value), ct), name, put: true);
        }).RequireAuthorization(Policies.ReportTasks)
            .Documented("resources", "An external worker claims a resource (200 granted, 202 waiting; answered once journalled)", 400, 404, 408, 409, 413, 415, 422, 500, 503)
            .WithDescription($"Body: {{\"count\": 1..{ResourceLimits.MaxCapacity}}}. Repeating a claim changes nothing but renews the lease of all the worker's claims (lease_expires_at). At most {ExternalClaims.MaxPerWorker} claims per worker.");

        app.MapGet(Route, async Task<IResult> (string name, string workerId, ClaimsPrincipal user,
            IRequiredActor<ResourceCoordinator> coordinator, CancellationToken ct) =>
        {
            if (Invalid(name, workerId) is { } bad) return bad;
            return ClaimAnswer(await AskAsync(coordinator, new GetClaim(workerId, user.Name(), user.IsInRole(nameof(Role.admin)), name), ct), name, put: false);
        }).RequireAuthorization(Policies.ReportTasks)
            .Documented("resources", "Where an external worker's claim stands: granted, waiting (with who holds it), refused (with the cycle) or none", 400, 404, 503);

        app.MapDelete(Route, async Task<IResult> (string name, string workerId, ClaimsPrincipal user,
            IRequiredActor<ResourceCoordinator> coordinator, CancellationToken ct) =>
        {
            if (Invalid(name, workerId) is { } bad) return bad;
            return await AskAsync(coordinator, new ReleaseClaim(workerId, user.Name(), user.IsInRole(nameof(Role.admin)), name), ct) switch
            {
                ClaimView => TypedResults.NoContent(),
                ClaimNotFound => Problems.Of(404, "Not found", $"worker '{workerId}' has no claims under this key"),
                ResourceNotStored failed => Problems.Of(500, "Not stored", $"resource '{name}': {failed.Detail}; nothing was released"),
                _ => Unavailable(),
            };
        }).RequireAuthorization(Policies.ReportTasks)
            .Documented("resources", "An external worker releases a resource or withdraws its wait (204 once journalled; repeating it is harmless)", 400, 404, 500, 503);

        // A heartbeat, not a change: answered from the coordinator's memory, never journalled (one write per heartbeat
        // of every worker would cost more than all the claims). No body is read.
        app.MapPut("/claims/{workerId}/lease", async Task<IResult> (string workerId, ClaimsPrincipal user,
            IRequiredActor<ResourceCoordinator> coordinator, CancellationToken ct) =>
        {
            if (!Identifiers.IsValid(workerId)) return Problems.BadRequest(Identifiers.Describe("worker_id"), "worker_id");
            return await AskAsync(coordinator, new RenewClaimLease(workerId, user.Name(), user.IsInRole(nameof(Role.admin))), ct) switch
            {
                ClaimLeaseView l => TypedResults.Ok(new ClaimLeaseResponse(l.WorkerId, l.Claims, l.Lease.TotalSeconds, l.ExpiresAt)),
                ClaimLeaseExpired x => Problems.Of(410, "Lease expired",
                    $"worker '{x.WorkerId}' did not renew its lease in time: at {x.ExpiredAt.UtcDateTime.ToString("yyyy-MM-ddTHH:mm:ss.fffZ", System.Globalization.CultureInfo.InvariantCulture)} its claims were released and its waits withdrawn; it holds nothing now, claim again"),
                ClaimNotFound n => Problems.Of(404, "Not found", $"worker '{n.WorkerId}' has no claims under this key (released, or made with another key)"),
                _ => Unavailable(),
            };
        }).RequireAuthorization(Policies.ReportTasks)
            .Documented("resources", "An external worker renews the lease of all its claims (grants and waits) at once", 400, 404, 410, 503)
            .Produces<ClaimLeaseResponse>(200)
            .WithDescription("No body. Answers the lease (lease_s) and when the claims are released unless renewed again (lease_expires_at); renew every lease_s/3. 404 when the worker has no claims under this key; 410 when its lease ran out (its claims were released: it holds nothing now).");
    }

    private static ProblemHttpResult? Invalid(string name, string workerId) =>
        !Identifiers.IsValid(name) ? Problems.BadRequest(Identifiers.Describe("name"), "name")
        : !Identifiers.IsValid(workerId) ? Problems.BadRequest(Identifiers.Describe("worker_id"), "worker_id")
        : null;

    private static IResult ClaimAnswer(IDeeplineMessage? reply, string name, bool put) => reply switch
    {
        ClaimView { Status: var st } when put && st.State == ClaimState.refused =>
            Problems.Of(409, "Claim refused", $"resource deadlock among external workers: {st.Explanation}; release what the worker holds before claiming again"),
        ClaimView { Status.State: ClaimState.waiting } v when put => TypedResults.Accepted((string?)null, ToResponse(v)),
        ClaimView v => TypedResults.Ok(ToResponse(v)),
        ClaimConflict c => Problems.Of(409, "Claim conflict", c.Detail, "count"),
        ClaimQuotaReached q => Problems.Of(429, "Claim quota reached", q.Detail),
        ClaimNotFound n => Problems.Of(404, "Not found", $"worker '{n.WorkerId}' has no claims under this key"),
        ResourceRefused r => Problems.Of(422, "Invalid claim", r.Detail, "name"),
        ResourceNotStored failed => Problems.Of(500, "Not stored", $"resource '{name}': {failed.Detail}; nothing was claimed"),
        _ => Unavailable(),
    };

    private static ResourceClaimResponse ToResponse(ClaimView v) =>
        new(v.Status.WorkerId, v.Status.Resource, v.Status.Count, v.Status.State.ToString(), v.Status.Explanation, v.LeaseExpiresAt);

    /// <summary>The dry-run scan's resource part: current deadlocks and the victim the policy would pick; null if the coordinator is silent.</summary>
    public static async Task<ResourceDeadlocksResponse?> ScanAsync(IRequiredActor<ResourceCoordinator> coordinator, int limit, CancellationToken ct) =>
        await AskAsync(coordinator, new ScanResourceCycles(limit), ct) is ResourceCycles cycles
            ? new ResourceDeadlocksResponse(cycles.Policy,
                [.. cycles.Cycles.Select(c => new ResourceCycleResponse([.. c.Cycle.Select(s => new CycleStepResponse(s.RunId, s.Holds, s.WaitsFor))], c.Explanation, c.Victim))],
                cycles.VictimsLeaving)
            : null;

    /// <summary>
    /// Who holds what the run's waiting tasks wait for (for GET /runs/{id}); empty when nothing waits or the coordinator is
    /// silent within a short time: the run's own answer is not held up by it.
    /// </summary>
    public static async Task<IReadOnlyList<ResourceWaitResponse>> ExplainWaitsAsync(IRequiredActor<ResourceCoordinator> coordinator, string runId, CancellationToken ct) =>
        await ActorQueries.AskOrNullAsync<ResourceCoordinator, IDeeplineMessage>(coordinator, new ExplainRunWaits(runId), TimeSpan.FromSeconds(2), ct) is RunWaitsExplained x
            ? [.. x.Waits.Select(ToResponse)]
            : [];

    public static ResourceWaitResponse ToResponse(WaitExplanation w) => new(w.Resource, w.Capacity, w.Used, w.Needs, w.HolderCount,
        [.. w.Holders.Select(h => new ResourceHolderResponse(h.Holder, h.Count, h.WaitsFor))], w.HoldersAllWait, w.Text);

    private static async Task<IDeeplineMessage?> AskAsync(IRequiredActor<ResourceCoordinator> coordinator, IDeeplineMessage message, CancellationToken ct) =>
        await ActorQueries.AskOrNullAsync<ResourceCoordinator, IDeeplineMessage>(coordinator, message, AskTimeout, ct);

    private static ProblemHttpResult Unavailable() =>
        Problems.Unavailable("the resource coordinator did not answer; it may be starting or moving to another node");

    private static ResourceResponse ToResponse(ResourceView v) => new(v.Name, v.Capacity, v.Declared, v.Used, v.HolderCount, v.WaiterCount,
        [.. v.Holders.Select(h => new ResourceHolderResponse(h.RunId, h.Count, h.WaitsFor))],
        [.. v.Waiters.Select(w => new ResourceWaiterResponse(w.RunId, w.Count, w.Since))]);

    private static bool TryInt(Microsoft.Extensions.Primitives.StringValues raw, int fallback, out int value)
    {
        if (raw.Count == 0 || string.IsNullOrEmpty(raw[0])) { value = fallback; return true; }
        return int.TryParse(raw[0], System.Globalization.NumberStyles.Integer, System.Globalization.CultureInfo.InvariantCulture, out value);
    }
}
