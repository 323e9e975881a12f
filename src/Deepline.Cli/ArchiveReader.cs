using System.IO.Compression;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Deepline.Cli;

/// <summary>
/// Reads a node's retention archive (orchestrator.retention.archive_dir) from disk, without a node: manifest.jsonl names
/// each gzip member (file, offset, length) and the runs it holds; a run archived twice (a sweep repeated after a crash)
/// is read from its last copy. The directory may come from another machine, so nothing in it is trusted: a manifest
/// line that is torn, names a path outside the directory or points past its file is skipped and counted.
/// </summary>
internal sealed class ArchiveReader
{
    public const string ManifestFile = "manifest.jsonl";
    private const long MaxMemberBytes = 1L << 30;

    private readonly string _dir;

    public ArchiveReader(string dir)
    {
        _dir = Path.GetFullPath(dir);
        if (!File.Exists(Path.Combine(_dir, ManifestFile)))
            throw new CliException(ExitCodes.Usage, $"no archive in {_dir}: {ManifestFile} not found (set orchestrator.retention.archive_dir on the node)");
    }

    public sealed record Entry(int Index, string File, long Offset, long Length, IReadOnlyList<string> RunIds);

    /// <summary>Manifest lines that could not be used (torn, outside the directory, past the end of their file).</summary>
    public int Skipped { get; private set; }

    public IReadOnlyList<Entry> Entries()
    {
        var entries = new List<Entry>();
        foreach (var line in File.ReadLines(Path.Combine(_dir, ManifestFile)))
        {
            if (string.IsNullOrWhiteSpace(line)) continue;
            try
            {
                var o = JsonNode.Parse(line)!.AsObject();
                var file = o["file"]!.GetValue<string>();
                var offset = o["offset"]!.GetValue<long>();
                var length = o["length"]!.GetValue<long>();
                var ids = o["run_ids"]!.AsArray().Select(n => n!.GetValue<string>()).ToList();
                var path = Path.Combine(_dir, file);
                if (Path.GetFileName(file) != file || file.Length == 0 || offset < 0 || length is <= 0 or > MaxMemberBytes
                    || !File.Exists(path) || offset + length > new FileInfo(path).Length)
                {
                    Skipped++;
                    continue;
                }
                entries.Add(new Entry(entries.Count, file, offset, length, ids));
            }
            catch (Exception e) when (e is JsonException or InvalidOperationException or NullReferenceException or FormatException)
            {
                Skipped++;
            }
        }
        return entries;
    }

    /// <summary>The last archived copy of <paramref name="runId"/>, or null.</summary>
    public JsonObject? Find(string runId)
    {
        var entry = Entries().LastOrDefault(e => e.RunIds.Contains(runId));
        return entry is null ? null : Runs(entry).LastOrDefault(r => r["run_id"]?.GetValue<string>() == runId);
    }

    /// <summary>Every archived run once (its last copy), in the order they were archived.</summary>
    public IEnumerable<JsonObject> All()
    {
        var entries = Entries();
        var last = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (var e in entries)
            foreach (var id in e.RunIds) last[id] = e.Index;
        foreach (var e in entries)
            foreach (var run in Runs(e))
                if (run["run_id"]?.GetValue<string>() is { } id && last.GetValueOrDefault(id, -1) == e.Index && last.Remove(id))
                    yield return run;
    }

    private IEnumerable<JsonObject> Runs(Entry e)
    {
        using var file = new FileStream(Path.Combine(_dir, e.File), FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
        file.Seek(e.Offset, SeekOrigin.Begin);
        var member = new byte[e.Length];
        file.ReadExactly(member);
        using var reader = new StreamReader(new GZipStream(new MemoryStream(member), CompressionMode.Decompress));
        while (true)
        {
            string? line;
            try
            {
                line = reader.ReadLine();
            }
            catch (InvalidDataException ex)
            {
                throw new CliException(ExitCodes.NodeError, $"{e.File} at byte {e.Offset} is not a readable gzip member: {ex.Message}");
            }
            if (line is null) yield break;
            if (string.IsNullOrWhiteSpace(line)) continue;
            JsonObject run;
            try
            {
                run = JsonNode.Parse(line)!.AsObject();
            }
            catch (Exception ex) when (ex is JsonException or InvalidOperationException)
            {
                throw new CliException(ExitCodes.NodeError, $"{e.File} at byte {e.Offset} holds a line that is not a JSON object: {ex.Message}");
            }
            yield return run;
        }
    }
}
