using System.Text.Json;
using System.Text.Json.Serialization;
using Deepline.Worker.Sdk;

namespace Deepline.Node.Http;

public static partial class HttpJson
{
    /// <summary>The wire's rules (<see cref="WireJson"/>, shared with the worker SDK) plus the strictness of a server reading untrusted bodies.</summary>
    public static void Configure(JsonSerializerOptions o)
    {
        WireJson.Configure(o);
        o.UnmappedMemberHandling = JsonUnmappedMemberHandling.Disallow;
        // {"run_id":"a","run_id":"b"} would otherwise mean whichever came last; a proxy may have read the first.
        o.AllowDuplicateProperties = false;
        // The documented names are snake_case and exact: {"RUN_ID": ...} is an unknown field, not run_id.
        o.PropertyNameCaseInsensitive = false;
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
        // The body is read first (Kestrel bounds it by max_body_bytes) so that an error can be explained from the JSON
        // itself: what System.Text.Json's exception says is worded for .NET developers and may change between versions.
        using var buffer = new MemoryStream();
        try
        {
            await request.Body.CopyToAsync(buffer, deadline.Token);
        }
        catch (OperationCanceledException) when (!ct.IsCancellationRequested)
        {
            // A body trickling in byte by byte passes Kestrel's minimum data rate yet holds a connection for hours.
            return (null, Problems.Of(408, "Request timeout",
                $"the request body did not arrive within {timeout} s (orchestrator.limits.body_timeout_s)"));
        }
        var body = buffer.GetBuffer().AsMemory(0, (int)buffer.Length);
        if (Unstorable(body.Span) is { } unstorable) return (null, Problems.BadRequest(unstorable.Reason, unstorable.Field));
        try
        {
            var value = JsonSerializer.Deserialize<T>(body.Span, Options);
            return value is null ? (null, Problems.BadRequest("the body must be a JSON object")) : (value, null);
        }
        catch (JsonException ex)
        {
            var field = string.IsNullOrEmpty(ex.Path) || ex.Path == "$" ? null : ex.Path.TrimStart('$', '.');
            return (null, Problems.BadRequest(Explain<T>(body.Span, ex, field), field));
        }
    }

    /// <summary>
    /// What well-formed JSON may carry but no store or answer can: a string (or name) escaping a lone UTF-16 surrogate
    /// ("\ud800" reached the journal's serializer and came back as a 500), or a number beyond a double's range (1e999 was
    /// stored and echoed as written). Only escaped strings are decoded: unescaped UTF-8 is already validated by the reader.
    /// Malformed JSON is left to the deserializer, whose error names where it broke.
    /// </summary>
    private static (string Reason, string? Field)? Unstorable(ReadOnlySpan<byte> body)
    {
        var reader = new Utf8JsonReader(body, new JsonReaderOptions { MaxDepth = Options.MaxDepth == 0 ? 64 : Options.MaxDepth });
        string? lastName = null;
        try
        {
            while (reader.Read())
            {
                switch (reader.TokenType)
                {
                    case JsonTokenType.PropertyName:
                    case JsonTokenType.String:
                        bool lone;
                        try
                        {
                            lone = reader.ValueIsEscaped && HasLoneSurrogate(reader.GetString()!);
                        }
                        catch (InvalidOperationException)
                        {
                            lone = true; // the reader refuses to decode some escaped lone surrogates at all
                        }
                        if (lone)
                            return ($"'{lastName ?? "body"}' holds {(reader.TokenType == JsonTokenType.PropertyName ? "a field name" : "a string")} " +
                                    "with a lone UTF-16 surrogate escape (e.g. \\ud800 without its pair): strings must be valid Unicode", lastName);
                        if (reader.TokenType == JsonTokenType.PropertyName) lastName = reader.GetString();
                        break;
                    // Parsed in place; only a number out of range costs a copy, for the message.
                    case JsonTokenType.Number when !(reader.TryGetDouble(out var d) && double.IsFinite(d)):
                        var raw = System.Text.Encoding.UTF8.GetString(reader.HasValueSequence ? System.Buffers.BuffersExtensions.ToArray(reader.ValueSequence) : reader.ValueSpan);
                        return ($"'{lastName ?? "body"}' holds the number {raw[..Math.Min(raw.Length, 32)]}, beyond the range of a double (about ±1.8e308)", lastName);
                }
            }
        }
        catch (JsonException)
        {
        }
        catch (InvalidOperationException)
        {
        }
        return null;
    }

    /// <summary>A high surrogate not followed by a low one, or a low one without its high one.</summary>
    public static bool HasLoneSurrogate(string s)
    {
        for (var i = 0; i < s.Length; i++)
        {
            if (char.IsHighSurrogate(s[i]) && i + 1 < s.Length && char.IsLowSurrogate(s[i + 1])) i++;
            else if (char.IsSurrogate(s[i])) return true;
        }
        return false;
    }

