using System.Net;
using Deepline.Node.Tests.Http;

namespace Deepline.Node.Tests.Security;

/// <summary>Every endpoint against every role: allowed means the request got past authorization (any status but 401/403).</summary>
public sealed class RoleMatrixTests(SecuredNode node) : IClassFixture<SecuredNode>, IAsyncLifetime
{
    private const string Run = "matrix-run";

    public static readonly string[] Roles = ["none", "submitter", "worker", "operator", "admin"];

    private static string? KeyOf(string role) => role switch
    {
        "submitter" => SecuredNode.TeamA,
        "worker" => SecuredNode.Worker,
        "operator" => SecuredNode.Operator,
        "admin" => SecuredNode.Admin,
        _ => null,
    };

    // method, path, body, roles allowed ("health" is open to all, even without a key)
    public static TheoryData<string, string, string?, string> Endpoints => new()
    {
        { "POST", "/runs", """{"tasks":[{"task_id":"a","type":"x","pool":"cpu"}]}""", "submitter admin" },
        { "GET", $"/runs/{Run}", null, "submitter operator admin" },
        { "POST", $"/runs/{Run}/tasks/t/events", """{"event":"TASK_HEARTBEAT","worker_id":"w"}""", "worker admin" },
        { "GET", $"/runs/{Run}/cancel", null, "submitter operator admin" },
        { "GET", $"/runs/{Run}/history", null, "submitter operator admin" },
        { "PUT", "/runs/matrix-missing/cancel", """{"reason":"matrix"}""", "submitter operator admin" },
        { "DELETE", "/runs/matrix-missing/cancel", null, "admin" },
        { "GET", "/runs/cancelled", null, "submitter operator admin" },
        { "POST", "/runs/cancel", """{"filter":{"run_ids":["matrix-missing"]},"dry_run":true}""", "submitter operator admin" },
        { "GET", "/operations/op-matrix-missing", null, "submitter operator admin" },
        { "POST", "/deadlock/scan", """{"limit":1}""", "operator admin" },
        { "GET", "/stats", null, "operator admin" },
        { "GET", "/metrics", null, "operator admin" },
        { "GET", "/cluster/members", null, "operator admin" },
        { "GET", "/cluster/status", null, "operator admin" },
        { "GET", "/cluster/leader", null, "operator admin" },
        { "GET", "/cluster/sharding/regions", null, "operator admin" },
        { "GET", "/cluster/sharding/workflow/region-stats", null, "operator admin" },
        { "GET", "/cluster/sharding/workflow/shard-stats", null, "operator admin" },
        { "GET", "/actors/hierarchy", null, "operator admin" },
        { "GET", "/store/backup", null, "admin" },
        // Admin requests here are bad input on purpose (400), so that the node under test stays in its cluster.
        { "POST", "/cluster/leave", """{"address":"not-an-address"}""", "admin" },
        { "POST", "/cluster/down", """{"address":"not-an-address"}""", "admin" },
        { "POST", "/cluster/join", """{"address":"not-an-address"}""", "admin" },
        { "POST", "/cluster/down-unreachable", null, "admin" },
        { "GET", "/resources/matrix-res", null, "operator admin" },
        { "GET", "/deadlock/wait-for-graph", null, "operator admin" },
        { "PUT", "/resources/matrix-res/claims/matrix-worker", """{"count":1}""", "worker admin" },
        { "GET", "/resources/matrix-res/claims/matrix-worker", null, "worker admin" },
        { "DELETE", "/resources/matrix-res/claims/matrix-worker", null, "worker admin" },
        { "PUT", "/claims/matrix-worker/lease", null, "worker admin" },
        { "GET", "/health", null, "none submitter worker operator admin" },
    };

    public async Task InitializeAsync()
    {
        using var admin = node.Client(SecuredNode.TeamA);
        var response = await admin.PostJson("/runs", $$"""{"run_id":"{{Run}}","tasks":[{"task_id":"t","type":"x","pool":"cpu"}]}""");
        Assert.True(response.StatusCode is HttpStatusCode.Created or HttpStatusCode.Conflict, response.StatusCode.ToString());
    }

