using Microsoft.AspNetCore.Http.HttpResults;
using System.Collections.Frozen;
using System.Globalization;
using System.Security.Claims;
using System.Security.Cryptography;
using System.Text;
using Akka.Hosting;
using Deepline.Actors.Monitoring;
using Deepline.Domain;
using Deepline.Node.Http;
using Deepline.Node.Security;
using Microsoft.AspNetCore.Authorization;
using Microsoft.AspNetCore.Http.Features;

namespace Deepline.Node.Ui;

/// <summary>
/// The dashboard at /ui: static assets embedded in this assembly (no CDN, works offline), the reads it needs that
/// the JSON API did not have (the run list, open incidents, who the caller is, the charts' samples) and its live
/// event stream. Every data endpoint has the same keys and roles as the rest of the API; the assets hold no data.
/// </summary>
public static class UiEndpoints
{
    public const int MaxRunsPage = 200;
    public const int MaxOffset = 1_000_000;
    public const int MaxWorkflowFilter = 256;

    /// <summary>
    /// No inline script or style and nothing from elsewhere: caller-supplied text (run ids, reasons, params) is put
    /// on the page as text only, and this policy is the second line should a bug ever let markup through.
    /// </summary>
    public const string ContentSecurityPolicy =
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; " +
        "base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

    private static readonly FrozenDictionary<string, (byte[] Body, string Type, string ETag)> Assets = LoadAssets();

    public static IServiceCollection AddDeeplineUi(this IServiceCollection services)
    {
        services.AddSingleton(sp => new UiRunQueries(sp.GetRequiredService<Deepline.Actors.Hosting.PersistenceTarget>()));
        services.AddSingleton<UiFeed>();
        services.AddHostedService(sp => sp.GetRequiredService<UiFeed>());
        return services;
    }

