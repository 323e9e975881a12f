using System.Collections;
using System.Globalization;

namespace Deepline.Node.Configuration;

/// <summary>How a key's value is written and checked; every kind but <see cref="Secret"/> may be echoed in errors.</summary>
public enum ConfigKind
{
    Integer,
    Boolean,
    Text,
    /// <summary>A string never printed: errors leave the value out, the start-up log says configured / not configured.</summary>
    Secret,
    /// <summary>A YAML list of strings; in the environment, comma separated.</summary>
    List,
    /// <summary>A YAML mapping of pool name to slots; in the environment, <c>gpu=2,io=8</c>.</summary>
    Pools,
}

/// <summary>
/// One configuration key: its dotted path in config.yaml, the environment variable that overrides it, its default
/// as written in config.yaml, a one-line description, its kind and (integers) its range. <see cref="ConfigKeys.All"/>
/// is the one list of keys: the loader, the defaults, the start-up summary, config.yaml and the README's table come from it.
/// </summary>
/// <param name="Path">Dotted key path, e.g. <c>orchestrator.deadlock.check_interval_s</c>.</param>
/// <param name="EnvironmentVariable">The override, e.g. <c>DEEPLINE_DEADLOCK_CHECK_INTERVAL</c>.</param>
/// <param name="DefaultValue">The default as YAML text, e.g. <c>60</c>, <c>""</c>, <c>[]</c>.</param>
/// <param name="Description">What the key does, one line.</param>
public sealed record ConfigKey(string Path, string EnvironmentVariable, string DefaultValue, string Description)
{
    /// <summary>The last path segment, e.g. <c>check_interval_s</c>.</summary>
    public string Name => Path[(Path.LastIndexOf('.') + 1)..];

    /// <summary>The section path, e.g. <c>orchestrator.deadlock</c>.</summary>
    public string Section => Path[..Path.LastIndexOf('.')];

    public ConfigKind Kind { get; init; } = ConfigKind.Text;

    /// <summary>Smallest accepted value of an integer key.</summary>
    public int Min { get; init; }

    /// <summary>Largest accepted value of an integer key.</summary>
    public int Max { get; init; }

    /// <summary>What a refused integer must be, when the range alone does not say it (e.g. what 0 means).</summary>
    public string? RequirementText { get; init; }

    /// <summary>How the start-up summary shows an empty value (or 0, for integers where 0 means something).</summary>
    public string? WhenUnset { get; init; }

    /// <summary>Reads the key's effective value from a loaded configuration (for the summary and the docs check).</summary>
    public Func<DeeplineConfig, object> Read { get; init; } = _ => "";

    /// <summary>"a positive integer" or "an integer from 1 to 300", as the error lines say it.</summary>
    public string Requirement => RequirementText
        ?? (Min == 1 && Max == int.MaxValue
            ? "a positive integer"
            : string.Create(CultureInfo.InvariantCulture, $"an integer from {Min} to {Max}"));

    /// <summary>The value as the start-up summary shows it; secrets only as configured / not configured.</summary>
    public string Show(DeeplineConfig config)
    {
        var value = Read(config);
        return Kind switch
        {
            ConfigKind.Secret => ((string)value).Length > 0 ? "configured" : "not configured",
            ConfigKind.Integer when (int)value == 0 && WhenUnset is not null => $"0 ({WhenUnset})",
            ConfigKind.Integer => ((int)value).ToString(CultureInfo.InvariantCulture),
            ConfigKind.Boolean => (bool)value ? "true" : "false",
            ConfigKind.Pools => ((IReadOnlyDictionary<string, int>)value) is { Count: > 0 } pools
                ? string.Join(", ", pools.OrderBy(p => p.Key, StringComparer.Ordinal).Select(p => string.Create(CultureInfo.InvariantCulture, $"{p.Key}={p.Value}")))
                : WhenUnset ?? "none",
            ConfigKind.List => ((IEnumerable)value).Cast<string>().ToList() is { Count: > 0 } items ? string.Join(", ", items) : WhenUnset ?? "none",
            _ => ((string)value).Length == 0 && WhenUnset is not null ? WhenUnset : (string)value,
        };
    }
}
