using System.Net;
using System.Text;
using Deepline.Tests.Shared;

namespace Deepline.Cli.Tests;

/// <summary>deadlock incidents against a node whose monitor flags a stuck run within seconds (auto-cancel off, so it stays open).</summary>
public sealed class IncidentCommandTests : IAsyncLifetime
{
    private readonly string _dataDir = Directory.CreateTempSubdirectory("deepline-cli-incidents-").FullName;
    private TestNode _node = null!;

    public async Task InitializeAsync() => _node = await TestNode.Start(_dataDir, configure: c => c with
    {
        Deadlock = c.Deadlock with { CheckIntervalS = 1, PendingStaleS = 1, CancelOnDeadlock = false },
    });

    public async Task DisposeAsync()
    {
        await _node.DisposeAsync();
        try { Directory.Delete(_dataDir, true); } catch (IOException) { }
    }

    [Fact]
    public async Task Deadlock_incidents_lists_the_open_incident_with_its_detector()
    {
        Assert.Equal(HttpStatusCode.Created, (await _node.Client.PostAsync("/runs", new StringContent(
            """{"run_id":"cli-stuck","workflow_name":"Stuck ETL","tasks":[{"task_id":"t","type":"etl","pool":"nobody-polls"}]}""",
            Encoding.UTF8, "application/json"))).StatusCode);

        await Eventually.Until(async () => (await Cli.Run(_node.Url, "deadlock", "incidents")).Ok().Out.Contains("cli-stuck"),
            TimeSpan.FromSeconds(30), "the incident listed");
        var table = (await Cli.Run(_node.Url, "deadlock", "incidents")).Ok().Out;
        Assert.Matches(@"\ncli-stuck\s+\| Stuck ETL\s+\| stale_pending\s+\|", table);
        Assert.EndsWith("Open incidents: 1", table.TrimEnd());
        var json = (await Cli.Run(_node.Url, "deadlock", "incidents", "--json")).Ok().Json;
        Assert.Equal("cli-stuck", json["incidents"]![0]!["run_id"]!.GetValue<string>());
        Assert.Contains("--limit must be from 1 to 500", (await Cli.Run(_node.Url, "deadlock", "incidents", "--limit", "0")).Fails(ExitCodes.Usage));
    }
}
