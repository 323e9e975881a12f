using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace Deepline.Tests.Shared;

/// <summary>Self-signed certificates made at test time (nothing secret is committed), written as PKCS#12 files.</summary>
public static class TestCertificates
{
    private static readonly Lazy<string> Shared = new(() => Create(Directory.CreateTempSubdirectory("deepline-cert-").FullName, "deepline-test-cluster", ""));

    /// <summary>One certificate for the whole test run, without a password.</summary>
    public static string SharedPfx => Shared.Value;

    public static string Create(string dir, string subject, string password)
    {
        using var rsa = RSA.Create(2048);
        var request = new CertificateRequest($"CN={subject}", rsa, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.DigitalSignature | X509KeyUsageFlags.KeyEncipherment, false));
        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([new Oid("1.3.6.1.5.5.7.3.1"), new Oid("1.3.6.1.5.5.7.3.2")], false));
        using var certificate = request.CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddDays(30));
        var path = Path.Combine(dir, subject + ".pfx");
        File.WriteAllBytes(path, certificate.Export(X509ContentType.Pfx, password));
        return path;
    }
}
