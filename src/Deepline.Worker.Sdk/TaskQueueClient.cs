using System.Net.Http.Json;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace Deepline.Worker.Sdk;

/// <summary>A task the node leased to this worker: already started as <see cref="Attempt"/>, kept by heartbeats until <see cref="LeaseExpiresAt"/>.</summary>
public sealed record LeasedTask(
    [property: JsonPropertyName("run_id")] string RunId,
    [property: JsonPropertyName("task_id")] string TaskId,
    [property: JsonPropertyName("type")] string Type,
    [property: JsonPropertyName("pool")] string Pool,
    [property: JsonPropertyName("attempt")] int Attempt,
    [property: JsonPropertyName("params")] JsonElement? Params,
    [property: JsonPropertyName("inputs")] IReadOnlyDictionary<string, JsonElement?> Inputs,
    [property: JsonPropertyName("lease_expires_at")] DateTimeOffset LeaseExpiresAt,
    [property: JsonPropertyName("heartbeat_timeout_s")] int HeartbeatTimeoutS)
{
    [JsonPropertyName("traceparent")]
    public string? TraceParent { get; init; }
}

/// <summary>Long-polls a pool's queue on the node (<c>POST /pools/{pool}/tasks/poll</c>) for one worker.</summary>
public sealed class TaskQueueClient(HttpClient http, string workerId)
{
    public const int MaxWaitS = 60;
    public const int MaxTasks = 100;

    /// <summary>
    /// Up to <paramref name="maxTasks"/> tasks of <paramref name="pool"/>, waiting up to <paramref name="wait"/> for one;
    /// empty when none came. 4xx answers (a key of another pool, absurd arguments) are <see cref="InvalidOperationException"/>
    /// with the node's explanation: retrying cannot help. Transport failures and 5xx are <see cref="HttpRequestException"/>.
    /// </summary>
    public async Task<IReadOnlyList<LeasedTask>> PollAsync(string pool, TimeSpan wait, int maxTasks = 1, CancellationToken ct = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(pool);
        var waitS = (int)Math.Clamp(Math.Ceiling(wait.TotalSeconds), 0, MaxWaitS);
        using var response = await http.PostAsJsonAsync($"pools/{Uri.EscapeDataString(pool)}/tasks/poll",
            new PollBody(workerId, waitS, Math.Clamp(maxTasks, 1, MaxTasks)), RedisContract.Json, ct);
        if (response.IsSuccessStatusCode)
            return (await response.Content.ReadFromJsonAsync<PollAnswer>(RedisContract.Json, ct))?.Tasks ?? [];
        var status = (int)response.StatusCode;
        if (status is >= 400 and < 500 and not 408 and not 429)
            throw new InvalidOperationException($"the node refused the poll of pool '{pool}' ({status}): {await response.Content.ReadAsStringAsync(ct)}");
        throw new HttpRequestException($"poll of pool '{pool}' answered {status}", null, response.StatusCode);
    }

    private sealed record PollBody(
        [property: JsonPropertyName("worker_id")] string WorkerId,
        [property: JsonPropertyName("wait_s")] int WaitS,
        [property: JsonPropertyName("max_tasks")] int MaxTasks);

    private sealed record PollAnswer([property: JsonPropertyName("tasks")] IReadOnlyList<LeasedTask> Tasks);
}
