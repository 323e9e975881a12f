using System.Collections.Immutable;
using Deepline.Domain;

namespace Deepline.Actors.Queues;

/// <summary>A worker's poll (asked by the HTTP endpoint): up to <see cref="Max"/> tasks, waiting up to <see cref="Wait"/> for one.</summary>
public sealed record PollTasks(string Pool, string WorkerId, int Max, TimeSpan Wait) : IDeeplineMessage;

/// <summary>The answer to a poll: tasks taken out of the queue for this poller (empty when the wait passed).</summary>
public sealed record PolledTasks(ImmutableArray<QueuedTask> Tasks) : IDeeplineMessage
{
    public static PolledTasks None { get; } = new([]);
}

/// <summary>Tasks taken for a poll that could not lease them (the poller went away, the run did not answer): queued again.</summary>
public sealed record ReturnTasks(ImmutableArray<QueuedTask> Tasks) : IDeeplineMessage;

/// <summary>
/// Published to every node's queues when a poll found nothing here: a task queued there is handed to this poll (sent
/// to the publishing queue, the message's sender, as <see cref="Handoff"/>), so a task queued on any node reaches a
/// poller on any node.
/// </summary>
public sealed record RemoteWaiter(string Pool, long WaiterId, int Max, DateTimeOffset Deadline) : IDeeplineMessage;

/// <summary>Published when a poll that was announced as <see cref="RemoteWaiter"/> is answered: the others forget it.</summary>
public sealed record WaiterSatisfied(string Pool, long WaiterId) : IDeeplineMessage;

/// <summary>Tasks another node's queue hands to one of this node's polls; returned (<see cref="ReturnTasks"/>) if it is over.</summary>
public sealed record Handoff(long WaiterId, ImmutableArray<QueuedTask> Tasks) : IDeeplineMessage;

public sealed record GetQueueStats : IDeeplineMessage
{
    public static GetQueueStats Instance { get; } = new();
}

/// <summary>One pool's queue on this node.</summary>
/// <param name="Pollers">Distinct workers that polled in the last <see cref="TaskQueues.PollerWindow"/>.</param>
/// <param name="LastPollAt">The last poll of this pool on this node; null: never.</param>
public sealed record PoolQueueStat(string Pool, int Depth, DateTimeOffset? OldestQueuedAt, int WaitingPolls, int Pollers, DateTimeOffset? LastPollAt) : IDeeplineMessage;

public sealed record QueueStats(ImmutableArray<PoolQueueStat> Pools) : IDeeplineMessage;
