using System.Text.Json;
using System.Text.Json.Serialization;

namespace Deepline.Node.Http;

public static class HttpJson
{
    public static void Configure(JsonSerializerOptions o)
    {
        o.PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower;
        o.Converters.Add(new JsonStringEnumConverter());
        o.UnmappedMemberHandling = JsonUnmappedMemberHandling.Disallow;
        o.Converters.Add(new UtcTimestampConverter());
    }

    public static JsonSerializerOptions Options { get; } = Create();

    private static JsonSerializerOptions Create()
    {
        var o = new JsonSerializerOptions(JsonSerializerDefaults.Web);
        Configure(o);
        return o;
    }

    /// <summary>Reads a JSON body; malformed JSON or a wrong type is a 400 naming where it went wrong.</summary>
    public static async Task<(T? Value, IResult? Error)> ReadAsync<T>(HttpRequest request, CancellationToken ct) where T : class
    {
        if (request.ContentType is { } type && !type.Contains("json", StringComparison.OrdinalIgnoreCase))
            return (null, Problems.Of(415, "Unsupported media type", "send the body as application/json"));
        try
        {
            var value = await JsonSerializer.DeserializeAsync<T>(request.Body, Options, ct);
            return value is null ? (null, Problems.BadRequest("the body must be a JSON object")) : (value, null);
        }
        catch (JsonException ex)
        {
            var field = string.IsNullOrEmpty(ex.Path) || ex.Path == "$" ? null : ex.Path.TrimStart('$', '.');
            return (null, Problems.BadRequest(Explain(ex, field), field));
        }
    }

    /// <summary>System.Text.Json's messages name .NET types; callers need to hear what the field should hold.</summary>
    private static string Explain(JsonException ex, string? field)
    {
        var message = ex.Message;
        if (message.Contains("could not be mapped to any .NET member"))
            return $"unknown field '{field ?? "?"}'";
        if (message.Contains("could not be converted to"))
        {
            var expected = message switch
            {
                _ when message.Contains("List`1[System.String]") => "a list of strings",
                _ when message.Contains("List`1") => "a list of objects",
                _ when message.Contains("System.String") => "a string",
                _ when message.Contains("System.Boolean") => "true or false",
                _ when message.Contains("Deepline") => "an object",
                _ => "a different type",
            };
            return $"'{field ?? "body"}' must be {expected}";
        }
        return "the body is not valid JSON: " + message.Split(" Path:")[0].Split(" LineNumber:")[0];
    }
}

/// <summary>Timestamps go out as UTC with a Z, like the seed's examples ("2024-01-15T10:30:00Z"), to the millisecond.</summary>
public sealed class UtcTimestampConverter : JsonConverter<DateTimeOffset>
{
    public override DateTimeOffset Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options) =>
        reader.GetDateTimeOffset();

    public override void Write(Utf8JsonWriter writer, DateTimeOffset value, JsonSerializerOptions options) =>
        writer.WriteStringValue(value.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss.fff'Z'", System.Globalization.CultureInfo.InvariantCulture));
}
