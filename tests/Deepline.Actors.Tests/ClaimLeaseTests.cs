using Akka.Actor;
using Deepline.Actors.Resources;
using Deepline.Domain;
using Deepline.Domain.Resources;
using static Deepline.Actors.Tests.Specs;

namespace Deepline.Actors.Tests;

/// <summary>
/// An external worker that dies while holding a claim must not starve the runs behind it: its claims live under a lease
/// that it renews, and lose everything when the lease runs out, also after the coordinator restarted.
/// </summary>
public sealed class ClaimLeaseTests : IDisposable
{
    private readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    private static ResourceSettings Lease(TimeSpan lease) => ResourceSettings.Default with { ClaimLease = lease };

    private static async Task<IActorRef> Coordinator(TestNode node) =>
        await Akka.Hosting.ActorRegistry.For(node.System).GetAsync<ResourceCoordinator>();

    private static async Task<T> Ask<T>(TestNode node, IDeeplineMessage message) =>
        await (await Coordinator(node)).Ask<T>(message, TimeSpan.FromSeconds(10));

    private static Task<ClaimView> Claim(TestNode node, string worker, string resource) =>
        Ask<ClaimView>(node, new ClaimResource(worker, "key", false, resource, 1));

    private static Task<ClaimView> Status(TestNode node, string worker, string resource) =>
        Ask<ClaimView>(node, new GetClaim(worker, "key", false, resource));

    private static RunSpec Needs(string runId, string resource) =>
        Run(runId, Task("t") with { Resources = [new ResourceRequest(resource, 1)] });

    [Fact]
    public async Task A_worker_that_stops_renewing_loses_its_grant_after_the_lease_and_the_run_waiting_for_it_finishes()
    {
        var lease = TimeSpan.FromSeconds(1);
        await using var node = await TestNode.StartAsync(_dir.Path, resources: Lease(lease));
        var claimedAt = DateTimeOffset.UtcNow;
        var claim = await Claim(node, "crashed-worker", "lease-db");
        Assert.Equal(ClaimState.granted, claim.Status.State);
        Assert.NotNull(claim.LeaseExpiresAt);

        await node.Ask<RunReply>(new SubmitRun(Needs("behind-a-dead-worker", "lease-db")));

        var done = await node.AwaitRun("behind-a-dead-worker", s => s.Status.IsTerminal(), "the run gets lease-db once the worker's lease ran out");
        Assert.Equal(RunStatus.SUCCEEDED, done.Status);
        Assert.True(done.Tasks["t"].UpdatedAt >= claimedAt + lease, $"the task ended at {done.Tasks["t"].UpdatedAt:O}, before the lease from {claimedAt:O} ran out");
        var after = await Status(node, "crashed-worker", "lease-db");
        Assert.Equal(ClaimState.none, after.Status.State);
        Assert.Null(after.LeaseExpiresAt);
    }

    [Fact]
    public async Task A_worker_that_renews_keeps_its_grant_across_several_leases_and_the_run_proceeds_once_it_stops()
    {
        var lease = TimeSpan.FromSeconds(1);
        await using var node = await TestNode.StartAsync(_dir.Path, resources: Lease(lease));
        Assert.Equal(ClaimState.granted, (await Claim(node, "live-worker", "renewed-db")).Status.State);

        // The worker renews every third of the lease from its grant on, as the SDK does (renewing only once the run was
        // seen waiting let a cold node's first run outlast the 1 s lease before the first renewal).
        using var stop = new CancellationTokenSource();
        var renewals = 0;
        var renewing = System.Threading.Tasks.Task.Run(async () =>
        {
            while (!stop.IsCancellationRequested)
            {
                var renewed = await Ask<ClaimLeaseView>(node, new RenewClaimLease("live-worker", "key", false));
                Assert.Equal(1, renewed.Claims);
                Interlocked.Increment(ref renewals);
                try { await System.Threading.Tasks.Task.Delay(lease / 3, stop.Token); }
                catch (OperationCanceledException) { }
            }
        });

        await node.Ask<RunReply>(new SubmitRun(Needs("behind-a-live-worker", "renewed-db")));
        await node.AwaitRun("behind-a-live-worker", s => !s.Tasks["t"].WaitingFor.IsEmpty, "the run waits for renewed-db");

        // For three and a half leases the grant holds and the run keeps waiting.
        var until = DateTimeOffset.UtcNow + 3.5 * lease;
        var from = Volatile.Read(ref renewals);
        while (DateTimeOffset.UtcNow < until)
        {
            Assert.False(renewing.IsCompleted, "the renewals stopped: " + renewing.Exception?.GetBaseException().Message);
            Assert.Equal(ClaimState.granted, (await Status(node, "live-worker", "renewed-db")).Status.State);
            Assert.Equal(TaskState.QUEUED, (await node.Run("behind-a-live-worker")).Tasks["t"].State);
            await System.Threading.Tasks.Task.Delay(lease / 3);
        }
        await stop.CancelAsync();
        await renewing;
        renewals -= from;
        Assert.True(renewals >= 6, $"only {renewals} renewals");

        var done = await node.AwaitRun("behind-a-live-worker", s => s.Status.IsTerminal(), "the run proceeds once the worker stopped renewing");
        Assert.Equal(RunStatus.SUCCEEDED, done.Status);
    }

    [Fact]
    public async Task Claims_recovered_after_a_restart_get_a_fresh_lease_from_the_recovery_then_expire_and_the_waiting_run_finishes()
    {
        await using (var first = await TestNode.StartAsync(_dir.Path, resources: Lease(TimeSpan.FromMinutes(5))))
        {
            Assert.Equal(ClaimState.granted, (await Claim(first, "gone-worker", "restart-db")).Status.State);
            Assert.Equal(ClaimState.waiting, (await Claim(first, "gone-waiter", "restart-db")).Status.State);
        }

        var restartedAt = DateTimeOffset.UtcNow;
        var lease = TimeSpan.FromSeconds(2);
        await using var node = await TestNode.StartAsync(_dir.Path, resources: Lease(lease));
        var recovered = await Status(node, "gone-worker", "restart-db");
        var askedAt = DateTimeOffset.UtcNow;
        Assert.Equal(ClaimState.granted, recovered.Status.State);
        // A full lease from the recovery: not the five minutes the first node gave, not expired at once.
        Assert.InRange(recovered.LeaseExpiresAt!.Value, restartedAt + lease, askedAt + lease);
        Assert.Equal(ClaimState.waiting, (await Status(node, "gone-waiter", "restart-db")).Status.State);

        await node.Ask<RunReply>(new SubmitRun(Needs("behind-a-restart", "restart-db")));
        var done = await node.AwaitRun("behind-a-restart", s => s.Status.IsTerminal(), "the recovered claims expire and the run gets restart-db");
        Assert.Equal(RunStatus.SUCCEEDED, done.Status);
        Assert.Equal(ClaimState.none, (await Status(node, "gone-worker", "restart-db")).Status.State);
        Assert.Equal(ClaimState.none, (await Status(node, "gone-waiter", "restart-db")).Status.State);
    }
}
