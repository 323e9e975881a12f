using Microsoft.Extensions.Options;

namespace Deepline.Node.Configuration;

/// <summary>
/// Where each value came from, for the error lines: "from DEEPLINE_X" or "at file:line", per key and per list entry
/// (<c>path[i]</c>); and which keys were already refused as malformed (their checks are not repeated on the default
/// that stands in for them). <see cref="None"/>: a configuration built in code, every value a default as far as errors go.
/// </summary>
public sealed class ConfigOrigins(IReadOnlyDictionary<string, string> inline, IReadOnlySet<string> malformed)
{
    public static ConfigOrigins None { get; } = new(new Dictionary<string, string>(), new HashSet<string>());

    /// <summary>"from DEEPLINE_X" or "at file:line"; null for a key left at its default.</summary>
    public string? Inline(string path) => inline.TryGetValue(path, out var text) ? text : null;

    /// <summary>" (from DEEPLINE_X)", " (at file:line)" or "" (a default), appended to an error line.</summary>
    public string Suffix(string path) => Inline(path) is { } text ? $" ({text})" : "";

    /// <summary>The suffix of entry <paramref name="index"/> of a list key.</summary>
    public string ItemSuffix(string path, int index) =>
        Inline($"{path}[{index}]") is { } text ? $" ({text})" : Suffix(path);

    public bool IsSet(string path) => inline.ContainsKey(path);

    /// <summary>False for a key whose value was not even of its kind (reported already; its default stands in).</summary>
    public bool WellFormed(string path) => !malformed.Contains(path);
}

/// <summary>The problems one validator found, one line each, naming the key and where its value came from.</summary>
internal sealed class ConfigProblems(ConfigOrigins origins)
{
    private readonly List<string> _lines = [];

    public ConfigOrigins Origins => origins;

    /// <summary>"path: problem (source)".</summary>
    public void Fail(string path, string problem) => _lines.Add($"{path}: {problem}{origins.Suffix(path)}");

    /// <summary>A line that names its keys itself.</summary>
    public void Add(string line) => _lines.Add(line);

    public ValidateOptionsResult Result => _lines.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(_lines);
}
