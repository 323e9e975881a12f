using System.Collections.Concurrent;
using System.Text.Json;
using Deepline.Actors.Workers;

namespace Deepline.Actors.Tests;

/// <summary>
/// Ignores cancellation until the test releases it, then succeeds: the worker that keeps going after its
/// run was cancelled, whose late TASK_SUCCEEDED must be recorded as ignored.
/// </summary>
public sealed class StubbornHandler : ITaskHandler
{
    private readonly TaskCompletionSource _release = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public string Type => "stubborn";

    public ConcurrentBag<string> Started { get; } = [];

    public void Release() => _release.TrySetResult();

    public async Task<JsonElement?> ExecuteAsync(TaskContext context, CancellationToken cancellationToken)
    {
        Started.Add(context.TaskId);
        await _release.Task;
        return JsonSerializer.SerializeToElement(new { done = true });
    }
}

/// <summary>Blocks every task until the test opens the gate, honouring cancellation: holds resources for as long as a test needs.</summary>
public sealed class GateHandler : ITaskHandler
{
    private readonly TaskCompletionSource _open = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public string Type => "gate";

    public ConcurrentBag<string> Started { get; } = [];

    /// <summary>Tasks whose cancellation token fired (run/task).</summary>
    public ConcurrentBag<string> Cancelled { get; } = [];

    public void Open() => _open.TrySetResult();

    public async Task<JsonElement?> ExecuteAsync(TaskContext context, CancellationToken cancellationToken)
    {
        Started.Add($"{context.RunId}/{context.TaskId}");
        try
        {
            await _open.Task.WaitAsync(cancellationToken);
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            Cancelled.Add($"{context.RunId}/{context.TaskId}");
            throw;
        }
        return null;
    }
}

/// <summary>Fails the first <c>params.fail_times</c> executions of each task, then succeeds with the attempt it succeeded on.</summary>
public sealed class FlakyHandler : ITaskHandler
{
    private readonly ConcurrentDictionary<string, int> _executions = new();

    public string Type => "flaky";

    public async Task<JsonElement?> ExecuteAsync(TaskContext context, CancellationToken cancellationToken)
    {
        await Task.Yield();
        var failTimes = context.Params is { ValueKind: JsonValueKind.Object } p && p.TryGetProperty("fail_times", out var f) ? f.GetInt32() : 1;
        var n = _executions.AddOrUpdate($"{context.RunId}/{context.TaskId}", 1, (_, c) => c + 1);
        if (n <= failTimes) throw new InvalidOperationException($"flaky failure {n}");
        return JsonSerializer.SerializeToElement(new { execution = n });
    }
}
