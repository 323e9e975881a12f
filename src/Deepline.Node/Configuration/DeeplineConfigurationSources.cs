using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.FileProviders;
using NetEscapades.Configuration.Yaml;

namespace Deepline.Node.Configuration;

/// <summary>
/// The node's <see cref="IConfiguration"/>: the key table's defaults, then config.yaml (NetEscapades' YAML provider),
/// then the DEEPLINE_* variables, each later source winning, as everywhere in .NET. Keys are the dotted paths with
/// <c>:</c>, e.g. <c>orchestrator:deadlock:check_interval_s</c>.
/// </summary>
public static class DeeplineConfigurationSources
{
    /// <summary>A key table path as an <see cref="IConfiguration"/> key.</summary>
    public static string ConfigurationKey(ConfigKey key) => key.Path.Replace('.', ':');

    /// <summary>Builds the configuration from <paramref name="file"/> (full path, or null: none) and the environment.</summary>
    /// <param name="ignored">Key paths whose values were refused: left out of both sources, so their defaults stand in.</param>
    public static IConfigurationRoot Build(string? file, IReadOnlyDictionary<string, string?> environment, IReadOnlySet<string>? ignored = null)
    {
        ignored ??= new HashSet<string>();
        var builder = new ConfigurationBuilder().Add(new DefaultsSource());
        if (file is not null)
        {
            builder.Add(new DeeplineYamlSource
            {
                FileProvider = new PhysicalFileProvider(Path.GetDirectoryName(file)!),
                Path = Path.GetFileName(file),
                Optional = false,
                ReloadOnChange = false,
                // A list or pool map set in the environment replaces the file's whole list, not its first entries.
                Replaced = [.. ConfigKeys.All
                    .Where(k => ignored.Contains(k.Path)
                        || (k.Kind is ConfigKind.List or ConfigKind.Pools && environment.TryGetValue(k.EnvironmentVariable, out var v) && v is not null))
                    .Select(ConfigurationKey)],
            });
        }
        return builder.Add(new DeeplineEnvironmentSource(environment) { Ignored = ignored }).Build();
    }

    /// <summary>"true"/"false" for the words the key table accepts as booleans; anything else unchanged (and refused earlier).</summary>
    internal static string? NormalizeBoolean(string? text) => text?.Trim().ToLowerInvariant() switch
    {
        "true" or "yes" or "1" => "true",
        "false" or "no" or "0" => "false",
        _ => text,
    };

    /// <summary>The table's defaults, lowest of all sources: no default is written anywhere else.</summary>
    private sealed class DefaultsSource : IConfigurationSource
    {
        public IConfigurationProvider Build(IConfigurationBuilder builder) => new Provider();

        private sealed class Provider : ConfigurationProvider
        {
            public override void Load()
            {
                foreach (var key in ConfigKeys.All.Where(k => k.Kind is not (ConfigKind.List or ConfigKind.Pools)))
                    Data[ConfigurationKey(key)] = key.DefaultValue == "\"\"" ? "" : key.DefaultValue;
            }
        }
    }
}

/// <summary>
/// config.yaml through NetEscapades' provider, with the two things our files may do that the plain provider does not
/// know: the seed document's top-level <c>deadlock:</c> means <c>orchestrator.deadlock</c>, and a list or pool map set
/// in the environment replaces the file's (configuration sources merge lists entry by entry).
/// </summary>
public sealed class DeeplineYamlSource : YamlConfigurationSource
{
    /// <summary>Configuration keys whose subtree the environment replaces.</summary>
    public IReadOnlyList<string> Replaced { get; init; } = [];

    public override IConfigurationProvider Build(IConfigurationBuilder builder)
    {
        EnsureDefaults(builder);
        return new Provider(this);
    }

    private sealed class Provider(DeeplineYamlSource source) : YamlConfigurationProvider(source)
    {
        private const string SeedSection = ConfigLoader.SeedDeadlockSection + ":";

        public override void Load(Stream stream)
        {
            base.Load(stream);
            foreach (var key in Data.Keys.Where(k => k.StartsWith(SeedSection, StringComparison.OrdinalIgnoreCase)).ToList())
            {
                Data["orchestrator:" + key] = Data[key];
                Data.Remove(key);
            }
            foreach (var key in Data.Keys.Where(k => source.Replaced.Any(r =>
                         k.Equals(r, StringComparison.OrdinalIgnoreCase) || k.StartsWith(r + ":", StringComparison.OrdinalIgnoreCase))).ToList())
                Data.Remove(key);
            foreach (var key in ConfigKeys.All.Where(k => k.Kind == ConfigKind.Boolean).Select(DeeplineConfigurationSources.ConfigurationKey))
            {
                if (Data.TryGetValue(key, out var value))
                    Data[key] = DeeplineConfigurationSources.NormalizeBoolean(value);
            }
        }
    }
}

/// <summary>
/// The DEEPLINE_* variables under their documented names (<see cref="ConfigKey.EnvironmentVariable"/>), e.g.
/// DEEPLINE_DEADLOCK_WEBHOOK for orchestrator.deadlock.alert_webhook: the names predate this provider and users have
/// them in their deployments, so they are mapped one by one rather than by the <c>__</c> convention. Lists are comma
/// separated, pools <c>gpu=2,io=8</c>. A variable set to null counts as unset.
/// </summary>
public sealed class DeeplineEnvironmentSource(IReadOnlyDictionary<string, string?> environment) : IConfigurationSource
{
    /// <summary>Key paths not to read (their values were refused).</summary>
    public IReadOnlySet<string> Ignored { get; init; } = new HashSet<string>();

    public IConfigurationProvider Build(IConfigurationBuilder builder) => new Provider(environment, Ignored);

    private sealed class Provider(IReadOnlyDictionary<string, string?> environment, IReadOnlySet<string> ignored) : ConfigurationProvider
    {
        public override void Load()
        {
            foreach (var key in ConfigKeys.All.Where(k => !ignored.Contains(k.Path)))
            {
                if (!environment.TryGetValue(key.EnvironmentVariable, out var text) || text is null)
                    continue;
                var path = DeeplineConfigurationSources.ConfigurationKey(key);
                switch (key.Kind)
                {
                    case ConfigKind.List:
                        var items = text.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries);
                        for (var i = 0; i < items.Length; i++)
                            Data[$"{path}:{i}"] = items[i];
                        break;
                    case ConfigKind.Pools:
                        foreach (var entry in text.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries))
                        {
                            var eq = entry.IndexOf('=', StringComparison.Ordinal);
                            if (eq > 0)
                                Data[$"{path}:{entry[..eq].Trim()}"] = entry[(eq + 1)..].Trim();
                        }
                        break;
                    case ConfigKind.Boolean:
                        Data[path] = DeeplineConfigurationSources.NormalizeBoolean(text);
                        break;
                    default:
                        Data[path] = text.Trim();
                        break;
                }
            }
        }
    }
}
