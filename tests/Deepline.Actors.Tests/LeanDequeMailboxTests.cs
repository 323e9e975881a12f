using System.Runtime.CompilerServices;
using Akka.Actor;
using Deepline.Actors.Hosting;
using Deepline.Domain;
using static Deepline.Actors.Tests.Specs;

namespace Deepline.Actors.Tests;

/// <summary>
/// The run entities' mailbox and what an idle run keeps: the memory of 100,000 open runs per node is made of these.
/// </summary>
public sealed class LeanDequeMailboxTests : IDisposable
{
    private readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    [Theory]
    [InlineData(1)]
    [InlineData(7)]
    [InlineData(42)]
    public void Random_appends_prepends_and_takes_come_out_as_a_double_ended_queue_would(int seed)
    {
        // A reference deque and ours, through growth, wrap-around and the release of a drained buffer.
        var rng = new Random(seed);
        var queue = new LeanDequeMessageQueue();
        var model = new LinkedList<int>();
        for (var i = 0; i < 20_000; i++)
        {
            switch (rng.Next(10))
            {
                case < 5:
                    queue.Enqueue(ActorRefs.Nobody, new Envelope(i, ActorRefs.NoSender));
                    model.AddLast(i);
                    break;
                case < 6:
                    queue.EnqueueFirst(new Envelope(i, ActorRefs.NoSender));
                    model.AddFirst(i);
                    break;
                default:
                    var took = queue.TryDequeue(out var envelope);
                    Assert.Equal(model.Count > 0, took);
                    if (!took) break;
                    Assert.Equal(model.First!.Value, envelope.Message);
                    model.RemoveFirst();
                    break;
            }
            Assert.Equal(model.Count, queue.Count);
            Assert.Equal(model.Count > 0, queue.HasMessages);
        }
    }

    [Fact]
    public async System.Threading.Tasks.Task Concurrent_senders_lose_nothing_and_each_sender_s_messages_keep_their_order()
    {
        var queue = new LeanDequeMessageQueue();
        const int Senders = 4, PerSender = 50_000;
        var senders = Enumerable.Range(0, Senders).Select(s => System.Threading.Tasks.Task.Run(() =>
        {
            for (var i = 0; i < PerSender; i++) queue.Enqueue(ActorRefs.Nobody, new Envelope((s, i), ActorRefs.NoSender));
        })).ToArray();
        var next = new int[Senders];
        var received = 0;
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(60);
        while (received < Senders * PerSender && DateTime.UtcNow < deadline)
        {
            if (!queue.TryDequeue(out var envelope))
            {
                Thread.Yield();
                continue;
            }
            var (sender, n) = ((int, int))envelope.Message;
            Assert.Equal(next[sender], n);
            next[sender]++;
            received++;
        }
        await System.Threading.Tasks.Task.WhenAll(senders);
        Assert.Equal(Senders * PerSender, received);
        Assert.False(queue.HasMessages);
    }

    [Fact]
    public async System.Threading.Tasks.Task A_run_entity_stashes_and_unstashes_through_it_answering_every_command_of_a_burst()
    {
        // The reads sent right behind the submit arrive while its write is in flight: they are stashed and put back at
        // the front afterwards, so each must see the run the submit created.
        await using var node = await TestNode.StartAsync(_dir.Path);
        var submit = node.Region.Ask<IDeeplineMessage>(new SubmitRun(Run("burst", Task("h", "hang"))), TimeSpan.FromSeconds(10));
        var reads = Enumerable.Range(0, 200)
            .Select(_ => node.Region.Ask<IDeeplineMessage>(new GetRun("burst"), TimeSpan.FromSeconds(10))).ToArray();

        Assert.IsType<RunReply>(await submit);
        var replies = await System.Threading.Tasks.Task.WhenAll(reads);
        Assert.All(replies, r => Assert.Equal("burst", Assert.IsType<RunReply>(r).State.RunId));
    }

    [Fact]
    public async System.Threading.Tasks.Task An_idle_run_does_not_keep_the_answer_it_last_gave()
    {
        // The actor cell remembers the last message's sender; for an ask that is a temporary ref holding the answer,
        // a copy of the run's state: 0.9 KiB per open run that sits idle, kept for as long as it does.
        await using var node = await TestNode.StartAsync(_dir.Path);
        // Its task waits for an external pool: nothing else talks to the run after the read.
        await node.Ask<RunReply>(new SubmitRun(Run("idle", Task("h", "hang") with { Pool = "external" })));
        var answer = await AskAndForget(node);
        // The region and the shard remember their last sender too (shared by all their runs, so no cost per run): a
        // message for another run of the same shard, sent without a sender, replaces it there but not in "idle".
        var extractor = new Deepline.Actors.Workflows.RunMessageExtractor(node.NumberOfShards);
        var shard = extractor.ShardId("idle", null);
        var neighbour = Enumerable.Range(0, 10_000).Select(i => $"neighbour-{i}").First(id => extractor.ShardId(id, null) == shard);
        node.Region.Tell(new GetRun(neighbour), ActorRefs.NoSender);

        await Await.Until(() =>
        {
            GC.Collect(GC.MaxGeneration, GCCollectionMode.Forced, blocking: true);
            GC.WaitForPendingFinalizers();
            return System.Threading.Tasks.Task.FromResult(!answer.IsAlive);
        }, TimeSpan.FromSeconds(10), () => "the run's last answer was collected");
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static async System.Threading.Tasks.Task<WeakReference> AskAndForget(TestNode node) =>
        new(await node.Ask<RunReply>(new GetRun("idle")));
}
