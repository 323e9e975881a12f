using System.Collections.Immutable;
using Akka.Actor;
using Akka.Cluster.Tools.PublishSubscribe;
using Akka.Event;
using Deepline.Actors.Workers;

namespace Deepline.Actors.Queues;

/// <summary>
/// This node's queues of ready tasks for external pools, one per pool, fed by the runs this node hosts. A poll takes
/// from here first; finding nothing, it waits here and is announced to every other node's queues, so the next task
/// queued anywhere in the cluster goes straight to it (a handoff), not to a poll loop. A queue lives and dies with the
/// runs it serves: when a node is lost, its runs recover elsewhere and dispatch their ready tasks again.
/// </summary>
public sealed class TaskQueues : ReceiveActor, IWithTimers
{
    public const string Topic = "deepline.task-queues";

    /// <summary>A worker counts as connected to a pool for this long after its last poll.</summary>
    public static readonly TimeSpan PollerWindow = TimeSpan.FromSeconds(30);

    private readonly Dictionary<string, PoolQueue> _queues = new(StringComparer.Ordinal);
    /// <summary>Polls of this node waiting for a task, oldest first within a pool.</summary>
    private readonly Dictionary<long, Waiter> _waiting = new();
    /// <summary>Polls of other nodes waiting for a task of a pool: handed the next task queued here.</summary>
    private readonly List<(IActorRef Origin, RemoteWaiter Waiter)> _remote = [];
    private readonly Dictionary<string, Dictionary<string, DateTimeOffset>> _pollers = new(StringComparer.Ordinal);
    /// <summary>Tasks other nodes handed to this node's polls, by the queue they came from, until leased or returned.</summary>
    private readonly Dictionary<TaskKey, (IActorRef Origin, DateTimeOffset At)> _handedIn = new();
    private readonly IActorRef _mediator;
    private readonly ILoggingAdapter _log = Context.GetLogger();
    private long _nextWaiter;

    private sealed record Waiter(long Id, string Pool, int Max, IActorRef ReplyTo, DateTimeOffset Deadline);

    private sealed record PollExpired(long WaiterId);

    public TaskQueues()
    {
        _mediator = DistributedPubSub.Get(Context.System).Mediator;
        Receive<QueuedTask>(Offer);
        Receive<ReturnTasks>(r =>
        {
            foreach (var t in r.Tasks)
            {
                // A task another node handed to a poll here goes back to that node, where its run lives: queued here, it
                // would be lost with this node while the run lives on.
                if (_handedIn.Remove(t.Key, out var from)) from.Origin.Tell(new ReturnTasks([t]));
                else Offer(t);
            }
        });
        Receive<PollTasks>(Poll);
        Receive<PollExpired>(e => Answer(e.WaiterId, PolledTasks.None));
        Receive<RemoteWaiter>(OnRemoteWaiter);
        Receive<WaiterSatisfied>(s => _remote.RemoveAll(r => r.Origin.Equals(Sender) && r.Waiter.WaiterId == s.WaiterId));
        Receive<Handoff>(OnHandoff);
        Receive<RunCancelledNotice>(n =>
        {
            foreach (var pool in _queues.Keys.ToList()) SetQueue(pool, _queues[pool].RemoveRun(n.RunId));
        });
        Receive<GetQueueStats>(_ => Sender.Tell(Stats(DateTimeOffset.UtcNow)));
        Receive<SubscribeAck>(_ => { });
    }

    public ITimerScheduler Timers { get; set; } = null!;

    protected override void PreStart()
    {
        _mediator.Tell(new Subscribe(Topic, Self));
        Context.System.EventStream.Subscribe(Self, typeof(RunCancelledNotice));
    }

    private PoolQueue QueueOf(string pool) => _queues.TryGetValue(pool, out var q) ? q : PoolQueue.Empty;

    /// <summary>A ready task: to the oldest poll waiting here, else to a poll waiting on another node, else into the queue.</summary>
    private void Offer(QueuedTask task)
    {
        if (QueueOf(task.Pool).Keys.Contains(task.Key)) return;
        foreach (var w in _waiting.Values)
        {
            if (w.Pool != task.Pool) continue;
            Answer(w.Id, new PolledTasks([task]));
            return;
        }
        var now = DateTimeOffset.UtcNow;
        _remote.RemoveAll(r => r.Waiter.Deadline <= now);
        var remote = _remote.FindIndex(r => r.Waiter.Pool == task.Pool);
        if (remote >= 0)
        {
            var (origin, waiter) = _remote[remote];
            _remote.RemoveAt(remote);
            origin.Tell(new Handoff(waiter.WaiterId, [task]));
            return;
        }
        SetQueue(task.Pool, QueueOf(task.Pool).Enqueue(task));
    }

