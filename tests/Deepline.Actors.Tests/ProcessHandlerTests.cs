using System.Diagnostics;
using System.Text.Json;
using Deepline.Actors.Workers;
using Deepline.Domain;
using static Deepline.Actors.Tests.Specs;

namespace Deepline.Actors.Tests;

/// <summary>The <c>process</c> handler against real processes: exit codes, output tails, params, and process-tree termination.</summary>
public sealed class ProcessHandlerTests : IDisposable
{
    private readonly TempDir _dir = new();
    private static readonly ProcessAllowlist Allowed = new(["bash", "sh", "sleep", "true", "pyhton3", "/bin/sh", "env", "id", "printenv", "pwd"]);
    private readonly ProcessHandler _handler = new(Allowed);

    public void Dispose() => _dir.Dispose();

    private static TaskContext Context(object parameters, double cancelGraceS = 10) =>
        new("run", "task", "process", JsonSerializer.SerializeToElement(parameters)) { CancelGrace = TimeSpan.FromSeconds(cancelGraceS) };

    private static object Bash(string script, object? extra = null) => extra is null
        ? new { command = "bash", args = new[] { "-c", script } }
        : new Dictionary<string, object> { ["command"] = "bash", ["args"] = new[] { "-c", script }, ["term_grace_s"] = extra };

    /// <summary>Alive = has a /proc entry that is not a zombie (an exited child nobody reaped yet runs nothing).</summary>
    private static bool IsAlive(int pid)
    {
        try
        {
            var stat = File.ReadAllText($"/proc/{pid}/stat");
            return stat[(stat.LastIndexOf(')') + 2)] != 'Z';
        }
        catch (IOException)
        {
            return false;
        }
    }

    private async Task<int> ReadPid(string name)
    {
        var path = Path.Combine(_dir.Path, name);
        await Await.Until(() => File.Exists(path) && File.ReadAllText(path).EndsWith('\n'), TimeSpan.FromSeconds(10), $"{name} written");
        return int.Parse(File.ReadAllText(path).Trim());
    }

    [Fact]
    public async Task Exit_code_zero_succeeds_with_the_exit_code_and_the_output_tails()
    {
        var result = await _handler.ExecuteAsync(Context(Bash("echo hello; echo careful >&2")), CancellationToken.None);

        var r = result!.Value;
        Assert.Equal(0, r.GetProperty("exit_code").GetInt32());
        Assert.Equal("hello\n", r.GetProperty("stdout_tail").GetString());
        Assert.Equal("careful\n", r.GetProperty("stderr_tail").GetString());
    }

    [Fact]
    public async Task A_non_zero_exit_fails_with_the_code_and_the_stderr_tail()
    {
        var e = await Assert.ThrowsAsync<ProcessExitException>(() =>
            _handler.ExecuteAsync(Context(Bash("echo 'disk is full' >&2; exit 3")), CancellationToken.None));

        Assert.Contains("exited with code 3", e.Message);
        Assert.Contains("disk is full", e.Message);
    }

    [Fact]
    public async Task Output_is_kept_as_a_bounded_tail()
    {
        var result = await _handler.ExecuteAsync(Context(Bash("head -c 1000000 /dev/zero | tr '\\0' x; echo; echo END")), CancellationToken.None);

        var stdout = result!.Value.GetProperty("stdout_tail").GetString()!;
        Assert.Equal(ProcessHandler.TailChars, stdout.Length);
        Assert.EndsWith("xx\nEND\n", stdout);
    }

