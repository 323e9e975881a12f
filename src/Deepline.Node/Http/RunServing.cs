namespace Deepline.Node.Http;

/// <summary>
/// Whether this node's run requests are being answered, for readiness. A store that answers <c>SELECT 1</c> is not a node
/// that serves runs: after a restart with thousands of open runs, or while the journal's breakers were open after a
/// database restart, every run request timed out for a minute while the probes said ready. Failing: the latest ask ended
/// in a time-out and none was answered after it. <see cref="RunsHealthCheck"/> then asks the region itself, so a node
/// that a load balancer drained (and that therefore hears no requests) still finds out that it serves again.
/// </summary>
public sealed class RunServing
{
    private long _lastAnswered;
    private long _lastTimedOut;

    public void Answered() => Volatile.Write(ref _lastAnswered, Environment.TickCount64);

    public void TimedOut() => Volatile.Write(ref _lastTimedOut, Environment.TickCount64);

    public bool Failing => Volatile.Read(ref _lastTimedOut) > Volatile.Read(ref _lastAnswered);

    /// <summary>How long ago the latest time-out was, for the readiness answer.</summary>
    public TimeSpan SinceTimeOut => TimeSpan.FromMilliseconds(Environment.TickCount64 - Volatile.Read(ref _lastTimedOut));
}
