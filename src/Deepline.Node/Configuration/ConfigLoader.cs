using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;
using YamlDotNet.Core;
using YamlDotNet.Core.Events;
using YamlDotNet.RepresentationModel;

namespace Deepline.Node.Configuration;

/// <summary>
/// Loads <see cref="DeeplineConfig"/> from config.yaml and DEEPLINE_* environment variables: checks every value
/// against the key table (<see cref="ConfigKeys"/>: kinds, integer ranges, unknown keys, with the file's lines), then
/// binds the options classes from <see cref="DeeplineConfigurationSources"/> and runs their validators
/// (<c>OptionsValidators.cs</c>) for what a value of the right kind can still get wrong.
/// <list type="bullet">
/// <item>File: the <c>configPath</c> argument, else <c>DEEPLINE_CONFIG</c>, else <c>./config.yaml</c> if it
/// exists, else pure <see cref="DeeplineConfig.Defaults"/>. A named file that does not exist is an error.</item>
/// <item>Every key may be absent (its default applies) and every key has an environment override
/// (<see cref="Keys"/>); the environment wins over the file.</item>
/// <item>Unknown keys, wrong types and bad values are errors; all of them are collected and thrown
/// together as one <see cref="ConfigException"/>, one problem per line, each naming the key at fault
/// and, when the value came from the environment, the variable.</item>
/// </list>
/// </summary>
public static partial class ConfigLoader
{
    /// <summary>Environment variable naming the config file when no path is passed.</summary>
    public const string ConfigPathVariable = "DEEPLINE_CONFIG";

    /// <summary>The file looked for in the working directory when no path is named.</summary>
    public const string DefaultFileName = "config.yaml";

    private const string Deadlock = "orchestrator.deadlock.";
    private const string Workers = "orchestrator.workers.";

    /// <summary>Shorter keys can be guessed; 16 characters is the floor for a shared secret sent in a header.</summary>
    public const int MinAdminKeyLength = 16;

    /// <summary>Every configuration key in config.yaml order: <see cref="ConfigKeys.All"/>.</summary>
    public static IReadOnlyList<ConfigKey> Keys => ConfigKeys.All;

    /// <summary>Every proper prefix of a key path ("orchestrator", "orchestrator.deadlock", ...).</summary>
    private static readonly HashSet<string> Sections = Keys
        .SelectMany(k => Prefixes(k.Path))
        .ToHashSet(StringComparer.Ordinal);

    /// <summary>
    /// Loads, merges and validates the configuration.
    /// </summary>
    /// <param name="configPath">Config file to read; null or empty: <c>DEEPLINE_CONFIG</c>, else ./config.yaml if present.</param>
    /// <param name="environment">The environment to read DEEPLINE_* overrides from (null values count as unset).</param>
    /// <exception cref="ConfigException">Every problem found, one per line.</exception>
    public static DeeplineConfig Load(string? configPath, IReadOnlyDictionary<string, string?> environment) =>
        Load(configPath, environment, Directory.GetCurrentDirectory());

    /// <summary><see cref="Load(string, IReadOnlyDictionary{string, string})"/> with relative paths taken from <paramref name="workingDirectory"/>.</summary>
    internal static DeeplineConfig Load(string? configPath, IReadOnlyDictionary<string, string?> environment, string workingDirectory)
    {
        ArgumentNullException.ThrowIfNull(environment);
        ArgumentNullException.ThrowIfNull(workingDirectory);
        var errors = new List<string>();
        var notices = new List<string>();
        var raw = new Dictionary<string, Raw>(StringComparer.Ordinal);

        var file = ResolveFile(configPath, environment, workingDirectory, errors);
        if (file is not null && !ReadFile(file, raw, errors, notices))
            file = null; // reported; the environment is still checked

        foreach (var key in Keys)
        {
            if (environment.TryGetValue(key.EnvironmentVariable, out var value) && value is not null)
                raw[key.Path] = new Raw(null, value, Origin.Env(key.EnvironmentVariable));
        }

        // Kinds and ranges are checked over the file's YAML nodes (their lines and quoting make the error lines) and the
        // variables' text. The values then come the standard way: IConfiguration from the YAML provider and our variable
        // source, bound to the options classes, whose validators check what a value of the right kind can still get wrong.
        var values = new Values(raw, errors);
        var malformed = CheckKinds(values);
        var origins = values.Origins(malformed);
        DeeplineConfig? config = null;
        try
        {
            var sections = DeeplineSections.Bind(DeeplineConfigurationSources.Build(file, environment, malformed));
            errors.AddRange(sections.Validate(origins));
            config = sections.ToConfig();
        }
        catch (InvalidOperationException) when (errors.Count > 0)
        {
            // A value the checks above refused (e.g. a section written as a single value) may not bind: it was reported.
        }
        if (errors.Count > 0 || config is null)
            throw new ConfigException(errors);
        return notices.Count == 0 ? config : config with { Notices = notices };
    }

