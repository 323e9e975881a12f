using System.Text.Json;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Deepline.Worker.Sdk;

/// <summary>
/// Runs one leased task. Return its result (or null); throw to fail the attempt (the exception's type name is the
/// <c>error_type</c> a retry policy's non_retryable_errors matches). Honour the token: it fires when the run is cancelled,
/// when the node says the task is no longer this worker's, and before the lease runs out unrenewed.
/// </summary>
public delegate Task<JsonElement?> TaskHandler(LeasedTask task, CancellationToken cancellationToken);

public sealed class DeeplineWorkerOptions
{
    /// <summary>The node, e.g. <c>http://127.0.0.1:8001</c>.</summary>
    public Uri Node { get; set; } = new("http://127.0.0.1:8001");

    /// <summary>A worker key bound to the pool; null: <c>DEEPLINE_KEY</c> (none on an open node).</summary>
    public string? ApiKey { get; set; }

    public string Pool { get; set; } = "default";

    public string WorkerId { get; set; } = $"dotnet-{Environment.MachineName}-{Environment.ProcessId}";

    /// <summary>Tasks run at once.</summary>
    public int Concurrency { get; set; } = 4;

    /// <summary>How long one poll waits for work (0..60 s).</summary>
    public TimeSpan PollWait { get; set; } = TimeSpan.FromSeconds(20);

    /// <summary>Task type to handler; a type without one fails its attempt with error type <c>UnknownTaskType</c>.</summary>
    public Dictionary<string, TaskHandler> Handlers { get; } = new(StringComparer.Ordinal);

    /// <summary>Optional Redis cancellation signals: a run cancelled fires its tasks' tokens within milliseconds, not a heartbeat later.</summary>
    public CancellationSignals? Signals { get; set; }
}

public static class DeeplineWorkerServiceCollection
{
    /// <summary>A hosted service that polls <paramref name="pool"/> and runs <paramref name="handlers"/> (see <see cref="DeeplineWorker"/>).</summary>
    public static IServiceCollection AddDeeplineWorker(this IServiceCollection services, string pool,
        IReadOnlyDictionary<string, TaskHandler> handlers, Action<DeeplineWorkerOptions>? configure = null)
    {
        var options = new DeeplineWorkerOptions { Pool = pool };
        foreach (var (type, handler) in handlers) options.Handlers[type] = handler;
        configure?.Invoke(options);
        return services.AddHostedService(sp => new DeeplineWorker(options, sp.GetService<ILogger<DeeplineWorker>>()));
    }
}

/// <summary>
/// An external worker: polls its pool, runs each leased task's handler with a token wired to the run's cancellation,
/// heartbeats to keep the lease, and reports how the attempt ended, naming its attempt. Execution is at least once: an
/// attempt whose lease could not be renewed is stopped (its token fires) before the lease runs out, since the node then
/// gives the task to another attempt; a handler must tolerate running again for the same run and task.
/// </summary>
public sealed class DeeplineWorker : BackgroundService
{
    private readonly DeeplineWorkerOptions _options;
    private readonly ILogger _log;
    private readonly TaskQueueClient _queue;
    private readonly TaskEventsClient _events;
    private readonly HttpClient _http;
    private int _running;

    public DeeplineWorker(DeeplineWorkerOptions options, ILogger<DeeplineWorker>? log = null)
    {
        _options = options;
        _log = (ILogger?)log ?? NullLogger.Instance;
        var key = options.ApiKey ?? Environment.GetEnvironmentVariable(TaskEventsClient.KeyVariable);
        // Polls hold the connection for up to a minute.
        _http = new HttpClient { BaseAddress = options.Node, Timeout = TimeSpan.FromSeconds(90) };
        if (!string.IsNullOrWhiteSpace(key))
            _http.DefaultRequestHeaders.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", key.Trim());
        _queue = new TaskQueueClient(_http, options.WorkerId);
        _events = new TaskEventsClient(_http, options.WorkerId);
    }

