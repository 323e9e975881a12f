using Deepline.Node.Configuration;
using Xunit;

namespace Deepline.Node.Tests.Configuration;

public sealed class AdminKeyConfigTests : IDisposable
{
    private const string Secret = "s3cret-admin-key-0123456789";

    private readonly string _dir = Directory.CreateTempSubdirectory("deepline-admin-config-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private DeeplineConfig Load(string? path, params (string, string?)[] env) =>
        ConfigLoader.Load(path, env.ToDictionary(e => e.Item1, e => e.Item2), _dir);

    [Fact]
    public void Admin_endpoints_are_disabled_by_default()
    {
        var c = Load(null);
        Assert.False(c.Admin.Enabled);
        Assert.Contains("orchestrator.admin.key: not configured", ConfigLoader.Describe(c));
    }

    [Fact]
    public void The_key_comes_from_the_file_or_DEEPLINE_ADMIN_KEY_and_is_never_shown()
    {
        var path = Path.Combine(_dir, "c.yaml");
        File.WriteAllText(path, "orchestrator:\n  admin:\n    key: \"from-the-file-0123456789\"\n");

        Assert.Equal("from-the-file-0123456789", Load(path).Admin.Key);
        var c = Load(path, ("DEEPLINE_ADMIN_KEY", Secret));
        Assert.Equal(Secret, c.Admin.Key);

        var described = ConfigLoader.Describe(c);
        Assert.Contains("orchestrator.admin.key: configured", described);
        Assert.DoesNotContain(Secret, described);
        Assert.DoesNotContain(Secret, c.ToString());
    }

    [Theory]
    [InlineData("short")]
    [InlineData("has a space in the middle")]
    public void A_weak_key_stops_start_up_without_echoing_it(string key)
    {
        var e = Assert.Throws<ConfigException>(() => Load(null, ("DEEPLINE_ADMIN_KEY", key)));
        var line = Assert.Single(e.Errors);
        Assert.Equal(
            $"orchestrator.admin.key: must be at least {ConfigLoader.MinAdminKeyLength} characters without spaces (or empty: no admin key) (from DEEPLINE_ADMIN_KEY)",
            line);
        Assert.DoesNotContain(key, line);
    }
}
