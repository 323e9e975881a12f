using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Deepline.Cli;

/// <summary>Human output (aligned tables, key: value lines) and script output (--json) of one command.</summary>
public sealed class Output(TextWriter writer, bool json)
{
    // Only re-indents the node's answers (already in the wire's JSON): no naming or converters of its own.
    private static readonly JsonSerializerOptions Indented = new() { WriteIndented = true };

    public bool Json => json;

    public TextWriter Writer => writer;

    public void Line(string text = "") => writer.WriteLine(text);

    public void WriteJson(JsonNode? node) => writer.WriteLine(node?.ToJsonString(Indented) ?? "null");

    /// <summary>One compact JSON document per line, for streams (runs watch --json).</summary>
    public void WriteJsonLine(JsonNode? node) => writer.WriteLine(node?.ToJsonString() ?? "null");

    /// <summary>pbm's shape: columns separated by " | ", padded so that they line up.</summary>
    public void Table(IReadOnlyList<string> headers, IEnumerable<IReadOnlyList<string>> rows)
    {
        var all = new List<IReadOnlyList<string>> { headers };
        // Cells carry what callers and workers sent (names, explanations): a control character must not reach the terminal.
        all.AddRange(rows.Select(r => (IReadOnlyList<string>)[.. r.Select(cell => string.Concat(cell.Select(ch => char.IsControl(ch) ? ' ' : ch)))]));
        var widths = headers.Select((_, i) => all.Max(r => i < r.Count ? r[i].Length : 0)).ToArray();
        foreach (var row in all)
        {
            var cells = widths.Select((w, i) => (i < row.Count ? row[i] : "").PadRight(i == widths.Length - 1 ? 0 : w));
            writer.WriteLine(string.Join(" | ", cells).TrimEnd());
        }
    }

    /// <summary>Every scalar of an object as "key: value" lines, nested objects indented.</summary>
    public void KeyValues(JsonObject obj, int indent = 0)
    {
        var pad = new string(' ', indent);
        var width = obj.Count == 0 ? 0 : obj.Max(kv => kv.Key.Length) + 1;
        foreach (var (key, value) in obj)
        {
            if (value is JsonObject nested)
            {
                writer.WriteLine($"{pad}{key}:");
                KeyValues(nested, indent + 2);
            }
            else
            {
                writer.WriteLine($"{pad}{(key + ":").PadRight(width)} {Show(value)}");
            }
        }
    }

    /// <summary>A JSON value as an operator reads it: strings bare, null as "-", lists comma separated.</summary>
    public static string Show(JsonNode? node) => node switch
    {
        null => "-",
        JsonValue v when v.TryGetValue<string>(out var s) => s.Length == 0 ? "-" : s,
        JsonValue v when v.TryGetValue<bool>(out var b) => b ? "yes" : "no",
        JsonValue v when v.TryGetValue<double>(out var d) => d.ToString(CultureInfo.InvariantCulture),
        JsonArray a => a.Count == 0 ? "-" : string.Join(",", a.Select(Show)),
        _ => node.ToJsonString(),
    };

    public static string Str(JsonNode? node, string key) => Show(node?[key]);

    public static int Int(JsonNode? node, string key) =>
        node?[key] is JsonValue v && v.TryGetValue<int>(out var i) ? i : 0;
}
