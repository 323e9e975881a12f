using System.Net;
using System.Text;
using System.Text.Json.Nodes;

namespace Deepline.Cli.Tests;

/// <summary>
/// The embedded default: no keys file and no orchestrator.admin.key. Whoever is on the machine is admin, so the
/// seed's "force complete (admin)" works with a bare curl, as the seed document shows it.
/// </summary>
public sealed class OpenNodeAdminTests : IAsyncLifetime
{
    private readonly string _dataDir = Directory.CreateTempSubdirectory("deepline-cli-nokey-").FullName;
    private TestNode _node = null!;

    public async Task InitializeAsync() => _node = await TestNode.Start(_dataDir, adminKey: "");

    public async Task DisposeAsync()
    {
        await _node.DisposeAsync();
        try { Directory.Delete(_dataDir, true); } catch (IOException) { }
    }

    private async Task Submit(string runId) =>
        Assert.Equal(HttpStatusCode.Created, (await _node.Client.PostAsync("/runs", new StringContent(
            $$"""{"run_id":"{{runId}}","tasks":[{"task_id":"h","type":"hang"}]}""", Encoding.UTF8, "application/json"))).StatusCode);

    private async Task<string> Status(string runId) =>
        JsonNode.Parse(await _node.Client.GetStringAsync($"/runs/{runId}"))!["status"]!.GetValue<string>();

    [Fact]
    public async Task A_loopback_caller_force_completes_a_running_run_without_any_key()
    {
        await Submit("open-delete");
        var deleted = await _node.Client.DeleteAsync("/runs/open-delete/cancel");
        Assert.Equal(HttpStatusCode.NoContent, deleted.StatusCode);
        Assert.Equal("CANCELLED", await Status("open-delete"));

        await Submit("open-cli");
        (await Cli.Run(_node.Url, "runs", "force-complete", "open-cli")).Ok();
        Assert.Equal("CANCELLED", await Status("open-cli"));

        Assert.Contains("Count: 1 node", (await Cli.Run(_node.Url, "cluster", "show")).Ok().Out);
    }
}
