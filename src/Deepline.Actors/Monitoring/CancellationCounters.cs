using Akka.Actor;
using Deepline.Domain;

namespace Deepline.Actors.Monitoring;

/// <summary>
/// Per-node counters of cancelled tasks (by cause) and finished cancellations (by outcome), counted by this node's
/// run entities. Per actor system rather than static, so that several nodes in one process (tests) keep their own.
/// Like any Prometheus counter they start at 0 with the process; sum() over nodes and rate() give the cluster's.
/// </summary>
public sealed class CancellationCounters : IExtension
{
    private readonly long[] _tasks = new long[Enum.GetValues<TaskCancelCause>().Length];
    private readonly long[] _runs = new long[Enum.GetValues<CancelOutcome>().Length];

    public static CancellationCounters For(ActorSystem system) => system.WithExtension<CancellationCounters, Provider>();

    public void TasksCancelled(TaskCancelCause cause, int count)
    {
        if (count > 0) Interlocked.Add(ref _tasks[(int)cause], count);
    }

    public void RunCancelled(CancelOutcome outcome) => Interlocked.Increment(ref _runs[(int)outcome]);

    public long Tasks(TaskCancelCause cause) => Interlocked.Read(ref _tasks[(int)cause]);

    public long Runs(CancelOutcome outcome) => Interlocked.Read(ref _runs[(int)outcome]);

    public sealed class Provider : ExtensionIdProvider<CancellationCounters>
    {
        public override CancellationCounters CreateExtension(ExtendedActorSystem system) => new();
    }
}
