using Akka.Actor;
using Akka.Configuration;
using Akka.Dispatch;
using Akka.Dispatch.MessageQueues;

namespace Deepline.Actors.Hosting;

/// <summary>
/// The mailbox of run entities: the deque semantics persistent actors need for stashing, at a fraction of the default's
/// size. Akka's unbounded deque mailbox wraps a <see cref="System.Collections.Concurrent.ConcurrentQueue{T}"/>, whose
/// first segment alone is 32 slots (about 1 KiB per actor, measured with dumpheap); a run is an actor that hears a
/// message now and then and mostly sits idle, 100,000 of them per node, so a plain queue that starts empty, under a
/// lock nobody contends for, costs less memory and no measurable time.
/// </summary>
public sealed class LeanDequeMailbox : MailboxType, IProducesMessageQueue<LeanDequeMessageQueue>
{
    /// <summary>Where the mailbox is configured; entity props name it with <c>WithMailbox</c>.</summary>
    public const string ConfigPath = "deepline.lean-deque-mailbox";

    /// <summary>The HOCON that registers it at <see cref="ConfigPath"/>.</summary>
    public static string Hocon => $"{ConfigPath}.mailbox-type = \"{typeof(LeanDequeMailbox).AssemblyQualifiedName}\"";

    public LeanDequeMailbox(Settings settings, Config config) : base(settings, config)
    {
    }

    public override IMessageQueue Create(IActorRef owner, ActorSystem system) => new LeanDequeMessageQueue();
}

/// <summary>
/// Many writers, one reader (the actor), pushes to the front from the reader only (unstash): one ring buffer that starts
/// empty, grows by doubling and is given back once a burst has drained. Everything is under one lock: the dispatcher
/// asks <see cref="HasMessages"/> from other threads.
/// </summary>
public sealed class LeanDequeMessageQueue : IMessageQueue, IUnboundedDequeBasedMessageQueueSemantics
{
    // An idle run keeps a buffer this small; a larger one left over from a burst is dropped when the queue empties.
    private const int KeptCapacity = 4;

    private readonly object _lock = new();
    private Envelope[] _items = [];
    private int _head;
    private int _count;

    public bool HasMessages => Count > 0;

    public int Count
    {
        get
        {
            lock (_lock) return _count;
        }
    }

    public void Enqueue(IActorRef receiver, Envelope envelope)
    {
        lock (_lock)
        {
            if (_count == _items.Length) Grow();
            _items[(_head + _count) % _items.Length] = envelope;
            _count++;
        }
    }

    public void EnqueueFirst(Envelope envelope)
    {
        lock (_lock)
        {
            if (_count == _items.Length) Grow();
            _head = (_head + _items.Length - 1) % _items.Length;
            _items[_head] = envelope;
            _count++;
        }
    }

    public bool TryDequeue(out Envelope envelope)
    {
        lock (_lock)
        {
            if (_count == 0)
            {
                envelope = default;
                return false;
            }
            envelope = _items[_head];
            _items[_head] = default;
            _head = (_head + 1) % _items.Length;
            if (--_count == 0 && _items.Length > KeptCapacity) (_items, _head) = ([], 0);
            return true;
        }
    }

    public void CleanUp(IActorRef owner, IMessageQueue deadletters)
    {
        while (TryDequeue(out var envelope)) deadletters.Enqueue(owner, envelope);
    }

    private void Grow()
    {
        var grown = new Envelope[Math.Max(KeptCapacity, _items.Length * 2)];
        for (var i = 0; i < _count; i++) grown[i] = _items[(_head + i) % _items.Length];
        (_items, _head) = (grown, 0);
    }
}
