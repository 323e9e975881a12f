using System.Text.Json;
using Deepline.Domain;

namespace Deepline.Node.Http;

public sealed record PollRequest(string? WorkerId, int? WaitS, int? MaxTasks);

public sealed record PollResponse(IReadOnlyList<LeasedTaskResponse> Tasks);

/// <summary>A task leased to the polling worker: already started as <see cref="Attempt"/>, its lease renewed by heartbeats.</summary>
/// <param name="Inputs">The results of the tasks it depends on, by task id.</param>
/// <param name="LeaseExpiresAt">When the attempt is taken back unless a heartbeat renews it; heartbeat every third of the timeout.</param>
public sealed record LeasedTaskResponse(
    string RunId,
    string TaskId,
    string Type,
    string Pool,
    int Attempt,
    JsonElement? Params,
    IReadOnlyDictionary<string, JsonElement?> Inputs,
    IReadOnlyList<ResourceRequestBody> Resources,
    DateTimeOffset LeaseExpiresAt,
    int HeartbeatTimeoutS)
{
    [System.Text.Json.Serialization.JsonPropertyName("traceparent")]
    [System.Text.Json.Serialization.JsonIgnore(Condition = System.Text.Json.Serialization.JsonIgnoreCondition.WhenWritingNull)]
    public string? TraceParent { get; init; }

    /// <summary>When the task was queued for this attempt (how long it waited for a worker is the lease's start minus this).</summary>
    public DateTimeOffset QueuedAt { get; init; }
}

public sealed record PoolQueueResponse(string Pool, int QueueDepth, double? OldestQueuedAgeS, int WaitingPolls, int Pollers, DateTimeOffset? LastPollAt)
{
    /// <summary>Tasks are queued and no worker has polled for this long (seconds, from 5 s on): the pool has no worker. Null otherwise.</summary>
    public double? NoPollerForS { get; init; }
}
