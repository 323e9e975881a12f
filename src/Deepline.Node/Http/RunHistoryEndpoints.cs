using System.Globalization;
using Akka.Actor;
using Deepline.Actors.Index;
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
            return TypedResults.Ok(new RunHistoryResponse(runId, [.. events.Select(e => RunTimeline.Describe(e.SequenceNr, e.Event))],
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
}

/// <summary>Reads runs' events from the journal (the run index's tail, one persistence id at a time).</summary>
public sealed class RunHistoryReader(RunIndexStore index, ActorSystem system)
{
    private readonly Lazy<JournalTail> _tail = new(() => JournalTail.For(index.Connect, system.Serialization));

    public Task<IReadOnlyList<Akka.Persistence.Query.EventEnvelope>> ReadAsync(string runId, long after, int limit, CancellationToken ct) =>
        _tail.Value.EventsOfAsync(WorkflowActor.PersistenceIdPrefix + runId, after, limit, ct);
}
