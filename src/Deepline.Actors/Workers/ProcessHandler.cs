using System.Diagnostics;
using System.Globalization;
using System.Runtime.InteropServices;
using System.Text;
using System.Text.Json;

namespace Deepline.Actors.Workers;

/// <summary>
/// <c>process</c>: runs an external command, <c>{"command": "...", "args"?: ["..."], "env"?: {"K": "v" | null},
/// "cwd"?: "...", "term_grace_s"?: N}</c>. No shell is involved unless the command names one. Exit code 0 succeeds
/// (result: exit code, duration, bounded stdout/stderr tails); any other exit fails with the stderr tail in the error.
/// <para>
/// The command runs in a session and process group of its own (started through <c>setsid</c>), so on cancellation
/// the whole tree can be reached: SIGTERM to the group and to every descendant found under /proc (which also
/// catches a child that moved to a group of its own), up to <c>term_grace_s</c> (default: half the pool's
/// cancel grace, at most 5 s) for them to exit, then SIGKILL. Processes a command leaves behind after a normal exit
/// are ended the same way: a task's processes never outlive the task.
/// </para>
/// </summary>
public sealed class ProcessHandler : ITaskHandler
{
    public const string SetsidPath = "/usr/bin/setsid";

    /// <summary>Characters of stdout and of stderr kept (the end of each).</summary>
    public const int TailChars = 4096;

    /// <summary>Characters of the stderr tail quoted in a failure's error.</summary>
    public const int ErrorTailChars = 1024;

    private const int SigKill = 9;
    private const int SigTerm = 15;
    private static readonly TimeSpan MaxDefaultTermGrace = TimeSpan.FromSeconds(5);
    private static readonly TimeSpan KillWait = TimeSpan.FromSeconds(5);
    private static readonly TimeSpan OutputDrainWait = TimeSpan.FromSeconds(2);

    public string Type => "process";

    public async Task<JsonElement?> ExecuteAsync(TaskContext context, CancellationToken cancellationToken)
    {
        var defaultGrace = TimeSpan.FromTicks(Math.Min(MaxDefaultTermGrace.Ticks, context.CancelGrace.Ticks / 2));
        var spec = ProcessSpec.Parse(context.Params, defaultGrace);
        if (!OperatingSystem.IsLinux() || !File.Exists(SetsidPath))
            throw new PlatformNotSupportedException($"process: needs Linux with {SetsidPath} (util-linux) to run commands in their own process group");
        cancellationToken.ThrowIfCancellationRequested();

        var psi = new ProcessStartInfo(SetsidPath)
        {
            UseShellExecute = false,
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            WorkingDirectory = spec.WorkingDirectory,
        };
        psi.ArgumentList.Add("--");
        psi.ArgumentList.Add(spec.ResolvedCommand);
        foreach (var arg in spec.Args) psi.ArgumentList.Add(arg);
        foreach (var (name, value) in spec.Environment)
        {
            if (value is null) psi.Environment.Remove(name);
            else psi.Environment[name] = value;
        }

        var started = Stopwatch.GetTimestamp();
        using var process = Process.Start(psi) ?? throw new InvalidOperationException($"process: could not start '{spec.Command}'");
        // setsid makes the child (not a group leader) the leader of a new session and group: its pid is the group id.
        var group = process.Id;
        process.StandardInput.Close();
        var stdout = new TailBuffer(TailChars);
        var stderr = new TailBuffer(TailChars);
        var readers = Task.WhenAll(stdout.DrainAsync(process.StandardOutput), stderr.DrainAsync(process.StandardError));

        try
        {
            await process.WaitForExitAsync(cancellationToken);
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            await ProcessTree.TerminateAsync(process.Id, group, spec.TermGrace);
            await Drain(readers);
            throw new OperationCanceledException(
                $"process '{spec.Command}' (pid {process.Id}) and its children were terminated on cancellation", cancellationToken);
        }

        // Leftovers (a background child) would hold the output pipes open and outlive the task: end them too.
        await ProcessTree.TerminateAsync(null, group, spec.TermGrace);
        await Drain(readers);
        var exitCode = process.ExitCode;
        var elapsed = Stopwatch.GetElapsedTime(started);
        if (exitCode != 0)
        {
            var tail = stderr.Text;
            if (tail.Length > ErrorTailChars) tail = "..." + tail[^ErrorTailChars..];
            var signal = exitCode > 128 && exitCode < 160 ? $" (killed by signal {exitCode - 128})" : "";
            throw new ProcessExitException(
                $"process '{spec.Command}' exited with code {exitCode}{signal}; stderr tail: {(tail.Length == 0 ? "(empty)" : tail.TrimEnd())}");
        }
        return JsonSerializer.SerializeToElement(new
        {
            exit_code = exitCode,
            duration_ms = (long)elapsed.TotalMilliseconds,
            stdout_tail = stdout.Text,
            stderr_tail = stderr.Text,
        });
    }

    private static async Task Drain(Task readers)
    {
        // The tree is gone, so the pipes are at EOF; the bound only guards against a process we could not reach.
        try { await readers.WaitAsync(OutputDrainWait); }
        catch (TimeoutException) { }
        catch (IOException) { }
    }

    /// <summary>Keeps the last <c>limit</c> characters of a stream, however long it runs.</summary>
    private sealed class TailBuffer(int limit)
    {
        private readonly StringBuilder _text = new();
        private readonly Lock _lock = new();

