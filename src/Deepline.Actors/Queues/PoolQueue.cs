using System.Collections.Immutable;
using Deepline.Actors.Workers;

namespace Deepline.Actors.Queues;

/// <summary>A ready task of an external pool, waiting for a poll. The run holds its params; the queue only its place.</summary>
public sealed record QueuedTask(string RunId, string TaskId, string Pool, string ClientId, DateTimeOffset QueuedAt) : Deepline.Domain.IDeeplineMessage
{
    public TaskKey Key => new(RunId, TaskId);
}

/// <summary>
/// One pool's queued tasks, handed out fairly: clients take turns, and within a client its runs take turns, so one
/// client's 10,000 queued tasks (or one run's) delay another's by one task per turn, not by 10,000. Each operation is
/// a pure function.
/// </summary>
public sealed record PoolQueue(
    ImmutableQueue<string> ClientTurns,
    ImmutableDictionary<string, ClientQueue> Clients,
    ImmutableHashSet<TaskKey> Keys)
{
    public static PoolQueue Empty { get; } = new([], ImmutableDictionary<string, ClientQueue>.Empty.WithComparers(StringComparer.Ordinal), []);

    public int Depth => Keys.Count;

    /// <summary>Adds a task at the back of its run's line; a task already queued (a run dispatching again) is not added twice.</summary>
    public PoolQueue Enqueue(QueuedTask task)
    {
        if (Keys.Contains(task.Key)) return this;
        var turns = ClientTurns;
        if (!Clients.TryGetValue(task.ClientId, out var client))
        {
            client = ClientQueue.Empty;
            turns = turns.Enqueue(task.ClientId);
        }
        return new PoolQueue(turns, Clients.SetItem(task.ClientId, client.Enqueue(task)), Keys.Add(task.Key));
    }

    /// <summary>Up to <paramref name="max"/> tasks, one per client per turn; <see cref="ClientTurns"/> holds exactly the clients with tasks.</summary>
    public (PoolQueue Queue, IReadOnlyList<QueuedTask> Taken) Take(int max)
    {
        var q = this;
        var taken = new List<QueuedTask>();
        while (taken.Count < max && !q.ClientTurns.IsEmpty)
        {
            var turns = q.ClientTurns.Dequeue(out var clientId);
            var (rest, task) = q.Clients[clientId].Take();
            if (task is not null) taken.Add(task);
            q = rest.IsEmpty
                ? q with { ClientTurns = turns, Clients = q.Clients.Remove(clientId) }
                : q with { ClientTurns = turns.Enqueue(clientId), Clients = q.Clients.SetItem(clientId, rest) };
            if (task is not null) q = q with { Keys = q.Keys.Remove(task.Key) };
        }
        return (q, taken);
    }

    /// <summary>Drops every queued task of a run (it was cancelled): a poll must not lease work nobody wants.</summary>
    public PoolQueue RemoveRun(string runId)
    {
        var q = this;
        foreach (var (clientId, client) in Clients)
        {
            if (!client.Runs.TryGetValue(runId, out var tasks)) continue;
            // The turns are rebuilt without the run (and the client, once empty): a cancel is rare, a turn left behind
            // would give the next run or client of that name two turns.
            var rest = new ClientQueue(ImmutableQueue.CreateRange(client.RunTurns.Where(r => r != runId)), client.Runs.Remove(runId));
            q = q with
            {
                ClientTurns = rest.IsEmpty ? ImmutableQueue.CreateRange(q.ClientTurns.Where(c => c != clientId)) : q.ClientTurns,
                Clients = rest.IsEmpty ? q.Clients.Remove(clientId) : q.Clients.SetItem(clientId, rest),
                Keys = q.Keys.Except(tasks.Select(t => t.Key)),
            };
        }
        return q;
    }

    /// <summary>When the longest-waiting task was queued (a walk over the runs' heads: for stats, not the hot path).</summary>
    public DateTimeOffset? OldestQueuedAt() =>
        Clients.Values.SelectMany(c => c.Runs.Values).Select(r => r.PeekRef().QueuedAt).DefaultIfEmpty().Min() is var oldest && oldest != default ? oldest : null;
}

/// <summary>One client's queued tasks: its runs take turns.</summary>
public sealed record ClientQueue(ImmutableQueue<string> RunTurns, ImmutableDictionary<string, ImmutableQueue<QueuedTask>> Runs)
{
    public static ClientQueue Empty { get; } = new([], ImmutableDictionary<string, ImmutableQueue<QueuedTask>>.Empty.WithComparers(StringComparer.Ordinal));

    public bool IsEmpty => Runs.IsEmpty;

    public ClientQueue Enqueue(QueuedTask task) => Runs.TryGetValue(task.RunId, out var line)
        ? this with { Runs = Runs.SetItem(task.RunId, line.Enqueue(task)) }
        : new ClientQueue(RunTurns.Enqueue(task.RunId), Runs.SetItem(task.RunId, ImmutableQueue.Create(task)));

    public (ClientQueue Remaining, QueuedTask? Task) Take()
    {
        var turns = RunTurns;
        while (!turns.IsEmpty)
        {
            turns = turns.Dequeue(out var runId);
            if (!Runs.TryGetValue(runId, out var line)) continue;
            var rest = line.Dequeue(out var task);
            return rest.IsEmpty
                ? (new ClientQueue(turns, Runs.Remove(runId)), task)
                : (new ClientQueue(turns.Enqueue(runId), Runs.SetItem(runId, rest)), task);
        }
        return (new ClientQueue(turns, Runs), null);
    }
}
