using System.Text;
using System.Text.RegularExpressions;
using Deepline.Cli;
using Deepline.Node.Configuration;
using Deepline.Tests.Shared;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.Logging;

namespace Deepline.Node.Tests.Docs;

/// <summary>
/// The documentation names only what exists. A reader copies a variable, a config key, an endpoint or a CLI command
/// from README.md, docs/ or deploy/README.md and expects it to work; each check here compares what the text names
/// with what the code has (the key table, the routes the node maps, the CLI's own command tree, the files on disk),
/// so a rename in the code or a typo in a page fails with the page, the line and the name.
/// </summary>
public sealed partial class DocsTests
{
    private static readonly string Root = FindRoot();

    private static string FindRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "Deepline.Actors.sln"))) return dir.FullName;
        throw new InvalidOperationException($"Deepline.Actors.sln not found above {AppContext.BaseDirectory}");
    }

    /// <summary>One line of a document; <see cref="Code"/> when it sits in a fenced block.</summary>
    public sealed record DocLine(string File, int Number, string Text, bool Code)
    {
        public string Where => $"{File}:{Number}";
    }

    /// <summary>The documents a reader follows: the landing page, the manual and the deployment guide.</summary>
    private static IReadOnlyList<string> Documents()
    {
        var docs = Directory.EnumerateFiles(Path.Combine(Root, "docs"), "*.md", SearchOption.AllDirectories);
        return [Path.Combine(Root, "README.md"), .. docs.Order(StringComparer.Ordinal), Path.Combine(Root, "deploy", "README.md")];
    }

    public static List<DocLine> Lines(string relativePath, string text)
    {
        var lines = new List<DocLine>();
        var fenced = false;
        var number = 0;
        foreach (var line in text.ReplaceLineEndings("\n").Split('\n'))
        {
            number++;
            if (line.TrimStart().StartsWith("```", StringComparison.Ordinal))
            {
                fenced = !fenced;
                continue;
            }
            lines.Add(new DocLine(relativePath, number, line, fenced));
        }
        return lines;
    }

    private static List<DocLine> AllLines() =>
        [.. Documents().SelectMany(f => Lines(Path.GetRelativePath(Root, f), File.ReadAllText(f)))];

    private static void AssertNone(List<string> failures, string what) =>
        Assert.True(failures.Count == 0, $"{failures.Count} {what}:\n" + string.Join("\n", failures));

    [Fact]
    public void The_walk_covers_the_manual()
    {
        // An empty or misdirected walk must not pass every check below.
        var files = Documents().Select(f => Path.GetRelativePath(Root, f).Replace('\\', '/')).ToList();
        Assert.Contains("docs/configuration.md", files);
        Assert.Contains("deploy/README.md", files);
        Assert.True(files.Count >= 15, string.Join(", ", files));
    }

    // ---- (a) environment variables ----

    /// <summary>
    /// Every DEEPLINE_* variable something in this repository reads, taken from where it is read: the node's key table
    /// and config-file variable, the CLI's and the .NET SDK's constants, the Python package's settings, and the
    /// switches the tests read (the docs tell contributors about those).
    /// </summary>
    public static HashSet<string> KnownVariables()
    {
        var known = new HashSet<string>(StringComparer.Ordinal)
        {
            ConfigLoader.ConfigPathVariable, DeeplineCli.UrlVariable, DeeplineCli.AdminKeyVariable, DeeplineCli.KeyVariable,
            Deepline.Worker.Sdk.TaskEventsClient.KeyVariable,
        };
        known.UnionWith(ConfigLoader.Keys.Select(k => k.EnvironmentVariable));
        foreach (var file in Directory.EnumerateFiles(Path.Combine(Root, "clients", "python", "deepline_worker"), "*.py"))
            known.UnionWith(PythonSetting().Matches(File.ReadAllText(file)).Select(m => m.Groups[1].Value));
        foreach (var file in Directory.EnumerateFiles(Path.Combine(Root, "tests"), "*.cs", SearchOption.AllDirectories)
                     .Where(f => !f.Contains($"{Path.DirectorySeparatorChar}obj{Path.DirectorySeparatorChar}", StringComparison.Ordinal)
                                 && !f.Contains($"{Path.DirectorySeparatorChar}bin{Path.DirectorySeparatorChar}", StringComparison.Ordinal)))
            known.UnionWith(TestSwitch().Matches(File.ReadAllText(file)).Select(m => m.Groups[1].Value));
        return known;
    }

    public static List<string> UnknownVariables(IEnumerable<DocLine> lines, HashSet<string> known) =>
        [.. lines.SelectMany(l => Variable().Matches(l.Text).Select(m => m.Value).Where(v => !known.Contains(v))
            .Distinct().Select(v => $"{l.Where}: {v} is read by nothing in this repository"))];

    [Fact]
    public void Every_DEEPLINE_variable_in_the_docs_is_one_something_reads()
    {
        var known = KnownVariables();
        // The sources above must have been found, or every name would look unknown for the wrong reason.
        Assert.Contains("DEEPLINE_DEADLOCK_CHECK_INTERVAL", known);
        Assert.Contains("DEEPLINE_WORKER_ID", known);
        Assert.Contains("DEEPLINE_UPDATE_CONFIG_DOCS", known);
        AssertNone(UnknownVariables(AllLines(), known), "DEEPLINE_* variables named in the docs that nothing reads");
    }

    // ---- (b) config keys ----

    public static List<string> UnknownConfigKeys(IEnumerable<DocLine> lines)
    {
        var keys = ConfigKeys.All.Select(k => k.Path).ToHashSet(StringComparer.Ordinal);
        var failures = new List<string>();
        foreach (var line in lines)
        foreach (Match m in ConfigPath().Matches(line.Text))
        {
            var path = m.Groups["path"].Value;
            // orchestrator.log is the node's log file, not a key.
            if (path == "orchestrator.log") continue;
            // A section (orchestrator.deadlock, orchestrator.limits.*) is right when some key lives under it.
            var known = keys.Contains(path) || keys.Any(k => k.StartsWith(path + ".", StringComparison.Ordinal));
            if (!known) failures.Add($"{line.Where}: {path} is not a key of ConfigKeys.All");
        }
        return failures;
    }

    [Fact]
    public void Every_orchestrator_key_in_the_docs_is_in_the_key_table() =>
        AssertNone(UnknownConfigKeys(AllLines()), "config keys named in the docs that the key table lacks");

    // ---- (c) HTTP endpoints ----

    /// <summary>A route as a method and its segments, parameters written as "{}".</summary>
    public sealed record Route(string Method, string[] Segments);

    /// <summary>The routes of a node built (not started) on the embedded defaults: exactly what it would map.</summary>
    private static async Task<List<Route>> NodeRoutesAsync()
    {
        var dir = Directory.CreateTempSubdirectory("deepline-docs-").FullName;
        try
        {
            var app = DeeplineNode.Build(SingleNode.LoopbackConfig(dir, 1), logging: l => l.ClearProviders());
            await using (app)
            {
                var routes = new List<Route>();
                foreach (var endpoint in ((IEndpointRouteBuilder)app).DataSources.SelectMany(d => d.Endpoints).OfType<RouteEndpoint>())
                {
                    var segments = Segments(endpoint.RoutePattern.RawText!);
                    // A pipeline mapped with Map (the Prometheus exporter, the health checks) answers any method.
                    var methods = endpoint.Metadata.GetMetadata<IHttpMethodMetadata>()?.HttpMethods ?? ["*"];
                    routes.AddRange(methods.Select(method => new Route(method, segments)));
                }
                return routes;
            }
        }
        finally
        {
            try { Directory.Delete(dir, true); } catch (IOException) { }
        }
    }

    private static string[] Segments(string path) =>
        [.. path.Split('?')[0].Trim('/').Split('/', StringSplitOptions.RemoveEmptyEntries)
            .Select(s => s.StartsWith('{') || s.StartsWith('<') ? "{}" : s)];

    private static bool Matches(Route route, string method, string[] doc)
    {
        if (route.Method != "*" && route.Method != method) return false;
        // "GET /cluster/*" names a family of routes.
        if (doc.Length > 0 && doc[^1] == "*")
            return route.Segments.Length >= doc.Length && doc[..^1].Select((s, i) => SegmentMatches(route.Segments[i], s)).All(x => x);
        return route.Segments.Length == doc.Length && doc.Select((s, i) => SegmentMatches(route.Segments[i], s)).All(x => x);
    }

    // A route parameter takes any value the text shows (run ids in examples); a placeholder in the text needs a parameter.
    private static bool SegmentMatches(string route, string doc) => route == "{}" || route == doc;

    /// <summary>Every "METHOD /path" in the text, and every curl to the local node, as (method, path).</summary>
    public static IEnumerable<(DocLine Line, string Method, string Path)> NamedEndpoints(IEnumerable<DocLine> lines)
    {
        foreach (var line in lines)
        {
            foreach (Match m in MethodAndPath().Matches(line.Text))
            {
                // "POST /cluster/leave\|down\|join": the alternatives replace the last segment.
                var alternatives = m.Groups["path"].Value.Split("\\|");
                var first = alternatives[0].TrimEnd('.', ':');
                yield return (line, m.Groups["method"].Value, first);
                var parent = first[..first.LastIndexOf('/')];
                foreach (var alt in alternatives.Skip(1)) yield return (line, m.Groups["method"].Value, parent + "/" + alt.TrimEnd('.', ':'));
            }
            if (!line.Text.Contains("curl", StringComparison.Ordinal)) continue;
            foreach (Match m in LocalUrl().Matches(line.Text))
            {
                var explicitMethod = CurlMethod().Match(line.Text);
                var method = explicitMethod.Success ? explicitMethod.Groups[1].Value : line.Text.Contains(" -d ", StringComparison.Ordinal) ? "POST" : "GET";
                yield return (line, method, m.Groups["path"].Value);
            }
        }
    }

    public static List<string> UnknownEndpoints(IEnumerable<DocLine> lines, IReadOnlyList<Route> routes) =>
        [.. NamedEndpoints(lines)
            .Where(e => Segments(e.Path).Length > 0 && !routes.Any(r => Matches(r, e.Method, Segments(e.Path))))
            .Select(e => $"{e.Line.Where}: {e.Method} {e.Path} is not a route the node maps")];

    [Fact]
    public async Task Every_endpoint_in_the_docs_is_a_route_the_node_maps()
    {
        var routes = await NodeRoutesAsync();
        Assert.True(routes.Count > 20, $"only {routes.Count} routes found");
        var named = NamedEndpoints(AllLines()).ToList();
        Assert.True(named.Count > 50, $"only {named.Count} endpoints found in the docs");
        AssertNone(UnknownEndpoints(AllLines(), routes), "endpoints named in the docs that the node does not map");
    }

    // ---- (d) CLI commands ----

    /// <summary>The words after "deepline" (in a code block, or an inline code span) up to the first option, comment,
    /// placeholder or shell syntax.</summary>
    public static IEnumerable<(DocLine Line, string[] Words)> CliInvocations(IEnumerable<DocLine> lines)
    {
        foreach (var line in lines)
        {
            var spans = line.Code ? new[] { line.Text } : InlineCode().Matches(line.Text).Select(m => m.Groups[1].Value).ToArray();
            foreach (var span in spans)
            foreach (Match m in CliCall().Matches(span))
            {
                var words = m.Groups["rest"].Value.Split(' ', StringSplitOptions.RemoveEmptyEntries)
                    .TakeWhile(w => !w.StartsWith('-') && !w.StartsWith('#') && !w.StartsWith('[') && !w.StartsWith('"')
                                    && !w.StartsWith('$') && !w.StartsWith('<') && !w.StartsWith('|') && w != "..." && !w.StartsWith('('))
                    .ToArray();
                if (words.Length > 0) yield return (line, words);
            }
        }
    }

    /// <summary>
    /// Walks the CLI's command tree through its own help: a word must be a subcommand of the command so far, unless
    /// that command takes arguments (then the rest are its arguments). Null when the invocation names real commands.
    /// </summary>
    public static async Task<string?> CliProblemAsync(string[] words, Dictionary<string, (HashSet<string> Commands, bool TakesArguments)?> cache)
    {
        var path = new List<string>();
        foreach (var word in words)
        {
            var key = string.Join(' ', path);
            if (!cache.TryGetValue(key, out var help))
                cache[key] = help = await HelpAsync([.. path]);
            if (help is null) return $"deepline {key} --help fails";
            if (help.Value.Commands.Contains(word))
            {
                path.Add(word);
                continue;
            }
            if (help.Value.TakesArguments && path.Count > 0) return null;
            return $"deepline {string.Join(' ', path.Append(word))}: '{word}' is not a command of 'deepline{(path.Count > 0 ? " " : "")}{key}'"
                   + (help.Value.Commands.Count > 0 ? $" (it has: {string.Join(", ", help.Value.Commands.Order(StringComparer.Ordinal))})" : "");
        }
        return null;
    }

    private static async Task<(HashSet<string> Commands, bool TakesArguments)?> HelpAsync(string[] path)
    {
        using var output = new StringWriter();
        using var error = new StringWriter();
        var code = await DeeplineCli.RunAsync([.. path, "--help"], output, error, new Dictionary<string, string?>());
        if (code != 0) return null;
        var commands = new HashSet<string>(StringComparer.Ordinal);
        var section = "";
        var takesArguments = false;
        foreach (var line in output.ToString().ReplaceLineEndings("\n").Split('\n'))
        {
            if (line.Length > 0 && !char.IsWhiteSpace(line[0])) section = line.TrimEnd();
            else if (section == "Commands:" && line.Trim().Length > 0) commands.Add(line.Trim().Split(' ')[0]);
            else if (section == "Arguments:" && line.Trim().Length > 0) takesArguments = true;
        }
        return (commands, takesArguments);
    }

    public static async Task<List<string>> UnknownCliCommandsAsync(IEnumerable<DocLine> lines)
    {
        var cache = new Dictionary<string, (HashSet<string> Commands, bool TakesArguments)?>();
        var failures = new List<string>();
        foreach (var (line, words) in CliInvocations(lines))
            if (await CliProblemAsync(words, cache) is { } problem) failures.Add($"{line.Where}: {problem}");
        return failures;
    }

    [Fact]
    public async Task Every_deepline_command_in_the_docs_is_one_the_CLI_has()
    {
        Assert.True(CliInvocations(AllLines()).Count() > 20, "too few deepline commands found in the docs");
        AssertNone(await UnknownCliCommandsAsync(AllLines()), "deepline commands in the docs that the CLI does not have");
    }

    // ---- (e) links ----

    /// <summary>GitHub's anchors for a document's headings: lower case, punctuation dropped, spaces to hyphens, repeats numbered.</summary>
    public static HashSet<string> Anchors(IEnumerable<DocLine> lines)
    {
        var anchors = new HashSet<string>(StringComparer.Ordinal);
        foreach (var line in lines.Where(l => !l.Code && l.Text.StartsWith('#')))
        {
            var title = line.Text.TrimStart('#').Trim();
            var slug = new StringBuilder();
            foreach (var c in title.ToLowerInvariant())
            {
                if (char.IsLetterOrDigit(c) || c is '-' or '_') slug.Append(c);
                else if (c == ' ') slug.Append('-');
            }
            var anchor = slug.ToString();
            for (var n = 1; !anchors.Add(anchor); n++) anchor = $"{slug}-{n}";
        }
        return anchors;
    }

    public static List<string> BrokenLinks(IEnumerable<DocLine> lines, Func<string, string?> readFile)
    {
        var failures = new List<string>();
        foreach (var line in lines.Where(l => !l.Code))
        foreach (Match m in Link().Matches(line.Text))
        {
            var target = m.Groups["target"].Value;
            if (Uri.TryCreate(target, UriKind.Absolute, out _)) continue;
            var hash = target.IndexOf('#');
            var file = hash < 0 ? target : target[..hash];
            var anchor = hash < 0 ? null : target[(hash + 1)..];
            var dir = Path.GetDirectoryName(line.File) ?? "";
            var resolved = file.Length == 0 ? line.File : Path.GetRelativePath(".", Path.Combine(dir, file));
            var text = readFile(resolved);
            if (text is null)
            {
                failures.Add($"{line.Where}: link {target}: {resolved} does not exist");
                continue;
            }
            if (anchor is not null && resolved.EndsWith(".md", StringComparison.Ordinal) && !Anchors(Lines(resolved, text)).Contains(anchor))
                failures.Add($"{line.Where}: link {target}: {resolved} has no heading #{anchor}");
        }
        return failures;
    }

    /// <summary>A file's text ("" for a directory or a picture), or null when the path does not exist.</summary>
    private static string? ReadFromRepository(string relative)
    {
        var full = Path.GetFullPath(Path.Combine(Root, relative));
        if (Directory.Exists(full)) return "";
        if (!File.Exists(full)) return null;
        return full.EndsWith(".md", StringComparison.Ordinal) ? File.ReadAllText(full) : "";
    }

    [Fact]
    public void Every_relative_link_in_the_docs_reaches_its_file_and_heading() =>
        AssertNone(BrokenLinks(AllLines(), ReadFromRepository), "broken links in the docs");

    // ---- each check can fail ----

    [Fact]
    public async Task A_bogus_name_fails_each_check()
    {
        var doc = Lines("docs/bogus.md", """
            Set `DEEPLINE_DEADLOCK_CHECK_INTERVAL` and `DEEPLINE_DEADLOCK_CHEK_INTERVAL`.
            Keys `orchestrator.deadlock.check_interval_s`, `orchestrator.limits.*` and `orchestrator.deadlock.chek_interval_s`.
            `GET /runs/{run_id}`, `POST /cluster/leave\|down\|join` and `GET /runs/{run_id}/tasks`, `POST /runs/{id}/cancel`.
            ```bash
            curl -s -X PUT localhost:8001/runs/r1/cancel -d '{}'
            curl -s localhost:8001/runz/r1
            $ deepline runs status r1 --json
            $ deepline runs frobnicate r1
            ```
            See [concepts](concepts.md#retries-and-attempts), [nothing](nothing.md) and [a heading](concepts.md#no-such-heading).
            """);
        Assert.Equal(["docs/bogus.md:1: DEEPLINE_DEADLOCK_CHEK_INTERVAL is read by nothing in this repository"], UnknownVariables(doc, KnownVariables()));
        Assert.Equal(["docs/bogus.md:2: orchestrator.deadlock.chek_interval_s is not a key of ConfigKeys.All"], UnknownConfigKeys(doc));
        Assert.Equal(["docs/bogus.md:3: GET /runs/{run_id}/tasks is not a route the node maps",
                      "docs/bogus.md:3: POST /runs/{id}/cancel is not a route the node maps",
                      "docs/bogus.md:6: GET /runz/r1 is not a route the node maps"], UnknownEndpoints(doc, await NodeRoutesAsync()));
        var cli = await UnknownCliCommandsAsync(doc);
        Assert.Single(cli);
        Assert.StartsWith("docs/bogus.md:8: deepline runs frobnicate: 'frobnicate' is not a command of 'deepline runs'", cli[0]);
        Assert.Equal(["docs/bogus.md:10: link nothing.md: docs/nothing.md does not exist",
                      "docs/bogus.md:10: link concepts.md#no-such-heading: docs/concepts.md has no heading #no-such-heading"],
            BrokenLinks(doc, ReadFromRepository));
    }

    [GeneratedRegex(@"\bDEEPLINE_[A-Z0-9_]*[A-Z0-9]")]
    private static partial Regex Variable();

    [GeneratedRegex(@"[""'](DEEPLINE_[A-Z0-9_]+)[""']")]
    private static partial Regex PythonSetting();

    [GeneratedRegex(@"GetEnvironmentVariable\(""(DEEPLINE_[A-Z0-9_]+)""\)")]
    private static partial Regex TestSwitch();

    [GeneratedRegex(@"(?<![\w/.-])(?<path>orchestrator(?:\.[a-z0-9_]+)+)")]
    private static partial Regex ConfigPath();

    [GeneratedRegex(@"\b(?<method>GET|POST|PUT|DELETE|PATCH)\s+(?<path>/(?:\\\||[^\s`'"")|,;\\?])*)")]
    private static partial Regex MethodAndPath();

    [GeneratedRegex(@"(?:localhost|127\.0\.0\.1):8001(?<path>/[^\s'""`?|)]*)")]
    private static partial Regex LocalUrl();

    [GeneratedRegex(@"-X\s+([A-Z]+)")]
    private static partial Regex CurlMethod();

    [GeneratedRegex(@"`([^`]+)`")]
    private static partial Regex InlineCode();

    // A command starts a line (after a "$ " prompt) or follows ;, &&, | or (: "kubectl -n deepline apply" is not one.
    [GeneratedRegex(@"(?:^\s*(?:\$\s+)?|[;&|(]\s*)deepline(?<rest>(?: +[^\s]+)*)")]
    private static partial Regex CliCall();

    [GeneratedRegex(@"!?\[[^\]]*\]\((?<target>[^)\s]+)\)")]
    private static partial Regex Link();
}
