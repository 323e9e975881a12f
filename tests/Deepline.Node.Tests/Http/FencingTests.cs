using System.Diagnostics;
using System.Net;
using System.Text.Json.Nodes;
using Deepline.Tests.Shared;

namespace Deepline.Node.Tests.Http;

/// <summary>
/// Fencing with real processes: a Python worker (clients/python's Worker) is SIGSTOPped while its task runs, past its
/// lease; the task goes to another worker as attempt 2; the paused worker, resumed, must not complete it.
/// </summary>
public sealed class FencingTests
{
    private static string RepoRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "Deepline.Actors.sln"))) return dir.FullName;
        throw new InvalidOperationException("repository root not found");
    }

    [Fact]
    public async Task A_worker_paused_past_its_lease_neither_runs_beside_the_next_attempt_nor_completes_the_task()
    {
        // A 6 s lease (heartbeats every 2 s): short enough for a quick test, long enough that the running attempt 2 keeps
        // it on a loaded machine (at 3 s, under stress-ng beside the suite, attempt 2 once lost its lease too: 3 attempts).
        await using var node = await SingleNode.StartAsync("deepline-fence-", c => c with
        {
            Deadlock = c.Deadlock with { HeartbeatTimeoutS = 6 },
        });
        var marks = Path.Combine(node.Dir, "marks");
        Directory.CreateDirectory(marks);
        // The handler writes a file when it starts and one when it returns: their times show whether two attempts overlapped.
        var script = $$"""
            import os, sys, time
            from deepline_worker import Worker
            marks = {{"\"" + marks + "\""}}
            def slow(task):
                open(os.path.join(marks, f"start-{task.attempt}-{os.getpid()}"), "w").write(repr(time.time()))
                for _ in range(100):                     # about 10 s unless the task is cancelled (lease lost)
                    if task.is_cancelled(): break
                    time.sleep(0.1)
                open(os.path.join(marks, f"end-{task.attempt}-{os.getpid()}"), "w").write(repr(time.time()))
                return {"by": os.getpid(), "attempt": task.attempt}
            Worker("fence", {"slow": slow}, wait_s=1, worker_id=f"py-{os.getpid()}").run()
            """;
        var first = StartWorker(script, node.Client.BaseAddress!);
        Process? second = null;
        try
        {
            Assert.Equal(HttpStatusCode.Created, (await node.Client.PostJson("/runs",
                """{"run_id":"fenced","tasks":[{"task_id":"t","type":"slow","pool":"fence","retry":{"max_attempts":3,"initial_interval_s":0} }]}""")).StatusCode);
            await Eventually.Until(() => Directory.EnumerateFiles(marks, $"start-1-{first.Id}").Any(), TimeSpan.FromSeconds(30), "attempt 1 started");

            // Paused: no heartbeats; the node takes the task back when the 6 s lease ends, and another worker takes attempt 2.
            Signal("STOP", first.Id);
            second = StartWorker(script, node.Client.BaseAddress!);
            await Eventually.Until(() => Directory.EnumerateFiles(marks, $"start-2-{second.Id}").Any(), TimeSpan.FromSeconds(30), "attempt 2 started on the second worker");
            Signal("CONT", first.Id);

            var run = await AwaitDone(node.Client, "fenced");
            Assert.Equal("SUCCEEDED", run.Str("status"));
            var task = run["tasks"]![0]!;
            Assert.Equal(2, task["attempts"]!.GetValue<int>());
            Assert.Equal(second.Id, task["result"]!["by"]!.GetValue<int>());
            // The resumed worker saw its lease was gone before it could report; had it reported, the run would show it ignored.
            Assert.DoesNotContain(run["ignored_events"]!.AsArray(), e => e!["event"]!.GetValue<string>() == "TASK_SUCCEEDED" && e["attempt"]?.GetValue<int>() != 2);
            // No overlap: attempt 1 was frozen while attempt 2 ran, and once resumed it stopped at once (its token fired:
            // lease lost) instead of running on beside attempt 2.
            await Eventually.Until(() => Directory.EnumerateFiles(marks, $"end-1-{first.Id}").Any(), TimeSpan.FromSeconds(15), "attempt 1 stopped after resuming");
            var resumedEnd = double.Parse(File.ReadAllText(Directory.EnumerateFiles(marks, $"end-1-{first.Id}").Single()), System.Globalization.CultureInfo.InvariantCulture);
            var secondEnd = double.Parse(File.ReadAllText(Directory.EnumerateFiles(marks, $"end-2-{second.Id}").Single()), System.Globalization.CultureInfo.InvariantCulture);
            Assert.True(resumedEnd < secondEnd, "the paused attempt stopped at once on resuming, long before attempt 2 finished its work");
        }
        finally
        {
            foreach (var p in new[] { first, second })
            {
                if (p is null) continue;
                try { Signal("CONT", p.Id); p.Kill(entireProcessTree: true); } catch (InvalidOperationException) { }
                p.Dispose();
            }
        }
    }

    private static Process StartWorker(string script, Uri node)
    {
        var start = new ProcessStartInfo("python3", ["-c", script])
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        start.Environment["DEEPLINE_URL"] = node.ToString().TrimEnd('/');
        start.Environment["PYTHONPATH"] = Path.Combine(RepoRoot(), "clients", "python");
        start.Environment["PYTHONDONTWRITEBYTECODE"] = "1";
        start.Environment.Remove("DEEPLINE_REDIS");
        var p = Process.Start(start)!;
        p.OutputDataReceived += (_, _) => { };
        p.ErrorDataReceived += (_, _) => { };
        p.BeginOutputReadLine();
        p.BeginErrorReadLine();
        return p;
    }

    private static void Signal(string signal, int pid)
    {
        using var kill = Process.Start("kill", [$"-{signal}", pid.ToString()])!;
        kill.WaitForExit();
    }

    private static async Task<JsonObject> AwaitDone(HttpClient client, string runId)
    {
        JsonObject? run = null;
        await Eventually.Until(async () => (run = await client.GetRun(runId)).Str("status") != "RUNNING", TimeSpan.FromSeconds(45), $"{runId} finished");
        return run!;
    }
}
