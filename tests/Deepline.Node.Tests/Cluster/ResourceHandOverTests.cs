using System.Net;
using Deepline.Node.Configuration;
using Deepline.Node.Tests.Http;
using Deepline.Tests.Shared;
using Deepline.Worker.Sdk;

namespace Deepline.Node.Tests.Cluster;

/// <summary>
/// Two in-process nodes on one PostgreSQL store; the node hosting the ResourceCoordinator singleton (the oldest) is
/// stopped. The coordinator comes back on the other node from its journal: grants and waits are all there, in order,
/// nothing is granted twice, and a cycle closed after the hand-over is still found and broken.
/// </summary>
[Trait("Category", "Cluster")]
public sealed class ResourceHandOverTests : IAsyncLifetime
{
    private PostgresCluster _cluster = null!;

    public async Task InitializeAsync() => _cluster = await PostgresCluster.StartAsync("deepline-res-handover-");

    public async Task DisposeAsync() => await _cluster.DisposeAsync();

    private static async Task<System.Text.Json.Nodes.JsonObject> Resource(HttpClient client, string name) =>
        await (await client.GetAsync($"/resources/{name}")).ReadObject();

    private static string[] Ids(System.Text.Json.Nodes.JsonNode? list) => [.. list!.AsArray().Select(h => h!["run_id"]!.GetValue<string>())];

    [Fact]
    public async Task Grants_and_waits_survive_the_coordinators_hand_over_without_a_double_grant_and_a_later_cycle_is_still_broken()
    {
        var (first, firstAddress) = await _cluster.StartNodeAsync("first", new RemotingConfig("127.0.0.1", 0, []));
        var (second, _) = await _cluster.StartNodeAsync("second", new RemotingConfig("127.0.0.1", 0, [firstAddress]));
        await Eventually.Until(async () => (await (await first.GetAsync("/cluster/members")).ReadObject())["count"]!.GetValue<int>() == 2,
            TimeSpan.FromSeconds(30), "both members up");

        // Before: worker w1 holds ho-db; the run keeps ho-gpu and waits for ho-db; worker w2 waits for ho-db behind it.
        var w1 = new ResourceClaimsClient(first, "ho-w1");
        var w2 = new ResourceClaimsClient(first, "ho-w2");
        Assert.IsType<ClaimResult.Granted>(await w1.ClaimAsync("ho-db"));
        Assert.Equal(HttpStatusCode.Created, (await first.PostJson("/runs", """
            {"run_id":"ho-run","tasks":[
              {"task_id":"first","type":"python","pool":"ho-external","resources":[{"name":"ho-gpu","count":1}],"hold_until":"second"},
              {"task_id":"second","type":"python","pool":"ho-external","depends_on":["first"],"resources":[{"name":"ho-db","count":1}]}]}
            """)).StatusCode);
        await first.AwaitRun("ho-run", r => r["tasks"]![0]!["waiting_for"]!.AsArray().Count == 0, "the run holds ho-gpu");
        var events = new TaskEventsClient(first, "ext-1");
        Assert.IsType<TaskEventResult.Accepted>(await events.StartedAsync("ho-run", "first"));
        Assert.IsType<TaskEventResult.Accepted>(await events.SucceededAsync("ho-run", "first"));
        await first.AwaitRun("ho-run", r => r["tasks"]![1]!["waiting_for"]!.AsArray().Count == 1, "the run waits for ho-db");
        Assert.IsType<ClaimResult.Waiting>(await w2.ClaimAsync("ho-db"));

        // The oldest node hosts the singletons; it leaves.
        await _cluster.StopNodeAsync("first");
        var w1After = new ResourceClaimsClient(second, "ho-w1");
        var w2After = new ResourceClaimsClient(second, "ho-w2");
        await CoordinatorAnswers(second, "ho-db");

        var db = await Resource(second, "ho-db");
        Assert.Equal(1, db["used"]!.GetValue<int>());
        Assert.Equal(["worker/ho-w1"], Ids(db["holders"]));
        Assert.Equal(["ho-run", "worker/ho-w2"], Ids(db["waiters"]));
        Assert.Equal(["ho-run"], Ids((await Resource(second, "ho-gpu"))["holders"]));
        Assert.IsType<ClaimResult.Granted>(await w1After.StatusAsync("ho-db"));
        Assert.IsType<ClaimResult.Waiting>(await w2After.StatusAsync("ho-db"));
        var run = await second.AwaitRun("ho-run", r => r.Str("status") == "RUNNING", "the run served by the other node");
        Assert.Equal(["ho-gpu"], run["resources_held"]!.AsArray().Select(x => x!.GetValue<string>()));

        // After: w1's wait for ho-gpu closes the cycle w1 -> ho-gpu -> run -> ho-db -> w1; the coordinator, now on the other
        // node, refuses the claim that closed it, and the run goes on.
        var refused = Assert.IsType<ClaimResult.Refused>(await w1After.ClaimAsync("ho-gpu"));
        Assert.Contains("worker ho-w1 holds ho-db, waits for ho-gpu", refused.Explanation);
        Assert.Equal("RUNNING", (await second.GetRun("ho-run")).Str("status"));

        // ho-db still goes to one holder at a time, in line: the run once w1 has released it, w2 after the run.
        Assert.True(await w1After.ReleaseAsync("ho-db"));
        await second.AwaitRun("ho-run", r => r["tasks"]![1]!["waiting_for"]!.AsArray().Count == 0, "the run granted ho-db");
        Assert.IsType<ClaimResult.Waiting>(await w2After.StatusAsync("ho-db"));
        db = await Resource(second, "ho-db");
        Assert.Equal(1, db["used"]!.GetValue<int>());
        Assert.Equal(["ho-run"], Ids(db["holders"]));
    }