    public Task DisposeAsync() => Task.CompletedTask;

    [Theory]
    [MemberData(nameof(Endpoints))]
    public async Task Each_role_reaches_exactly_the_endpoints_its_table_row_names(string method, string path, string? body, string allowed)
    {
        var outcomes = new List<string>();
        foreach (var role in Roles)
        {
            using var client = node.Client(KeyOf(role));
            using var request = new HttpRequestMessage(new HttpMethod(method), path);
            if (body is not null) request.Content = Json.Body(body);
            using var response = await client.SendAsync(request);
            var status = (int)response.StatusCode;
            var expectAllowed = allowed.Split(' ').Contains(role);
            var expected = expectAllowed ? "allowed" : role == "none" ? "401" : "403";
            var actual = status is 401 or 403 ? status.ToString() : "allowed";
            if (expected != actual) outcomes.Add($"{role}: expected {expected}, got {status}");
            if (status is 401 or 403)
                Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        }
        Assert.Empty(outcomes);
    }

    [Fact]
    public async Task A_key_that_is_not_in_the_file_is_401_and_a_missing_role_is_403_naming_the_role()
    {
        using var stranger = node.Client("not-a-key-anyone-was-given");
        var unknown = await stranger.GetAsync($"/runs/{Run}");
        Assert.Equal(HttpStatusCode.Unauthorized, unknown.StatusCode);
        Assert.Contains("not valid", (await unknown.ReadObject()).Str("detail"));

        using var worker = node.Client(SecuredNode.Worker);
        var forbidden = await worker.PostJson("/runs", """{"tasks":[{"task_id":"a","type":"x","pool":"cpu"}]}""");
        Assert.Equal(HttpStatusCode.Forbidden, forbidden.StatusCode);
        Assert.Equal("the key 'any-worker' may not call this endpoint: it needs role submitter or admin", (await forbidden.ReadObject()).Str("detail"));

        using var anonymous = node.Client(null);
        var missing = await anonymous.GetAsync("/stats");
        Assert.Equal(HttpStatusCode.Unauthorized, missing.StatusCode);
        Assert.Equal("Authorization", (await missing.ReadObject()).Str("field"));
    }

    [Fact]
    public async Task The_admin_header_key_still_works_as_an_admin_key()
    {
        using var client = node.Client(null);
        using var request = new HttpRequestMessage(HttpMethod.Get, "/cluster/members");
        request.Headers.Add(Deepline.Node.Security.KeyAuthentication.AdminHeader, SecuredNode.HeaderAdminKey);
        Assert.Equal(HttpStatusCode.OK, (await client.SendAsync(request)).StatusCode);
    }

    [Fact]
    public async Task Health_is_open_and_names_no_run()
    {
        using var anonymous = node.Client(null);
        var text = await (await anonymous.GetAsync("/health")).Content.ReadAsStringAsync();
        Assert.DoesNotContain(Run, text);

        // Nor, to anyone but operators and admins, the node's address, its store or its data directory.
        var open = System.Text.Json.Nodes.JsonNode.Parse(text)!;
        Assert.Null(open["cluster"]!["self"]);
        Assert.Null(open["persistence"]!["store"]);
        Assert.Null(open["dependencies"]!["store"]!["store"]);
        Assert.DoesNotContain("127.0.0.1", text);
        Assert.DoesNotContain(node.Dir, text);
        Assert.True(open["persistence"]!["reachable"]!.GetValue<bool>());
        Assert.NotNull(open["deadlock_monitor"]);

        using var operatorClient = node.Client(SecuredNode.Operator);
        var detailed = System.Text.Json.Nodes.JsonNode.Parse(await (await operatorClient.GetAsync("/health")).Content.ReadAsStringAsync())!;
        Assert.Contains("127.0.0.1", detailed["cluster"]!["self"]!.GetValue<string>());
        Assert.NotNull(detailed["persistence"]!["store"]);
    }
}
