using System.Collections.Immutable;
using Akka.Actor;
using Akka.Event;
using Deepline.Actors.Monitoring;

namespace Deepline.Actors.Alerting;

/// <summary>
/// Sends alerts off the detection path: a bounded queue (the oldest alert is dropped, and counted, when a dead
/// receiver lets it fill), a few deliveries in flight, each with timeouts and retries. Tells its parent how each ended.
/// </summary>
public sealed class Alerter : ReceiveActor
{
    public const int QueueCapacity = 1000;
    private const int InFlightMax = 2;

    private readonly WebhookSender _sender;
    private readonly ILoggingAdapter _log = Context.GetLogger();
    private ImmutableQueue<AlertRequest> _queue = [];
    private int _queued;
    private int _inFlight;

    public Alerter(WebhookSender sender)
    {
        _sender = sender;
        Receive<AlertRequest>(a =>
        {
            if (_queued >= QueueCapacity)
            {
                _queue = _queue.Dequeue(out var dropped);
                _queued--;
                _log.Error("Failed to send deadlock alert: queue full, dropped the alert for workflow {run_id}", dropped.Detection.RunId);
                Context.Parent.Tell(new AlertOutcome(dropped.Detection.RunId, false));
            }
            _queue = _queue.Enqueue(a);
            _queued++;
            Pump();
        });
        Receive<Delivered>(d =>
        {
            _inFlight--;
            if (d.Error is not null)
                _log.Error("Failed to send deadlock alert: {error} (workflow {run_id}, webhook {webhook})", d.Error, d.RunId, AlertPayloads.Redact(_sender.Settings.Url));
            Context.Parent.Tell(new AlertOutcome(d.RunId, d.Error is null));
            Pump();
        });
    }

    public static Props Props(WebhookSender sender) => Akka.Actor.Props.Create(() => new Alerter(sender));

    private void Pump()
    {
        while (_inFlight < InFlightMax && !_queue.IsEmpty)
        {
            _queue = _queue.Dequeue(out var next);
            _queued--;
            _inFlight++;
            var format = AlertPayloads.Resolve(_sender.Settings.Format, _sender.Settings.Url);
            var body = AlertPayloads.Build(format, next, _sender.Settings.RoutingKey);
            var runId = next.Detection.RunId;
            _sender.SendAsync(body, CancellationToken.None)
                .PipeTo(Self, success: error => new Delivered(runId, error), failure: ex => new Delivered(runId, ex.Message));
        }
    }

    private sealed record Delivered(string RunId, string? Error);
}

/// <summary>Alerter → supervisor: whether the alert for a run reached the receiver.</summary>
public sealed record AlertOutcome(string RunId, bool Delivered);
