using System.Text.Json;
using Deepline.Domain;

namespace Deepline.Actors.Workers;

// A process task's params, validated into what the handler starts.
public sealed partial class ProcessHandler
{
    /// <summary>Validated params of one process task.</summary>
    private sealed record ProcessSpec(
        string Command,
        string ResolvedCommand,
        IReadOnlyList<string> Args,
        IReadOnlyList<(string Name, string? Value)> Environment,
        string? WorkingDirectory,
        TimeSpan TermGrace)
    {
        private static readonly string[] KnownKeys = ["command", "args", "env", "cwd", "term_grace_s"];

        private const string Usage =
            "params {\"command\": \"...\", \"args\"?: [\"...\"], \"env\"?: {\"NAME\": \"value\"}, \"cwd\"?: \"dir\", \"term_grace_s\"?: N}";

        public static ProcessSpec Parse(JsonElement? parameters, TimeSpan defaultTermGrace)
        {
            if (parameters is not { ValueKind: JsonValueKind.Object } p)
                throw new ArgumentException($"process needs {Usage}");
            var problems = new List<string>();
            foreach (var property in p.EnumerateObject())
            {
                if (!KnownKeys.Contains(property.Name, StringComparer.Ordinal))
                    problems.Add($"unknown params key '{property.Name}' (known: {string.Join(", ", KnownKeys)})");
            }

            string? command = null;
            if (!p.TryGetProperty("command", out var c)) problems.Add("'command' is required");
            else if (c.ValueKind != JsonValueKind.String || string.IsNullOrWhiteSpace(c.GetString())) problems.Add("'command' must be a non-empty string");
            else command = c.GetString()!;

            var args = new List<string>();
            if (p.TryGetProperty("args", out var a))
            {
                if (a.ValueKind != JsonValueKind.Array) problems.Add("'args' must be an array of strings");
                else
                {
                    var i = 0;
                    foreach (var item in a.EnumerateArray())
                    {
                        if (item.ValueKind == JsonValueKind.String) args.Add(item.GetString()!);
                        else problems.Add($"'args[{i}]' must be a string, got {Kind(item)}");
                        i++;
                    }
                }
            }

            var env = new List<(string, string?)>();
            if (p.TryGetProperty("env", out var e))
            {
                if (e.ValueKind != JsonValueKind.Object) problems.Add("'env' must be an object of NAME: \"value\" (null unsets)");
                else
                {
                    foreach (var v in e.EnumerateObject())
                    {
                        if (v.Name.Length == 0 || v.Name.Contains('=', StringComparison.Ordinal) || v.Name.Contains('\0', StringComparison.Ordinal))
                            problems.Add($"'env' name '{v.Name}' is not a valid variable name");
                        else if (v.Name.StartsWith(ProcessAllowlist.ReservedEnvPrefix, StringComparison.OrdinalIgnoreCase) || v.Name == TreeVariable)
                            problems.Add($"'env.{v.Name}' is reserved: {ProcessAllowlist.ReservedEnvPrefix}* belong to the node, {TreeVariable} to the task's process tree");
                        else if (v.Value.ValueKind == JsonValueKind.String) env.Add((v.Name, v.Value.GetString()));
                        else if (v.Value.ValueKind == JsonValueKind.Null) env.Add((v.Name, null));
                        else problems.Add($"'env.{v.Name}' must be a string or null, got {Kind(v.Value)}");
                    }
                }
            }

            string? cwd = null;
            if (p.TryGetProperty("cwd", out var d))
            {
                if (d.ValueKind != JsonValueKind.String || string.IsNullOrWhiteSpace(d.GetString())) problems.Add("'cwd' must be a non-empty string");
                else if (!Directory.Exists(d.GetString())) problems.Add($"'cwd' directory '{d.GetString()}' does not exist");
                else cwd = Path.GetFullPath(d.GetString()!);
            }

            var termGrace = defaultTermGrace;
            if (p.TryGetProperty("term_grace_s", out var g))
            {
                if (g.ValueKind != JsonValueKind.Number || !g.TryGetDouble(out var seconds) || seconds < 0 || seconds > 3600)
                    problems.Add("'term_grace_s' must be a number of seconds from 0 to 3600");
                else termGrace = TimeSpan.FromSeconds(seconds);
            }

            string? resolved = null;
            if (command is not null)
            {
                // The node's PATH, never the task's: an allowed name must not resolve to a program the task chose.
                var path = System.Environment.GetEnvironmentVariable("PATH") ?? DefaultPath;
                resolved = Resolve(command, cwd ?? Directory.GetCurrentDirectory(), path);
                if (resolved is null)
                    problems.Add(command.Contains('/', StringComparison.Ordinal)
                        ? $"command '{command}' does not exist"
                        : $"command '{command}' not found on PATH");
            }

            if (problems.Count > 0)
                throw new ArgumentException($"process: {string.Join("; ", problems)}. Expected {Usage}");
            return new ProcessSpec(command!, resolved!, args, env, cwd, termGrace);
        }

        /// <summary>Resolved here rather than by setsid so that a typo fails with a clear message, not exit code 1.</summary>
        private static string? Resolve(string command, string cwd, string? path)
        {
            if (command.Contains('/', StringComparison.Ordinal))
            {
                var full = Path.GetFullPath(command, cwd);
                return File.Exists(full) ? full : null;
            }
            foreach (var dir in (path ?? "").Split(':', StringSplitOptions.RemoveEmptyEntries))
            {
                var candidate = Path.Combine(Path.GetFullPath(dir, cwd), command);
                if (File.Exists(candidate)) return candidate;
            }
            return null;
        }

        private static string Kind(JsonElement e) => e.ValueKind.ToString().ToLowerInvariant();
    }
}