    [Fact]
    public async Task Env_and_cwd_are_applied_and_no_shell_is_involved()
    {
        var parameters = new
        {
            command = "printenv",
            args = new[] { "GREETING", "$HOME" }, // passed verbatim: no shell expands "$HOME"
            env = new Dictionary<string, string?> { ["GREETING"] = "hi there" },
            cwd = _dir.Path,
        };
        var e = await Assert.ThrowsAsync<ProcessExitException>(() => _handler.ExecuteAsync(Context(parameters), CancellationToken.None));
        Assert.Contains("exited with code 1", e.Message); // printenv: one of the names ("$HOME") is not set

        var pwd = await _handler.ExecuteAsync(Context(new { command = "pwd", cwd = _dir.Path }), CancellationToken.None);
        Assert.Equal(Path.GetFullPath(_dir.Path) + "\n", pwd!.Value.GetProperty("stdout_tail").GetString());
        var env = await _handler.ExecuteAsync(Context(new { command = "printenv", args = new[] { "GREETING" }, env = new { GREETING = "hi there" } }),
            CancellationToken.None);
        Assert.Equal("hi there\n", env!.Value.GetProperty("stdout_tail").GetString());
    }

    [Fact]
    public async Task Cancel_terminates_the_command_and_its_children()
    {
        using var cts = new CancellationTokenSource();
        var running = _handler.ExecuteAsync(Context(Bash(
            $"sleep 300 & echo $! > {_dir.Path}/child.pid; echo $$ > {_dir.Path}/parent.pid; wait")), cts.Token);
        var (parent, child) = (await ReadPid("parent.pid"), await ReadPid("child.pid"));
        Assert.True(IsAlive(parent) && IsAlive(child));

        var sw = Stopwatch.StartNew();
        await cts.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => running);

