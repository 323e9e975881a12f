using System.Collections.Immutable;
using System.Text.Json;
using Deepline.Actors.Monitoring;
using Deepline.Actors.Serialization;
using Deepline.Domain;
using Deepline.Node.Ui;

namespace Deepline.Ui.Tests;

/// <summary>The pure parts behind the dashboard: the incident list the supervisor answers, and the percentiles of the charts.</summary>
public sealed class FeedLogicTests
{
    private static readonly DateTimeOffset T0 = new(2026, 11, 29, 6, 0, 0, TimeSpan.Zero);

    private static Detection Stuck(string run) =>
        new(run, "wf", StuckReason.stale_pending, T0, T0, ["t"], "no task RUNNING");

    [Fact]
    public void Incidents_are_listed_newest_first_and_bounded()
    {
        var state = SupervisorState.Empty;
        for (var i = 0; i < 600; i++)
            state = state.Apply(new IncidentOpened(Stuck($"run-{i:000}"), T0.AddSeconds(i), "timer"));
        state = state.Apply(new IncidentCancelled("run-599", true, T0.AddSeconds(700)));

        var list = IncidentQueries.Newest(state, 1_000);
        Assert.Equal(600, list.Open);
        Assert.Equal(500, list.Newest.Length);
        Assert.Equal("run-599", list.Newest[0].Detection.RunId);
        Assert.True(list.Newest[0].Cancelled);
        Assert.False(list.Newest[1].Cancelled);
        Assert.Single(IncidentQueries.Newest(state, 0).Newest);
    }

    [Fact]
    public void The_incident_list_crosses_nodes_through_the_journal_serializer()
    {
        var list = new IncidentList(1, [new IncidentView(Stuck("run-1"), T0, Alerted: true, Cancelled: false, AutoCancel: true)]);
        var json = JsonSerializer.Serialize(list, DeeplineSerializer.Options);
        var back = JsonSerializer.Deserialize<IncidentList>(json, DeeplineSerializer.Options)!;
        Assert.Equal(1, back.Open);
        // ImmutableArray compares by reference, so the arrays are compared by content and the rest field by field.
        Assert.Equal(["t"], back.Newest[0].Detection.StuckTasks.ToArray());
        Assert.Equal(list.Newest[0].Detection with { StuckTasks = back.Newest[0].Detection.StuckTasks }, back.Newest[0].Detection);
        Assert.Equal(list.Newest[0] with { Detection = back.Newest[0].Detection }, back.Newest[0]);
        var ask = JsonSerializer.Deserialize<GetIncidents>(JsonSerializer.Serialize(new GetIncidents(7), DeeplineSerializer.Options), DeeplineSerializer.Options);
        Assert.Equal(new GetIncidents(7), ask);
    }

    [Theory]
    [InlineData(new double[0], 0.5, null)]
    [InlineData(new double[] { 5 }, 0.99, 5.0)]
    [InlineData(new double[] { 1, 2, 3, 4 }, 0.5, 2.0)]
    [InlineData(new double[] { 1, 2, 3, 4, 5, 6, 7, 8, 9, 100 }, 0.99, 100.0)]
    [InlineData(new double[] { 1, 2, 3, 4, 5, 6, 7, 8, 9, 100 }, 0.5, 5.0)]
    public void Percentiles_are_nearest_rank(double[] sorted, double p, double? expected) =>
        Assert.Equal(expected, UiFeed.Percentile(sorted, p));
}
