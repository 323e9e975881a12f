using System.Diagnostics;
using System.Globalization;
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
public sealed partial class ProcessHandler(ProcessAllowlist allowlist, ProcessUser? runAs = null) : ITaskHandler
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