    /// <summary>
    /// The config file <see cref="Load(string, IReadOnlyDictionary{string, string})"/> reads for these arguments (full path), or null when it runs on
    /// defaults and environment only. Does not check that a named file exists.
    /// </summary>
    public static string? ResolvePath(string? configPath, IReadOnlyDictionary<string, string?> environment)
    {
        ArgumentNullException.ThrowIfNull(environment);
        var cwd = Directory.GetCurrentDirectory();
        if (!string.IsNullOrWhiteSpace(configPath))
            return Path.GetFullPath(configPath, cwd);
        if (environment.TryGetValue(ConfigPathVariable, out var fromEnv) && !string.IsNullOrWhiteSpace(fromEnv))
            return Path.GetFullPath(fromEnv, cwd);
        var local = Path.Combine(cwd, DefaultFileName);
        return File.Exists(local) ? local : null;
    }

    /// <summary>The effective configuration as "key: value" lines for the start-up log (webhook redacted).</summary>
    public static string Describe(DeeplineConfig c) => string.Join(Environment.NewLine, DescribeLines(c));

    /// <summary>The lines of <see cref="Describe"/>, one per key in <see cref="Keys"/> order.</summary>
    public static IReadOnlyList<string> DescribeLines(DeeplineConfig c)
    {
        ArgumentNullException.ThrowIfNull(c);
        return [.. Keys.Select(k => $"{k.Path}: {k.Show(c)}")];
    }

    // ---------------------------------------------------------------- file

    private static string? ResolveFile(
        string? configPath, IReadOnlyDictionary<string, string?> environment, string workingDirectory, List<string> errors)
    {
        string named;
        string from;
        if (!string.IsNullOrWhiteSpace(configPath))
        {
            named = configPath;
            from = "";
        }
        else if (environment.TryGetValue(ConfigPathVariable, out var fromEnv) && !string.IsNullOrWhiteSpace(fromEnv))
        {
            named = fromEnv;
            from = $" (from {ConfigPathVariable})";
        }
        else
        {
            var local = Path.Combine(workingDirectory, DefaultFileName);
            return File.Exists(local) ? local : null;
        }

        var full = Path.GetFullPath(named, workingDirectory);
        if (Directory.Exists(full))
        {
            errors.Add($"config file \"{named}\" is a directory{from}");
            return null;
        }
        if (!File.Exists(full))
        {
            errors.Add($"config file \"{named}\" does not exist{from}");
            return null;
        }
        return full;
    }