    public static IEndpointRouteBuilder MapDeeplineUi(this IEndpointRouteBuilder app)
    {
        // Anyone: the page and its scripts carry no data; every read they make needs a key.
        // Pages, not API: left out of the OpenAPI document.
        app.MapGet("/ui", (HttpContext ctx) => Asset(ctx, "index.html")).AllowAnonymous().ExcludeFromDescription();
        app.MapGet("/ui/assets/{name}", (string name, HttpContext ctx) => Asset(ctx, name)).AllowAnonymous().ExcludeFromDescription();

        // Any authenticated caller: what its key may do, so the page offers only that.
        var anyCaller = new AuthorizationPolicyBuilder(KeyAuthentication.SchemeName).RequireAuthenticatedUser().Build();
        app.MapGet("/auth/whoami", (ClaimsPrincipal user) =>
        {
            var roles = Enum.GetValues<Role>().Where(r => user.IsInRole(r.ToString())).ToArray();
            bool May(string policy) => Policies.Roles[policy].Any(roles.Contains);
            return Results.Ok(new
            {
                name = user.Name(),
                role = roles.Length == 0 ? null : roles.Max().ToString(),
                roles = roles.Select(r => r.ToString()),
                client_id = user.ClientScope(),
                open = user.IsOpen(),
                may = new
                {
                    read_runs = May(Policies.ReadRuns),
                    cancel = May(Policies.CancelRuns),
                    submit = May(Policies.Submit),
                    operate = May(Policies.Operate),
                    admin = May(Policies.Admin),
                },
            });
        }).RequireAuthorization(anyCaller)
            .Documented("dashboard", "The caller's name, roles, client and what its key may do");

        // Role submitter (its own client's runs only, whatever client_id asks for), operator or admin.
        app.MapGet("/runs", async Task<Results<Ok<RunListResponse>, ProblemHttpResult>> (HttpRequest request, ClaimsPrincipal user, UiRunQueries queries,
            CancellationToken ct) =>
        {
            var q = request.Query;
            if (!TryInt(q["limit"], 50, out var limit) || limit is < 1 or > MaxRunsPage)
                return Problems.BadRequest($"limit must be an integer from 1 to {MaxRunsPage}", "limit");
            if (!TryInt(q["offset"], 0, out var offset) || offset is < 0 or > MaxOffset)
                return Problems.BadRequest($"offset must be an integer from 0 to {MaxOffset}", "offset");
            var status = Text(q["status"]);
            if (status is not null && !UiRunQueries.IsStatus(status))
                return Problems.BadRequest($"status must be one of {string.Join(", ", Enum.GetNames<RunStatus>())}", "status");
            var client = Text(q["client_id"]);
            if (client is not null && !Identifiers.IsValid(client)) return Problems.BadRequest(Identifiers.Describe("client_id"), "client_id");
            var workflow = Text(q["workflow"]);
            if (workflow is not null && (workflow.Length > MaxWorkflowFilter || workflow.Any(char.IsControl)))
                return Problems.BadRequest($"workflow must be at most {MaxWorkflowFilter} characters without control characters", "workflow");
            var rows = await queries.ListAsync(new RunListFilter(status, user.ClientScope() ?? client, workflow, limit, offset), ct);
            return TypedResults.Ok(new RunListResponse([.. rows.Take(limit)], limit, offset, rows.Count > limit));
        }).RequireAuthorization(Policies.ReadRuns)
            .Documented("runs", "Runs, newest first, filtered by status, client and workflow (a submitter sees its own client's only)", 400)
            .WithDescription($"Query: status, client_id, workflow (substring, at most {MaxWorkflowFilter} characters), limit (1..{MaxRunsPage}, default 50), offset (0..{MaxOffset}).");

        // Role operator or admin: the monitor's open incidents, newest first.
        app.MapGet("/deadlock/incidents", async Task<Results<Ok<IncidentListResponse>, ProblemHttpResult>> (HttpRequest request,
            IRequiredActor<DeadlockSupervisor> supervisor, CancellationToken ct) =>
        {
            if (!TryInt(request.Query["limit"], 100, out var limit) || limit is < 1 or > MonitorEndpoints.MaxListLimit)
                return Problems.BadRequest($"limit must be an integer from 1 to {MonitorEndpoints.MaxListLimit}", "limit");
            var list = await ActorQueries.AskOrNullAsync<DeadlockSupervisor, IncidentList>(supervisor, new GetIncidents(limit), TimeSpan.FromSeconds(5), ct);
            if (list is null) return Problems.Unavailable("the deadlock monitor did not answer; it may be starting or moving to another node");
            return TypedResults.Ok(new IncidentListResponse(list.Open, [.. list.Newest.Select(i => new IncidentResponse(
                i.Detection.RunId, i.Detection.WorkflowName, i.Detection.Reason.ToString(), i.Detection.Explanation,
                i.Detection.StuckSince, i.Detection.LastUpdate, i.Detection.StuckTasks, i.DetectedAt, i.Alerted, i.Cancelled, i.AutoCancel))]));
        }).RequireAuthorization(Policies.Operate)
            .Documented("monitor", "The deadlock monitor's open incidents, newest first", 400, 503);

        // Role operator or admin: the samples behind the dashboard's charts (this node's, since it started).
        app.MapGet("/ui/api/timeline", (UiFeed feed) => TypedResults.Ok(new TimelineResponse(feed.SampleEvery.TotalSeconds, feed.Timeline())))
            .RequireAuthorization(Policies.Operate)
            .Documented("dashboard", "This node's samples behind the dashboard's charts (last hour)");

        // Role submitter (events of its own client's runs), operator or admin (every run, and the monitor's counters).
        app.MapGet("/ui/events", StreamAsync).RequireAuthorization(Policies.ReadRuns)
            .Documented("dashboard", "Server-sent events: run changes and cancels as they happen (a submitter's own client's runs only)", 429);
        return app;
    }

