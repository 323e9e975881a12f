using System.Collections.Immutable;
using System.Text.Json;
using Deepline.Domain;

namespace Deepline.Actors.Workers;

/// <summary>A run hands a ready task to an in-cluster pool. The pool claims it with TASK_STARTED before running it.</summary>
public sealed record ExecuteTask(string RunId, string TaskId, string Type, string Pool, JsonElement? Params) : IDeeplineMessage
{
    /// <summary>W3C trace context of the dispatch, parent of the task's execution span; null when nothing traces.</summary>
    public string? TraceParent { get; init; }

    /// <summary>The attempt a claim of this dispatch opens; every report of it names it. 0 from nodes before attempts.</summary>
    [System.Text.Json.Serialization.JsonIgnore(Condition = System.Text.Json.Serialization.JsonIgnoreCondition.WhenWritingDefault)]
    public int Attempt { get; init; }
}

/// <summary>
/// Published on <see cref="Topics.Cancellations"/> (and this node's event stream) when a run decides to cancel, while
/// the cancel record is being journalled: a pool stops the run's tasks at once. The journal stays the source of truth
/// (<see cref="RunCancelJournalled"/> follows once the record is durable).
/// </summary>
public sealed record RunCancelledNotice(string RunId, string Reason, string CancelledBy, DateTimeOffset CancelledAt) : IDeeplineMessage
{
    /// <summary>The run's client, so a listener can scope the notice (the dashboard's per-client streams); null from older nodes.</summary>
    public string? ClientId { get; init; }

    /// <summary>W3C trace context of the run's cancel span (copied into the Redis message); null when nothing traces.</summary>
    public string? TraceParent { get; init; }
}

/// <summary>
/// Published on <see cref="Topics.Cancellations"/> when the journal write of an announced cancel failed or was refused:
/// a pool forgets the run's cancel, so that the run's later tasks are not dropped (the tasks the notice stopped stay
/// stopped; their workers report them cancelled). Harmless when the write was stored after all: a cancelled run
/// dispatches nothing more, and a straggler learns of the cancel from a heartbeat's answer.
/// </summary>
public sealed record RunCancelWithdrawn(string RunId) : IDeeplineMessage;

/// <summary>
/// On this node's event stream only (never sent between nodes): the cancel <see cref="Notice"/> announced earlier is
/// now journalled, so durable copies of it (Redis's <c>cancelled_runs</c> set) may be written.
/// </summary>
public sealed record RunCancelJournalled(RunCancelledNotice Notice);

/// <summary>
/// An in-cluster pool's report about one task, told to the run rather than asked: the run answers the pool itself with a
/// <see cref="PoolReportAnswer"/> carrying the same <see cref="Id"/>. A pool sends two reports per task and one per
/// heartbeat; an ask would cost each a temporary actor, a timeout on the scheduler and a continuation (the pool times
/// its reports out itself).
/// </summary>
public sealed record PoolReport(ReportTaskEvent Report, long Id) : IDeeplineMessage;

/// <summary>
/// Reports about several tasks of one run that waited in the pool while its previous report to that run was being
/// journalled: the run decides them in order and journals all their events in one write, then answers each (a run of
/// thousands of parallel tasks otherwise wrote one report at a time).
/// </summary>
public sealed record PoolReports(string RunId, ImmutableArray<PoolReport> Reports) : IDeeplineMessage;

/// <summary>The run's answer to a <see cref="PoolReport"/>: exactly one of <see cref="Accepted"/> and <see cref="Rejected"/>.</summary>
public sealed record PoolReportAnswer(long Id, TaskEventAccepted? Accepted, CommandRejected? Rejected) : IDeeplineMessage
{
    [System.Text.Json.Serialization.JsonIgnore]
    public IDeeplineMessage? Answer => (IDeeplineMessage?)Accepted ?? Rejected;

    public static PoolReportAnswer For(long id, IDeeplineMessage answer) => answer switch
    {
        TaskEventAccepted accepted => new PoolReportAnswer(id, accepted, null),
        CommandRejected rejected => new PoolReportAnswer(id, null, rejected),
        _ => new PoolReportAnswer(id, null, new CommandRejected(RejectionKind.BadRequest, $"unexpected answer {answer.GetType().Name} to a task event")),
    };
}

public static class Topics
{
    public const string Cancellations = "deepline.cancellations";

    public static string PoolPath(string pool) => "/user/" + PoolActorName(pool);

    public static string PoolActorName(string pool) => "worker-pool-" + pool;
}
