using Akka.Actor;
using Akka.Hosting;
using Deepline.Actors.Hosting;
using Deepline.Domain;
using Microsoft.AspNetCore.Http.HttpResults;

namespace Deepline.Node.Http;

/// <summary>
/// Asks the cluster on behalf of an HTTP request, straight to the workflow shard region (or its proxy). A run answers a command with the reply it names or with a
/// <see cref="CommandRejected"/>, whose kind (not its text) decides the problem; a time-out is a 503, never a 500.
/// </summary>
public sealed class RunsGateway(IRequiredActor<WorkflowRegion> runs, TimeSpan askTimeout, RunServing serving, StoreSpace space)
{
    /// <summary>The run id the readiness check asks about (a run nobody submits: the answer is a 404 from a live shard).</summary>
    public const string ProbeRunId = "deepline:readiness-probe";

    /// <summary>How long a probe waits for the region's answer.</summary>
    public static readonly TimeSpan ProbeTimeout = TimeSpan.FromSeconds(3);

    private SharedAnswer<bool>? _probe;

    /// <summary>
    /// Asks the region about <see cref="ProbeRunId"/> within <see cref="ProbeTimeout"/>: any answer means shards are
    /// allocated, entities start and recover, and the journal answers. One probe a second for every caller (/health and
    /// the readiness check are open to anyone and not rate limited).
    /// </summary>
    public Task<bool> ProbeAsync(CancellationToken ct) =>
        (_probe ?? Interlocked.CompareExchange(ref _probe, new SharedAnswer<bool>(ProbeOnceAsync), null) ?? _probe!).GetAsync(ct);

    private async Task<bool> ProbeOnceAsync()
    {
        try
        {
            var actor = await runs.GetAsync(CancellationToken.None);
            await actor.Ask<IDeeplineMessage>(new GetRun(ProbeRunId), ProbeTimeout);
            serving.Answered();
            return true;
        }
        catch (AskTimeoutException)
        {
            return false;
        }
    }

    /// <summary>Why writes are refused now (the store's disk is full), or null.</summary>
    public string? StoreFull => space.Refusal();

    /// <returns>The reply, or the problem to answer with instead.</returns>
    public async Task<(TReply? Reply, ProblemHttpResult? Failure)> AskAsync<TReply>(IRunCommand command, CancellationToken ct)
        where TReply : class, IDeeplineMessage
    {
        using var span = Observability.Telemetry.Source.StartActivity("ask run");
        span?.SetTag("deepline.run_id", command.RunId);
        span?.SetTag("deepline.command", command.GetType().Name);
        // The run, and the pool and the worker after it, continue this span's trace.
        command = Deepline.Actors.Tracing.RunTracing.WithTrace(command, span);
        // A full disk is answered at once: each write would otherwise wait out the ask (a new shard's allocation cannot
        // be journalled either). Reads still go ahead.
        if (command is not GetRun && space.Refusal() is { } full)
        {
            span?.SetStatus(System.Diagnostics.ActivityStatusCode.Error, "store full");
            return (null, Problems.Of(503, "Store full", full));
        }
        try
        {
            var actor = await runs.GetAsync(ct);
            var answer = await actor.Ask<IDeeplineMessage>(command, askTimeout, ct);
            serving.Answered();
            return answer switch
            {
                TReply reply => (reply, null),
                CommandRejected rejected => (null, Problems.From(rejected)),
                // A reply of another type is a bug between this endpoint and the run, not the caller's fault: a 500.
                var other => throw new InvalidOperationException(
                    $"{command.GetType().Name} for run '{command.RunId}' was answered with {other.GetType().Name}, expected {typeof(TReply).Name}"),
            };
        }
        catch (AskTimeoutException)
        {
            serving.TimedOut();
            span?.SetStatus(System.Diagnostics.ActivityStatusCode.Error, "ask timed out");
            return (null, Problems.Unavailable($"run '{command.RunId}' did not answer within {askTimeout.TotalSeconds:0.#} s; the request may still be applied, retry it"));
        }
    }
}