        Assert.False(IsAlive(parent), "the command survived its cancellation");
        Assert.False(IsAlive(child), "the command's child survived its cancellation");
        Assert.True(sw.Elapsed < TimeSpan.FromSeconds(3), $"SIGTERM should have been enough, took {sw.Elapsed}");
    }

    [Fact]
    public async Task Processes_that_ignore_SIGTERM_or_leave_the_group_are_killed_after_the_term_grace()
    {
        using var cts = new CancellationTokenSource();
        var running = _handler.ExecuteAsync(Context(Bash(
            $"trap '' TERM; sleep 300 & echo $! > {_dir.Path}/child.pid; setsid sleep 301 & echo $! > {_dir.Path}/escaped.pid; " +
            $"echo $$ > {_dir.Path}/parent.pid; wait", extra: 0.5)), cts.Token);
        var pids = new[] { await ReadPid("parent.pid"), await ReadPid("child.pid"), await ReadPid("escaped.pid") };
        await Await.Until(() => File.ReadAllText($"/proc/{pids[2]}/cmdline").StartsWith("sleep"), TimeSpan.FromSeconds(5), "setsid exec'd sleep");

        var sw = Stopwatch.StartNew();
        await cts.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => running);

        Assert.True(sw.Elapsed >= TimeSpan.FromSeconds(0.5), $"SIGKILL came before the term grace was over ({sw.Elapsed})");
        Assert.All(pids, pid => Assert.False(IsAlive(pid), $"pid {pid} survived"));
    }

    [Fact]
    public async Task Background_children_left_after_a_normal_exit_are_ended_and_do_not_hold_the_task()
    {
        var result = await _handler.ExecuteAsync(Context(Bash($"sleep 300 & echo $! > {_dir.Path}/child.pid; echo done")), CancellationToken.None);

        Assert.Equal("done\n", result!.Value.GetProperty("stdout_tail").GetString());
        Assert.False(IsAlive(await ReadPid("child.pid")), "a background child outlived its task");
    }

    public static TheoryData<string, string> BadParams => new()
    {
        { "null", "process needs params {\"command\"" },
        { "{\"args\": [\"x\"]}", "'command' is required" },
        { "{\"command\": \"\"}", "'command' must be a non-empty string" },
        { "{\"command\": \"sh\", \"argz\": [\"-c\"]}", "unknown params key 'argz' (known: command, args, env, cwd, term_grace_s)" },
        { "{\"command\": \"no-such-command-deepline\"}", "command 'no-such-command-deepline' not found on PATH" },
        { "{\"command\": \"./nope.sh\"}", "command './nope.sh' does not exist" },
        { "{\"command\": \"sh\", \"args\": \"-c true\"}", "'args' must be an array of strings" },
        { "{\"command\": \"sh\", \"args\": [\"-c\", 1]}", "'args[1]' must be a string, got number" },
        { "{\"command\": \"sh\", \"env\": {\"A\": 1}}", "'env.A' must be a string or null, got number" },
        { "{\"command\": \"sh\", \"cwd\": \"/no/such/dir\"}", "'cwd' directory '/no/such/dir' does not exist" },
        { "{\"command\": \"sh\", \"term_grace_s\": -1}", "'term_grace_s' must be a number of seconds from 0 to 3600" },
    };

    [Theory]
    [MemberData(nameof(BadParams))]
    public async Task Bad_params_fail_readably_before_anything_runs(string json, string expected)
    {
        var context = new TaskContext("run", "task", "process", JsonDocument.Parse(json).RootElement);
        var e = await Assert.ThrowsAsync<ArgumentException>(() => _handler.ExecuteAsync(context, CancellationToken.None));
        Assert.Contains(expected, e.Message);
    }

    [Fact]
    public async Task The_child_sees_a_minimal_environment_and_never_the_nodes_secrets()
    {
        Environment.SetEnvironmentVariable("DEEPLINE_ADMIN_KEY", "node-secret-admin-key-123");
        Environment.SetEnvironmentVariable("AWS_SECRET_ACCESS_KEY", "node-secret-aws");
        try
        {
            var result = await _handler.ExecuteAsync(Context(new { command = "env", env = new { GREETING = "hi" } }), CancellationToken.None);
            var names = result!.Value.GetProperty("stdout_tail").GetString()!.Split('\n', StringSplitOptions.RemoveEmptyEntries)
                .Select(line => line[..line.IndexOf('=')]).Order().ToList();

            Assert.DoesNotContain("node-secret", result.Value.GetProperty("stdout_tail").GetString());
            Assert.All(names, n => Assert.Contains(n, new[] { "PATH", "HOME", "LANG", "TZ", "GREETING", ProcessHandler.TreeVariable }));
            Assert.Contains("GREETING", names);
        }
        finally
        {
            Environment.SetEnvironmentVariable("DEEPLINE_ADMIN_KEY", null);
            Environment.SetEnvironmentVariable("AWS_SECRET_ACCESS_KEY", null);
        }
    }

    [Fact]
    public async Task A_task_may_not_set_the_nodes_variables_nor_run_a_command_the_node_does_not_allow()
    {
        var reserved = await Assert.ThrowsAsync<ArgumentException>(() =>
            _handler.ExecuteAsync(Context(new { command = "env", env = new { DEEPLINE_REDIS = "evil:6379" } }), CancellationToken.None));
        Assert.Contains("'env.DEEPLINE_REDIS' is reserved", reserved.Message);

        var off = await Assert.ThrowsAsync<ArgumentException>(() =>
            new ProcessHandler().ExecuteAsync(Context(new { command = "true" }), CancellationToken.None));
        Assert.Contains("process tasks are off on this node", off.Message);
        var other = await Assert.ThrowsAsync<ArgumentException>(() =>
            new ProcessHandler(new(["python3"])).ExecuteAsync(Context(new { command = "true" }), CancellationToken.None));
        Assert.Contains("command 'true' is not allowed on this node (orchestrator.workers.process.allowed_commands", other.Message);
    }

    [Fact]
    public async Task An_allowed_name_resolves_on_the_nodes_PATH_not_on_one_the_task_sets()
    {
        var fake = Path.Combine(_dir.Path, "true");
        await File.WriteAllTextAsync(fake, "#!/bin/sh\necho hijacked\n");
        if (!OperatingSystem.IsWindows()) File.SetUnixFileMode(fake, UnixFileMode.UserRead | UnixFileMode.UserExecute);

        var result = await _handler.ExecuteAsync(Context(new { command = "true", env = new { PATH = _dir.Path } }), CancellationToken.None);

        Assert.Equal("", result!.Value.GetProperty("stdout_tail").GetString());
    }

    [Fact]
    public async Task A_setsid_grandchild_is_ended_when_its_task_exits_and_when_its_task_is_cancelled()
    {
        // setsid moves the grandchild to a session of its own; its parent exits, so it is orphaned to init.
        await _handler.ExecuteAsync(Context(Bash($"setsid sleep 300 & echo $! > {_dir.Path}/orphan.pid; sleep 0.2")), CancellationToken.None);
        var orphan = await ReadPid("orphan.pid");
        Assert.False(IsAlive(orphan), "a setsid grandchild outlived its finished task");

        using var cts = new CancellationTokenSource();
        var running = _handler.ExecuteAsync(Context(Bash($"(setsid sleep 301 &) ; pgrep -n -f 'sleep 301' > {_dir.Path}/orphan2.pid; exec sleep 302")), cts.Token);
        var second = await ReadPid("orphan2.pid");
        Assert.True(IsAlive(second));
        await cts.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => running);
        Assert.False(IsAlive(second), "a setsid grandchild outlived its cancelled task");
    }

    [Fact]
    public async Task A_child_that_ignores_SIGTERM_is_gone_within_cancel_grace_whatever_term_grace_it_asked_for()
    {
        using var cts = new CancellationTokenSource();
        var running = _handler.ExecuteAsync(Context(Bash($"trap '' TERM; echo $$ > {_dir.Path}/stubborn.pid; while true; do sleep 1; done", extra: 3600), cancelGraceS: 2), cts.Token);
        var stubborn = await ReadPid("stubborn.pid");

        var sw = Stopwatch.StartNew();
        await cts.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => running);

        Assert.False(IsAlive(stubborn), "a SIGTERM-ignoring child outlived its cancelled task");
        Assert.True(sw.Elapsed < TimeSpan.FromSeconds(2), $"the handler returned after {sw.Elapsed}, beyond cancel_grace_s: its task would be reported CANCELLED while it still ran");
    }

    [Fact]
    public async Task Tasks_run_as_the_configured_user()
    {
        var nobody = ProcessUser.Find("nobody");
        Assert.NotNull(nobody);
        if (Environment.UserName != "root") return; // switching users needs root; the config refuses it otherwise (ConfigLoaderTests)
        var handler = new ProcessHandler(Allowed, nobody);

        var result = await handler.ExecuteAsync(Context(new { command = "id", args = new[] { "-u" } }), CancellationToken.None);

        Assert.Equal($"{nobody.Uid}\n", result!.Value.GetProperty("stdout_tail").GetString());
    }

    [Fact]
    public async Task Cancelling_a_run_through_the_cluster_ends_its_process_tree()
    {
        await using var node = await TestNode.StartAsync(_dir.Path + "/node", processes: Allowed);
        var script = $"sleep 300 & echo $! > {_dir.Path}/child.pid; echo $$ > {_dir.Path}/parent.pid; wait";
        var spec = new TaskSpec("p", "process", TaskSpec.DefaultPool,
            JsonSerializer.SerializeToElement(new { command = "bash", args = new[] { "-c", script } }), []);
        await node.Ask<RunReply>(new SubmitRun(new RunSpec("proc", "process run", "tests", [spec])));
        var (parent, child) = (await ReadPid("parent.pid"), await ReadPid("child.pid"));

        await node.Ask<CancelReply>(new CancelRun("proc", "stop", "api", Force: false));

        var done = await node.AwaitRun("proc", s => s.Status == RunStatus.CANCELLED, "the process task acknowledges the cancel");
        Assert.Equal("workers", done.Cancel!.FinalisedBy);
        Assert.Contains("cancellation reached the worker", done.Tasks["p"].Error);
        Assert.False(IsAlive(parent) || IsAlive(child), "a process of the cancelled task survived");
    }
}
