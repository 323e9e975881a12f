using System.Net;
using System.Text.Json.Nodes;
using Deepline.Tests.Shared;

namespace Deepline.Ui.Tests;

/// <summary>The dashboard's HTTP side without a browser: headers, roles, limits.</summary>
[Collection(Dashboard.Name)]
public sealed class UiHttpTests(DashboardNode node)
{
    [Fact]
    public async Task Ui_is_served_from_the_node_with_a_strict_csp_and_no_external_assets()
    {
        using var c = node.Client(null);
        var r = await c.GetAsync("/ui");
        Assert.True(r.StatusCode == HttpStatusCode.OK, $"{(int)r.StatusCode} {await r.Content.ReadAsStringAsync()}");
        var csp = r.Headers.GetValues("Content-Security-Policy").Single();
        Assert.Contains("script-src 'self'", csp);
        Assert.Contains("default-src 'none'", csp);
        Assert.DoesNotContain("unsafe-inline", csp);
        var html = await r.Content.ReadAsStringAsync();
        Assert.DoesNotContain("http://", html);
        Assert.DoesNotContain("https://", html);
        Assert.DoesNotContain("<script>", html); // no inline script; only <script src=...>
        foreach (var asset in new[] { "app.js", "app.css", "favicon.svg" })
            Assert.Equal(HttpStatusCode.OK, (await c.GetAsync("/ui/assets/" + asset)).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await c.GetAsync("/ui/assets/..%2Fkeys.yaml")).StatusCode);
        var js = await (await c.GetAsync("/ui/assets/app.js")).Content.ReadAsStringAsync();
        Assert.DoesNotContain("innerHTML", js);
        Assert.DoesNotContain("insertAdjacentHTML", js);
    }

    [Fact]
    public async Task Whoami_names_the_role_and_client_of_any_key()
    {
        Assert.Equal(HttpStatusCode.Unauthorized, (await node.Client(null).GetAsync("/auth/whoami")).StatusCode);
        var me = await node.GetJsonAsync(DashboardNode.TeamA, "/auth/whoami");
        Assert.Equal("submitter", me["role"]!.GetValue<string>());
        Assert.Equal("team-a", me["client_id"]!.GetValue<string>());
        Assert.False(me["may"]!["operate"]!.GetValue<bool>());
        Assert.True(me["may"]!["cancel"]!.GetValue<bool>());
        var worker = await node.GetJsonAsync(DashboardNode.Worker, "/auth/whoami");
        Assert.Equal("worker", worker["role"]!.GetValue<string>());
        Assert.False(worker["may"]!["read_runs"]!.GetValue<bool>());
    }

    [Fact]
    public async Task Run_list_is_scoped_validated_and_paged()
    {
        for (var i = 0; i < 3; i++)
            await node.SubmitAsync(DashboardNode.TeamB, $$"""{"workflow_name":"paged-list","tasks":[{"task_id":"t","type":"noop"}]}""");
        await Eventually.Until(async () =>
            (await node.GetJsonAsync(DashboardNode.Operator, "/runs?workflow=paged-list&limit=200"))["runs"]!.AsArray().Count >= 3,
            TimeSpan.FromSeconds(15), "runs indexed");
        var page = await node.GetJsonAsync(DashboardNode.Operator, "/runs?workflow=paged-list&limit=2");
        Assert.Equal(2, page["runs"]!.AsArray().Count);
        Assert.True(page["has_more"]!.GetValue<bool>());
        // A submitter asking for another client's runs gets its own only.
        var scoped = await node.GetJsonAsync(DashboardNode.TeamA, "/runs?client_id=team-b&limit=200");
        Assert.All(scoped["runs"]!.AsArray(), r => Assert.Equal("team-a", r!["client_id"]!.GetValue<string>()));
        using var c = node.Client(DashboardNode.Operator);
        foreach (var (query, field) in new[] { ("limit=0", "limit"), ("limit=201", "limit"), ("offset=-1", "offset"), ("status=running", "status"), ("client_id=a%20b", "client_id"), ("workflow=" + new string('w', 257), "workflow") })
        {
            var r = await c.GetAsync("/runs?" + query);
            Assert.Equal(HttpStatusCode.BadRequest, r.StatusCode);
            Assert.Equal(field, JsonNode.Parse(await r.Content.ReadAsStringAsync())!["field"]!.GetValue<string>());
        }
        Assert.Equal(HttpStatusCode.Forbidden, (await node.Client(DashboardNode.Worker).GetAsync("/runs")).StatusCode);
        Assert.Equal(HttpStatusCode.Forbidden, (await node.Client(DashboardNode.TeamA).GetAsync("/deadlock/incidents")).StatusCode);
        Assert.Equal(HttpStatusCode.Forbidden, (await node.Client(DashboardNode.TeamA).GetAsync("/ui/api/timeline")).StatusCode);
    }

    public static TheoryData<string, string> Endpoints => new()
    {
        { "/runs", "submitter operator admin" },
        { "/deadlock/incidents", "operator admin" },
        { "/ui/api/timeline", "operator admin" },
        { "/ui/events", "submitter operator admin" },
        { "/auth/whoami", "submitter worker operator admin" },
        { "/ui", "none submitter worker operator admin" },
    };

    [Theory]
    [MemberData(nameof(Endpoints))]
    public async Task Every_new_endpoint_answers_only_its_roles(string path, string allowed)
    {
        var keys = new (string Role, string? Key)[]
        {
            ("none", null), ("submitter", DashboardNode.TeamA), ("worker", DashboardNode.Worker),
            ("operator", DashboardNode.Operator), ("admin", DashboardNode.Admin),
        };
        foreach (var (role, key) in keys)
        {
            using var c = node.Client(key);
            using var r = await c.GetAsync(path, HttpCompletionOption.ResponseHeadersRead);
            var expected = allowed.Split(' ').Contains(role) ? HttpStatusCode.OK : key is null ? HttpStatusCode.Unauthorized : HttpStatusCode.Forbidden;
            Assert.True(r.StatusCode == expected, $"{path} as {role}: {(int)r.StatusCode}, expected {(int)expected}");
        }
    }

    [Fact]
    public async Task A_submitter_stream_carries_only_its_own_clients_runs()
    {
        var own = await node.SubmitAsync(DashboardNode.TeamA, """{"workflow_name":"stream-scope","tasks":[{"task_id":"t","type":"hang"}]}""");
        var other = await node.SubmitAsync(DashboardNode.TeamB, """{"workflow_name":"stream-scope","tasks":[{"task_id":"t","type":"hang"}]}""");
        using var client = node.Client(DashboardNode.TeamA);
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        using var response = await client.GetAsync("/ui/events", HttpCompletionOption.ResponseHeadersRead, cts.Token);
        using var reader = new StreamReader(await response.Content.ReadAsStreamAsync(cts.Token));
        Assert.StartsWith("event: hello", await reader.ReadLineAsync(cts.Token));
        // The other client's cancel first, so that its events would come before the one awaited below.
        using (var b = node.Client(DashboardNode.TeamB)) (await b.PutAsync($"/runs/{other}/cancel", null)).EnsureSuccessStatusCode();
        using (var a = node.Client(DashboardNode.TeamA)) (await a.PutAsync($"/runs/{own}/cancel", null)).EnsureSuccessStatusCode();
        var seen = new List<string>();
        string? line;
        while ((line = await reader.ReadLineAsync(cts.Token)) is not null)
        {
            seen.Add(line);
            if (line.StartsWith("data: ", StringComparison.Ordinal) && line.Contains(own, StringComparison.Ordinal) && line.Contains("CANCELLED", StringComparison.Ordinal)) break;
        }
        Assert.True(seen.Contains("event: cancel"), string.Join("\n", seen));
        Assert.DoesNotContain(seen, l => l.Contains(other, StringComparison.Ordinal) || l.Contains("team-b", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Event_streams_need_a_key_and_are_bounded_per_caller()
    {
        Assert.Equal(HttpStatusCode.Unauthorized, (await node.Client(null).GetAsync("/ui/events", HttpCompletionOption.ResponseHeadersRead)).StatusCode);
        Assert.Equal(HttpStatusCode.Forbidden, (await node.Client(DashboardNode.Worker).GetAsync("/ui/events", HttpCompletionOption.ResponseHeadersRead)).StatusCode);
        var open = new List<HttpResponseMessage>();
        using var client = node.Client(DashboardNode.TeamB);
        try
        {
            for (var i = 0; i < Deepline.Node.Ui.UiFeed.MaxStreamsPerCaller; i++)
            {
                var r = await client.GetAsync("/ui/events", HttpCompletionOption.ResponseHeadersRead);
                Assert.Equal(HttpStatusCode.OK, r.StatusCode);
                Assert.Equal("text/event-stream", r.Content.Headers.ContentType!.MediaType);
                open.Add(r);
            }
            var refused = await client.GetAsync("/ui/events", HttpCompletionOption.ResponseHeadersRead);
            Assert.Equal((HttpStatusCode)429, refused.StatusCode);
            Assert.True(refused.Headers.RetryAfter is not null);
            // Another caller is not affected by this one's streams.
            using var other = node.Client(DashboardNode.TeamA);
            using var ok = await other.GetAsync("/ui/events", HttpCompletionOption.ResponseHeadersRead);
            Assert.Equal(HttpStatusCode.OK, ok.StatusCode);
        }
        finally
        {
            foreach (var r in open) r.Dispose();
        }
    }
}
