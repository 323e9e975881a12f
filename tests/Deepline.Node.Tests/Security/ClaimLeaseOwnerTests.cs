using System.Net;
using Deepline.Node.Tests.Http;
using Deepline.Worker.Sdk;

namespace Deepline.Node.Tests.Security;

/// <summary>A worker's lease is renewed only with the key that made its claims (or an admin's): another key cannot keep a dead worker's claims alive.</summary>
public sealed class ClaimLeaseOwnerTests(SecuredNode node) : IClassFixture<SecuredNode>
{
    [Fact]
    public async Task Another_workers_key_cannot_renew_the_lease_nor_learn_the_worker_exists_an_admin_and_the_owner_can()
    {
        using var owner = node.Client(SecuredNode.Worker);
        using var other = node.Client(SecuredNode.CpuWorker);
        using var admin = node.Client(SecuredNode.Admin);
        using var op = node.Client(SecuredNode.Operator);
        var claims = new ResourceClaimsClient(owner, "lease-owned");
        Assert.IsType<ClaimResult.Granted>(await claims.ClaimAsync("lease-owned-db"));

        var stolen = await other.PutAsync("/claims/lease-owned/lease", null);
        Assert.Equal(HttpStatusCode.NotFound, stolen.StatusCode);
        var unknown = await other.PutAsync("/claims/lease-never-claimed/lease", null);
        Assert.Equal((await unknown.ReadObject()).Str("title"), (await stolen.ReadObject()).Str("title"));
        Assert.Null(await new ResourceClaimsClient(other, "lease-owned").RenewAsync());
        Assert.Equal(HttpStatusCode.Forbidden, (await op.PutAsync("/claims/lease-owned/lease", null)).StatusCode);

        var byAdmin = await admin.PutAsync("/claims/lease-owned/lease", null);
        Assert.Equal(HttpStatusCode.OK, byAdmin.StatusCode);
        Assert.Equal(1, (await byAdmin.ReadObject())["claims"]!.GetValue<int>());
        var byOwner = await claims.RenewAsync();
        Assert.NotNull(byOwner);
        Assert.Equal(1, byOwner.Claims);

        Assert.True(await claims.ReleaseAsync("lease-owned-db"));
        Assert.Null(await claims.RenewAsync());
    }

    [Fact]
    public async Task KeepAliveAsync_with_a_key_that_may_not_renew_fails_instead_of_retrying_forever()
    {
        // A 403 is no outage to wait out: retried every second, the loop never ended and the worker never learnt that
        // its claims would expire.
        using var owner = node.Client(SecuredNode.Worker);
        using var op = node.Client(SecuredNode.Operator);
        Assert.IsType<ClaimResult.Granted>(await new ResourceClaimsClient(owner, "lease-forbidden").ClaimAsync("lease-forbidden-db"));

        using var stop = new CancellationTokenSource();
        var keepAlive = new ResourceClaimsClient(op, "lease-forbidden").KeepAliveAsync(stop.Token);
        var failed = await Assert.ThrowsAsync<HttpRequestException>(() => keepAlive.WaitAsync(TimeSpan.FromSeconds(10)));
        stop.Cancel();
        Assert.Equal(HttpStatusCode.Forbidden, failed.StatusCode);
        Assert.True(await new ResourceClaimsClient(owner, "lease-forbidden").ReleaseAsync("lease-forbidden-db"));
    }
}