    private static async Task StreamAsync(HttpContext ctx, ClaimsPrincipal user, UiFeed feed, IHostApplicationLifetime lifetime,
        Deepline.Node.Security.KeyRing keys)
    {
        var operate = Policies.Roles[Policies.Operate].Any(r => user.IsInRole(r.ToString()));
        var caller = user.IsOpen() ? "addr:" + ctx.Connection.RemoteIpAddress : "key:" + user.Name();
        using var stream = feed.TryOpen(caller, user.ClientScope(), operate, out var refusal);
        if (stream is null)
        {
            ctx.Response.Headers.RetryAfter = "5";
            await Problems.Of(429, "Too many requests", refusal).ExecuteAsync(ctx);
            return;
        }
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(ctx.RequestAborted, lifetime.ApplicationStopping);
        var ct = stop.Token;
        // A stream outlives its authentication: a reload that revokes (or re-roles) its key ends it at once.
        void Recheck()
        {
            if (!keys.StillHolds(ctx.Request, user)) stop.Cancel();
        }
        keys.Reloaded += Recheck;
        using var unsubscribe = new Unsubscribe(() => keys.Reloaded -= Recheck);
        ctx.Response.ContentType = "text/event-stream; charset=utf-8";
        ctx.Response.Headers.CacheControl = "no-store";
        ctx.Response.Headers["X-Accel-Buffering"] = "no";
        ctx.Features.Get<IHttpResponseBodyFeature>()?.DisableBuffering();
        try
        {
            await WriteAsync(ctx, "hello", System.Text.Json.JsonSerializer.Serialize(new { client_id = user.ClientScope(), operate }), ct);
            while (!ct.IsCancellationRequested)
            {
                using var idle = CancellationTokenSource.CreateLinkedTokenSource(ct);
                idle.CancelAfter(TimeSpan.FromSeconds(15));
                try
                {
                    var e = await stream.Events.ReadAsync(idle.Token);
                    await WriteAsync(ctx, e.Name, e.Data, ct);
                }
                catch (OperationCanceledException) when (!ct.IsCancellationRequested)
                {
                    // A comment line keeps proxies and the browser from closing a quiet stream.
                    await ctx.Response.WriteAsync(": keep-alive\n\n", ct);
                    await ctx.Response.Body.FlushAsync(ct);
                }
            }
        }
        catch (OperationCanceledException)
        {
            // The page went away or the node is stopping: the stream just ends.
        }
    }

    private sealed class Unsubscribe(Action undo) : IDisposable
    {
        public void Dispose() => undo();
    }

    /// <summary>One event; the data is JSON on a single line, so it cannot end the event early or forge another.</summary>
    private static async Task WriteAsync(HttpContext ctx, string name, string json, CancellationToken ct)
    {
        await ctx.Response.WriteAsync($"event: {name}\ndata: {json}\n\n", ct);
        await ctx.Response.Body.FlushAsync(ct);
    }

    private static IResult Asset(HttpContext ctx, string name)
    {
        var h = ctx.Response.Headers;
        h.ContentSecurityPolicy = ContentSecurityPolicy;
        h.XContentTypeOptions = "nosniff";
        h["Referrer-Policy"] = "no-referrer";
        h.XFrameOptions = "DENY";
        if (!Assets.TryGetValue(name, out var asset)) return Problems.Of(404, "Not found", "no such dashboard asset");
        h.CacheControl = "no-cache";
        h.ETag = asset.ETag;
        if (ctx.Request.Headers.IfNoneMatch.ToString() == asset.ETag) return Results.StatusCode(304);
        return Results.Bytes(asset.Body, asset.Type);
    }

    private static FrozenDictionary<string, (byte[], string, string)> LoadAssets()
    {
        var assembly = typeof(UiEndpoints).Assembly;
        const string prefix = "ui/";
        var assets = new Dictionary<string, (byte[], string, string)>(StringComparer.Ordinal);
        foreach (var resource in assembly.GetManifestResourceNames().Where(n => n.StartsWith(prefix, StringComparison.Ordinal)))
        {
            using var s = assembly.GetManifestResourceStream(resource)!;
            using var m = new MemoryStream();
            s.CopyTo(m);
            var body = m.ToArray();
            var name = resource[prefix.Length..];
            var type = Path.GetExtension(name) switch
            {
                ".html" => "text/html; charset=utf-8",
                ".js" => "text/javascript; charset=utf-8",
                ".css" => "text/css; charset=utf-8",
                ".svg" => "image/svg+xml",
                _ => "application/octet-stream",
            };
            assets[name] = (body, type, "\"" + Convert.ToHexString(SHA256.HashData(body))[..16] + "\"");
        }
        return assets.ToFrozenDictionary(StringComparer.Ordinal);
    }

    private static string? Text(Microsoft.Extensions.Primitives.StringValues raw) => raw.Count == 0 || string.IsNullOrEmpty(raw[0]) ? null : raw[0];

    private static bool TryInt(Microsoft.Extensions.Primitives.StringValues raw, int fallback, out int value)
    {
        if (raw.Count == 0 || string.IsNullOrEmpty(raw[0])) { value = fallback; return true; }
        return int.TryParse(raw[0], NumberStyles.Integer, CultureInfo.InvariantCulture, out value);
    }
}
