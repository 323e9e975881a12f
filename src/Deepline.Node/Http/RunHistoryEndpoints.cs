using System.Globalization;
using Akka.Actor;
using Deepline.Actors.Index;
using Deepline.Actors.Serialization;
using Deepline.Actors.Workflows;
using Deepline.Domain;
using Deepline.Node.Security;
using Microsoft.AspNetCore.Http.HttpResults;

namespace Deepline.Node.Http;

/// <summary>A run's journal as its timeline: every event in order, with its time and what caused it.</summary>
public static class RunHistoryEndpoints
{
    public const int DefaultLimit = 200;
    public const int MaxLimit = 1000;

    public static IEndpointRouteBuilder MapRunHistoryEndpoints(this IEndpointRouteBuilder app)
    {
        // Role submitter (own client), operator or admin: the same readers as GET /runs/{id}.
        app.MapGet("/runs/{runId}/history", async Task<Results<Ok<RunHistoryResponse>, ProblemHttpResult>> (string runId, string? after, string? limit,
            System.Security.Claims.ClaimsPrincipal user, RunsGateway gateway, RunHistoryReader history, CancellationToken ct) =>
        {
            if (!Identifiers.IsValid(runId)) return Problems.BadRequest(Identifiers.Describe("run_id"), "run_id");
            if (!TryParse(after, 0, 0, long.MaxValue, out var from))
                return Problems.BadRequest("after must be a sequence number (0 or more): the next_after of the previous page", "after");
            if (!TryParse(limit, DefaultLimit, 1, MaxLimit, out var take))
                return Problems.BadRequest($"limit must be from 1 to {MaxLimit}", "limit");
            // The run itself first: the same 404 and the same client scope as GET /runs/{id}, and no history of a run
            // the caller may not read is ever read.
            var (_, failure) = await gateway.AskAsync<RunReply>(new GetRun(runId) { ClientScope = user.ClientScope() }, ct);
            if (failure is not null) return failure;
            var events = await history.ReadAsync(runId, from, (int)take, ct);
            return TypedResults.Ok(new RunHistoryResponse(runId, [.. events.Select(e => Describe(e.SequenceNr, e.Event))],
                events.Count == take ? events[^1].SequenceNr : null));
        }).RequireAuthorization(Policies.ReadRuns)
            .Documented("runs", "A run's history: every journalled event in order, with its time and cause, paged by after/limit", 400, 404, 500, 503);
        return app;
    }

    private static bool TryParse(string? text, long fallback, long min, long max, out long value)
    {
        value = fallback;
        if (text is null) return true;
        return long.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out value) && value >= min && value <= max;
    }

    /// <summary>One journalled event as the timeline shows it: who or what caused it, and the text it carries.</summary>
    public static RunHistoryEvent Describe(long seq, object payload) => payload switch
    {
        RunSubmitted e => new(seq, e.At, "run_submitted", null, null, e.Spec.ClientId, null,
            $"workflow '{e.Spec.WorkflowName}', {e.Spec.Tasks.Length} task(s)"),
        TaskStarted e => new(seq, e.At, "task_started", e.TaskId, Attempt(e.Attempt), e.WorkerId, null,
            e.Holder is null ? null : $"held by key '{e.Holder}'"),
        TaskSucceeded e => new(seq, e.At, "task_succeeded", e.TaskId, Attempt(e.Attempt), null, null, null),
        TaskFailed e => new(seq, e.At, "task_failed", e.TaskId, Attempt(e.Attempt), null, e.ErrorType, e.Error),
        TaskAttemptFailed e => new(seq, e.At, "task_attempt_failed", e.TaskId, e.Attempt, null, e.Cause,
            e.RetryAt is { } at ? $"{e.Error}; next attempt at {at.UtcDateTime:yyyy-MM-dd'T'HH:mm:ss.fff'Z'}" : e.Error),
        TaskRetryReleased e => new(seq, e.At, "task_retry_released", e.TaskId, null, null, null, null),
        TaskResourcesGranted e => new(seq, e.At, "task_resources_granted", e.TaskId, null, "resource coordinator", null, null),
        TaskCancelled e => new(seq, e.At, "task_cancelled", e.TaskId, null, null, null, e.Detail),
        TaskEventIgnored e => new(seq, e.At, "task_event_ignored", e.TaskId, Attempt(e.Attempt), null, e.Event.ToString(), e.Reason),
        RunCancelRequested e => new(seq, e.At, "run_cancel_requested", null, null, e.CancelledBy, e.DeadlockReason,
            e.Force ? e.Reason + " (forced)" : e.Reason),
        RunCancelFinalised e => new(seq, e.At, "run_cancel_finalised", null, null, e.By, null, null),
        RunRetried e => new(seq, e.At, "run_retried", null, null, e.By, null, $"re-opened: {string.Join(", ", e.TaskIds)}"),
        UnreadablePayload u => new(seq, null, "unreadable", null, null, null, null, $"{u.Manifest}: {u.Error}"),
        IRunEvent e => new(seq, e.At, e.GetType().Name, (e as ITaskEvent)?.TaskId, null, null, null, null),
        _ => new(seq, null, "unknown", null, null, null, null, payload.GetType().Name),
    };

    private static int? Attempt(int attempt) => attempt > 0 ? attempt : null;
}

/// <summary>Reads runs' events from the journal (the run index's tail, one persistence id at a time).</summary>
public sealed class RunHistoryReader(RunIndexStore index, ActorSystem system)
{
    private readonly Lazy<JournalTail> _tail = new(() => JournalTail.For(index.Connect, system.Serialization));

    public Task<IReadOnlyList<Akka.Persistence.Query.EventEnvelope>> ReadAsync(string runId, long after, int limit, CancellationToken ct) =>
        _tail.Value.EventsOfAsync(WorkflowActor.PersistenceIdPrefix + runId, after, limit, ct);
}
