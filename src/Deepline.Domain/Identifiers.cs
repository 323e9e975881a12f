namespace Deepline.Domain;

/// <summary>Run and task ids travel in URLs, Redis keys and log lines, so their alphabet is narrow.</summary>
public static class Identifiers
{
    public const int MaxLength = 128;

    public static bool IsValid(string? id)
    {
        // "." and ".." would be rewritten as path segments in /runs/{run_id} URLs.
        if (string.IsNullOrEmpty(id) || id.Length > MaxLength || id is "." or "..") return false;
        foreach (var c in id)
        {
            var ok = c is (>= 'a' and <= 'z') or (>= 'A' and <= 'Z') or (>= '0' and <= '9') or '.' or '_' or ':' or '-';
            if (!ok) return false;
        }
        return true;
    }

    public static string Describe(string what) =>
        $"{what} must be 1..{MaxLength} characters of [A-Za-z0-9._:-]";

    /// <summary>Run ids that a route already claims: GET /runs/cancelled is the list and POST /runs/cancel the bulk cancel, never a run.</summary>
    public static bool IsReserved(string id) => id is "cancelled" or "cancel";

    /// <summary>Text that a person wrote (reasons, errors, names) goes to logs and terminals: no control characters there.</summary>
    public static string StripControl(string text)
    {
        if (!text.Any(char.IsControl)) return text;
        return string.Create(text.Length, text, (span, t) =>
        {
            for (var i = 0; i < t.Length; i++) span[i] = char.IsControl(t[i]) ? ' ' : t[i];
        });
    }

    public static bool HasControl(string text) => text.Any(char.IsControl);

    public static string NewRunId() => "run-" + Guid.NewGuid().ToString("N");
}
