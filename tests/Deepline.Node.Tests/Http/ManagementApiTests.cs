using System.Net;
using Deepline.Node.Http;

namespace Deepline.Node.Tests.Http;

public sealed class ManagementApiTests(NodeFixture node) : IClassFixture<NodeFixture>
{
    private HttpClient Client => node.Client;

    private Task<HttpResponseMessage> Post(string url, string json, string? key)
    {
        var request = new HttpRequestMessage(HttpMethod.Post, url) { Content = Json.Body(json) };
        if (key is not null) request.Headers.Add(Deepline.Node.Security.KeyAuthentication.AdminHeader, key);
        return Client.SendAsync(request);
    }

    [Theory]
    [InlineData("/cluster/leave")]
    [InlineData("/cluster/down")]
    [InlineData("/cluster/join")]
    [InlineData("/cluster/down-unreachable")]
    public async Task Mutating_endpoints_answer_401_without_the_key_and_403_with_a_wrong_one(string url)
    {
        var self = (await (await Client.GetAsync("/cluster/members")).ReadObject()).Str("self");
        var body = $$"""{"address":"{{self}}"}""";

        var missing = await Post(url, body, null);
        var wrong = await Post(url, body, "a-wrong-key-of-decent-length");

        Assert.Equal(HttpStatusCode.Unauthorized, missing.StatusCode);
        Assert.Equal("application/problem+json", missing.Content.Headers.ContentType?.MediaType);
        Assert.Equal(HttpStatusCode.Forbidden, wrong.StatusCode);
        // The node is still an Up member of its one-node cluster.
        var members = await (await Client.GetAsync("/cluster/members")).ReadObject();
        Assert.Equal("up", members["members"]![0]!["status"]!.GetValue<string>());
    }

    [Fact]
    public async Task Members_show_roles_status_reachability_and_the_leader()
    {
        var members = await (await Client.GetAsync("/cluster/members")).ReadObject();
        Assert.Equal(["count", "leader", "members", "self", "unreachable"], members.Keys());
        var me = members["members"]![0]!.AsObject();
        Assert.Equal(["address", "leader", "reachable", "roles", "self", "status"], me.Keys());
        Assert.Equal(members.Str("self"), members.Str("leader"));
        var roles = me["roles"]!.AsArray().Select(r => r!.GetValue<string>()).ToList();
        Assert.Contains("worker", roles);
        Assert.Single(roles, r => r.StartsWith("store-", StringComparison.Ordinal)); // the store's identity: one cluster, one store
    }

    [Theory]
    [InlineData("/user/x?y#z")]
    [InlineData("/user/x")]
    [InlineData("?y")]
    [InlineData("#z")]
    public async Task Leave_of_an_actor_path_is_refused_and_the_node_stays(string suffix)
    {
        var self = (await (await Client.GetAsync("/cluster/members")).ReadObject()).Str("self");

        var leave = await Post("/cluster/leave", $$"""{"address":"{{self}}{{suffix}}"}""", NodeFixture.AdminKey);
        var otherSystem = await Post("/cluster/down", $$"""{"address":"{{self.Replace("@", "x@")}}"}""", NodeFixture.AdminKey);

        Assert.Equal(HttpStatusCode.BadRequest, leave.StatusCode);
        Assert.Equal("address", (await leave.ReadObject()).Str("field"));
        Assert.Equal(HttpStatusCode.BadRequest, otherSystem.StatusCode);
        var members = await (await Client.GetAsync("/cluster/members")).ReadObject();
        Assert.Equal("up", members["members"]![0]!["status"]!.GetValue<string>());
    }

    [Fact]
    public async Task Bad_input_is_a_problem_naming_the_field()
    {
        var badDepth = await Client.GetAsync("/actors/hierarchy?depth=0");
        Assert.Equal(HttpStatusCode.BadRequest, badDepth.StatusCode);
        Assert.Equal("depth", (await badDepth.ReadObject()).Str("field"));

        var badAddress = await Post("/cluster/down", """{"address":"localhost:4053"}""", NodeFixture.AdminKey);
        Assert.Equal(HttpStatusCode.BadRequest, badAddress.StatusCode);
        Assert.Equal("address", (await badAddress.ReadObject()).Str("field"));

        var unknownField = await Post("/cluster/down", """{"addr":"x"}""", NodeFixture.AdminKey);
        Assert.Equal(HttpStatusCode.BadRequest, unknownField.StatusCode);
        Assert.Contains("unknown field 'addr'", (await unknownField.ReadObject()).Str("detail"));

        Assert.Equal(HttpStatusCode.NotFound, (await Client.GetAsync("/cluster/sharding/nope/region-stats")).StatusCode);
    }
}
