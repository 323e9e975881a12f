namespace Deepline.Node.Configuration;

/// <summary>
/// One configuration key: its dotted path in config.yaml, the environment variable that overrides it,
/// its default as written in config.yaml, and a one-line description (for the README, docs and tests).
/// </summary>
/// <param name="Path">Dotted key path, e.g. <c>orchestrator.deadlock.check_interval_s</c>.</param>
/// <param name="EnvironmentVariable">The override, e.g. <c>DEEPLINE_DEADLOCK_CHECK_INTERVAL</c>.</param>
/// <param name="DefaultValue">The default as YAML text, e.g. <c>60</c>, <c>""</c>, <c>[]</c>.</param>
/// <param name="Description">What the key does, one line.</param>
public sealed record ConfigKey(string Path, string EnvironmentVariable, string DefaultValue, string Description)
{
    /// <summary>The last path segment, e.g. <c>check_interval_s</c>.</summary>
    public string Name => Path[(Path.LastIndexOf('.') + 1)..];
}
