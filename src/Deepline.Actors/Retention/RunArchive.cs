using System.IO.Compression;
using System.Text.Json;
using Deepline.Actors.Index;
using Deepline.Actors.Serialization;
using Deepline.Actors.Workflows;
using Deepline.Domain;
using Deepline.Worker.Sdk;

namespace Deepline.Actors.Retention;

/// <summary>One removed run as the archive keeps it: its whole journal, each event with its timeline entry and its payload.</summary>
public sealed record ArchivedRun(string RunId, DateTimeOffset CreatedAt, DateTimeOffset ArchivedAt, IReadOnlyList<ArchivedEvent> Events);

/// <param name="Manifest">The payload's type as the journal names it; <paramref name="Event"/> is its JSON as journalled (null: unreadable).</param>
public sealed record ArchivedEvent(long Seq, DateTimeOffset? At, string Type, string? TaskId, int? Attempt, string? By, string? Cause, string? Detail,
    string Manifest, JsonElement? Event);

/// <summary>A line of the archive's manifest: where one batch's gzip member is, and which runs it holds.</summary>
public sealed record ArchiveEntry(string File, long Offset, long Length, DateTimeOffset WrittenAt, IReadOnlyList<string> RunIds);

/// <summary>
/// The retention archive (orchestrator.retention.archive_dir): before runs are removed, their histories are appended to
/// the hour's file (<c>runs-YYYYMMDDTHHZ.jsonl.gz</c>) as one gzip member per sweep, one JSON line per run, and the
/// member's place and run ids to <c>manifest.jsonl</c>, each written to disk (fsync) before any run is removed. A crash
/// between the two leaves bytes no manifest line points at, which readers never see; runs archived but not removed (a
/// crash, a run re-opened) are archived again by a later sweep, and readers take the last copy.
/// </summary>
public sealed class RunArchive
{
    public const string ManifestFile = "manifest.jsonl";

    private readonly string _dir;
    private readonly Lazy<JournalTail> _tail;

    public RunArchive(string dir, RunIndexStore index, Akka.Serialization.Serialization serialization)
    {
        _dir = dir;
        _tail = new(() => JournalTail.For(index.Connect, serialization));
    }

    public string Directory => _dir;

    /// <summary>The hour's file for a write at <paramref name="at"/>.</summary>
    public static string FileFor(DateTimeOffset at) => $"runs-{at.UtcDateTime:yyyyMMdd'T'HH}Z.jsonl.gz";

    public async Task WriteAsync(IReadOnlyList<(string RunId, long CreatedAtMs)> runs, DateTimeOffset now, CancellationToken ct = default)
    {
        if (runs.Count == 0) return;
        System.IO.Directory.CreateDirectory(_dir);
        using var member = new MemoryStream();
        await using (var gzip = new GZipStream(member, CompressionLevel.Fastest, leaveOpen: true))
        {
            // One read for the batch (the run index's history read), not one per run.
            var histories = (await _tail.Value.HistoriesAsync([.. runs.Select(r => WorkflowActor.PersistenceIdPrefix + r.RunId)], ct))
                .GroupBy(e => e.PersistenceId[WorkflowActor.PersistenceIdPrefix.Length..], StringComparer.Ordinal)
                .ToDictionary(g => g.Key, g => (IReadOnlyList<ArchivedEvent>)[.. g.OrderBy(e => e.SequenceNr).Select(Archived)], StringComparer.Ordinal);
            foreach (var (runId, createdAtMs) in runs)
            {
                var run = new ArchivedRun(runId, DateTimeOffset.FromUnixTimeMilliseconds(createdAtMs), now, histories.GetValueOrDefault(runId, []));
                await JsonSerializer.SerializeAsync(gzip, run, WireJson.Options, ct);
                gzip.WriteByte((byte)'\n');
            }
        }
        var file = FileFor(now);
        long offset;
        await using (var data = new FileStream(Path.Combine(_dir, file), FileMode.Append, FileAccess.Write, FileShare.Read))
        {
            offset = data.Position;
            await data.WriteAsync(member.GetBuffer().AsMemory(0, (int)member.Length), ct);
            data.Flush(flushToDisk: true);
        }
        var entry = JsonSerializer.SerializeToUtf8Bytes(new ArchiveEntry(file, offset, member.Length, now, [.. runs.Select(r => r.RunId)]), WireJson.Options);
        await using var manifest = new FileStream(Path.Combine(_dir, ManifestFile), FileMode.Append, FileAccess.Write, FileShare.Read);
        await manifest.WriteAsync(entry, ct);
        manifest.WriteByte((byte)'\n');
        manifest.Flush(flushToDisk: true);
    }

    private static ArchivedEvent Archived(Akka.Persistence.Query.EventEnvelope e)
    {
        var t = RunTimeline.Describe(e.SequenceNr, e.Event);
        return new ArchivedEvent(t.Seq, t.At, t.Type, t.TaskId, t.Attempt, t.By, t.Cause, t.Detail,
            e.Event is UnreadablePayload u ? u.Manifest : e.Event.GetType().Name,
            e.Event is IDeeplineMessage ? JsonSerializer.SerializeToElement(e.Event, e.Event.GetType(), DeeplineSerializer.Options) : null);
    }
}
