using System.Collections.Frozen;
using System.Text.Json;

namespace Deepline.Actors.Workers;

/// <summary>What a handler gets to know about the task it runs.</summary>
public sealed record TaskContext(string RunId, string TaskId, string Type, JsonElement? Params)
{
    /// <summary>How long the handler may take to return once its token fired before the pool abandons it.</summary>
    public TimeSpan CancelGrace { get; init; } = WorkerPoolSettings.DefaultCancelGrace;
}

/// <summary>
/// Runs one task type inside the cluster. Return a JSON result (or null) to succeed, throw to fail;
/// honour <paramref name="cancellationToken"/>: it fires as soon as the run's cancel reaches this node.
/// </summary>
public interface ITaskHandler
{
    string Type { get; }

    Task<JsonElement?> ExecuteAsync(TaskContext context, CancellationToken cancellationToken);
}

/// <summary>The handlers this node's pools can run, by task type.</summary>
public sealed class TaskHandlerRegistry(IEnumerable<ITaskHandler> handlers)
{
    private readonly FrozenDictionary<string, ITaskHandler> _byType = handlers.ToFrozenDictionary(h => h.Type, StringComparer.Ordinal);

    public IReadOnlyCollection<string> Types => _byType.Keys;

    public ITaskHandler? Find(string type) => _byType.GetValueOrDefault(type);

    public static IReadOnlyList<ITaskHandler> BuiltIns { get; } =
        [new NoopHandler(), new DelayHandler(), new FailHandler(), new HangHandler(), new ProcessHandler()];
}

public sealed class NoopHandler : ITaskHandler
{
    public string Type => "noop";

    public Task<JsonElement?> ExecuteAsync(TaskContext context, CancellationToken cancellationToken) =>
        Task.FromResult<JsonElement?>(null);
}

/// <summary><c>{"ms": N}</c>: waits N milliseconds, or less if the run is cancelled.</summary>
public sealed class DelayHandler : ITaskHandler
{
    public string Type => "delay";

    public async Task<JsonElement?> ExecuteAsync(TaskContext context, CancellationToken cancellationToken)
    {
        var ms = context.Params is { ValueKind: JsonValueKind.Object } p && p.TryGetProperty("ms", out var v) && v.TryGetInt32(out var n)
            ? n
            : throw new ArgumentException("delay needs params {\"ms\": N} with N >= 0");
        if (ms < 0) throw new ArgumentException("delay needs params {\"ms\": N} with N >= 0");
        await Task.Delay(ms, cancellationToken);
        return null;
    }
}

/// <summary>Fails at once, with <c>params.message</c> as the error if given.</summary>
public sealed class FailHandler : ITaskHandler
{
    public string Type => "fail";

    public Task<JsonElement?> ExecuteAsync(TaskContext context, CancellationToken cancellationToken)
    {
        var message = context.Params is { ValueKind: JsonValueKind.Object } p && p.TryGetProperty("message", out var m)
            ? m.GetString()
            : null;
        throw new InvalidOperationException(message ?? $"task {context.TaskId} failed as asked");
    }
}

/// <summary>Runs until cancelled: the stuck worker every demo of cancellation needs.</summary>
public sealed class HangHandler : ITaskHandler
{
    public string Type => "hang";

    public async Task<JsonElement?> ExecuteAsync(TaskContext context, CancellationToken cancellationToken)
    {
        await Task.Delay(Timeout.Infinite, cancellationToken);
        return null;
    }
}
