namespace Deepline.Cli.Tests;

/// <summary>A node started without orchestrator.admin.key: its admin endpoints are shut, whatever key is sent.</summary>
public sealed class AdminDisabledTests : IAsyncLifetime
{
    private readonly string _dataDir = Directory.CreateTempSubdirectory("deepline-cli-nokey-").FullName;
    private TestNode _node = null!;

    public async Task InitializeAsync() => _node = await TestNode.Start(_dataDir, adminKey: "");

    public async Task DisposeAsync()
    {
        await _node.DisposeAsync();
        try { Directory.Delete(_dataDir, true); } catch (IOException) { }
    }

    [Fact]
    public async Task Admin_commands_say_admin_is_disabled_and_change_nothing()
    {
        var leave = (await Cli.Run(_node.Url, "cluster", "leave", _node.RemotingAddress, "--admin-key", TestNode.AdminKey)).Fails(ExitCodes.NodeError);
        Assert.Equal("deepline: 403 Admin disabled: admin endpoints are disabled on this node: set orchestrator.admin.key (DEEPLINE_ADMIN_KEY) to enable them", leave);

        var force = (await Cli.Run(_node.Url, "runs", "force-complete", "any-run", "--admin-key", TestNode.AdminKey)).Fails(ExitCodes.NodeError);
        Assert.Contains("403 Admin disabled", force);

        Assert.Contains("Count: 1 node", (await Cli.Run(_node.Url, "cluster", "show")).Ok().Out);
    }
}
