namespace Deepline.Cli.Tests;

/// <summary>A node with a keys file: the CLI sends --key (or DEEPLINE_KEY) as its bearer key.</summary>
public sealed class KeyedNodeTests : IAsyncLifetime
{
    private const string Submitter = "cli-submitter-key-team-a-01";
    private const string Operator = "cli-operator-key-0000000002";
    private readonly string _dataDir = Directory.CreateTempSubdirectory("deepline-cli-keys-").FullName;
    private TestNode _node = null!;

    public async Task InitializeAsync()
    {
        var keys = Path.Combine(_dataDir, "keys.json");
        await File.WriteAllTextAsync(keys, $$"""
            {"keys": [
              {"name": "team-a-cli", "key": "{{Submitter}}", "role": "submitter", "client_id": "team-a"},
              {"name": "ops", "key": "{{Operator}}", "role": "operator"}
            ]}
            """);
        _node = await TestNode.Start(Path.Combine(_dataDir, "data"), keysFile: keys);
    }

    public async Task DisposeAsync()
    {
        await _node.DisposeAsync();
        try { Directory.Delete(_dataDir, true); } catch (IOException) { }
    }

    private string RunFile(string json)
    {
        var path = Path.Combine(_dataDir, Guid.NewGuid().ToString("N") + ".json");
        File.WriteAllText(path, json);
        return path;
    }

    [Fact]
    public async Task Commands_carry_the_key_and_the_node_answers_for_its_role()
    {
        var file = RunFile("""{"run_id":"cli-keyed-1","client_id":"someone-else","tasks":[{"task_id":"a","type":"x","pool":"external"}]}""");

        var anonymous = (await Cli.Run(_node.Url, "runs", "submit", file)).Fails(ExitCodes.NodeError);
        Assert.StartsWith("deepline: 401 Unauthorized: this endpoint needs an API key", anonymous);

        var submitted = (await Cli.Run(_node.Url, "runs", "submit", file, "--key", Submitter, "--json")).Ok().Json;
        Assert.Equal("team-a", submitted["client_id"]!.GetValue<string>());

        var viaEnvironment = (await Cli.RunWith(new() { ["DEEPLINE_URL"] = _node.Url, ["DEEPLINE_KEY"] = Submitter },
            "runs", "cancel", "cli-keyed-1", "--reason", "from the env key", "--json")).Ok().Json;
        Assert.Equal("CANCELLED", viaEnvironment["status"]!.GetValue<string>());

        var forbidden = (await Cli.Run(_node.Url, "cluster", "show", "--key", Submitter)).Fails(ExitCodes.NodeError);
        Assert.Equal("deepline: 403 Forbidden: the key 'team-a-cli' may not call this endpoint: it needs role operator or admin", forbidden);
        (await Cli.Run(_node.Url, "cluster", "show", "--key", Operator)).Ok();
    }
}
