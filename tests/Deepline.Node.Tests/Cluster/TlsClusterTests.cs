using System.Net;
using System.Text.Json.Nodes;
using Deepline.Node.Configuration;
using Deepline.Node.Tests.Http;
using Deepline.Tests.Shared;
using Microsoft.AspNetCore.Builder;

namespace Deepline.Node.Tests.Cluster;

/// <summary>With a cluster certificate, Akka.Remote speaks mutual TLS pinned to it: holders join, anyone else cannot.</summary>
[Trait("Category", "Cluster")]
public sealed class TlsClusterTests : IAsyncLifetime
{
    private PostgresCluster _cluster = null!;

    public async Task InitializeAsync() => _cluster = await PostgresCluster.StartAsync("deepline-tls-");

    public async Task DisposeAsync() => await _cluster.DisposeAsync();

    [Fact]
    public async Task Only_a_node_holding_the_cluster_certificate_joins()
    {
        var cluster = TestCertificates.Create(_cluster.Dir, "cluster", "cluster-secret");
        var stranger = TestCertificates.Create(_cluster.Dir, "stranger", "stranger-secret");

        var (member, memberAddress) = await Start("member", cluster, "cluster-secret", []);
        // Akka.Remote ends a node whose TLS handshake with a seed failed (CoordinatedShutdown, TlsHandshakeFailureReason):
        // the stranger either stops, while starting or soon after, or stays on its own; it never joins.
        HttpClient? intruder = null;
        try
        {
            (intruder, _) = await Start("intruder", stranger, "stranger-secret", [memberAddress]);
        }
        catch (InvalidOperationException e) when (e.Message.Contains("TlsHandshakeFailureReason", StringComparison.Ordinal))
        {
        }
        var (peer, peerAddress) = await Start("peer", cluster, "cluster-secret", [memberAddress]);

        var peerTls = peerAddress.Replace("akka.tcp://", "akka.ssl.tcp://");
        await Eventually.Until(async () => (await Addresses(member)).Contains(peerTls), TimeSpan.FromSeconds(30), "the certificate holder joined");
        // By the time the holder (started after it) is in, the stranger has had every chance: it is not in, and it is in no cluster.
        Assert.Equal(2, (await Addresses(member)).Count);
        if (intruder is not null)
        {
            try
            {
                Assert.Equal(0, (await Members(intruder))["count"]!.GetValue<int>());
            }
            catch (HttpRequestException)
            {
                // It stopped after its start: out of every cluster as well.
            }
        }
    }

    private Task<(HttpClient Client, string Address)> Start(string name, string certificate, string password, IReadOnlyList<string> seeds) =>
        _cluster.StartNodeAsync(name, new RemotingConfig("127.0.0.1", 0, seeds) { TlsCertificate = certificate, TlsCertificatePassword = password });

    private static async Task<JsonObject> Members(HttpClient client) => await (await client.GetAsync("/cluster/members")).ReadObject();

    private static async Task<List<string>> Addresses(HttpClient client) =>
        [.. (await Members(client))["members"]!.AsArray().Select(m => m!["address"]!.GetValue<string>())];
}
