using System.Text.Json;
using Deepline.Domain;
using static Deepline.Actors.Tests.Specs;

namespace Deepline.Actors.Tests;

/// <summary>In-cluster execution with retry policies: a failed attempt is dispatched again after its backoff.</summary>
public sealed class RetryExecutionTests : IDisposable
{
    private readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    private static TaskSpec Flaky(string id, int failTimes, RetryPolicy? retry, params string[] deps) =>
        Task(id, "flaky", deps) with { Params = JsonSerializer.SerializeToElement(new { fail_times = failTimes }), Retry = retry };

    [Fact]
    public async Task A_task_that_fails_twice_is_retried_after_its_backoff_and_its_run_succeeds()
    {
        await using var node = await TestNode.StartAsync(_dir.Path, handlers: [new FlakyHandler()]);
        var policy = new RetryPolicy(3, 0.2, 2, 1);

        await node.Ask<RunReply>(new SubmitRun(Run("flaky-ok", Flaky("a", 2, policy), Task("b", "noop", "a"))));
        var done = await node.AwaitRun("flaky-ok", s => s.Status.IsTerminal(), "run finishes");

        Assert.Equal(RunStatus.SUCCEEDED, done.Status);
        Assert.Equal(3, done.Tasks["a"].Attempts);
        Assert.Equal(3, done.Tasks["a"].Result!.Value.GetProperty("execution").GetInt32());
        Assert.Contains("flaky failure 2", done.Tasks["a"].Error);
        // The backoffs (0.2 s, then 0.4 s) were waited: the third attempt started at least 0.6 s after submission.
        Assert.True(done.Tasks["a"].UpdatedAt - done.CreatedAt >= TimeSpan.FromSeconds(0.6), $"{done.Tasks["a"].UpdatedAt - done.CreatedAt}");
        Assert.Equal(TaskState.SUCCEEDED, done.Tasks["b"].State);
    }

    [Fact]
    public async Task A_task_that_fails_every_attempt_fails_its_run_after_the_last_one()
    {
        await using var node = await TestNode.StartAsync(_dir.Path, handlers: [new FlakyHandler()]);

        await node.Ask<RunReply>(new SubmitRun(Run("flaky-out", Flaky("a", 10, new RetryPolicy(2, 0, 1, 0)), Task("b", "noop", "a"))));
        var done = await node.AwaitRun("flaky-out", s => s.Status.IsTerminal(), "run finishes");

        Assert.Equal(RunStatus.FAILED, done.Status);
        Assert.Equal((TaskState.FAILED, 2), (done.Tasks["a"].State, done.Tasks["a"].Attempts));
        Assert.Contains("flaky failure 2", done.Tasks["a"].Error);
        Assert.Equal(TaskState.SKIPPED, done.Tasks["b"].State);
    }

    [Fact]
    public async Task An_in_cluster_handlers_exception_type_is_matched_by_the_non_retryable_errors()
    {
        await using var node = await TestNode.StartAsync(_dir.Path);
        var policy = new RetryPolicy(5, 0, 1, 0) { NonRetryableErrors = ["InvalidOperationException"] };

        await node.Ask<RunReply>(new SubmitRun(Run("no-retry", Task("a", "fail") with { Retry = policy })));
        var done = await node.AwaitRun("no-retry", s => s.Status.IsTerminal(), "run finishes");

        // One attempt of five: the handler's exception type is non-retryable.
        Assert.Equal((RunStatus.FAILED, 1, "InvalidOperationException"), (done.Status, done.Tasks["a"].Attempts, done.Tasks["a"].ErrorType));
    }
}
