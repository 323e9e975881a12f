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

    public static string NewRunId() => "run-" + Guid.NewGuid().ToString("N");
}
