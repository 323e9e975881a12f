using System.Diagnostics;
using System.Globalization;
using System.Runtime.InteropServices;
using System.Text;
using System.Text.Json;
using Deepline.Domain;

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
public sealed class ProcessHandler(ProcessAllowlist allowlist, ProcessUser? runAs = null) : ITaskHandler
{
    public const string SetsidPath = "/usr/bin/setsid";
    public const string SetprivPath = "/usr/bin/setpriv";

    /// <summary>
    /// Every process of a task inherits this variable with a value of its own: processes that left the task's group and
    /// were orphaned (a <c>setsid</c> grandchild) are still found by it under /proc/&lt;pid&gt;/environ.
    /// </summary>
    public const string TreeVariable = "TASK_TREE_ID";

    /// <summary>The only variables of the node a task's process gets (plus the task's own <c>env</c>).</summary>
    public static readonly string[] InheritedVariables = ["PATH", "HOME", "LANG", "TZ"];

    private const string DefaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

    /// <summary>The handler of a node without process settings: it refuses every command.</summary>
    public ProcessHandler() : this(ProcessAllowlist.Disabled)
    {
    }

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
        // The task is reported CANCELLED only once its processes are gone, and the pool abandons a handler after
        // cancel_grace_s: SIGTERM's grace must end well within it, whatever the task asked for.
        var graceCap = TimeSpan.FromTicks(context.CancelGrace.Ticks / 2);
        var defaultGrace = TimeSpan.FromTicks(Math.Min(MaxDefaultTermGrace.Ticks, graceCap.Ticks));
        var spec = ProcessSpec.Parse(context.Params, defaultGrace);
        if (spec.TermGrace > graceCap) spec = spec with { TermGrace = graceCap };
        if (!allowlist.Allows(spec.Command))
            throw new ArgumentException(allowlist.Commands.IsEmpty
                ? $"process: process tasks are off on this node ({ProcessAllowlist.Setting} names no command)"
                : $"process: command '{spec.Command}' is not allowed on this node ({ProcessAllowlist.Setting})");
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
        if (runAs is { } user)
        {
            foreach (var arg in new[] { SetprivPath, "--reuid", user.Uid.ToString(CultureInfo.InvariantCulture), "--regid",
                         user.Gid.ToString(CultureInfo.InvariantCulture), "--init-groups", "--" })
                psi.ArgumentList.Add(arg);
        }
        psi.ArgumentList.Add(spec.ResolvedCommand);
        foreach (var arg in spec.Args) psi.ArgumentList.Add(arg);
        // A minimal environment: the node's own variables hold its secrets (admin key, webhook tokens, store password).
        psi.Environment.Clear();
        foreach (var name in InheritedVariables)
        {
            if (System.Environment.GetEnvironmentVariable(name) is { } value) psi.Environment[name] = value;
        }
        psi.Environment.TryAdd("PATH", DefaultPath);
        psi.Environment.TryAdd("LANG", "C.UTF-8");
        if (runAs is { } u)
        {
            psi.Environment["HOME"] = u.Home;
            psi.Environment["USER"] = u.Name;
            psi.Environment["LOGNAME"] = u.Name;
        }
        foreach (var (name, value) in spec.Environment)
        {
            if (value is null) psi.Environment.Remove(name);
            else psi.Environment[name] = value;
        }
        var tree = Guid.NewGuid().ToString("N");
        psi.Environment[TreeVariable] = tree;

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
            await ProcessTree.TerminateAsync(process.Id, group, tree, spec.TermGrace);
            await Drain(readers);
            throw new OperationCanceledException(
                $"process '{spec.Command}' (pid {process.Id}) and its children were terminated on cancellation", cancellationToken);
        }

        // Leftovers (a background child) would hold the output pipes open and outlive the task: end them too.
        await ProcessTree.TerminateAsync(null, group, tree, spec.TermGrace);
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
        public static async Task TerminateAsync(int? root, int group, string tree, TimeSpan grace)
        {
            var members = Snapshot(root, group, tree, new Dictionary<int, ulong>());
            if (members.Count == 0) return;
            Signal(group, members, SigTerm);
            if (await AllGone(group, tree, members, grace)) return;
            members = Snapshot(root, group, tree, members);
            Signal(group, members, SigKill);
            await AllGone(group, tree, members, KillWait);
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

        private static async Task<bool> AllGone(int group, string tree, IReadOnlyDictionary<int, ulong> members, TimeSpan within)
        {
            var deadline = Stopwatch.GetTimestamp() + (long)(within.TotalSeconds * Stopwatch.Frequency);
            while (true)
            {
                if (!AnyRunning(group, tree, members)) return true;
                if (Stopwatch.GetTimestamp() >= deadline) return false;
                await Task.Delay(10);
            }
        }

        private static bool AnyRunning(int group, string tree, IReadOnlyDictionary<int, ulong> members)
        {
            foreach (var (pid, start) in members)
            {
                if (Read(pid) is { State: not 'Z' } s && s.StartTime == start) return true;
            }
            return All().Any(s => s.State != 'Z' && (s.Group == group || InTree(s.Pid, tree)));
        }

        /// <summary>Whether the process carries the task's tree variable (found even after it left the group and was orphaned).</summary>
        private static bool InTree(int pid, string tree)
        {
            byte[] environ;
            try { environ = File.ReadAllBytes($"/proc/{pid}/environ"); }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException) { return false; }
            var needle = Encoding.ASCII.GetBytes($"{TreeVariable}={tree}\0");
            return environ.AsSpan().IndexOf(needle) >= 0;
        }

        /// <summary>The group's members plus the descendants of the root and of every member already known.</summary>
        private static Dictionary<int, ulong> Snapshot(int? root, int group, string tree, IReadOnlyDictionary<int, ulong> known)
        {
            var all = All().ToList();
            var self = System.Environment.ProcessId;
            var result = new Dictionary<int, ulong>(known);
            var queue = new Queue<int>();
            foreach (var s in all)
            {
                if (s.Pid != self && s.State != 'Z' && (s.Group == group || s.Pid == root || InTree(s.Pid, tree)) && result.TryAdd(s.Pid, s.StartTime))
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

/// <summary>The account process tasks run as (<c>orchestrator.workers.process.user</c>), resolved from /etc/passwd at start-up.</summary>
public sealed record ProcessUser(string Name, int Uid, int Gid, string Home)
{
    /// <summary>The entry of <paramref name="name"/> in the passwd file, or null.</summary>
    public static ProcessUser? Find(string name, string passwd = "/etc/passwd")
    {
        if (!File.Exists(passwd)) return null;
        foreach (var line in File.ReadLines(passwd))
        {
            var f = line.Split(':');
            if (f.Length >= 6 && f[0] == name
                && int.TryParse(f[2], NumberStyles.None, CultureInfo.InvariantCulture, out var uid)
                && int.TryParse(f[3], NumberStyles.None, CultureInfo.InvariantCulture, out var gid))
                return new ProcessUser(name, uid, gid, f[5].Length > 0 ? f[5] : "/");
        }
        return null;
    }
}

/// <summary>An external command ended with a non-zero exit code.</summary>
public sealed class ProcessExitException(string message) : Exception(message);
