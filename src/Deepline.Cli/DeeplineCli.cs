using System.CommandLine;
using System.Globalization;

namespace Deepline.Cli;

/// <summary>What a command needs: the parsed line, the node, where to write.</summary>
public sealed record CommandContext(ParseResult Parse, NodeClient Node, Output Out, TextWriter Error, CancellationToken Cancellation)
{
    public T Get<T>(Option<T> option) => Parse.GetValue(option)!;

    public T Get<T>(Argument<T> argument) => Parse.GetValue(argument)!;
}

/// <summary>
/// The <c>deepline</c> command line: pbm's cluster palettes plus runs and deadlock, over the node's HTTP API.
/// Exit codes: 0 ok, 1 the node refused or failed, 2 usage, 3 node unreachable.
/// </summary>
public static class DeeplineCli
{
    public const string DefaultUrl = "http://127.0.0.1:8001";
    public const string UrlVariable = "DEEPLINE_URL";
    public const string AdminKeyVariable = "DEEPLINE_ADMIN_KEY";
    public const string KeyVariable = "DEEPLINE_KEY";

    public static async Task<int> RunAsync(string[] args, TextWriter output, TextWriter error,
        IReadOnlyDictionary<string, string?> environment, CancellationToken ct = default)
    {
        var root = new RootCommand("deepline: operate a Deepline.Actors cluster (pbm's cluster commands, runs, deadlock monitor)");
        var env = new Env(environment, output, error);
        root.Options.Add(env.UrlOption);
        root.Options.Add(env.AdminKeyOption);
        root.Options.Add(env.KeyOption);
        root.Options.Add(env.JsonOption);
        root.Options.Add(env.TimeoutOption);
        root.Subcommands.Add(ClusterCommands.Build(env));
        root.Subcommands.Add(ActorCommands.Build(env));
        root.Subcommands.Add(RunsCommands.Build(env));
        root.Subcommands.Add(DeadlockCommands.Build(env));
        root.Subcommands.Add(PoolCommands.Build(env));
        root.Subcommands.Add(ResourceCommands.Build(env));
        root.Subcommands.Add(StoreCommands.Build(env));

        var parse = root.Parse(args);
        if (parse.Errors.Count > 0)
        {
            foreach (var e in parse.Errors) error.WriteLine($"deepline: {e.Message}");
            error.WriteLine($"Run 'deepline {string.Join(' ', CommandPath(parse))} --help' for usage.".Replace("  ", " ", StringComparison.Ordinal));
            return ExitCodes.Usage;
        }
        return await parse.InvokeAsync(new InvocationConfiguration { Output = output, Error = error, EnableDefaultExceptionHandler = false }, ct);
    }

    private static IEnumerable<string> CommandPath(ParseResult parse)
    {
        var names = new List<string>();
        for (var r = parse.CommandResult; r is not null; r = r.Parent as System.CommandLine.Parsing.CommandResult)
        {
            if (r.Command is not RootCommand) names.Insert(0, r.Command.Name);
        }
        return names;
    }

    /// <summary>Process-wide settings and writers, handed to every command builder.</summary>
    public sealed record Env(IReadOnlyDictionary<string, string?> Variables, TextWriter Output, TextWriter Error)
    {
        public Option<string?> UrlOption { get; } = new("--url")
        {
            Description = $"Node HTTP address (default ${UrlVariable}, else {DefaultUrl})",
            Recursive = true,
        };

        public Option<string?> AdminKeyOption { get; } = new("--admin-key")
        {
            Description = $"Admin key for cluster leave/down/join and runs force-complete (default ${AdminKeyVariable})",
            Recursive = true,
        };

        public Option<string?> KeyOption { get; } = new("--key")
        {
            Description = $"API key sent as Authorization: Bearer on every request, for nodes with a keys file (default ${KeyVariable})",
            Recursive = true,
        };

        public Option<bool> JsonOption { get; } = new("--json")
        {
            Description = "Print the node's JSON instead of tables (for scripts)",
            Recursive = true,
        };

        public Option<double> TimeoutOption { get; } = new("--timeout")
        {
            Description = "Seconds to wait for each answer of the node",
            DefaultValueFactory = _ => 30,
            Recursive = true,
        };

        public string? Variable(string name) => Variables.TryGetValue(name, out var v) && !string.IsNullOrWhiteSpace(v) ? v.Trim() : null;

        /// <summary>A leaf command whose action gets a ready <see cref="CommandContext"/> and maps failures to exit codes.</summary>
        public Command Leaf(string name, string description, Func<CommandContext, Task<int>> run, params Symbol[] symbols)
        {
            var command = new Command(name, description);
            foreach (var symbol in symbols)
            {
                if (symbol is Option o) command.Options.Add(o);
                else if (symbol is Argument a) command.Arguments.Add(a);
            }
            command.SetAction((parse, ct) => Execute(parse, ct, run));
            return command;
        }

        private async Task<int> Execute(ParseResult parse, CancellationToken ct, Func<CommandContext, Task<int>> run)
        {
            var url = parse.GetValue(UrlOption) ?? Variable(UrlVariable) ?? DefaultUrl;
            if (!Uri.TryCreate(url, UriKind.Absolute, out var baseUrl) || (baseUrl.Scheme != Uri.UriSchemeHttp && baseUrl.Scheme != Uri.UriSchemeHttps))
            {
                Error.WriteLine($"deepline: --url must be an absolute http(s) URL such as {DefaultUrl}, got \"{url}\"");
                return ExitCodes.Usage;
            }
            var timeout = parse.GetValue(TimeoutOption);
            if (timeout is <= 0 or > 3600 || double.IsNaN(timeout))
            {
                Error.WriteLine($"deepline: --timeout must be more than 0 and at most 3600 seconds, got {timeout.ToString(CultureInfo.InvariantCulture)}");
                return ExitCodes.Usage;
            }
            var adminKey = parse.GetValue(AdminKeyOption) ?? Variable(AdminKeyVariable);
            var key = parse.GetValue(KeyOption) ?? Variable(KeyVariable);
            using var node = new NodeClient(baseUrl, adminKey, TimeSpan.FromSeconds(timeout), key);
            try
            {
                return await run(new CommandContext(parse, node, new Output(Output, parse.GetValue(JsonOption)), Error, ct));
            }
            catch (CliException ex)
            {
                Error.WriteLine($"deepline: {ex.Message}");
                return ex.ExitCode;
            }
            catch (OperationCanceledException) when (ct.IsCancellationRequested)
            {
                Error.WriteLine("deepline: interrupted");
                return 130;
            }
        }
    }
}
