using System.IO.Compression;
using System.Net;
using System.Text;
using System.Text.Json.Nodes;
using Deepline.Domain;
using Deepline.Tests.Shared;

namespace Deepline.Cli.Tests;

/// <summary>`runs show --archive` and `runs export` read what retention archived, from disk, with no node needed.</summary>
public sealed class ArchiveCommandTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("deepline-archive-").FullName;

    private string Archive => Path.Combine(_dir, "archive");

    public void Dispose()
    {
        try { Directory.Delete(_dir, true); } catch (IOException) { }
    }

    [Fact]
    public async Task A_run_removed_by_retention_is_shown_and_exported_from_the_archive()
    {
        string url;
        await using (var node = await TestNode.Start(Path.Combine(_dir, "data"),
                         configure: c => c with { Retention = new RetentionPolicy(1, 1, 1), RetentionArchiveDir = Archive }))
        {
            url = node.Url;
            using var submitted = await node.Client.PostAsync("/runs", new StringContent(
                """{"run_id":"arch-1","tasks":[{"task_id":"a","type":"noop"},{"task_id":"b","type":"noop","depends_on":["a"]}]}""", Encoding.UTF8, "application/json"));
            Assert.Equal(HttpStatusCode.Created, submitted.StatusCode);
            await Eventually.Until(async () => (await node.Client.GetAsync("/runs/arch-1")).StatusCode == HttpStatusCode.NotFound,
                TimeSpan.FromSeconds(45), "the finished run removed by retention");
        }

        // The node is gone: the archive alone answers.
        var shown = (await Cli.Run(url, "runs", "show", "arch-1", "--archive", Archive)).Ok();
        Assert.Contains("arch-1", shown.Out);
        Assert.Contains("| run_submitted ", shown.Out);
        Assert.Equal(2, shown.Out.Split('\n').Count(l => l.Contains("| task_succeeded ")));
        Assert.Contains("Events: 5", shown.Out);
        var json = (await Cli.Run(url, "runs", "show", "arch-1", "--archive", Archive, "--json")).Ok().Json;
        Assert.Equal("arch-1", json["run_id"]!.GetValue<string>());
        Assert.Equal("RunSubmitted", json["events"]![0]!["manifest"]!.GetValue<string>());

        var file = Path.Combine(_dir, "export.jsonl");
        var exported = (await Cli.Run(url, "runs", "export", "--archive", Archive, "--out", file)).Ok();
        Assert.Contains("exported 1 run(s)", exported.Err);
        var line = Assert.Single(File.ReadAllLines(file));
        Assert.Equal(5, JsonNode.Parse(line)!["events"]!.AsArray().Count);

        Assert.Contains("'nope' is not in the archive", (await Cli.Run(url, "runs", "show", "nope", "--archive", Archive)).Fails(ExitCodes.NodeError));
        Assert.Contains("no archive in", (await Cli.Run(url, "runs", "show", "arch-1", "--archive", _dir)).Fails(ExitCodes.Usage));
    }

    [Fact]
    public async Task A_damaged_or_hostile_archive_is_read_as_far_as_it_is_sound()
    {
        Directory.CreateDirectory(Archive);
        var data = Path.Combine(Archive, "runs-20261207T10Z.jsonl.gz");
        var first = Member("""{"run_id":"dup","archived_at":"2026-12-07T10:00:00Z","events":[]}""", """{"run_id":"solo","archived_at":"2026-12-07T10:00:00Z","events":[]}""");
        var second = Member("""{"run_id":"dup","archived_at":"2026-12-07T10:05:00Z","events":[]}""");
        await File.WriteAllBytesAsync(data, [.. first, .. "torn write"u8.ToArray(), .. second]);
        var secondAt = first.Length + "torn write".Length;
        await File.WriteAllLinesAsync(Path.Combine(Archive, "manifest.jsonl"),
        [
            $$"""{"file":"runs-20261207T10Z.jsonl.gz","offset":0,"length":{{first.Length}},"run_ids":["dup","solo"]}""",
            """{"file":"runs-20261207T10Z.jso""",
            """{"file":"../../../etc/passwd","offset":0,"length":10,"run_ids":["dup"]}""",
            $$"""{"file":"runs-20261207T10Z.jsonl.gz","offset":{{secondAt}},"length":999999,"run_ids":["dup"]}""",
            $$"""{"file":"runs-20261207T10Z.jsonl.gz","offset":{{secondAt}},"length":{{second.Length}},"run_ids":["dup"]}""",
        ]);
        const string url = "http://127.0.0.1:1";

        var dup = (await Cli.Run(url, "runs", "show", "dup", "--archive", Archive, "--json")).Ok().Json;
        Assert.Equal("2026-12-07T10:05:00Z", dup["archived_at"]!.GetValue<string>());
        var exported = (await Cli.Run(url, "runs", "export", "--archive", Archive)).Ok();
        Assert.Equal(["solo", "dup"], exported.Out.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => JsonNode.Parse(l)!["run_id"]!.GetValue<string>()));
        Assert.Contains("3 unreadable manifest line(s) skipped", exported.Err);
    }

    private static byte[] Member(params string[] lines)
    {
        using var buffer = new MemoryStream();
        using (var gzip = new GZipStream(buffer, CompressionLevel.Fastest))
            gzip.Write(Encoding.UTF8.GetBytes(string.Join('\n', lines) + "\n"));
        return buffer.ToArray();
    }
}
