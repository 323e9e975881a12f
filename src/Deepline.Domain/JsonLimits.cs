using System.Text.Json;

namespace Deepline.Domain;

/// <summary>
/// The one nesting rule for caller-supplied JSON values (task <c>params</c>, task <c>result</c>). A value is journalled
/// inside its event and again inside the run's snapshot and the run index row, each a few levels deeper than the wire
/// body; checking the value itself, before anything is acknowledged, is what lets every one of those writes succeed.
/// The journal serializer allows <see cref="StoreMaxDepth"/>, comfortably above the deepest envelope around a value.
/// </summary>
public static class JsonLimits
{
    /// <summary>Deepest nesting of objects/arrays a caller may send as params or result (<c>[[1]]</c> is 2).</summary>
    public const int MaxValueDepth = 32;

    /// <summary>MaxDepth of every serializer that writes events, snapshots or index rows.</summary>
    public const int StoreMaxDepth = MaxValueDepth * 4;

    /// <summary>Nesting depth of a value; iterative, so no input can exhaust the stack.</summary>
    public static int Depth(JsonElement value)
    {
        var max = 0;
        var stack = new Stack<(JsonElement Element, int Depth)>();
        stack.Push((value, 0));
        while (stack.Count > 0)
        {
            var (e, d) = stack.Pop();
            switch (e.ValueKind)
            {
                case JsonValueKind.Object:
                    max = Math.Max(max, d + 1);
                    foreach (var p in e.EnumerateObject()) stack.Push((p.Value, d + 1));
                    break;
                case JsonValueKind.Array:
                    max = Math.Max(max, d + 1);
                    foreach (var item in e.EnumerateArray()) stack.Push((item, d + 1));
                    break;
            }
        }
        return max;
    }

    /// <summary>Null when the value may be stored, else the reason (for a 422 naming the field).</summary>
    public static string? Check(JsonElement? value, string field) =>
        value is { } v && Depth(v) > MaxValueDepth
            ? $"{field} is nested {Depth(v)} levels deep; at most {MaxValueDepth} levels are accepted"
            : null;
}