    /// <returns>False when the file could not be read or parsed (reported); true otherwise, even with unknown keys.</returns>
    private static bool ReadFile(string path, Dictionary<string, Raw> raw, List<string> errors, List<string> notices)
    {
        string text;
        try
        {
            text = File.ReadAllText(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            errors.Add($"config file \"{path}\" cannot be read: {e.Message}");
            return false;
        }

        var stream = new YamlStream();
        var parser = new TrackingParser(new Parser(new StringReader(text)));
        try
        {
            stream.Load(parser);
        }
        catch (YamlException e)
        {
            var (line, column) = (e.Start.Line, e.Start.Column);
            if (e.Message.Contains("tab", StringComparison.OrdinalIgnoreCase) && FirstTabIndentedLine(text) is { } tabLine)
                (line, column) = (tabLine, 1); // YamlDotNet points at the enclosing mapping, not at the tab
            errors.Add($"config file \"{path}\", line {line}, column {column}: malformed YAML: {e.Message}");
            return false;
        }
        catch (Exception e) when (e is InvalidOperationException or ArgumentException or FormatException)
        {
            // YamlDotNet occasionally gives up with a bare exception; the last event it read marks the spot.
            errors.Add($"config file \"{path}\", near line {Math.Max(1L, parser.LastLine)}: malformed YAML (the parser could not continue here)");
            return false;
        }

        if (stream.Documents.Count == 0)
            return true;
        if (stream.Documents.Count > 1)
        {
            errors.Add($"config file \"{path}\", line {stream.Documents[1].RootNode.Start.Line}: only one YAML document is allowed");
            return false;
        }

        var root = stream.Documents[0].RootNode;
        if (root is YamlMappingNode mapping)
        {
            WalkRoot(mapping, path, raw, errors, notices);
            return true;
        }
        if (IsNull(root))
            return true;
        errors.Add($"config file \"{path}\", line {root.Start.Line}: the top level must be a mapping (orchestrator: ...), got {KindOf(root)}");
        return false;
    }

    /// <summary>The seed's tuning and troubleshooting snippets start at <c>deadlock:</c>; the section they mean.</summary>
    public const string SeedDeadlockSection = "deadlock";

    /// <summary>
    /// The top level, where a <c>deadlock:</c> section (as the seed document writes its snippets) is read as
    /// <c>orchestrator.deadlock</c> with a notice: refusing a snippet copied from the product document helps nobody.
    /// A key given both ways is an error, since either choice could be the one the operator meant.
    /// </summary>
    private static void WalkRoot(YamlMappingNode mapping, string file, Dictionary<string, Raw> raw, List<string> errors, List<string> notices)
    {
        var seedKey = mapping.Children.Keys.FirstOrDefault(k => k is YamlScalarNode { Value: SeedDeadlockSection });
        if (seedKey is null)
        {
            Walk(mapping, "", file, raw, errors);
            return;
        }
        Walk(new YamlMappingNode(mapping.Children.Where(c => !ReferenceEquals(c.Key, seedKey))), "", file, raw, errors);
        var section = mapping.Children[seedKey];
        var target = Deadlock.TrimEnd('.');
        if (section is not YamlMappingNode seedSection)
        {
            if (!IsNull(section))
                errors.Add($"{SeedDeadlockSection}: must be a mapping of keys, got {KindOf(section)}{Origin.File(file, section.Start.Line).Suffix}");
            return;
        }
        notices.Add($"config file \"{file}\", line {seedKey.Start.Line}: top-level \"{SeedDeadlockSection}:\" read as {target} " +
            "(the seed document's short form); nest it under \"orchestrator:\" to silence this notice");
        var seed = new Dictionary<string, Raw>(StringComparer.Ordinal);
        Walk(seedSection, target, file, seed, errors);
        foreach (var (key, value) in seed)
        {
            if (raw.ContainsKey(key))
                errors.Add($"{key}: set both under \"orchestrator.deadlock:\" and under the top-level \"{SeedDeadlockSection}:\"{value.Origin.Suffix}; keep one");
            else
                raw[key] = value;
        }
    }

    private static int? FirstTabIndentedLine(string text)
    {
        var lines = text.Split('\n');
        for (var i = 0; i < lines.Length; i++)
        {
            var indent = lines[i].Length - lines[i].TrimStart(' ', '\t').Length;
            if (lines[i].AsSpan(0, indent).Contains('\t'))
                return i + 1;
        }
        return null;
    }

    private static void Walk(YamlMappingNode mapping, string prefix, string file, Dictionary<string, Raw> raw, List<string> errors)
    {
        foreach (var (keyNode, valueNode) in mapping.Children)
        {
            var keyOrigin = Origin.File(file, keyNode.Start.Line);
            if (keyNode is not YamlScalarNode { Value: { } name })
            {
                errors.Add($"{(prefix.Length == 0 ? "(top level)" : prefix)}: keys must be plain names, got {KindOf(keyNode)}{keyOrigin.Suffix}");
                continue;
            }

            var path = prefix.Length == 0 ? name : prefix + "." + name;
            if (ConfigKeys.Contains(path))
            {
                raw[path] = new Raw(valueNode, null, Origin.File(file, valueNode.Start.Line));
            }
            else if (Sections.Contains(path))
            {
                if (valueNode is YamlMappingNode section)
                    Walk(section, path, file, raw, errors);
                else if (!IsNull(valueNode))
                    errors.Add($"{path}: must be a mapping of keys, got {KindOf(valueNode)}{Origin.File(file, valueNode.Start.Line).Suffix}");
            }
            else
            {
                var known = KnownChildren(prefix);
                var guess = Suggest(name, known);
                errors.Add($"{path}: unknown key{(guess is null ? "" : $", did you mean {guess}?")} (known: {string.Join(", ", known)}){keyOrigin.Suffix}");
            }
        }
    }

    private static List<string> KnownChildren(string prefix)
    {
        var start = prefix.Length == 0 ? "" : prefix + ".";
        return Keys
            .Where(k => k.Path.StartsWith(start, StringComparison.Ordinal))
            .Select(k => k.Path[start.Length..].Split('.')[0])
            .Distinct(StringComparer.Ordinal)
            .ToList();
    }

    private static IEnumerable<string> Prefixes(string path)
    {
        for (var i = path.IndexOf('.'); i >= 0; i = path.IndexOf('.', i + 1))
            yield return path[..i];
    }

    // ---------------------------------------------------------------- check and bind

    /// <summary>
    /// Each key's value against its kind and range in the key table; returns the keys whose value was refused (their
    /// defaults stand in while the options validators look at the rest, so every problem is reported in one go).
    /// </summary>
    private static HashSet<string> CheckKinds(Values v)
    {
        var malformed = new HashSet<string>(StringComparer.Ordinal);
        foreach (var key in Keys)
        {
            var ok = key.Kind switch
            {
                ConfigKind.Integer => v.Int(key.Path) is not null,
                ConfigKind.Boolean => v.Bool(key.Path) is not null,
                ConfigKind.List => v.Strings(key.Path) is not null,
                ConfigKind.Pools => v.Pools(key.Path) is not null,
                _ => v.String(key.Path) is not null,
            };
            if (!ok)
                malformed.Add(key.Path);
        }
        return malformed;
    }

    /// <summary>Addresses only this machine can reach: an open API is safe only there.</summary>
    internal static bool IsLoopback(string host) =>
        host.Equals("localhost", StringComparison.OrdinalIgnoreCase) ||
        (System.Net.IPAddress.TryParse(host.Trim('[', ']'), out var ip) && System.Net.IPAddress.IsLoopback(ip));

    /// <summary>Null when the file holds a certificate with its private key; else what is wrong (never the password).</summary>
    internal static string? CertificateProblem(string path, string password)
    {
        if (!File.Exists(path)) return $"\"{path}\" does not exist";
        try
        {
            using var certificate = System.Security.Cryptography.X509Certificates.X509CertificateLoader.LoadPkcs12FromFile(path, password);
            return certificate.HasPrivateKey ? null : $"\"{path}\" holds no private key: a node must prove it holds the cluster certificate";
        }
        catch (System.Security.Cryptography.CryptographicException)
        {
            return $"\"{path}\" is not a PKCS#12 file this password opens (orchestrator.remoting.tls_certificate_password)";
        }
    }

    internal static bool IsNpgsqlConnection(string text)
    {
        try
        {
            var b = new Npgsql.NpgsqlConnectionStringBuilder(text);
            return !string.IsNullOrEmpty(b.Host);
        }
        catch (ArgumentException)
        {
            return false;
        }
    }

    internal static bool IsRedisConfiguration(string text)
    {
        try
        {
            return StackExchange.Redis.ConfigurationOptions.Parse(text).EndPoints.Count > 0;
        }
        catch (ArgumentException)
        {
            return false;
        }
    }

    internal static bool IsSeedAddress(string text)
    {
        var m = SeedAddressRegex().Match(text);
        return m.Success
            && int.TryParse(m.Groups["port"].ValueSpan, NumberStyles.None, CultureInfo.InvariantCulture, out var port)
            && port is >= 1 and <= 65535;
    }

    internal static bool IsHttpUrl(string text) =>
        !text.Any(c => char.IsWhiteSpace(c) || char.IsControl(c))
        && Uri.TryCreate(text, UriKind.Absolute, out var uri)
        && (uri.Scheme == Uri.UriSchemeHttp || uri.Scheme == Uri.UriSchemeHttps)
        && uri.Host.Length > 0;

    internal static bool IsPoolName(string name) => PoolNameRegex().IsMatch(name);

    [GeneratedRegex(@"^akka\.(ssl\.)?tcp://[A-Za-z0-9][A-Za-z0-9_-]*@(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._-]+):(?<port>[0-9]{1,5})$")]
    private static partial Regex SeedAddressRegex();

    [GeneratedRegex(@"^[A-Za-z0-9._:-]{1,128}$")]
    private static partial Regex PoolNameRegex();

    // ---------------------------------------------------------------- helpers

    private static bool IsNull(YamlNode node) =>
        node is YamlScalarNode { Style: ScalarStyle.Plain or ScalarStyle.Any } s && IsNullText(s.Value);

    private static bool IsNullText(string? text) => text is null or "" or "~" or "null" or "Null" or "NULL";

    private static string KindOf(YamlNode? node) => node switch
    {
        YamlMappingNode => "a mapping",
        YamlSequenceNode => "a list",
        YamlScalarNode s when IsNull(s) => "nothing",
        YamlScalarNode => "a single value",
        _ => "something else",
    };

    /// <summary>Quotes a (non-secret) value for an error message, escaped and cut short.</summary>
    internal static string Quote(string? text)
    {
        text ??= "";
        const int Max = 80;
        var sb = new StringBuilder("\"");
        foreach (var ch in text.Length > Max ? text[..Max] : text)
        {
            sb.Append(ch switch
            {
                '"' => "\\\"",
                '\\' => "\\\\",
                '\n' => "\\n",
                '\r' => "\\r",
                '\t' => "\\t",
                _ when char.IsControl(ch) => $"\\u{(int)ch:x4}",
                _ => ch.ToString(),
            });
        }
        if (text.Length > Max)
            sb.Append("...");
        return sb.Append('"').ToString();
    }

    private static string? Suggest(string name, IEnumerable<string> known)
    {
        string? best = null;
        var bestDistance = int.MaxValue;
        foreach (var candidate in known)
        {
            var distance = Distance(name.ToLowerInvariant(), candidate);
            if (distance < bestDistance)
            {
                bestDistance = distance;
                best = candidate;
            }
        }
        return best is not null && bestDistance <= Math.Max(1, Math.Min(3, best.Length / 3)) ? best : null;
    }

    private static int Distance(string a, string b)
    {
        var previous = new int[b.Length + 1];
        var current = new int[b.Length + 1];
        for (var j = 0; j <= b.Length; j++)
            previous[j] = j;
        for (var i = 1; i <= a.Length; i++)
        {
            current[0] = i;
            for (var j = 1; j <= b.Length; j++)
            {
                var cost = a[i - 1] == b[j - 1] ? 0 : 1;
                current[j] = Math.Min(Math.Min(current[j - 1] + 1, previous[j] + 1), previous[j - 1] + cost);
            }
            (previous, current) = (current, previous);
        }
        return previous[b.Length];
    }

    /// <summary>Where a value came from: an environment variable, a file line, or (neither) the defaults.</summary>
    private sealed record Origin(string? Variable, string? FilePath, long Line)
    {
        public static Origin Env(string variable) => new(variable, null, 0);

        public static Origin File(string path, long line) => new(null, path, line);

        /// <summary>" (from DEEPLINE_X)" or " (at file:line)", appended to an error line.</summary>
        public string Suffix => " (" + Inline + ")";

        public string Inline => Variable is not null
            ? "from " + Variable
            : string.Create(CultureInfo.InvariantCulture, $"at {FilePath}:{Line}");
    }

    /// <summary>A value before conversion: a YAML node from the file or a text from the environment.</summary>
    private sealed record Raw(YamlNode? Node, string? Text, Origin Origin);

    /// <summary>Typed access to the raw values; every failed conversion adds one error and yields null.</summary>
    private sealed class Values(Dictionary<string, Raw> raw, List<string> errors)
    {
        private const string BoolWords = "true/false, yes/no, 1/0";

        private readonly Dictionary<string, string> _itemOrigins = new(StringComparer.Ordinal);

        public List<string> Errors => errors;

        /// <summary>Where every key given (and every list entry) came from, for the validators' error lines.</summary>
        public ConfigOrigins Origins(IReadOnlySet<string> malformed)
        {
            var inline = raw.ToDictionary(kv => kv.Key, kv => kv.Value.Origin.Inline, StringComparer.Ordinal);
            foreach (var (item, origin) in _itemOrigins)
                inline[item] = origin;
            return new ConfigOrigins(inline, malformed);
        }

        public void Fail(string path, string problem) =>
            errors.Add($"{path}: {problem}{(raw.TryGetValue(path, out var r) ? r.Origin.Suffix : "")}");

        /// <summary>An integer within the key's range (<see cref="ConfigKey.Min"/>..<see cref="ConfigKey.Max"/>); absent: its default.</summary>
        public int? Int(string path)
        {
            var key = ConfigKeys.At(path);
            if (!raw.TryGetValue(path, out var r))
                return int.Parse(key.DefaultValue, CultureInfo.InvariantCulture);
            var requirement = key.Requirement;
            var text = Scalar(path, r, requirement, "numbers");
            if (text is null)
                return null;
            if (ParseInt(text, key.Min, key.Max) is { } n)
                return n;
            Fail(path, $"must be {requirement}, got {Quote(text)}");
            return null;
        }

        public bool? Bool(string path)
        {
            if (!raw.TryGetValue(path, out var r))
                return ConfigKeys.At(path).DefaultValue == "true";
            var requirement = $"a boolean ({BoolWords})";
            var text = Scalar(path, r, requirement, "booleans");
            if (text is null)
                return null;
            switch (text.ToLowerInvariant())
            {
                case "true" or "yes" or "1":
                    return true;
                case "false" or "no" or "0":
                    return false;
                default:
                    Fail(path, $"must be {requirement}, got {Quote(text)}");
                    return null;
            }
        }

        /// <summary>A string value; YAML null or an empty variable gives "". Values are never echoed.</summary>
        public string? String(string path)
        {
            if (!raw.TryGetValue(path, out var r))
                return ConfigKeys.At(path).DefaultValue is var d && d == "\"\"" ? "" : d;
            if (r.Text is not null)
                return r.Text.Trim();
            if (r.Node is YamlScalarNode s)
                return IsNull(s) ? "" : s.Value ?? "";
            Fail(path, $"must be a string, got {KindOf(r.Node)}");
            return null;
        }

        /// <summary>A list of strings: a YAML sequence, or a comma separated variable.</summary>
        public List<(string Text, Origin Origin)>? Strings(string path)
        {
            // Every list key defaults to [].
            if (!raw.TryGetValue(path, out var r))
                return [];
            if (r.Text is not null)
            {
                return r.Text.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries)
                    .Select(s => (s, r.Origin))
                    .ToList();
            }
            if (r.Node is YamlScalarNode s0 && IsNull(s0))
                return [];
            if (r.Node is not YamlSequenceNode sequence)
            {
                Fail(path, $"must be a list, e.g. [\"akka.tcp://deepline@10.0.0.1:4053\"], got {KindOf(r.Node)}");
                return null;
            }

            var result = new List<(string, Origin)>();
            var ok = true;
            var index = 0;
            foreach (var item in sequence.Children)
            {
                var origin = Origin.File(r.Origin.FilePath!, item.Start.Line);
                _itemOrigins[$"{path}[{index}]"] = origin.Inline;
                if (item is YamlScalarNode { Value: { } value } s && !IsNull(s))
                {
                    result.Add((value, origin));
                }
                else
                {
                    errors.Add($"{path}[{index}]: must be a string, got {KindOf(item)}{origin.Suffix}");
                    ok = false;
                }
                index++;
            }
            return ok ? result : null;
        }

        /// <summary>Pool name to slots: a YAML mapping, or <c>gpu=2,io=8</c> in the variable.</summary>
        public Dictionary<string, int>? Pools(string path)
        {
            // The default is {}: no extra pools.
            if (!raw.TryGetValue(path, out var r))
                return new Dictionary<string, int>(StringComparer.Ordinal);

            var entries = new List<(string Name, string? SlotsText, string? Problem, Origin Origin)>();
            if (r.Text is not null)
            {
                foreach (var entry in r.Text.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries))
                {
                    var eq = entry.IndexOf('=', StringComparison.Ordinal);
                    if (eq < 0)
                    {
                        errors.Add($"{path}: entry {Quote(entry)} must be name=slots, e.g. gpu=2{r.Origin.Suffix}");
                        entries.Add(("", null, "", r.Origin));
                        continue;
                    }
                    entries.Add((entry[..eq].Trim(), entry[(eq + 1)..].Trim(), null, r.Origin));
                }
            }
            else if (r.Node is YamlScalarNode s0 && IsNull(s0))
            {
                // "pools:" with nothing: no extra pools.
            }
            else if (r.Node is YamlMappingNode mapping)
            {
                foreach (var (keyNode, valueNode) in mapping.Children)
                {
                    var origin = Origin.File(r.Origin.FilePath!, valueNode.Start.Line);
                    if (keyNode is not YamlScalarNode { Value: { } name })
                    {
                        errors.Add($"{path}: pool names must be plain names, got {KindOf(keyNode)}{origin.Suffix}");
                        entries.Add(("", null, "", origin));
                        continue;
                    }
                    string? problem = valueNode switch
                    {
                        YamlScalarNode { Style: not (ScalarStyle.Plain or ScalarStyle.Any) } q =>
                            $"got the string {Quote(q.Value)} (write numbers without quotes)",
                        YamlScalarNode s when IsNull(s) => "got nothing",
                        YamlScalarNode => null,
                        _ => $"got {KindOf(valueNode)}",
                    };
                    entries.Add((name, (valueNode as YamlScalarNode)?.Value, problem, origin));
                }
            }
            else
            {
                Fail(path, $"must be a mapping of pool name to slots, e.g. {{ gpu: 2 }}, got {KindOf(r.Node)}");
                return null;
            }

            var pools = new Dictionary<string, int>(StringComparer.Ordinal);
            var ok = true;
            var key = ConfigKeys.At(path);
            var requirement = key.Requirement;
            foreach (var (name, slotsText, problem, origin) in entries)
            {
                if (problem == "")
                {
                    ok = false; // already reported
                    continue;
                }
                if (!IsPoolName(name))
                {
                    errors.Add($"{path}: pool name {Quote(name)} must be 1..128 characters of [A-Za-z0-9._:-]{origin.Suffix}");
                    ok = false;
                    continue;
                }
                if (name == "default")
                {
                    errors.Add($"{path}.default: pool \"default\" is sized by {Workers}slots, not listed here{origin.Suffix}");
                    ok = false;
                    continue;
                }
                if (problem is not null)
                {
                    errors.Add($"{path}.{name}: must be {requirement}, {problem}{origin.Suffix}");
                    ok = false;
                    continue;
                }
                if (ParseInt(slotsText ?? "", key.Min, key.Max) is not { } slots)
                {
                    errors.Add($"{path}.{name}: must be {requirement}, got {Quote(slotsText)}{origin.Suffix}");
                    ok = false;
                    continue;
                }
                if (!pools.TryAdd(name, slots))
                {
                    errors.Add($"{path}.{name}: pool listed twice{origin.Suffix}");
                    ok = false;
                }
            }
            return ok ? pools : null;
        }

