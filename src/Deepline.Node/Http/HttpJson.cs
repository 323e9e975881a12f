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
        // {"run_id":"a","run_id":"b"} would otherwise mean whichever came last; a proxy may have read the first.
        o.AllowDuplicateProperties = false;
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
    public static async Task<(T? Value, Microsoft.AspNetCore.Http.HttpResults.ProblemHttpResult? Error)> ReadAsync<T>(HttpRequest request, CancellationToken ct) where T : class
    {
        if (request.ContentType is { } type && !type.Contains("json", StringComparison.OrdinalIgnoreCase))
            return (null, Problems.Of(415, "Unsupported media type", "send the body as application/json"));
        var timeout = request.HttpContext.RequestServices.GetService<Configuration.DeeplineConfig>()?.Limits.BodyTimeoutS ?? 30;
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(ct);
        deadline.CancelAfter(TimeSpan.FromSeconds(timeout));
        try
        {
            var value = await JsonSerializer.DeserializeAsync<T>(request.Body, Options, deadline.Token);
            return value is null ? (null, Problems.BadRequest("the body must be a JSON object")) : (value, null);
        }
        catch (OperationCanceledException) when (!ct.IsCancellationRequested)
        {
            // A body trickling in byte by byte passes Kestrel's minimum data rate yet holds a connection for hours.
            return (null, Problems.Of(408, "Request timeout",
                $"the request body did not arrive within {timeout} s (orchestrator.limits.body_timeout_s)"));
        }
        catch (JsonException ex)
        {
            var field = string.IsNullOrEmpty(ex.Path) || ex.Path == "$" ? null : ex.Path.TrimStart('$', '.');
            return (null, Problems.BadRequest(Explain<T>(ex, field), field));
        }
    }

    /// <summary>System.Text.Json's messages name .NET types; callers need to hear what the field should hold.</summary>
    private static string Explain<T>(JsonException ex, string? field)
    {
        var message = ex.Message;
        if (message.Contains("could not be mapped to any .NET member"))
            return $"unknown field '{field ?? "?"}'";
        if (message.Contains("Duplicate", StringComparison.OrdinalIgnoreCase))
            return $"duplicate field '{field ?? "?"}': each field may appear once";
        if (message.Contains("could not be converted to"))
        {
            var expected = ExpectedAt(typeof(T), ex.Path) switch
            {
                null => "a different type",
                var t when t == typeof(string) => "a string",
                var t when t == typeof(bool) || t == typeof(bool?) => "true or false",
                var t when t == typeof(int) || t == typeof(int?) => "an integer",
                var t when t == typeof(List<string?>) || t == typeof(List<string>) => "a list of strings",
                var t when t.IsGenericType && t.GetGenericTypeDefinition() == typeof(List<>) => "a list of objects",
                _ => "an object",
            };
            return $"'{field ?? "body"}' must be {expected}";
        }
        return "the body is not valid JSON: " + message.Split(" Path:")[0].Split(" LineNumber:")[0];
    }

    /// <summary>The .NET type the JSON path points at in <paramref name="root"/> (snake_case names, [n] for list items).</summary>
    private static Type? ExpectedAt(Type root, string? path)
    {
        if (string.IsNullOrEmpty(path) || path == "$") return root;
        var type = root;
        foreach (var raw in path.TrimStart('$').Split('.', StringSplitOptions.RemoveEmptyEntries))
        {
            var name = raw;
            var indexed = name.IndexOf('[');
            var hasIndex = indexed >= 0;
            if (hasIndex) name = name[..indexed];
            if (name.Length > 0)
            {
                var property = type.GetProperties().FirstOrDefault(p => JsonNamingPolicy.SnakeCaseLower.ConvertName(p.Name) == name);
                if (property is null) return null;
                type = property.PropertyType;
            }
            if (hasIndex)
            {
                if (!type.IsGenericType) return null;
                type = type.GetGenericArguments()[0];
            }
            type = Nullable.GetUnderlyingType(type) ?? type;
        }
        return type;
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
