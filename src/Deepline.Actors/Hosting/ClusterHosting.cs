using System.Security.Cryptography.X509Certificates;
using Akka.Cluster;
using Akka.Cluster.Hosting;
using Akka.Hosting;
using Akka.Remote.Hosting;
using Deepline.Actors.Serialization;
using Deepline.Domain;

namespace Deepline.Actors.Hosting;

/// <summary>
/// This node in the cluster: its Akka.Remote endpoint, seed nodes and roles; <see cref="DownUnreachableAfter"/> is the
/// split-brain resolver's stable-after; with a <see cref="Certificate"/> the transport is mutual TLS pinned to it.
/// </summary>
public sealed record NodeClusterSettings(string Host, int Port, IReadOnlyList<string> SeedNodes, IReadOnlyList<string> Roles)
{
    public TimeSpan DownUnreachableAfter { get; init; } = TimeSpan.FromSeconds(20);

    public X509Certificate2? Certificate { get; init; }
}

public static class ClusterHosting
{
    public const string WorkerRole = "worker";

    /// <summary>The node's roles: "worker" when it serves pools, the configured ones, and its store's (see <see cref="StoreIdentity"/>).</summary>
    public static IReadOnlyList<string> NodeRoles(bool servesPools, IEnumerable<string> configured, string? storeRole) =>
        [.. (servesPools ? [WorkerRole] : Array.Empty<string>()).Concat(configured)
            .Concat(storeRole is null ? [] : [storeRole]).Distinct(StringComparer.Ordinal)];

    /// <summary>
    /// Serialization, remoting, clustering (keep-majority split-brain resolver), distributed pub-sub and optional TLS.
    /// A node with no seed nodes joins itself: a single-node cluster.
    /// </summary>
    public static AkkaConfigurationBuilder WithDeeplineCluster(this AkkaConfigurationBuilder builder, NodeClusterSettings s)
    {
        builder
            // Keep-majority, stated rather than left to the library default: a side without the majority downs itself,
            // so a partitioned node never keeps serving runs whose shards moved to the majority.
            .AddHocon($$"""
                akka.cluster.downing-provider-class = "Akka.Cluster.SBR.SplitBrainResolverProvider, Akka.Cluster"
                akka.cluster.split-brain-resolver {
                  active-strategy = keep-majority
                  stable-after = {{(int)s.DownUnreachableAfter.TotalMilliseconds}}ms
                  down-all-when-unstable = on
                }
                """, HoconAddMode.Prepend)
            .WithCustomSerializer("deepline", [typeof(IDeeplineMessage)], system => new DeeplineSerializer(system))
            .WithRemoting(s.Host, s.Port)
            .WithClustering(new ClusterOptions { Roles = [.. s.Roles], SeedNodes = [.. s.SeedNodes] })
            .WithDistributedPubSub(role: null!);

        if (s.Certificate is { } certificate)
        {
            // Mutual TLS pinned to the cluster's own certificate: a peer must present it (and prove its private key)
            // both when it connects and when it is connected to, so only holders of the certificate can join.
            builder.AddHocon("akka.remote.dot-netty.tcp.enable-ssl = true", HoconAddMode.Prepend);
            builder.AddSetup(new Akka.Remote.Transport.DotNetty.DotNettySslSetup(certificate, suppressValidation: false,
                requireMutualAuthentication: true, validateCertificateHostname: false,
                Akka.Remote.Transport.DotNetty.CertificateValidation.PinnedCertificate([certificate.Thumbprint])));
        }

        if (s.SeedNodes.Count == 0)
            builder.AddStartup((system, _) => Cluster.Get(system).Join(Cluster.Get(system).SelfAddress));
        return builder;
    }
}
