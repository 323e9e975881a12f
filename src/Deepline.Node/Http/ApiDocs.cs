using Deepline.Node.Observability;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.OpenApi;
using Microsoft.OpenApi;
using Scalar.AspNetCore;

namespace Deepline.Node.Http;

/// <summary>
/// The OpenAPI 3 document of the node's HTTP API (<c>/openapi/v1.json</c>) and its browsable reference (<c>/scalar/v1</c>).
/// Both are public reads, like /health: they describe the API every role already calls, name no run and hold no
/// secret, and a client generator or a person must be able to read them before having a key.
/// </summary>
public static class ApiDocs
{
    public const string DocumentName = "v1";
    public const string DocumentPattern = "/openapi/{documentName}.json";
    public const string ReferencePattern = "/scalar";

    /// <summary>Problems any endpoint behind a key may answer: no key, a key without the role, over the key's rate.</summary>
    private static readonly int[] AuthorisedProblems = [401, 403, 429];

    /// <summary>Tag, summary, and the problem status codes the endpoint answers (the key-related ones are added).</summary>
    public static TBuilder Documented<TBuilder>(this TBuilder builder, string tag, string summary, params int[] problems)
        where TBuilder : IEndpointConventionBuilder
    {
        builder.WithTags(tag).WithSummary(summary);
        foreach (var status in problems.Concat(AuthorisedProblems).Distinct().Order())
            builder.ProducesProblem(status);
        return builder;
    }

    public static IServiceCollection AddDeeplineOpenApi(this IServiceCollection services) =>
        services.AddOpenApi(DocumentName, o =>
        {
            o.AddDocumentTransformer(async (document, context, ct) =>
            {
                document.Info = new OpenApiInfo
                {
                    Title = "Deepline.Actors node",
                    Version = DocumentName,
                    Description = "Workflow runs, their cancellation, task events from external workers, the deadlock monitor, " +
                                  "health and cluster management. Field names are snake_case; errors are application/problem+json " +
                                  "with detail and, where one field is at fault, field. Send `Authorization: Bearer <key>`.",
                };
                document.Components ??= new OpenApiComponents();
                document.Components.SecuritySchemes ??= new Dictionary<string, IOpenApiSecurityScheme>();
                document.Components.SecuritySchemes["bearer"] = new OpenApiSecurityScheme
                {
                    Type = SecuritySchemeType.Http,
                    Scheme = "bearer",
                    Description = "A key from orchestrator.auth.keys_file; its role decides what it may call.",
                };
                // Endpoints that are middleware pipelines rather than route handlers are not seen by the generator.
                document.Paths ??= new OpenApiPaths();
                document.Paths[Telemetry.MetricsPath] = PathGet("metrics", "Prometheus text exposition of this node's metrics (operator, admin)",
                    "text/plain", new OpenApiSchema { Type = JsonSchemaType.String }, AuthorisedProblems);
                var report = await context.GetOrCreateSchemaAsync(typeof(HealthReportResponse), null, ct);
                document.Paths[HealthChecks.LivePath] = PathGet("health", "Liveness: the actor system runs (anyone)", "application/json", report, [503]);
                document.Paths[HealthChecks.ReadyPath] = PathGet("health",
                    "Readiness: an Up cluster member whose store answers; Degraded (still 200) without the monitor or Redis (anyone)",
                    "application/json", report, [503]);
            });
            // Each operation states the roles that may call it (the README's roles table, from the endpoint's policy) and
            // that it needs the bearer key; anonymous ones (health, the document) say neither.
            o.AddOperationTransformer((operation, context, ct) =>
            {
                var metadata = context.Description.ActionDescriptor.EndpointMetadata;
                if (metadata.OfType<Microsoft.AspNetCore.Authorization.IAllowAnonymous>().Any()) return Task.CompletedTask;
                var roles = metadata.OfType<Microsoft.AspNetCore.Authorization.IAuthorizeData>()
                    .Select(a => a.Policy).OfType<string>()
                    .SelectMany(p => Security.Policies.Roles.TryGetValue(p, out var r) ? r : [])
                    .Select(r => r.ToString()).Distinct().ToList();
                // An endpoint without a policy falls to the fallback policy: admin only.
                var line = $"Roles: {(roles.Count == 0 ? "admin" : string.Join(", ", roles))}.";
                operation.Description = string.IsNullOrEmpty(operation.Description) ? line : operation.Description + "\n\n" + line;
                operation.Security = [new OpenApiSecurityRequirement { [new OpenApiSecuritySchemeReference("bearer", context.Document)] = [] }];
                return Task.CompletedTask;
            });
            // Every problem the node writes may carry the field at fault and, for a dependency cycle, the cycle's path.
            o.AddSchemaTransformer((schema, context, ct) =>
            {
                if (context.JsonTypeInfo.Type == typeof(ProblemDetails))
                {
                    schema.Properties ??= new Dictionary<string, IOpenApiSchema>();
                    schema.Properties["field"] = new OpenApiSchema
                    {
                        Type = JsonSchemaType.String | JsonSchemaType.Null,
                        Description = "The request field at fault (e.g. tasks[2].depends_on), when one is.",
                    };
                    schema.Properties["cycle"] = new OpenApiSchema
                    {
                        Type = JsonSchemaType.Array | JsonSchemaType.Null,
                        Items = new OpenApiSchema { Type = JsonSchemaType.String },
                        Description = "A dependency cycle's path, first task repeated at the end (422 Dependency cycle).",
                    };
                }
                return Task.CompletedTask;
            });
        });

