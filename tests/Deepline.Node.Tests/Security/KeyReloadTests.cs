using System.Net;
using Deepline.Node.Security;
using Deepline.Node.Tests.Http;
using Microsoft.Extensions.DependencyInjection;
using Deepline.Tests.Shared;

namespace Deepline.Node.Tests.Security;

public sealed class KeyReloadTests(SecuredNode node) : IClassFixture<SecuredNode>
{
    [Fact]
    public async Task A_key_added_to_the_file_works_and_a_removed_one_stops_without_a_restart()
    {
        const string NewKey = "a-key-added-while-running-007";
        using var newcomer = node.Client(NewKey);
        Assert.Equal(HttpStatusCode.Unauthorized, (await newcomer.GetAsync("/stats")).StatusCode);

        // Replace the file the way editors do: write a sibling, then rename it over the original.
        var without = SecuredNode.KeysYaml($"  - {{name: late-ops, key: {NewKey}, role: operator}}").Replace($"key: {SecuredNode.Operator}", "key: operator-key-rotated-0000099");
        var temp = node.KeysPath + ".tmp";
        await File.WriteAllTextAsync(temp, without);
        File.Move(temp, node.KeysPath, overwrite: true);

        await Eventually.Until(async () => (await newcomer.GetAsync("/stats")).StatusCode == HttpStatusCode.OK, TimeSpan.FromSeconds(15), "new key accepted");
        using var old = node.Client(SecuredNode.Operator);
        Assert.Equal(HttpStatusCode.Unauthorized, (await old.GetAsync("/stats")).StatusCode);

        // A file that no longer parses keeps the keys in force rather than locking everyone out.
        await File.WriteAllTextAsync(node.KeysPath, "keys: [ {name: broken");
        node.Services.GetRequiredService<KeyRing>().Reload("test"); // as SIGHUP would
        Assert.Equal(HttpStatusCode.OK, (await newcomer.GetAsync("/stats")).StatusCode);
    }
}

/// <summary>A revoked key's open event stream ends at the reload; a deleted keys file is an error in the log and /health.</summary>
public sealed class KeyRevocationTests(SecuredNode node) : IClassFixture<SecuredNode>
{
    [Fact]
    public async Task Revoking_a_key_ends_its_open_event_stream_and_leaves_the_others_streaming()
    {
        using var teamA = node.Client(SecuredNode.TeamA);
        using var teamB = node.Client(SecuredNode.TeamB);
        teamA.Timeout = teamB.Timeout = Timeout.InfiniteTimeSpan;
        await using var streamA = await OpenAsync(teamA);
        await using var streamB = await OpenAsync(teamB);
        using var linesA = new StreamReader(streamA);
        using var linesB = new StreamReader(streamB);
        Assert.StartsWith("event: hello", await linesA.ReadLineAsync());
        Assert.StartsWith("event: hello", await linesB.ReadLineAsync());

        var revoked = System.Diagnostics.Stopwatch.StartNew();
        var temp = node.KeysPath + ".tmp";
        await File.WriteAllTextAsync(temp, SecuredNode.KeysYaml().Replace($"key: {SecuredNode.TeamA}", "key: team-a-key-rotated-000000099"));
        File.Move(temp, node.KeysPath, overwrite: true);

        // Team A's stream ends (the reader sees its end) within seconds of the file's change.
        using var deadline = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        while (await linesA.ReadLineAsync(deadline.Token) is not null) { }
        Assert.True(revoked.Elapsed < TimeSpan.FromSeconds(10), $"stream ended {revoked.Elapsed.TotalSeconds:F1} s after the revocation");

        // Team B's stream still carries team B's runs.
        Assert.Equal(HttpStatusCode.Created, (await teamB.PostJson("/runs", """{"run_id":"rv-b","tasks":[{"task_id":"x","type":"x","pool":"ext"}]}""")).StatusCode);
        using var seen = new CancellationTokenSource(TimeSpan.FromSeconds(15));
        string? line;
        do line = await linesB.ReadLineAsync(seen.Token);
        while (line is not null && !line.Contains("rv-b"));
        Assert.NotNull(line);
    }

    [Fact]
    public async Task A_deleted_keys_file_keeps_the_keys_in_force_and_shows_in_health_until_it_is_back()
    {
        using var ops = node.Client(SecuredNode.Operator);
        var saved = await File.ReadAllTextAsync(node.KeysPath);
        File.Delete(node.KeysPath);
        try
        {
            await Eventually.Until(async () =>
                (await (await ops.GetAsync("/health")).ReadObject())["dependencies"]!["keys"]?["state"]?.GetValue<string>() == "degraded",
                TimeSpan.FromSeconds(15), "health shows the missing keys file");
            var keys = (await (await ops.GetAsync("/health")).ReadObject())["dependencies"]!["keys"]!;
            Assert.Contains("missing", keys["detail"]!.GetValue<string>());
            Assert.Equal(HttpStatusCode.OK, (await ops.GetAsync("/stats")).StatusCode); // the documented policy: keys stay in force
        }
        finally
        {
            await File.WriteAllTextAsync(node.KeysPath, saved);
        }
        await Eventually.Until(async () =>
            (await (await ops.GetAsync("/health")).ReadObject())["dependencies"]!["keys"]!["state"]!.GetValue<string>() == "ok",
            TimeSpan.FromSeconds(15), "health ok once the file is back");
    }

    private static async Task<Stream> OpenAsync(HttpClient client)
    {
        var response = await client.GetAsync("/ui/events", HttpCompletionOption.ResponseHeadersRead);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        return await response.Content.ReadAsStreamAsync();
    }
}
