using System.Collections.Immutable;
using Deepline.Domain;

namespace Deepline.Actors.Monitoring;

/// <summary>Asks the supervisor for its open incidents, newest first, for the dashboard (at most <see cref="Limit"/>).</summary>
public sealed record GetIncidents(int Limit) : IDeeplineMessage;

/// <summary>One open incident as the dashboard shows it: the detection, when it was confirmed, and what was done.</summary>
public sealed record IncidentView(Detection Detection, DateTimeOffset DetectedAt, bool Alerted, bool Cancelled, bool AutoCancel) : IDeeplineMessage;

public sealed record IncidentList(int Open, ImmutableArray<IncidentView> Newest) : IDeeplineMessage;

public static class IncidentQueries
{
    /// <summary>The newest open incidents; a pure read of the supervisor's state so the actor only forwards it.</summary>
    public static IncidentList Newest(SupervisorState state, int limit) =>
        new(state.Incidents.Count,
            [.. state.Incidents.Values.OrderByDescending(i => i.DetectedAt).ThenBy(i => i.Detection.RunId, StringComparer.Ordinal)
                .Take(Math.Clamp(limit, 1, 500))
                .Select(i => new IncidentView(i.Detection, i.DetectedAt, i.Alerted, i.Cancelled, i.AutoCancel))]);
}
