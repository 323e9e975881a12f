using Deepline.Node.Configuration;
using Xunit;

namespace Deepline.Node.Tests.Configuration;

/// <summary>
/// config.yaml and the configuration reference's key table (docs/configuration.md) are what the key table writes: a key, default, range or variable changed in
/// ConfigKeys.All without the documents fails here. DEEPLINE_UPDATE_CONFIG_DOCS=1 rewrites both from the table.
/// </summary>
public sealed class ConfigDocsTests
{
    private static readonly bool Update = Environment.GetEnvironmentVariable("DEEPLINE_UPDATE_CONFIG_DOCS") == "1";

    private static string Root()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "Deepline.Actors.sln"))) return dir.FullName;
        throw new InvalidOperationException("Deepline.Actors.sln not found");
    }

    [Fact]
    public void Shipped_config_yaml_is_the_one_the_key_table_writes()
    {
        var path = Path.Combine(Root(), "config.yaml");
        if (Update) File.WriteAllText(path, ConfigDocs.ConfigYaml());
        Assert.Equal(ConfigDocs.ConfigYaml(), File.ReadAllText(path).ReplaceLineEndings("\n"));
    }

    [Fact]
    public void Configuration_reference_table_is_the_one_the_key_table_writes()
    {
        var path = Path.Combine(Root(), ConfigDocs.ReferencePath);
        var text = File.ReadAllText(path).ReplaceLineEndings("\n");
        var begin = text.IndexOf(ConfigDocs.KeyTableBegin, StringComparison.Ordinal);
        var end = text.IndexOf(ConfigDocs.KeyTableEnd, StringComparison.Ordinal);
        Assert.True(begin >= 0 && end > begin, $"{ConfigDocs.ReferencePath} lacks the config-keys markers");
        var from = begin + ConfigDocs.KeyTableBegin.Length + 1;
        if (Update)
        {
            text = text[..from] + ConfigDocs.KeyTable() + text[end..];
            File.WriteAllText(path, text);
            end = text.IndexOf(ConfigDocs.KeyTableEnd, StringComparison.Ordinal);
        }
        Assert.Equal(ConfigDocs.KeyTable(), text[from..end]);
    }

    [Fact]
    public void Every_bounded_integer_key_states_its_range_in_its_description()
    {
        // The range reaches config.yaml and the configuration reference only through the description: a bounded key must say it.
        var bounded = ConfigKeys.All.Where(k => k.Kind is ConfigKind.Integer or ConfigKind.Pools && !(k.Min == 1 && k.Max == int.MaxValue));
        Assert.All(bounded, k => Assert.Contains($"{k.Min}..{k.Max}", k.Description, StringComparison.Ordinal));
    }

    [Fact]
    public void Secrets_are_never_shown_by_the_summary()
    {
        var c = DeeplineConfig.Defaults with
        {
            Admin = new AdminConfig("admin-secret-0123456789"),
            Redis = new RedisConfig("127.0.0.1:6379,password=redis-secret", 60),
            Store = new StoreConfig(StoreConfig.PostgreSql, "Host=db;Password=store-secret"),
        };
        var described = ConfigLoader.Describe(c);
        foreach (var key in ConfigKeys.All.Where(k => k.Kind == ConfigKind.Secret))
            Assert.Contains($"{key.Path}: ", described);
        Assert.DoesNotContain("secret", described, StringComparison.OrdinalIgnoreCase);
    }
}