    /// <summary>Attempts that ended since start, by how they were reported (succeeded, failed, cancelled, lost).</summary>
    public WorkerCounts Counts { get; } = new();

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var backoff = TimeSpan.FromSeconds(1);
        var slots = new SemaphoreSlim(_options.Concurrency, _options.Concurrency);
        var running = new List<Task>();
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                await slots.WaitAsync(stoppingToken);
                var free = 1;
                while (free < _options.Concurrency && slots.Wait(0)) free++;
                IReadOnlyList<LeasedTask> tasks;
                try
                {
                    tasks = await _queue.PollAsync(_options.Pool, _options.PollWait, free, stoppingToken);
                }
                catch
                {
                    slots.Release(free);
                    throw;
                }
                backoff = TimeSpan.FromSeconds(1);
                if (tasks.Count < free) slots.Release(free - tasks.Count);
                running.RemoveAll(t => t.IsCompleted);
                foreach (var task in tasks)
                    running.Add(Task.Run(async () =>
                    {
                        try { await RunAsync(task, stoppingToken); }
                        finally { slots.Release(); }
                    }, CancellationToken.None));
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                break;
            }
            catch (Exception ex) when (ex is HttpRequestException or TaskCanceledException or JsonException)
            {
                _log.LogWarning("Polling pool {Pool} failed ({Error}); retrying in {Seconds} s", _options.Pool, ex.Message, backoff.TotalSeconds);
                try { await Task.Delay(backoff, stoppingToken); } catch (OperationCanceledException) { break; }
                backoff = TimeSpan.FromTicks(Math.Min(backoff.Ticks * 2, TimeSpan.FromSeconds(30).Ticks));
            }
        }
        await Task.WhenAll(running);
    }

    /// <summary>One attempt: the handler under a token that fires on cancel, on a refused heartbeat, and before an unrenewed lease ends.</summary>
    private async Task RunAsync(LeasedTask task, CancellationToken stopping)
    {
        Interlocked.Increment(ref _running);
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(stopping,
            _options.Signals?.TokenFor(task.RunId) ?? CancellationToken.None);
        var timeout = TimeSpan.FromSeconds(Math.Max(1, task.HeartbeatTimeoutS));
        // Measured on this machine's clock from the answer's arrival, not from the node's lease_expires_at: the two clocks
        // may disagree by more than the margin. The node's lease started before its answer left, so this errs late by
        // the network's latency, which the margin covers.
        var lease = new LeaseState(DateTimeOffset.UtcNow + timeout);
        using var beats = new CancellationTokenSource();
        var heartbeat = HeartbeatAsync(task, timeout, lease, stop, beats.Token);
        JsonElement? result = null;
        Exception? failure = null;
        try
        {
            result = _options.Handlers.TryGetValue(task.Type, out var handler)
                ? await handler(task, stop.Token)
                : throw new UnknownTaskTypeException(task.Type);
        }
        catch (Exception ex)
        {
            failure = ex;
        }
        finally
        {
            beats.Cancel();
            try { await heartbeat; } catch (OperationCanceledException) { }
            Interlocked.Decrement(ref _running);
        }

        if (lease.Lost)
        {
            // The node has given (or is about to give) the task to another attempt: whatever this one produced does not count.
            _log.LogWarning("Attempt {Attempt} of {RunId}/{TaskId} stopped: its lease was not renewed in time", task.Attempt, task.RunId, task.TaskId);
            Counts.Add(ref Counts.Lost);
            return;
        }
        if (lease.Over)
        {
            Counts.Add(ref Counts.Cancelled);
            return;
        }
        var (kind, error, errorType) = failure switch
        {
            null => (TaskEvent.TASK_SUCCEEDED, (string?)null, (string?)null),
            // The host is stopping (a deploy, a scale-in), not the run: a retryable failure, so another worker runs it again.
            OperationCanceledException when stopping.IsCancellationRequested && !RunCancelled(task) =>
                (TaskEvent.TASK_FAILED, "the worker host stopped during the task", "WorkerShutdown"),
            OperationCanceledException when stop.IsCancellationRequested => (TaskEvent.TASK_CANCELLED, "cancelled: the run's cancellation reached the worker", null),
            UnknownTaskTypeException u => (TaskEvent.TASK_FAILED, u.Message, "UnknownTaskType"),
            _ => (TaskEvent.TASK_FAILED, $"{failure.GetType().Name}: {failure.Message}", failure.GetType().Name),
        };
        await ReportAsync(task, kind, result, error, errorType);
        if (kind == TaskEvent.TASK_SUCCEEDED) Counts.Add(ref Counts.Succeeded);
        else if (kind == TaskEvent.TASK_FAILED) Counts.Add(ref Counts.Failed);
        else Counts.Add(ref Counts.Cancelled);
    }

    private bool RunCancelled(LeasedTask task) => _options.Signals?.TokenFor(task.RunId).IsCancellationRequested == true;

    private async Task HeartbeatAsync(LeasedTask task, TimeSpan timeout, LeaseState lease, CancellationTokenSource stop, CancellationToken done)
    {
        var every = timeout / 3;
        // Stop short of the lease's end: the node re-queues only after it, so two attempts never run at once.
        var margin = timeout / 6;
        while (!done.IsCancellationRequested)
        {
            var untilGiveUp = lease.ExpiresAt - margin - DateTimeOffset.UtcNow;
            if (untilGiveUp <= TimeSpan.Zero)
            {
                lease.Lost = true;
                await stop.CancelAsync();
                return;
            }
            await Task.Delay(untilGiveUp < every ? untilGiveUp : every, done);
            var sent = DateTimeOffset.UtcNow;
            try
            {
                using var call = CancellationTokenSource.CreateLinkedTokenSource(done);
                call.CancelAfter(every);
                switch (await _events.ReportAsync(task.RunId, task.TaskId, TaskEvent.TASK_HEARTBEAT, null, null, task.Attempt, null, call.Token))
                {
                    case TaskEventResult.Accepted a:
                        lease.ExpiresAt = sent + timeout;
                        if (a.RunStatus is "CANCELLING" or "CANCELLED") await stop.CancelAsync();
                        break;
                    case TaskEventResult.TaskOver over:
                        _log.LogInformation("Stopping {RunId}/{TaskId} attempt {Attempt}: {Detail}", task.RunId, task.TaskId, task.Attempt, over.Detail);
                        lease.Over = true;
                        await stop.CancelAsync();
                        return;
                }
            }
            catch (Exception ex) when (ex is HttpRequestException or OperationCanceledException && !done.IsCancellationRequested)
            {
                // Not renewed this time; the margin decides when to give the attempt up.
            }
        }
    }

    /// <summary>Reports an outcome, retrying transport failures and 503s for up to a minute (the node dedupes by attempt).</summary>
    private async Task ReportAsync(LeasedTask task, TaskEvent kind, JsonElement? result, string? error, string? errorType)
    {
        var delay = TimeSpan.FromMilliseconds(200);
        var deadline = DateTimeOffset.UtcNow + TimeSpan.FromMinutes(1);
        while (true)
        {
            try
            {
                var answer = await _events.ReportAsync(task.RunId, task.TaskId, kind, result, error, task.Attempt, errorType);
                if (answer is TaskEventResult.Rejected r)
                    _log.LogWarning("{Event} of {RunId}/{TaskId} refused ({Status}): {Detail}", kind, task.RunId, task.TaskId, r.Status, r.Detail);
                return;
            }
            catch (HttpRequestException ex) when (DateTimeOffset.UtcNow < deadline)
            {
                _log.LogWarning("Reporting {Event} of {RunId}/{TaskId} failed ({Error}); retrying", kind, task.RunId, task.TaskId, ex.Message);
                await Task.Delay(delay);
                delay = TimeSpan.FromTicks(Math.Min(delay.Ticks * 2, TimeSpan.FromSeconds(5).Ticks));
            }
        }
    }

    public override void Dispose()
    {
        base.Dispose();
        _http.Dispose();
    }

    private sealed class LeaseState(DateTimeOffset expiresAt)
    {
        public DateTimeOffset ExpiresAt { get; set; } = expiresAt;
        public bool Lost { get; set; }
        public bool Over { get; set; }
    }

    private sealed class UnknownTaskTypeException(string type) : Exception($"no handler for task type '{type}' on this worker");
}

/// <summary>How the attempts a worker ran ended.</summary>
public sealed class WorkerCounts
{
    public int Succeeded;
    public int Failed;
    public int Cancelled;
    public int Lost;

    internal void Add(ref int counter) => Interlocked.Increment(ref counter);
}
