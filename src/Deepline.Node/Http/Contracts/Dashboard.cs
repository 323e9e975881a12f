using Deepline.Node.Ui;

namespace Deepline.Node.Http;

// Wire shapes of the dashboard's reads (GET /runs, GET /deadlock/incidents, GET /ui/api/timeline) and of the unreadable
// runs /health lists. Property names become snake_case on the wire (HttpJson).

public sealed record RunListResponse(IReadOnlyList<RunSummary> Runs, int Limit, int Offset, bool HasMore);

public sealed record IncidentResponse(
    string RunId,
    string WorkflowName,
    string Reason,
    string Explanation,
    DateTimeOffset StuckSince,
    DateTimeOffset LastUpdate,
    IReadOnlyList<string> StuckTasks,
    DateTimeOffset DetectedAt,
    bool Alerted,
    bool Cancelled,
    bool AutoCancel);

public sealed record IncidentListResponse(int OpenIncidents, IReadOnlyList<IncidentResponse> Incidents);

public sealed record TimelineResponse(double IntervalS, IReadOnlyList<TimelinePoint> Points);

public sealed record UnreadableRunResponse(string RunId, long SequenceNr, string Error, DateTimeOffset At);
