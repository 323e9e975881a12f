using System.Text.Json;
using System.Text.Json.Serialization;

namespace Deepline.Worker.Sdk;

/// <summary>
/// The Redis keys and message shape the node writes for every cancelled run, so that workers in any language can
/// read them with plain commands (see README, "Redis contract"). The node and this SDK share these definitions.
/// </summary>
public static class RedisContract
{
    /// <summary>SET of cancelled run ids (the seed's <c>SMEMBERS cancelled_runs</c>).</summary>
    public const string CancelledRuns = "cancelled_runs";

    /// <summary>ZSET run id → cancelled_at in Unix milliseconds; retention prunes the set and the hashes by it.</summary>
    public const string CancelledRunsByTime = "cancelled_runs:by_time";

    /// <summary>HASH per run: run_id, reason, cancelled_by, cancelled_at (ISO-8601 UTC).</summary>
    public const string RunHashPrefix = "cancelled_run:";

    /// <summary>Pub/sub channel: one <see cref="CancelMessage"/> as JSON per cancelled run.</summary>
    public const string Channel = "deepline:cancellations";

    /// <summary>
    /// The journal position the node has mirrored up to. It is written in the same script as the entries, so it is
    /// lost exactly when they are (a flush, a restart without persistence): its absence tells the node to rebuild.
    /// </summary>
    public const string MirrorOffset = "deepline:cancellations:offset";

    public static string RunHash(string runId) => RunHashPrefix + runId;

    /// <summary>How timestamps are written, in the hash and the message: the HTTP API's (<see cref="WireJson.Timestamp"/>).</summary>
    public static string Timestamp(DateTimeOffset at) => WireJson.Timestamp(at);

    /// <summary>The message's JSON: the wire's (<see cref="WireJson"/>), so it reads like the HTTP API's answers.</summary>
    public static JsonSerializerOptions Json => WireJson.Options;
}

/// <summary>
/// What the channel carries, one per cancelled run: <c>{"run_id","reason","cancelled_by","cancelled_at"}</c>, plus
/// <c>"traceparent"</c> (W3C trace context of the cancel) when the node traces; readers that do not know it skip it.
/// </summary>
public sealed record CancelMessage(
    [property: JsonPropertyName("run_id")] string RunId,
    [property: JsonPropertyName("reason")] string Reason,
    [property: JsonPropertyName("cancelled_by")] string CancelledBy,
    [property: JsonPropertyName("cancelled_at")] DateTimeOffset CancelledAt)
{
    /// <summary>W3C <c>traceparent</c> of the node's cancel span: a worker's own cancel span can join that trace. Optional.</summary>
    [JsonPropertyName("traceparent")]
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public string? TraceParent { get; init; }

    public string ToJson() => JsonSerializer.Serialize(this, RedisContract.Json);

    /// <summary>Null for anything that is not a cancel message with a run id (other publishers may share the channel).</summary>
    public static CancelMessage? TryParse(string? json)
    {
        if (string.IsNullOrEmpty(json)) return null;
        try
        {
            var m = JsonSerializer.Deserialize<CancelMessage>(json, RedisContract.Json);
            return string.IsNullOrEmpty(m?.RunId) ? null : m;
        }
        catch (JsonException)
        {
            return null;
        }
    }
}
