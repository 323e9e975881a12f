using Akka.Actor;
using Deepline.Actors.Serialization;
using Deepline.Domain;

namespace Deepline.Actors.Tests.Serialization;

public sealed class SerializerFixture : IDisposable
{
    private readonly ActorSystem _system = ActorSystem.Create("serializer-tests", "akka.loglevel = WARNING");

    public DeeplineSerializer Serializer => new((ExtendedActorSystem)_system);

    public void Dispose() => _system.Dispose();
}

/// <summary>Every type the serializer has a manifest for survives a write and a read with every field intact.</summary>
public sealed class SerializerRoundTripTests(SerializerFixture fixture) : IClassFixture<SerializerFixture>
{
    public static TheoryData<string> Manifests() => [.. DeeplineSerializer.Manifests.Keys.Order(StringComparer.Ordinal)];

    [Theory]
    [MemberData(nameof(Manifests))]
    public void Every_manifest_round_trips_with_every_field(string manifest)
    {
        var serializer = fixture.Serializer;
        var value = Samples.Of(DeeplineSerializer.Manifests[manifest]);

        Assert.Equal(manifest, serializer.Manifest(value));
        var back = serializer.FromBinary(serializer.ToBinary(value), manifest);

        Assert.IsNotType<UnreadablePayload>(back);
        Samples.AssertSameFields(value, back);
    }

    [Fact]
    public void The_manifest_table_holds_the_journalled_events_and_snapshots()
    {
        // The table is built by reflection; this pins that the types a journal holds are in it under their short name.
        foreach (var type in new[]
                 {
                     typeof(RunSubmitted), typeof(TaskStarted), typeof(TaskHeartbeat), typeof(TaskSucceeded), typeof(TaskFailed),
                     typeof(TaskCancelled), typeof(RunCancelRequested), typeof(RunCancelFinalised), typeof(TaskEventIgnored),
                     typeof(TaskResourcesGranted), typeof(WorkflowState), typeof(Deepline.Domain.Resources.ResourceBook),
                     typeof(Monitoring.SupervisorState), typeof(Monitoring.IncidentOpened), typeof(Monitoring.ScanRecorded),
                 })
            Assert.Same(type, DeeplineSerializer.Manifests[type.Name]);
    }

    [Fact]
    public void A_realistic_run_state_round_trips()
    {
        // The reflection samples fill every field but do not hold the state's invariants; this one is a run as it is journalled.
        var t0 = Samples.At;
        var spec = new RunSpec("run-1", "etl", "team-a",
        [
            new TaskSpec("extract", "delay", TaskSpec.DefaultPool, System.Text.Json.JsonDocument.Parse("""{"ms":5}""").RootElement, []),
            new TaskSpec("train", "hang", "gpu", null, ["extract"]),
            new TaskSpec("report", "noop", TaskSpec.DefaultPool, null, ["train"]),
        ], new DeadlockOverrides(30, null, 10)) { Priority = 3 };
        var state = WorkflowState.Create(new RunSubmitted(spec, t0))
            .Apply(new TaskStarted("extract", "w-1", t0.AddSeconds(1)))
            .Apply(new TaskSucceeded("extract", System.Text.Json.JsonDocument.Parse("[1,2]").RootElement, t0.AddSeconds(2)))
            .Apply(new TaskStarted("train", "w-2", t0.AddSeconds(3)))
            .Apply(new RunCancelRequested("user requested cancellation", "api", false, t0.AddSeconds(4)))
            .Apply(new TaskEventIgnored("extract", TaskEventKind.TASK_SUCCEEDED, "terminal", t0.AddSeconds(5)));
        var serializer = fixture.Serializer;

        var back = (WorkflowState)serializer.FromBinary(serializer.ToBinary(state), serializer.Manifest(state));

        Samples.AssertSameFields(state, back);
        Assert.Equal(RunStatus.CANCELLING, back.Status);
        Assert.Equal(TaskState.RUNNING, back.Tasks["train"].State);
        Assert.Equal(["train"], back.Dependents["extract"].ToArray());
    }
}
