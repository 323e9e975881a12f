using System.Collections.Immutable;

namespace Deepline.Domain.Resources;

/// <summary>A fact in the resource coordinator's journal; applying them in order rebuilds every grant and wait.</summary>
public interface IResourceEvent : IDeeplineMessage
{
    DateTimeOffset At { get; }
}

public sealed record ResourceDeclared(string Name, int Capacity, DateTimeOffset At) : IResourceEvent;

/// <summary>The run's wanting tasks (task -> requests) and its facts, replacing what was known before.</summary>
public sealed record ResourceWantsRecorded(
    string RunId, RunFacts Facts, ImmutableDictionary<string, ImmutableArray<ResourceRequest>> Wants, DateTimeOffset At) : IResourceEvent
{
    /// <summary>See <see cref="ResourceSync.Releasing"/>; absent in events written before it existed (then nothing is).</summary>
    public ImmutableArray<string> Releasing { get; init; } = [];
}

public sealed record ResourceGranted(string RunId, string Resource, int Count, DateTimeOffset At) : IResourceEvent;

public sealed record ResourceWaiting(string RunId, string Resource, int Count, DateTimeOffset At) : IResourceEvent;

public sealed record ResourceReleased(string RunId, string Resource, DateTimeOffset At) : IResourceEvent;

public sealed record ResourceWaitWithdrawn(string RunId, string Resource, DateTimeOffset At) : IResourceEvent;

/// <summary>A resource deadlock was found when a wait edge closed a cycle; the victim is the one run to cancel.</summary>
public sealed record ResourceVictimChosen(string RunId, ImmutableArray<CycleStep> Cycle, string Explanation, DateTimeOffset At) : IResourceEvent;

/// <summary>The victim's cancel (or its incident, which cancels and alerts) was handed over and acknowledged.</summary>
public sealed record ResourceVictimReported(string RunId, DateTimeOffset At) : IResourceEvent;

/// <summary>The run ended and holds, wants and waits nothing: forgotten.</summary>
public sealed record ResourceRunForgotten(string RunId, DateTimeOffset At) : IResourceEvent;

/// <summary>
/// A deadlock whose cycle holds only external workers: no run to cancel, so the chosen worker's waits are refused (it
/// is told the cycle when it asks, and must release what it holds before it claims again).
/// </summary>
public sealed record ResourceClaimRefused(string RunId, ImmutableArray<CycleStep> Cycle, string Explanation, DateTimeOffset At) : IResourceEvent;

/// <summary>
/// An external worker's lease ran out (it stopped renewing its claims): what it held and waited for, for the record. It
/// changes nothing itself: the releases, withdrawals and grants that follow are journalled as their own events, as for a
/// release by the worker.
/// </summary>
public sealed record ResourceClaimExpired(string RunId, ImmutableArray<string> Held, ImmutableArray<string> WaitedFor, DateTimeOffset At) : IResourceEvent;
