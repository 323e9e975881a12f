using Deepline.Domain;
using Microsoft.AspNetCore.Http.HttpResults;

namespace Deepline.Node.Http;

/// <summary>Every error answer is application/problem+json naming, where it can, the field at fault.</summary>
public static class Problems
{
    public static ProblemHttpResult Of(int status, string title, string detail, string? field = null, IEnumerable<string>? cycle = null)
    {
        var extensions = new Dictionary<string, object?>();
        if (field is not null) extensions["field"] = field;
        if (cycle is not null) extensions["cycle"] = cycle.ToArray();
        return TypedResults.Problem(detail: detail, statusCode: status, title: title, extensions: extensions);
    }

    public static ProblemHttpResult BadRequest(string detail, string? field = null) => Of(400, "Bad request", detail, field);

    public static ProblemHttpResult From(CommandRejected r) => r.Kind switch
    {
        RejectionKind.NotFound => Of(404, "Not found", r.Message, r.Field),
        RejectionKind.Conflict when r.CurrentAttempt is { } current => StaleAttempt(r.Message, current),
        RejectionKind.Conflict => Of(409, "Conflict", r.Message, r.Field),
        RejectionKind.BadRequest => Of(400, "Bad request", r.Message, r.Field),
        RejectionKind.Forbidden => Of(403, "Forbidden", r.Message, r.Field),
        // 500, not 503: the write was refused, so nothing was acknowledged, and the same request will be refused again.
        RejectionKind.NotStored => Of(500, "Not stored", r.Message, r.Field),
        // 503: the store was down or failed the write; the request may or may not be stored, and a retry later will tell.
        RejectionKind.StoreUnavailable => Of(503, "Store unavailable", r.Message, r.Field),
        // 500 without Retry-After: the journal itself is damaged, no retry can help; an operator must restore the store.
        RejectionKind.HistoryUnreadable => Of(500, "Run history unreadable", r.Message, r.Field),
        _ => Of(422, r.Cycle is null ? "Invalid workflow" : "Dependency cycle", r.Message, r.Field, r.Cycle),
    };

    public static ProblemHttpResult Unavailable(string detail) => Of(503, "Service unavailable", detail);

    /// <summary>409 for a report from an attempt the task has moved on from: <c>current_attempt</c> names the one that counts.</summary>
    private static ProblemHttpResult StaleAttempt(string detail, int current) =>
        TypedResults.Problem(detail: detail, statusCode: 409, title: "Stale attempt",
            extensions: new Dictionary<string, object?> { ["field"] = "attempt", ["current_attempt"] = current });
}