    /// <summary>
    /// Why the body did not deserialize, decided from the JSON and the target type at the exception's path (not from the
    /// exception's text): not JSON at all, a field the type does not have, a field given twice, or a value of the wrong type.
    /// </summary>
    private static string Explain<T>(ReadOnlySpan<byte> body, JsonException ex, string? field)
    {
        if (!IsWellFormed(body))
            return "the body is not valid JSON: " + ex.Message.Split(" Path:")[0].Split(" LineNumber:")[0];
        var segments = Segments(ex.Path);
        if (segments is [.. var parent, { Name: { } name }])
        {
            var owner = ExpectedAt(typeof(T), parent);
            if (owner is not null && PropertyOf(owner, name) is null)
                return $"unknown field '{field ?? "?"}'";
            if (Occurrences(body, parent, name) > 1)
                return $"duplicate field '{field ?? "?"}': each field may appear once";
        }
        var expected = (segments is null ? null : ExpectedAt(typeof(T), segments)) switch
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

    private static bool IsWellFormed(ReadOnlySpan<byte> body)
    {
        var reader = new Utf8JsonReader(body, new JsonReaderOptions { MaxDepth = Options.MaxDepth == 0 ? 64 : Options.MaxDepth });
        try
        {
            while (reader.Read()) { }
            return reader.BytesConsumed > 0;
        }
        catch (JsonException)
        {
            return false;
        }
    }

    /// <summary>One step of a JSON path: a property name or a list index.</summary>
    private sealed record Segment(string? Name, int? Index);

    /// <summary>"$.tasks[0]['odd name']" as its steps; null when the path cannot be read.</summary>
    private static Segment[]? Segments(string? path)
    {
        if (string.IsNullOrEmpty(path) || path[0] != '$') return null;
        var steps = new List<Segment>();
        var at = 1;
        foreach (System.Text.RegularExpressions.Match m in PathStep().Matches(path, 1))
        {
            if (m.Index != at) return null;
            at = m.Index + m.Length;
            if (m.Groups["name"].Success) steps.Add(new Segment(m.Groups["name"].Value, null));
            else if (m.Groups["quoted"].Success) steps.Add(new Segment(m.Groups["quoted"].Value.Replace("''", "'"), null));
            else steps.Add(new Segment(null, int.Parse(m.Groups["index"].Value, System.Globalization.CultureInfo.InvariantCulture)));
        }
        return at == path.Length ? [.. steps] : null;
    }

    [System.Text.RegularExpressions.GeneratedRegex(@"\.(?<name>[^.\[]+)|\['(?<quoted>(?:[^']|'')*)'\]|\[(?<index>\d+)\]")]
    private static partial System.Text.RegularExpressions.Regex PathStep();

    /// <summary>How often <paramref name="name"/> appears in the object at <paramref name="parent"/> (0 when not found).</summary>
    private static int Occurrences(ReadOnlySpan<byte> body, IReadOnlyList<Segment> parent, string name)
    {
        using var document = JsonDocument.Parse(body.ToArray());
        var element = document.RootElement;
        foreach (var step in parent)
        {
            if (step.Name is { } n)
            {
                if (element.ValueKind != JsonValueKind.Object) return 0;
                var found = false;
                foreach (var p in element.EnumerateObject())
                {
                    if (!p.NameEquals(n)) continue;
                    element = p.Value;
                    found = true;
                    break;
                }
                if (!found) return 0;
            }
            else
            {
                if (element.ValueKind != JsonValueKind.Array || step.Index >= element.GetArrayLength()) return 0;
                element = element[step.Index!.Value];
            }
        }
        return element.ValueKind == JsonValueKind.Object ? element.EnumerateObject().Count(p => p.NameEquals(name)) : 0;
    }

    private static System.Reflection.PropertyInfo? PropertyOf(Type type, string jsonName) =>
        type.GetProperties().FirstOrDefault(p => JsonNamingPolicy.SnakeCaseLower.ConvertName(p.Name) == jsonName);

    /// <summary>The .NET type a JSON path points at in <paramref name="root"/> (snake_case names, indexes for list items).</summary>
    private static Type? ExpectedAt(Type root, IReadOnlyList<Segment> path)
    {
        var type = root;
        foreach (var step in path)
        {
            if (step.Name is { } name)
            {
                if (PropertyOf(type, name) is not { } property) return null;
                type = property.PropertyType;
            }
            else
            {
                if (!type.IsGenericType) return null;
                type = type.GetGenericArguments()[0];
            }
            type = Nullable.GetUnderlyingType(type) ?? type;
        }
        return type;
    }
}