        public string Text
        {
            get
            {
                lock (_lock) return _text.Length > limit ? _text.ToString(_text.Length - limit, limit) : _text.ToString();
            }
        }

        public async Task DrainAsync(StreamReader reader)
        {
            var buffer = new char[4096];
            int n;
            while ((n = await reader.ReadAsync(buffer)) > 0)
            {
                lock (_lock)
                {
                    _text.Append(buffer, 0, n);
                    if (_text.Length > 2 * limit) _text.Remove(0, _text.Length - limit);
                }
            }
        }
    }

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
                var path = env.LastOrDefault(v => v.Item1 == "PATH") is { Item1: not null } set ? set.Item2 : System.Environment.GetEnvironmentVariable("PATH");
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

    /// <summary>
    /// The processes of one task, found under /proc: the descendants of its root and the members of its process
    /// group. Each is identified by pid and start time, so a pid reused by an unrelated process is never signalled.
    /// </summary>
    internal static class ProcessTree
    {
        /// <summary>
        /// SIGTERM to the group and every known member, up to <paramref name="grace"/> for them to exit, then SIGKILL
        /// (members found again, including children spawned meanwhile). Returns when none is left running.
        /// </summary>
        public static async Task TerminateAsync(int? root, int group, TimeSpan grace)
        {
            var members = Snapshot(root, group, new Dictionary<int, ulong>());
            if (members.Count == 0) return;
            Signal(group, members, SigTerm);
            if (await AllGone(group, members, grace)) return;
            members = Snapshot(root, group, members);
            Signal(group, members, SigKill);
            await AllGone(group, members, KillWait);
        }

        private static void Signal(int group, IReadOnlyDictionary<int, ulong> members, int signal)
        {
            if (group > 1) _ = kill(-group, signal);
            var self = System.Environment.ProcessId;
            foreach (var (pid, start) in members)
            {
                if (pid > 1 && pid != self && Read(pid) is { } now && now.StartTime == start)
                    _ = kill(pid, signal);
            }
        }

        private static async Task<bool> AllGone(int group, IReadOnlyDictionary<int, ulong> members, TimeSpan within)
        {
            var deadline = Stopwatch.GetTimestamp() + (long)(within.TotalSeconds * Stopwatch.Frequency);
            while (true)
            {
                if (!AnyRunning(group, members)) return true;
                if (Stopwatch.GetTimestamp() >= deadline) return false;
                await Task.Delay(10);
            }
        }

        private static bool AnyRunning(int group, IReadOnlyDictionary<int, ulong> members)
        {
            foreach (var (pid, start) in members)
            {
                if (Read(pid) is { State: not 'Z' } s && s.StartTime == start) return true;
            }
            return All().Any(s => s.Group == group && s.State != 'Z');
        }

        /// <summary>The group's members plus the descendants of the root and of every member already known.</summary>
        private static Dictionary<int, ulong> Snapshot(int? root, int group, IReadOnlyDictionary<int, ulong> known)
        {
            var all = All().ToList();
            var self = System.Environment.ProcessId;
            var result = new Dictionary<int, ulong>(known);
            var queue = new Queue<int>();
            foreach (var s in all)
            {
                if (s.Pid != self && (s.Group == group || s.Pid == root) && s.State != 'Z' && result.TryAdd(s.Pid, s.StartTime))
                    queue.Enqueue(s.Pid);
            }
            foreach (var pid in known.Keys) queue.Enqueue(pid);
            var children = all.ToLookup(s => s.Parent);
            while (queue.TryDequeue(out var pid))
            {
                foreach (var child in children[pid])
                {
                    if (child.Pid != self && child.State != 'Z' && result.TryAdd(child.Pid, child.StartTime))
                        queue.Enqueue(child.Pid);
                }
            }
            return result;
        }

        private static IEnumerable<Stat> All()
        {
            IEnumerable<string> dirs;
            try { dirs = Directory.EnumerateDirectories("/proc"); }
            catch (IOException) { yield break; }
            foreach (var dir in dirs)
            {
                if (int.TryParse(Path.GetFileName(dir), NumberStyles.None, CultureInfo.InvariantCulture, out var pid) && Read(pid) is { } s)
                    yield return s;
            }
        }

        private static Stat? Read(int pid)
        {
            string text;
            try { text = File.ReadAllText($"/proc/{pid}/stat"); }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException) { return null; }
            // "pid (comm) state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime stime cutime
            // cstime priority nice threads itrealvalue starttime ..."; comm may hold spaces and parentheses.
            var close = text.LastIndexOf(')');
            if (close < 0) return null;
            var fields = text[(close + 2)..].Split(' ');
            if (fields.Length < 20) return null;
            return new Stat(pid, fields[0][0],
                int.Parse(fields[1], CultureInfo.InvariantCulture),
                int.Parse(fields[2], CultureInfo.InvariantCulture),
                ulong.Parse(fields[19], CultureInfo.InvariantCulture));
        }

        private readonly record struct Stat(int Pid, char State, int Parent, int Group, ulong StartTime);

        [DllImport("libc", SetLastError = true)]
        private static extern int kill(int pid, int sig);
    }
}

/// <summary>An external command ended with a non-zero exit code.</summary>
public sealed class ProcessExitException(string message) : Exception(message);
