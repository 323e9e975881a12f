using System.Net;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;

namespace Deepline.Node.Tests.Http;

/// <summary>The OpenAPI document describes every route the node maps; the reference page is served from the node.</summary>
public sealed class OpenApiTests(NodeFixture node) : IClassFixture<NodeFixture>
{
    private async Task<JsonObject> Document()
    {
        using var anonymous = new HttpClient { BaseAddress = node.Client.BaseAddress };
        var response = await anonymous.GetAsync("/openapi/v1.json");
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        return JsonNode.Parse(await response.Content.ReadAsStringAsync())!.AsObject();
    }

    [Fact]
    public async Task Every_mapped_route_is_in_the_document()
    {
        var paths = (await Document())["paths"]!.AsObject();
        var endpoints = node.App.Services.GetRequiredService<EndpointDataSource>().Endpoints.OfType<RouteEndpoint>().ToList();
        Assert.True(endpoints.Count > 20, $"only {endpoints.Count} endpoints found");
        var missing = new List<string>();
        var excluded = new List<string>();
        foreach (var e in endpoints)
        {
            var path = "/" + e.RoutePattern.RawText!.TrimStart('/');
            if (e.Metadata.GetMetadata<IExcludeFromDescriptionMetadata>() is { ExcludeFromDescription: true })
            {
                excluded.Add(path);
                continue;
            }
            // A pipeline mapped with Map (the Prometheus exporter, the health checks) answers any method; GET is its use.
            var methods = e.Metadata.GetMetadata<IHttpMethodMetadata>()?.HttpMethods ?? ["GET"];
            foreach (var method in methods)
                if (paths[path]?[method.ToLowerInvariant()] is null) missing.Add($"{method} {path}");
        }
        Assert.True(missing.Count == 0, "not in /openapi/v1.json: " + string.Join(", ", missing) + "\ndocumented: " + string.Join(", ", paths.Select(p => p.Key)));
        // Only pages are left out: the document itself, its reference page, the dashboard's page and its assets.
        Assert.All(excluded, p => Assert.Matches("^/(openapi|scalar)(/|$)|^/ui(/assets/.*)?$", p));
    }

    [Fact]
    public async Task Operations_name_their_responses_problems_and_request_bodies()
    {
        var document = await Document();
        var paths = document["paths"]!.AsObject();

        var submit = paths["/runs"]!["post"]!;
        Assert.NotNull(submit["requestBody"]!["content"]!["application/json"]);
        var responses = submit["responses"]!.AsObject();
        foreach (var status in new[] { "201", "400", "401", "403", "409", "413", "422", "429", "503" })
            Assert.True(responses.ContainsKey(status), $"POST /runs lacks {status}: {responses.ToJsonString()}");
        Assert.NotNull(responses["422"]!["content"]!["application/problem+json"]);

        Assert.True(paths["/runs/{runId}/cancel"]!["delete"]!["responses"]!.AsObject().ContainsKey("204"));
        // Each operation names its roles and its key; the anonymous ones do not.
        Assert.Contains("Roles: submitter, admin.", submit["description"]!.GetValue<string>());
        Assert.Contains("Roles: admin.", paths["/runs/{runId}/cancel"]!["delete"]!["description"]!.GetValue<string>());
        Assert.NotNull(submit["security"]);
        Assert.Null(paths["/health"]!["get"]!["security"]);
        Assert.True(paths["/health"]!["get"]!["responses"]!.AsObject().ContainsKey("503"));

        // Schemas carry the wire's snake_case names, byte for byte.
        var schemas = document["components"]!["schemas"]!.AsObject();
        Assert.Equal(["cancelled_at", "cancelled_tasks", "message", "reason", "run_id", "status"],
            schemas["CancelResponse"]!["properties"]!.AsObject().Select(p => p.Key).Order());
        var problem = schemas["ProblemDetails"]!["properties"]!.AsObject();
        Assert.True(problem.ContainsKey("field") && problem.ContainsKey("cycle"), problem.ToJsonString());
    }

    [Fact]
    public async Task The_reference_page_is_served_with_its_script_from_the_node_not_a_cdn()
    {
        using var anonymous = new HttpClient { BaseAddress = node.Client.BaseAddress };
        var page = await anonymous.GetAsync("/scalar/v1");
        Assert.Equal(HttpStatusCode.OK, page.StatusCode);
        var html = await page.Content.ReadAsStringAsync();
        var scripts = Regex.Matches(html, "<script[^>]*\\ssrc=\"([^\"]+)\"").Select(m => m.Groups[1].Value).ToList();
        Assert.NotEmpty(scripts);
        Assert.All(scripts, src => Assert.DoesNotMatch("^(https?:)?//", src));
        Assert.DoesNotContain("cdn.jsdelivr.net", html);
        Assert.DoesNotContain("fonts.scalar.com", html);
        foreach (var src in scripts)
        {
            var script = await anonymous.GetAsync(new Uri(new Uri(anonymous.BaseAddress!, "/scalar/v1"), src));
            Assert.Equal(HttpStatusCode.OK, script.StatusCode);
            Assert.Equal("nosniff", script.Headers.GetValues("X-Content-Type-Options").Single());
        }
        // On the dashboard's origin: no other site may frame it, nothing is sniffed.
        Assert.Equal("DENY", page.Headers.GetValues("X-Frame-Options").Single());
        Assert.Equal("nosniff", page.Headers.GetValues("X-Content-Type-Options").Single());
        Assert.Contains("frame-ancestors 'none'", page.Headers.GetValues("Content-Security-Policy").Single());
    }
}
