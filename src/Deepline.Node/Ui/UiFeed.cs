using System.Text.Json;
using System.Threading.Channels;
using Akka.Hosting;
using Deepline.Actors.Monitoring;
using Deepline.Actors.Workers;
using Deepline.Domain;
using Deepline.Node.Http;

namespace Deepline.Node.Ui;

/// <summary>One server-sent event: its name, its JSON, and who may see it.</summary>
public sealed record FeedEvent(string Name, string Data, string? ClientId, bool OperatorOnly);

/// <summary>What one open stream receives: events of its client (all clients when <see cref="ClientScope"/> is null).</summary>
public sealed class FeedSubscription : IDisposable
{
    private readonly Action<FeedSubscription> _close;
    private readonly Channel<FeedEvent> _events =
        Channel.CreateBounded<FeedEvent>(new BoundedChannelOptions(UiFeed.QueuedPerStream) { FullMode = BoundedChannelFullMode.DropOldest });

    internal FeedSubscription(string caller, string? clientScope, bool operate, Action<FeedSubscription> close)
    {
        Caller = caller;
        ClientScope = clientScope;
        Operate = operate;
        _close = close;
    }

    public string Caller { get; }

    public string? ClientScope { get; }

    public bool Operate { get; }

    public ChannelReader<FeedEvent> Events => _events.Reader;

    internal void Offer(FeedEvent e)
    {
        if (e.OperatorOnly && !Operate) return;
        if (ClientScope is not null && e.ClientId != ClientScope) return;
        // A slow reader loses its oldest events rather than holding memory for them; the page re-reads what it shows.
        _events.Writer.TryWrite(e);
    }

    public void Dispose() => _close(this);
}

/// <summary>One sample of the monitor and cancel numbers, for the dashboard's charts.</summary>
public sealed record TimelinePoint(
    DateTimeOffset At,
    IReadOnlyDictionary<string, long> DetectionsByReason,
    long WorkflowsCancelled,
    int OpenIncidents,
    long ProjectionLag,
    long CancelsCompleted,
    double? CancelCompletionP50Ms,
    double? CancelCompletionP99Ms);

