using Akka.Actor;
using Akka.Persistence;
using Akka.Persistence.Journal;
using Deepline.Actors.Hosting;

namespace Deepline.Actors.Tests;

/// <summary>
/// "Old writer" on replay: our journal's writer id is per node process, so a run whose shard went from node A to B and
/// back to A has events A, B, A. Akka's default replay filter drops the last A's (shown first, so the hazard is real),
/// and the node's journal runs without the filter, so every event of such a run is replayed.
/// </summary>
public sealed class ReplayFilterTests : Akka.TestKit.Xunit2.TestKit
{
    [Fact]
    public void Akkas_default_filter_drops_the_events_of_a_writer_that_wrote_again_after_another()
    {
        var run = CreateTestProbe();
        var filter = Sys.ActorOf(ReplayFilter.Props(run.Ref, ReplayFilterMode.RepairByDiscardOld, windowSize: 100, maxOldWriters: 10, debugEnabled: false));
        foreach (var (seq, writer) in new[] { (1L, "node-a"), (2L, "node-a"), (3L, "node-b"), (4L, "node-a"), (5L, "node-a") })
            filter.Tell(new ReplayedMessage(new Persistent($"e{seq}", seq, "run-x", writerGuid: writer)));
        filter.Tell(new RecoverySuccess(5));

        var replayed = new List<long>();
        while (run.ReceiveOne(TimeSpan.FromSeconds(3)) is ReplayedMessage m) replayed.Add(m.Persistent.SequenceNr);
        Assert.Equal([1L, 2L, 3L], replayed); // 4 and 5 lost
    }

    [Fact]
    public async Task The_nodes_journal_replays_every_event_without_a_filter()
    {
        var dir = Directory.CreateTempSubdirectory("deepline-replay-").FullName;
        try
        {
            await using var node = await TestNode.StartAsync(dir);
            var journal = node.System.Settings.Config.GetConfig("akka.persistence.journal.sql");
            Assert.Equal("off", journal.GetString("replay-filter.mode"));
            Assert.Equal(typeof(GroupCommitJournal).AssemblyQualifiedName, journal.GetString("class"));
        }
        finally
        {
            try { Directory.Delete(dir, true); } catch (IOException) { }
        }
    }
}
