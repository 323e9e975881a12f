using System.Runtime.CompilerServices;
using System.Text.Json.Nodes;
using Deepline.Actors.Serialization;

namespace Deepline.Actors.Tests.Serialization;

/// <summary>
/// Journals outlive versions: a payload written by any earlier version must still be read, to the values it holds.
/// Golden/&lt;version&gt;/&lt;manifest&gt;.json holds the exact bytes one version wrote for that manifest (the file name is the
/// manifest). Files are never edited or deleted; a rename of a type is answered with an alias in
/// <see cref="DeeplineSerializer"/>, a renamed property with a way to keep reading the old name.
/// <para>
/// To add the payloads of a new type (the coverage test below names them), run the writer, which writes only the
/// manifests that have no file yet into <see cref="CurrentVersion"/>'s folder, and commit the files:
/// <c>DEEPLINE_WRITE_GOLDEN=1 dotnet test tests/Deepline.Actors.Tests -c Release --filter GoldenPayloadWriter</c>.
/// When a type's shape changes (fields added or retyped), raise <see cref="CurrentVersion"/> first so the new shape is
/// kept beside the old one.
/// </para>
/// </summary>
public sealed class GoldenPayloadTests(SerializerFixture fixture) : IClassFixture<SerializerFixture>
{
    public const string CurrentVersion = "v3";

    private static string GoldenDirectory => Path.Combine(AppContext.BaseDirectory, "Golden");

    public static TheoryData<string, string> GoldenFiles()
    {
        var data = new TheoryData<string, string>();
        foreach (var file in Directory.EnumerateFiles(GoldenDirectory, "*.json", SearchOption.AllDirectories).Order(StringComparer.Ordinal))
            data.Add(Path.GetFileName(Path.GetDirectoryName(file))!, Path.GetFileNameWithoutExtension(file));
        return data;
    }

    [Theory]
    [MemberData(nameof(GoldenFiles))]
    public void Every_golden_payload_still_reads_to_the_values_it_holds(string version, string manifest)
    {
        var bytes = File.ReadAllBytes(Path.Combine(GoldenDirectory, version, manifest + ".json"));

        var value = fixture.Serializer.FromBinary(bytes, manifest);

        Assert.False(value is UnreadablePayload, $"{version}/{manifest} no longer reads: {(value as UnreadablePayload)?.Error}");
        Assert.IsType(DeeplineSerializer.Manifests[manifest], value);
        // Fields added since are free to appear; every value the old payload held must come back unchanged.
        var written = JsonNode.Parse(bytes)!;
        var read = JsonNode.Parse(fixture.Serializer.ToBinary(value))!;
        AssertContains(written, read, $"{version}/{manifest}");
    }

    [Fact]
    public void Every_manifest_has_a_golden_payload()
    {
        var golden = GoldenFiles().Select(row => (string)row[1]).ToHashSet(StringComparer.Ordinal);

        var missing = DeeplineSerializer.Manifests.Keys.Where(m => !golden.Contains(m)).Order(StringComparer.Ordinal).ToList();

        Assert.True(missing.Count == 0,
            $"no golden payload for {string.Join(", ", missing)}: run DEEPLINE_WRITE_GOLDEN=1 dotnet test tests/Deepline.Actors.Tests -c Release --filter GoldenPayloadWriter and commit the files");
    }

    [GoldenWriterFact]
    public void GoldenPayloadWriter()
    {
        var target = Path.Combine(SourceDirectory(), "Golden", CurrentVersion);
        Directory.CreateDirectory(target);
        var serializer = fixture.Serializer;
        foreach (var (manifest, type) in DeeplineSerializer.Manifests)
        {
            var file = Path.Combine(target, manifest + ".json");
            if (File.Exists(file) || type.Name != manifest) continue;
            File.WriteAllBytes(file, serializer.ToBinary(Samples.Of(type)));
        }
    }

    private static string SourceDirectory([CallerFilePath] string path = "") => Path.GetDirectoryName(Path.GetDirectoryName(path))!;

    private static void AssertContains(JsonNode? written, JsonNode? read, string at)
    {
        switch (written)
        {
            case JsonObject o:
                var r = Assert.IsType<JsonObject>(read);
                foreach (var (name, child) in o)
                {
                    Assert.True(r.ContainsKey(name), $"{at}.{name} was written but is not read back");
                    AssertContains(child, r[name], $"{at}.{name}");
                }
                break;
            case JsonArray a:
                var ra = Assert.IsType<JsonArray>(read);
                Assert.True(a.Count == ra.Count, $"{at}: {a.Count} items written, {ra.Count} read back");
                for (var i = 0; i < a.Count; i++) AssertContains(a[i], ra[i], $"{at}[{i}]");
                break;
            default:
                Assert.True(JsonNode.DeepEquals(written, read), $"{at}: wrote {written?.ToJsonString()}, read back {read?.ToJsonString()}");
                break;
        }
    }
}

/// <summary>Runs the golden writer only when asked (DEEPLINE_WRITE_GOLDEN=1): golden files are written once, by a person.</summary>
public sealed class GoldenWriterFactAttribute : FactAttribute
{
    public GoldenWriterFactAttribute()
    {
        if (Environment.GetEnvironmentVariable("DEEPLINE_WRITE_GOLDEN") != "1")
            Skip = "writes golden payloads into the source tree; set DEEPLINE_WRITE_GOLDEN=1 to run";
    }
}