    /// <summary>Only pools with queued tasks are kept: a poll of any name must not leave an entry behind.</summary>
    private void SetQueue(string pool, PoolQueue queue)
    {
        if (queue.Depth == 0) _queues.Remove(pool);
        else _queues[pool] = queue;
    }

    private void Poll(PollTasks poll)
    {
        var now = DateTimeOffset.UtcNow;
        if (!_pollers.TryGetValue(poll.Pool, out var seen)) _pollers[poll.Pool] = seen = new(StringComparer.Ordinal);
        seen[poll.WorkerId] = now;
        // Workers that come and go under new ids (one per process start) must not grow this between two stats reads.
        if (seen.Count > MaxPollersTracked) Forget(seen, now);
        if (_pollers.Count > MaxPollersTracked) ForgetIdlePools(now);
        var (queue, taken) = QueueOf(poll.Pool).Take(poll.Max);
        SetQueue(poll.Pool, queue);
        if (taken.Count > 0 || poll.Wait <= TimeSpan.Zero)
        {
            Sender.Tell(new PolledTasks([.. taken]));
            return;
        }
        var waiter = new Waiter(++_nextWaiter, poll.Pool, poll.Max, Sender, now + poll.Wait);
        _waiting[waiter.Id] = waiter;
        Timers.StartSingleTimer(("poll", waiter.Id), new PollExpired(waiter.Id), poll.Wait);
        _mediator.Tell(new Publish(Topic, new RemoteWaiter(poll.Pool, waiter.Id, poll.Max, waiter.Deadline)));
    }

    private void Answer(long waiterId, PolledTasks answer)
    {
        if (!_waiting.Remove(waiterId, out var w)) return;
        Timers.Cancel(("poll", waiterId));
        w.ReplyTo.Tell(answer);
        _mediator.Tell(new Publish(Topic, new WaiterSatisfied(w.Pool, waiterId)));
    }

    private void OnRemoteWaiter(RemoteWaiter w)
    {
        // The announcement of one of this node's own polls comes back through the topic.
        if (Sender.Equals(Self)) return;
        var (queue, taken) = QueueOf(w.Pool).Take(w.Max);
        if (taken.Count > 0)
        {
            SetQueue(w.Pool, queue);
            Sender.Tell(new Handoff(w.WaiterId, [.. taken]));
            return;
        }
        _remote.Add((Sender, w));
    }

    private void OnHandoff(Handoff h)
    {
        if (_waiting.ContainsKey(h.WaiterId))
        {
            var now = DateTimeOffset.UtcNow;
            foreach (var stale in _handedIn.Where(kv => now - kv.Value.At > HandedInKept).Select(kv => kv.Key).ToList()) _handedIn.Remove(stale);
            foreach (var t in h.Tasks) _handedIn[t.Key] = (Sender, now);
            Answer(h.WaiterId, new PolledTasks(h.Tasks));
            return;
        }
        // The poll was answered meanwhile: the tasks go back to the node whose runs they belong to.
        Sender.Tell(new ReturnTasks(h.Tasks));
    }

    private const int MaxPollersTracked = 10_000;

    /// <summary>Longer than any poll's lease round trip: a handed-in task not returned by then was leased.</summary>
    private static readonly TimeSpan HandedInKept = TimeSpan.FromMinutes(2);

    private static void Forget(Dictionary<string, DateTimeOffset> seen, DateTimeOffset now)
    {
        foreach (var gone in seen.Where(kv => now - kv.Value > PollerWindow).Select(kv => kv.Key).ToList()) seen.Remove(gone);
    }

    /// <summary>Pools nobody polled within the window and with nothing queued are forgotten (names are the callers').</summary>
    private void ForgetIdlePools(DateTimeOffset now)
    {
        foreach (var (pool, seen) in _pollers.ToList())
        {
            Forget(seen, now);
            if (seen.Count == 0) _pollers.Remove(pool);
        }
    }

    private QueueStats Stats(DateTimeOffset now)
    {
        ForgetIdlePools(now);
        var pools = _queues.Keys.Concat(_pollers.Keys).Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal);
        return new QueueStats([.. pools.Select(pool =>
        {
            var q = QueueOf(pool);
            var seen = _pollers.TryGetValue(pool, out var s) ? s : null;
            return new PoolQueueStat(pool, q.Depth, q.OldestQueuedAt(), _waiting.Values.Count(w => w.Pool == pool),
                seen?.Count ?? 0, seen is { Count: > 0 } ? seen.Values.Max() : null);
        })]);
    }
}