        /// <summary>The text of a scalar value, or null (after reporting) when it is not a plain scalar.</summary>
        private string? Scalar(string path, Raw r, string requirement, string what)
        {
            if (r.Text is not null)
                return r.Text.Trim();
            switch (r.Node)
            {
                case YamlScalarNode s when IsNull(s):
                    Fail(path, $"must be {requirement}, got nothing");
                    return null;
                case YamlScalarNode { Style: ScalarStyle.Plain or ScalarStyle.Any, Value: { } value }:
                    return value;
                case YamlScalarNode s:
                    Fail(path, $"must be {requirement}, got the string {Quote(s.Value)} (write {what} without quotes)");
                    return null;
                default:
                    Fail(path, $"must be {requirement}, got {KindOf(r.Node)}");
                    return null;
            }
        }

        private static int? ParseInt(string text, int min, int max) =>
            int.TryParse(text, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var n) && n >= min && n <= max
                ? n
                : null;
    }

    /// <summary>Remembers where the parser was, for YamlDotNet failures that carry no position.</summary>
    private sealed class TrackingParser(IParser inner) : IParser
    {
        public long LastLine { get; private set; }

        public ParsingEvent? Current => inner.Current;

        public bool MoveNext()
        {
            var moved = inner.MoveNext();
            if (inner.Current is { } current)
                LastLine = current.End.Line;
            return moved;
        }
    }
}
