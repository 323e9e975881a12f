using System.Collections.Immutable;
using Akka.Actor;
using Akka.Event;
using Deepline.Actors.Monitoring;
using Deepline.Domain;

namespace Deepline.Actors.Alerting;

/// <summary>
/// Sends alerts off the detection path: a bounded queue (the oldest alert is dropped, and counted, when a dead
/// receiver lets it fill), a few deliveries in flight, each with timeouts and retries. Tells its parent how each ended.
/// Resolves of closed incidents (<see cref="ResolveRequest"/>) share the queue.
/// </summary>
public sealed class Alerter : ReceiveActor
{
    public const int QueueCapacity = 1000;
    private const int InFlightMax = 2;

    private readonly WebhookSender _sender;
    private readonly ILoggingAdapter _log = Context.GetLogger();
    private ImmutableQueue<IDeeplineMessage> _queue = [];
    private int _queued;
    private int _inFlight;

    public Alerter(WebhookSender sender)
    {
        _sender = sender;
        Receive<AlertRequest>(Enqueue);
        Receive<ResolveRequest>(Enqueue);
        Receive<Delivered>(d =>
        {
            _inFlight--;
            if (d.Error is not null)
                _log.Error(d.Resolve
                        ? "Failed to resolve deadlock alert: {error} (workflow {run_id}, webhook {webhook})"
                        : "Failed to send deadlock alert: {error} (workflow {run_id}, webhook {webhook})",
                    d.Error, d.RunId, AlertPayloads.Redact(_sender.Settings.Url));
            Context.Parent.Tell(new AlertOutcome(d.RunId, d.Error is null) { Resolve = d.Resolve });
            Pump();
        });
    }

    public static Props Props(WebhookSender sender) => Akka.Actor.Props.Create(() => new Alerter(sender));

    private void Enqueue(IDeeplineMessage request)
    {
        if (_queued >= QueueCapacity)
        {
            _queue = _queue.Dequeue(out var dropped);
            _queued--;
            var (runId, resolve) = Describe(dropped);
            _log.Error(resolve
                ? "Failed to resolve deadlock alert: queue full, dropped the resolve for workflow {run_id}"
                : "Failed to send deadlock alert: queue full, dropped the alert for workflow {run_id}", runId);
            Context.Parent.Tell(new AlertOutcome(runId, false) { Resolve = resolve });
        }
        _queue = _queue.Enqueue(request);
        _queued++;
        Pump();
    }

    private static (string RunId, bool Resolve) Describe(IDeeplineMessage request) => request switch
    {
        ResolveRequest r => (r.RunId, true),
        AlertRequest a => (a.Detection.RunId, false),
        _ => throw new ArgumentOutOfRangeException(nameof(request)),
    };

    private void Pump()
    {
        while (_inFlight < InFlightMax && !_queue.IsEmpty)
        {
            _queue = _queue.Dequeue(out var next);
            _queued--;
            _inFlight++;
            var format = AlertPayloads.Resolve(_sender.Settings.Format, _sender.Settings.Url);
            var body = next is ResolveRequest r
                ? AlertPayloads.PagerDutyResolve(r.RunId, _sender.Settings.RoutingKey)
                : AlertPayloads.Build(format, (AlertRequest)next, _sender.Settings.RoutingKey);
            var (runId, resolve) = Describe(next);
            _sender.SendAsync(body, CancellationToken.None)
                .PipeTo(Self, success: error => new Delivered(runId, resolve, error), failure: ex => new Delivered(runId, resolve, ex.Message));
        }
    }

    private sealed record Delivered(string RunId, bool Resolve, string? Error);
}

/// <summary>Alerter → supervisor: whether the alert (or, with <see cref="Resolve"/>, the resolve) for a run reached the receiver.</summary>
public sealed record AlertOutcome(string RunId, bool Delivered)
{
    public bool Resolve { get; init; }
}