/// <summary>
/// The dashboard's live feed. Follows the run index (written by its projection from the journal, so it sees every
/// node's runs, and a cancel made on any node) by polling for rows changed since the last poll, and the deadlock
/// monitor by asking for its status; fans both out to the open event streams. Polling the index rather than
/// listening to in-cluster topics is what lets a submitter's stream be filtered by client (the cancel notice does
/// not name it) and what catches task transitions, which no topic carries.
/// </summary>
public sealed class UiFeed(UiRunQueries queries, IRequiredActor<DeadlockSupervisor> supervisor, IServiceProvider services,
    IHostApplicationLifetime lifetime, ILogger<UiFeed> log) : BackgroundService
{
    public const int MaxStreams = 64;
    public const int MaxStreamsPerCaller = 8;
    public const int QueuedPerStream = 256;
    public const int TimelineKept = 720;

    /// <summary>How far back each poll looks: a row the projection applies later than this behind its own time is missed.</summary>
    private const long LookBackMs = 30_000;

    private const int ChangesPerPoll = 2_000;
    private const int LatenciesKept = 1_000;
    private static readonly TimeSpan LivePoll = TimeSpan.FromMilliseconds(250);
    private static readonly TimeSpan IdlePoll = TimeSpan.FromSeconds(2);

    private readonly Channel<RunCancelledNotice> _notices =
        Channel.CreateBounded<RunCancelledNotice>(new BoundedChannelOptions(10_000) { FullMode = BoundedChannelFullMode.DropOldest, SingleReader = true });
    private readonly Lock _gate = new();
    private readonly List<FeedSubscription> _streams = [];
    private readonly Dictionary<string, (long Seq, long UpdatedMs, string Status)> _seen = new(StringComparer.Ordinal);
    private readonly Queue<double> _latencies = new();
    private readonly LinkedList<TimelinePoint> _timeline = new();
    private readonly DateTimeOffset _started = DateTimeOffset.UtcNow;
    private long _watermark = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds() - LookBackMs;
    private long _offset = -1;
    private long _cancelsCompleted;
    private string? _lastMonitor;

    public TimeSpan SampleEvery { get; init; } = TimeSpan.FromSeconds(5);

    public int OpenStreams
    {
        get { lock (_gate) return _streams.Count; }
    }

    /// <summary>A new stream, or null with the reason when the node or this caller already holds the most it may.</summary>
    public FeedSubscription? TryOpen(string caller, string? clientScope, bool operate, out string refusal)
    {
        lock (_gate)
        {
            refusal = "";
            if (_streams.Count >= MaxStreams)
            {
                refusal = $"this node already serves {MaxStreams} dashboard event streams; close one or retry later";
                return null;
            }
            if (_streams.Count(s => s.Caller == caller) >= MaxStreamsPerCaller)
            {
                refusal = $"this caller already holds {MaxStreamsPerCaller} dashboard event streams; close one (e.g. another tab) and retry";
                return null;
            }
            var s = new FeedSubscription(caller, clientScope, operate, Close);
            _streams.Add(s);
            return s;
        }
    }

    public IReadOnlyList<TimelinePoint> Timeline()
    {
        lock (_gate) return [.. _timeline];
    }

    private void Close(FeedSubscription s)
    {
        lock (_gate) _streams.Remove(s);
    }

    private void Publish(FeedEvent e)
    {
        FeedSubscription[] streams;
        lock (_gate) streams = [.. _streams];
        foreach (var s in streams) s.Offer(e);
    }

    /// <summary>A cancel notice from the cluster topic (any node's run): passed on at once, the index row follows later.</summary>
    public void OnCancelNotice(RunCancelledNotice notice) => _notices.Writer.TryWrite(notice);

    private async Task ForwardNoticesAsync(CancellationToken stopping)
    {
        await foreach (var n in _notices.Reader.ReadAllAsync(stopping))
        {
            if (OpenStreams == 0) continue;
            var client = n.ClientId;
            try
            {
                // A notice from a node that predates ClientId: the index knows the client once it holds the run.
                client ??= await queries.ClientOfAsync(n.RunId, stopping);
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                log.LogDebug(e, "Dashboard feed could not look up a cancelled run's client");
            }
            // A run the index does not hold yet has no known client: only unscoped (operator) streams get its notice.
            Publish(new FeedEvent("cancel", JsonSerializer.Serialize(new
            {
                run_id = n.RunId, client_id = client, reason = n.Reason, cancelled_by = n.CancelledBy, cancelled_at = n.CancelledAt,
            }, HttpJson.Options), client, OperatorOnly: client is null));
        }
    }

    protected override async Task ExecuteAsync(CancellationToken stopping)
    {
        // The actor system starts with the host; the listener can only be created once it is up.
        var started = new TaskCompletionSource();
        using (lifetime.ApplicationStarted.Register(() => started.TrySetResult()))
        using (stopping.Register(() => started.TrySetCanceled()))
        {
            try { await started.Task; }
            catch (OperationCanceledException) { return; }
        }
        var system = services.GetRequiredService<Akka.Actor.ActorSystem>();
        var listener = system.ActorOf(UiCancelListener.Props(OnCancelNotice), "ui-cancel-listener");
        var forwarding = ForwardNoticesAsync(stopping);
        try
        {
            await PollAsync(stopping);
        }
        finally
        {
            system.Stop(listener);
            try { await forwarding; } catch (OperationCanceledException) { }
        }
    }

    private async Task PollAsync(CancellationToken stopping)
    {
        var nextSample = DateTimeOffset.UtcNow;
        var nextMonitor = DateTimeOffset.UtcNow;
        while (!stopping.IsCancellationRequested)
        {
            var live = OpenStreams > 0;
            try
            {
                await PollRunsAsync(stopping);
                var now = DateTimeOffset.UtcNow;
                if (now >= nextSample || (live && now >= nextMonitor))
                {
                    var status = await MonitorEndpoints.StatusAsync(supervisor, stopping);
                    if (status is not null)
                    {
                        PublishMonitor(status);
                        if (now >= nextSample) Sample(status, now);
                    }
                    nextMonitor = now + TimeSpan.FromSeconds(1);
                    if (now >= nextSample) nextSample = now + SampleEvery;
                }
            }
            catch (OperationCanceledException) when (stopping.IsCancellationRequested)
            {
                return;
            }
            catch (Exception e)
            {
                // The index tables appear with the projection's first start, and the store can be briefly away: the feed
                // waits and tries again rather than ending every stream.
                log.LogDebug(e, "Dashboard feed poll failed; retrying");
            }
            try
            {
                await Task.Delay(live ? LivePoll : IdlePoll, stopping);
            }
            catch (OperationCanceledException)
            {
                return;
            }
        }
    }

    private async Task PollRunsAsync(CancellationToken ct)
    {
        var offset = await queries.OffsetAsync(ct);
        if (offset == _offset) return;
        var rows = await queries.ChangedSinceAsync(_watermark - LookBackMs, ChangesPerPoll, ct);
        foreach (var r in rows)
        {
            var known = _seen.TryGetValue(r.RunId, out var before);
            if (known && before.Seq == r.LastSeq) continue;
            var updatedMs = r.UpdatedAt.ToUnixTimeMilliseconds();
            _seen[r.RunId] = (r.LastSeq, updatedMs, r.Status);
            _watermark = Math.Max(_watermark, updatedMs);
            if (r.Status == nameof(RunStatus.CANCELLED) && (!known || before.Status != nameof(RunStatus.CANCELLED))
                && r.CancelledAt is { } at && r.UpdatedAt >= _started)
                RecordCompletion((r.UpdatedAt - at).TotalMilliseconds);
            Publish(new FeedEvent("run", JsonSerializer.Serialize(r, HttpJson.Options), r.ClientId, OperatorOnly: false));
        }
        // A batch cut at the limit leaves the offset unread so the next poll continues from the watermark.
        if (rows.Count < ChangesPerPoll) _offset = offset;
        var horizon = _watermark - 2 * LookBackMs;
        foreach (var old in _seen.Where(kv => kv.Value.UpdatedMs < horizon).Select(kv => kv.Key).ToList()) _seen.Remove(old);
    }

    private void RecordCompletion(double ms)
    {
        lock (_gate)
        {
            _cancelsCompleted++;
            _latencies.Enqueue(Math.Max(0, ms));
            while (_latencies.Count > LatenciesKept) _latencies.Dequeue();
        }
    }

    private void PublishMonitor(MonitorStatus s)
    {
        var data = JsonSerializer.Serialize(new
        {
            deadlocks_detected = s.Stats.DeadlocksDetected,
            workflows_cancelled = s.Stats.WorkflowsCancelled,
            open_incidents = s.OpenIncidents,
            by_reason = Enum.GetValues<StuckReason>().ToDictionary(r => r.ToString(), r => s.Stats.ByReason.GetValueOrDefault(r)),
        }, HttpJson.Options);
        if (data == _lastMonitor) return;
        _lastMonitor = data;
        Publish(new FeedEvent("monitor", data, null, OperatorOnly: true));
    }

    private void Sample(MonitorStatus s, DateTimeOffset now)
    {
        lock (_gate)
        {
            var sorted = _latencies.Order().ToArray();
            _timeline.AddLast(new TimelinePoint(now,
                Enum.GetValues<StuckReason>().ToDictionary(r => r.ToString(), r => s.Stats.ByReason.GetValueOrDefault(r)),
                s.Stats.WorkflowsCancelled, s.OpenIncidents, s.ProjectionLag, _cancelsCompleted,
                Percentile(sorted, 0.50), Percentile(sorted, 0.99)));
            while (_timeline.Count > TimelineKept) _timeline.RemoveFirst();
        }
    }

    /// <summary>Nearest-rank percentile; null without data.</summary>
    public static double? Percentile(double[] sorted, double p) =>
        sorted.Length == 0 ? null : Math.Round(sorted[Math.Clamp((int)Math.Ceiling(p * sorted.Length) - 1, 0, sorted.Length - 1)], 1);
}
