using System.Diagnostics;

namespace Deepline.Cancellation.Tests;

/// <summary>
/// clients/python's unittest suite, run by python3 against this fixture's real node and Redis: the seed's Python
/// worker surface (is_workflow_cancelled, emit_event, the cancellation-aware wrapper) is tested where it is used.
/// </summary>
public sealed class PythonClientTests(RedisNodeFixture node) : IClassFixture<RedisNodeFixture>
{
    private static string RepoRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "Deepline.Actors.sln"))) return dir.FullName;
        throw new InvalidOperationException("repository root (Deepline.Actors.sln) not found above " + AppContext.BaseDirectory);
    }

    [Fact]
    public async Task The_python_worker_package_passes_its_tests_against_a_real_node_and_Redis()
    {
        var client = Path.Combine(RepoRoot(), "clients", "python");
        var start = new ProcessStartInfo("python3", ["-m", "unittest", "discover", "-v", "-s", "tests"])
        {
            WorkingDirectory = client,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        start.Environment["DEEPLINE_URL"] = node.Http.BaseAddress!.ToString().TrimEnd('/');
        start.Environment["DEEPLINE_REDIS"] = node.Redis.Connection;
        start.Environment["PYTHONPATH"] = client;
        start.Environment["PYTHONDONTWRITEBYTECODE"] = "1";

        using var python = Process.Start(start)!;
        var output = python.StandardOutput.ReadToEndAsync();
        var errors = python.StandardError.ReadToEndAsync();
        using var deadline = new CancellationTokenSource(TimeSpan.FromMinutes(3));
        try
        {
            await python.WaitForExitAsync(deadline.Token);
        }
        catch (OperationCanceledException)
        {
            python.Kill(entireProcessTree: true);
            throw new TimeoutException($"python3 -m unittest did not finish within 3 minutes:\n{await errors}");
        }

        // unittest writes its report to stderr; a run that skipped (no node) is not a pass.
        var report = await errors + await output;
        Assert.True(python.ExitCode == 0, report);
        Assert.Contains("\nOK", report);
        Assert.DoesNotContain("skipped", report);
        Assert.Contains("Ran 13 tests", report);
    }
}
