using System.Collections.Immutable;

namespace Deepline.Domain;

/// <summary>
/// How often a task is tried and how long it waits between tries: Temporal's retry policy. Attempt n+1 waits
/// <c>min(initial_interval_s * backoff_coefficient^(n-1), max_interval_s)</c> after attempt n failed; an error type in
/// <see cref="NonRetryableErrors"/> fails the task at once.
/// </summary>
public sealed record RetryPolicy(int MaxAttempts, double InitialIntervalS, double BackoffCoefficient, double MaxIntervalS)
{
    public const int MaxAttemptsLimit = 100;
    public const double MaxIntervalLimitS = 86_400;
    public const double MaxCoefficient = 100;
    public const int MaxNonRetryable = 32;
    public const int MaxErrorTypeLength = 128;

    /// <summary>Error types (as workers report them in <c>error_type</c>) that are never retried.</summary>
    [System.Text.Json.Serialization.JsonIgnore(Condition = System.Text.Json.Serialization.JsonIgnoreCondition.WhenWritingDefault)]
    public ImmutableArray<string> NonRetryableErrors { get; init; }

    /// <summary>One attempt, no retry: what a run got before retry policies existed.</summary>
    public static RetryPolicy Once { get; } = new(1, 0, 1, 0);

    /// <summary>The wait before the attempt after <paramref name="failedAttempt"/>.</summary>
    public TimeSpan DelayAfter(int failedAttempt)
    {
        if (InitialIntervalS <= 0) return TimeSpan.Zero;
        var s = InitialIntervalS * Math.Pow(BackoffCoefficient, Math.Max(0, failedAttempt - 1));
        return TimeSpan.FromSeconds(double.IsFinite(s) ? Math.Min(s, Math.Max(MaxIntervalS, InitialIntervalS)) : Math.Max(MaxIntervalS, InitialIntervalS));
    }

    public bool Retries(string? errorType) =>
        errorType is null || NonRetryableErrors.IsDefaultOrEmpty || !NonRetryableErrors.Contains(errorType, StringComparer.Ordinal);

    /// <summary>The first thing wrong with the policy as a submission's field, or null.</summary>
    public string? Problem()
    {
        if (MaxAttempts is < 1 or > MaxAttemptsLimit) return $"max_attempts must be 1..{MaxAttemptsLimit}, got {MaxAttempts}";
        if (!double.IsFinite(InitialIntervalS) || InitialIntervalS is < 0 or > MaxIntervalLimitS)
            return $"initial_interval_s must be 0..{MaxIntervalLimitS}, got {InitialIntervalS}";
        if (!double.IsFinite(BackoffCoefficient) || BackoffCoefficient is < 1 or > MaxCoefficient)
            return $"backoff_coefficient must be 1..{MaxCoefficient}, got {BackoffCoefficient}";
        if (!double.IsFinite(MaxIntervalS) || MaxIntervalS is < 0 or > MaxIntervalLimitS)
            return $"max_interval_s must be 0..{MaxIntervalLimitS}, got {MaxIntervalS}";
        if (MaxIntervalS > 0 && MaxIntervalS < InitialIntervalS)
            return $"max_interval_s ({MaxIntervalS}) may not be below initial_interval_s ({InitialIntervalS})";
        if (!NonRetryableErrors.IsDefault)
        {
            if (NonRetryableErrors.Length > MaxNonRetryable) return $"non_retryable_errors may list at most {MaxNonRetryable} error types";
            foreach (var e in NonRetryableErrors)
                if (string.IsNullOrEmpty(e) || e.Length > MaxErrorTypeLength || Identifiers.HasControl(e))
                    return $"each of non_retryable_errors must be 1..{MaxErrorTypeLength} characters without control characters";
        }
        return null;
    }
}

/// <summary>
/// The node's retry rules: the policy of a task that has none (<c>orchestrator.retry.*</c>), and after how many attempts
/// in a row lost with their worker (no heartbeat, lease run out, node gone) a task is failed as poison.
/// </summary>
public sealed record RetrySettings(RetryPolicy Default, int PoisonAfter)
{
    /// <summary>One attempt and no poison rule: a node that configured nothing else (tests, older embedders).</summary>
    public static RetrySettings Off { get; } = new(RetryPolicy.Once, int.MaxValue);

    /// <summary>Attempts per pool for tasks without their own policy (orchestrator.retry.pool_max_attempts).</summary>
    public ImmutableDictionary<string, int> PoolMaxAttempts { get; init; } = ImmutableDictionary<string, int>.Empty;

    public RetryPolicy For(TaskRecord task) =>
        task.Retry ?? (PoolMaxAttempts.TryGetValue(task.Pool, out var attempts) ? Default with { MaxAttempts = attempts } : Default);

    /// <summary>
    /// A lost attempt of this task is the run's to end (retried, or failed as poison), not a detector's: a RUNNING task
    /// that went silent with an attempt left is not stuck.
    /// </summary>
    public bool HasAttemptLeft(TaskRecord task) => task.Attempts - task.AttemptsBefore < For(task).MaxAttempts;

    /// <summary>The attempt now being lost is the <see cref="PoisonAfter"/>-th lost in a row: its task fails instead.</summary>
    public bool IsPoison(TaskRecord task) => task.LostInARow + 1 >= PoisonAfter;
}

/// <summary>Why an attempt ended without an outcome of its own and its task was queued again.</summary>
public static class AttemptCauses
{
    /// <summary>The worker reported TASK_FAILED with attempts left.</summary>
    public const string Failed = "failed";

    /// <summary>No heartbeat within the lease (heartbeat_timeout_s): the worker is presumed lost.</summary>
    public const string LeaseExpired = "lease_expired";

    /// <summary>The node that ran it is gone (restarted, removed from the cluster).</summary>
    public const string Interrupted = "interrupted";
}