    [Fact]
    public async Task A_dead_workers_claim_is_released_within_a_lease_of_the_hand_over_while_a_live_worker_keeps_its_own()
    {
        var lease = TimeSpan.FromSeconds(3);
        static DeeplineConfig Short(DeeplineConfig c) => c with { Resources = c.Resources with { ClaimLeaseS = 3 } };
        var (first, firstAddress) = await _cluster.StartNodeAsync("first", new RemotingConfig("127.0.0.1", 0, []), Short);
        var (second, _) = await _cluster.StartNodeAsync("second", new RemotingConfig("127.0.0.1", 0, [firstAddress]), Short);
        await Eventually.Until(async () => (await (await first.GetAsync("/cluster/members")).ReadObject())["count"]!.GetValue<int>() == 2,
            TimeSpan.FromSeconds(30), "both members up");

        // The dead worker claims and is never heard of again; the live one renews through the node that stays.
        Assert.IsType<ClaimResult.Granted>(await new ResourceClaimsClient(first, "ho-dead").ClaimAsync("ho-lease-a"));
        var live = new ResourceClaimsClient(second, "ho-live");
        Assert.IsType<ClaimResult.Granted>(await live.ClaimAsync("ho-lease-b"));
        using var keepAlive = new CancellationTokenSource();
        var renewing = live.KeepAliveAsync(keepAlive.Token);

        await _cluster.StopNodeAsync("first");
        await CoordinatorAnswers(second, "ho-lease-a");
        var answeringAt = DateTimeOffset.UtcNow;

        // Recovered with a fresh lease (not lost in the hand-over), then released once it runs out.
        var dead = new ResourceClaimsClient(second, "ho-dead");
        await Eventually.Until(async () => await dead.StatusAsync("ho-lease-a") is ClaimResult.None, lease + TimeSpan.FromSeconds(10),
            "the dead worker's claim released within a lease of the hand-over");
        Assert.True(DateTimeOffset.UtcNow - answeringAt < lease + TimeSpan.FromSeconds(10));
        Assert.Empty(Ids((await Resource(second, "ho-lease-a"))["holders"]));

        // The live worker still holds its own a lease later.
        var until = DateTimeOffset.UtcNow + lease;
        await Eventually.Until(async () =>
        {
            Assert.IsType<ClaimResult.Granted>(await live.StatusAsync("ho-lease-b"));
            return DateTimeOffset.UtcNow > until;
        }, TimeSpan.FromSeconds(30), "a lease passes with the live worker renewing");
        Assert.True(await live.ReleaseAsync("ho-lease-b"));
        await renewing.WaitAsync(TimeSpan.FromSeconds(10));
    }

    /// <summary>
    /// Until the coordinator answers on <paramref name="node"/> after the hand-over. The node's ask of the coordinator
    /// and the client's request time out alike (10 s) while the singleton moves: a timed-out request is one more try.
    /// </summary>
    private static Task CoordinatorAnswers(HttpClient node, string resource) =>
        Eventually.Until(async () =>
        {
            try
            {
                return (await node.GetAsync($"/resources/{resource}")).StatusCode == HttpStatusCode.OK;
            }
            catch (TaskCanceledException)
            {
                return false;
            }
        }, TimeSpan.FromSeconds(60), "the coordinator answering on the other node");
}
