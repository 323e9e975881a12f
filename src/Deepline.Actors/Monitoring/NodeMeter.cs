using System.Diagnostics.Metrics;
using Akka.Actor;
using Deepline.Domain;

namespace Deepline.Actors.Monitoring;

/// <summary>
/// The node's <c>System.Diagnostics.Metrics</c> meter, one per actor system. Its <see cref="Meter.Scope"/> is the
/// object a <see cref="NodeMeterSetup"/> names (else the actor system), so a host can keep exactly its own node's
/// instruments when several nodes share a process (tests, benches): a MeterListener sees every meter of a name in
/// the process, whoever created it.
/// </summary>
/// <remarks>
/// Instrument names are chosen so that the OpenTelemetry Prometheus exporter's naming (a counter gets <c>_total</c>, a
/// unit of "s" gets <c>_seconds</c>) yields exactly the names the node has always exported.
/// </remarks>
public sealed class NodeMeter : IExtension
{
    public const string MeterName = "Deepline.Actors";

    /// <summary>Bucket bounds for cancel propagation: from an in-process acknowledgement (ms) to cancel_timeout_s scale.</summary>
    private static readonly double[] PropagationBuckets = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600];

    private readonly Histogram<double> _propagation;
    private readonly long[] _runStatus = new long[Enum.GetValues<RunStatus>().Length];
    private long _claimsExpiredGranted;
    private long _claimsExpiredWaiting;

    private NodeMeter(ActorSystem system)
    {
        var setup = system.Settings.Setup.Get<NodeMeterSetup>();
        Meter = new Meter(new MeterOptions(MeterName) { Scope = setup.HasValue ? setup.Value.Scope : system });
        var counters = CancellationCounters.For(system);
        // Observable, not synchronous counters: every cause and outcome is a series at 0 from the start, so a query's
        // increase() sees the first cancel, and a dashboard does not show "no data" on a quiet node.
        Meter.CreateObservableCounter("task_cancelled",
            () => Enum.GetValues<TaskCancelCause>().Select(c => new Measurement<long>(counters.Tasks(c), new KeyValuePair<string, object?>("cause", c.ToString()))),
            description: "Tasks that ended CANCELLED on this node's runs, by cause (deadlock, user, admin, worker).");
        Meter.CreateObservableCounter("run_cancellations",
            () => Enum.GetValues<CancelOutcome>().Select(o => new Measurement<long>(counters.Runs(o), new KeyValuePair<string, object?>("outcome", o.ToString()))),
            description: "Cancellations of this node's runs that reached CANCELLED, by outcome (completed, forced, timed_out).");
        Meter.CreateObservableCounter("run_status_transitions",
            () => Enum.GetValues<RunStatus>().Select(s => new Measurement<long>(Interlocked.Read(ref _runStatus[(int)s]), new KeyValuePair<string, object?>("status", s.ToString()))),
            description: "Runs of this node that entered a status (RUNNING at submission, then SUCCEEDED, FAILED, CANCELLING, CANCELLED).");
        Meter.CreateObservableCounter("resource_claims_expired",
            () => new[]
            {
                new Measurement<long>(Interlocked.Read(ref _claimsExpiredGranted), new KeyValuePair<string, object?>("state", "granted")),
                new Measurement<long>(Interlocked.Read(ref _claimsExpiredWaiting), new KeyValuePair<string, object?>("state", "waiting")),
            },
            description: "External workers' resource claims released because the worker's lease ran out, by what the claim was (granted: a grant released, waiting: a wait withdrawn).");
        _propagation = Meter.CreateHistogram("run_cancel_propagation", unit: "s",
            description: "Time from a run's cancel record to the run being CANCELLED (every running task acknowledged, or the cancel forced or timed out), by outcome.",
            tags: null, advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = PropagationBuckets });
        system.RegisterOnTermination(Meter.Dispose);
    }

    public Meter Meter { get; }

    public static NodeMeter For(ActorSystem system) => system.WithExtension<NodeMeter, Provider>();

    /// <summary>Runs of this node that entered <paramref name="status"/> since it started (run_status_transitions).</summary>
    public long RunsEntered(RunStatus status) => Interlocked.Read(ref _runStatus[(int)status]);

    /// <summary>A run of this node entered <paramref name="status"/> (journalled: counted once, where it happened).</summary>
    public void RunEntered(RunStatus status) => Interlocked.Increment(ref _runStatus[(int)status]);

    /// <summary>An external worker's claim was released (granted) or withdrawn (waiting) because its lease ran out (journalled).</summary>
    public void ResourceClaimExpired(Deepline.Domain.Resources.ClaimState state)
    {
        if (state == Deepline.Domain.Resources.ClaimState.granted) Interlocked.Increment(ref _claimsExpiredGranted);
        else Interlocked.Increment(ref _claimsExpiredWaiting);
    }

    /// <summary>A run of this node reached CANCELLED: <paramref name="propagation"/> is from its cancel record to now.</summary>
    public void RunCancelPropagated(CancelOutcome outcome, TimeSpan propagation) =>
        _propagation.Record(Math.Max(0, propagation.TotalSeconds), new KeyValuePair<string, object?>("outcome", outcome.ToString()));

    public sealed class Provider : ExtensionIdProvider<NodeMeter>
    {
        public override NodeMeter CreateExtension(ExtendedActorSystem system) => new(system);
    }
}

/// <summary>Names the scope of the node's meter before the actor system starts, so no instrument is published without it.</summary>
public sealed class NodeMeterSetup(object scope) : Akka.Actor.Setup.Setup
{
    public object Scope { get; } = scope;
}