    /// <summary>
    /// The reference page is served on the dashboard's origin, so it gets the dashboard's framing and sniffing rules:
    /// another site must not frame it (clickjacking) and no answer is content-sniffed. Its CSP forbids framing, plugins,
    /// a foreign base URL and form posts; scripts and styles stay as Scalar's page needs them (its configuration is an
    /// inline script).
    /// </summary>
    public static IApplicationBuilder UseApiDocsHeaders(this IApplicationBuilder app) =>
        app.Use((ctx, next) =>
        {
            if (ctx.Request.Path.StartsWithSegments(ReferencePattern) || ctx.Request.Path.StartsWithSegments("/openapi"))
            {
                var h = ctx.Response.Headers;
                h.XContentTypeOptions = "nosniff";
                h.XFrameOptions = "DENY";
                h["Referrer-Policy"] = "no-referrer";
                h.ContentSecurityPolicy = "frame-ancestors 'none'; object-src 'none'; base-uri 'none'; form-action 'none'";
            }
            return next(ctx);
        });

    /// <summary>Anyone: see the class summary.</summary>
    public static IEndpointRouteBuilder MapDeeplineOpenApi(this IEndpointRouteBuilder app)
    {
        app.MapOpenApi(DocumentPattern).AllowAnonymous().ExcludeFromDescription();
        // The page loads the reference's script from this node (Scalar.AspNetCore embeds it), not from a CDN, and the
        // default web fonts (fetched from Scalar's CDN) are turned off: the page works on a network without the internet.
        // So are the parts that call Scalar's cloud (its AI agent, MCP, telemetry, the hosted client's button): a node's
        // API reference must not offer buttons that fail offline or send its description elsewhere.
        app.MapScalarApiReference(ReferencePattern, o => o
                .WithTitle("Deepline.Actors node API")
                .WithOpenApiRoutePattern(DocumentPattern)
                .DisableDefaultFonts()
                .DisableAgent()
                .DisableMcp()
                .DisableTelemetry()
                .HideClientButton())
            .AllowAnonymous()
            .ExcludeFromDescription();
        return app;
    }

    private static OpenApiPathItem PathGet(string tag, string summary, string contentType, IOpenApiSchema schema, IEnumerable<int> problems)
    {
        var responses = new OpenApiResponses
        {
            ["200"] = new OpenApiResponse
            {
                Description = "OK",
                Content = new Dictionary<string, OpenApiMediaType> { [contentType] = new OpenApiMediaType { Schema = schema } },
            },
        };
        foreach (var status in problems)
            responses[status.ToString(System.Globalization.CultureInfo.InvariantCulture)] = new OpenApiResponse
            {
                Description = status == 503 ? "Unhealthy" : "Problem",
                Content = new Dictionary<string, OpenApiMediaType> { [status == 503 ? "application/json" : "application/problem+json"] = new OpenApiMediaType() },
            };
        return new OpenApiPathItem
        {
            Operations = new Dictionary<HttpMethod, OpenApiOperation>
            {
                [HttpMethod.Get] = new OpenApiOperation { Summary = summary, Description = $"Tag: {tag}.", Responses = responses },
            },
        };
    }
}
