using System.Text.Json;
using System.Text.Json.Serialization;

namespace Deepline.Worker.Sdk;

/// <summary>
/// The JSON that crosses the wire between Deepline and other programs: the node's HTTP API, the Redis cancel
/// message, and this SDK's requests. One set of rules, because a worker reads what the node wrote: snake_case names,
/// enums as their names, timestamps in UTC with milliseconds and <c>Z</c> (the seed's "2024-01-15T10:30:00Z" shape).
/// <para>
/// Two other option sets exist on purpose. The journal (<c>DeeplineSerializer.Options</c>) keeps the names and
/// timestamps it has always written, since every stored event must stay readable; it is not a wire to other
/// programs. The node reading a request body adds strictness on top of these rules (<c>HttpJson</c>: unknown and
/// duplicate members refused) that a client must not have, or an older worker would break on a field a newer node
/// added to its answer.
/// </para>
/// </summary>
public static class WireJson
{
    /// <summary>Applies the wire rules to options built elsewhere (ASP.NET Core's own, for the HTTP endpoints).</summary>
    public static void Configure(JsonSerializerOptions o)
    {
        o.PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower;
        o.Converters.Add(new JsonStringEnumConverter());
        o.Converters.Add(new UtcTimestampConverter());
    }

    /// <summary>The wire rules, lenient on reading (unknown members are skipped): what a client of the node uses.</summary>
    public static JsonSerializerOptions Options { get; } = Create();

    /// <summary>How timestamps are written: UTC ISO-8601 with milliseconds and <c>Z</c>.</summary>
    public static string Timestamp(DateTimeOffset at) =>
        at.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss.fff'Z'", System.Globalization.CultureInfo.InvariantCulture);

    private static JsonSerializerOptions Create()
    {
        var o = new JsonSerializerOptions(JsonSerializerDefaults.Web);
        Configure(o);
        return o;
    }
}

/// <summary>Timestamps go out as <see cref="WireJson.Timestamp"/> and are read in any ISO-8601 form.</summary>
public sealed class UtcTimestampConverter : JsonConverter<DateTimeOffset>
{
    public override DateTimeOffset Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options) =>
        reader.GetDateTimeOffset();

    public override void Write(Utf8JsonWriter writer, DateTimeOffset value, JsonSerializerOptions options) =>
        writer.WriteStringValue(WireJson.Timestamp(value));
}
