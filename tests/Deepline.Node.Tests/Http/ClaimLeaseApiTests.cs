using System.Globalization;
using System.Net;
using System.Text.RegularExpressions;
using Deepline.Node.Configuration;
using Deepline.Tests.Shared;
using Deepline.Worker.Sdk;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.Logging;

namespace Deepline.Node.Tests.Http;

/// <summary>
/// A node whose external workers' claims live two seconds without a renewal (orchestrator.resources.claim_lease_s: 2):
/// short for a test, long enough that a renewal every 667 ms survives a loaded machine.
/// </summary>
public sealed class ShortLeaseNode : IAsyncLifetime
{
    private WebApplication? _app;
    private TestStore? _store;

    public string DataDir { get; } = Directory.CreateTempSubdirectory("deepline-lease-").FullName;

    public HttpClient Client { get; private set; } = null!;

    /// <summary>The node's warnings, as its log providers get them.</summary>
    public CapturingLoggerProvider Logs { get; } = new();

    public async Task InitializeAsync()
    {
        _store = await TestStore.CreateAsync();
        DeeplineConfig config;
        (_app, config) = await SingleNode.StartOnFreePortAsync(port =>
        {
            var d = SingleNode.LoopbackConfig(DataDir, port);
            return d with { Store = _store.Config, Resources = d.Resources with { ClaimLeaseS = 2 } };
        }, l => l.ClearProviders().AddProvider(Logs).SetMinimumLevel(LogLevel.Warning));
        Client = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{config.Http.Port}"), Timeout = TimeSpan.FromSeconds(30) };
        await Eventually.Until(async () => await Json.ServingWithMonitor(Client), TimeSpan.FromSeconds(30), "node healthy, monitor running");
    }

    public async Task DisposeAsync()
    {
        Client.Dispose();
        if (_app is not null) await _app.DisposeAsync();
        if (_store is not null) await _store.DisposeAsync();
        try { Directory.Delete(DataDir, true); } catch (IOException) { }
    }
}

/// <summary>
/// A worker that dies holding or waiting for a claim no longer starves everyone behind it: its claims go when its
/// lease runs out, unless it renews (by repeating the claim, PUT /claims/{worker_id}/lease, or the SDK's keep-alive).
/// </summary>
public sealed class ClaimLeaseApiTests(ShortLeaseNode node) : IClassFixture<ShortLeaseNode>
{
    private static readonly TimeSpan Lease = TimeSpan.FromSeconds(2);

    private HttpClient Client => node.Client;

    private ResourceClaimsClient Worker(string id) => new(Client, id);

    private async Task<double> Sample(string series)
    {
        var text = await Client.GetStringAsync("/metrics");
        var m = Regex.Match(text, "(?m)^" + Regex.Escape(series) + " (\\S+)$");
        Assert.True(m.Success, $"no sample {series} in /metrics");
        return double.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture);
    }

    private async Task SubmitNeeding(string runId, string resource) =>
        Assert.Equal(HttpStatusCode.Created, (await Client.PostJson("/runs",
            $$"""{"run_id":"{{runId}}","tasks":[{"task_id":"t","type":"noop","resources":[{"name":"{{resource}}","count":1}]}]}""")).StatusCode);

    private async Task<string[]> Ids(string resource, string list) =>
        [.. (await (await Client.GetAsync($"/resources/{resource}")).ReadObject())[list]!.AsArray().Select(h => h!["run_id"]!.GetValue<string>())];

    [Fact]
    public async Task A_worker_that_stops_renewing_loses_its_grant_the_waiting_run_gets_it_and_finishes_and_the_expiry_is_counted()
    {
        var expiredBefore = await Sample("resource_claims_expired_total{state=\"granted\"}");
        var claimedAt = DateTimeOffset.UtcNow;
        Assert.Equal(new ClaimResult.Granted("lease-db", 1), await Worker("lease-dead").ClaimAsync("lease-db"));
        await SubmitNeeding("lease-run", "lease-db");

        var done = await Client.AwaitRun("lease-run", r => r.Str("status") is "SUCCEEDED" or "FAILED" or "CANCELLED", "the run gets lease-db once the worker's lease ran out");

        Assert.Equal("SUCCEEDED", done.Str("status"));
        Assert.True(DateTimeOffset.Parse(done["tasks"]![0]!.AsObject().Str("updated_at"), CultureInfo.InvariantCulture) >= claimedAt + Lease,
            "the run ran before the worker's lease was over");
        Assert.IsType<ClaimResult.None>(await Worker("lease-dead").StatusAsync("lease-db"));
        Assert.Equal(expiredBefore + 1, await Sample("resource_claims_expired_total{state=\"granted\"}"));
        const string Warning = "Resource claim expired: worker lease-dead did not renew its lease within 2 s; its grant of lease-db is released";
        // Akka's log goes through its logger actor: it may reach the provider a moment after the run is done.
        await Eventually.Until(() => node.Logs.Messages.Any(m => m.Contains(Warning, StringComparison.Ordinal)), TimeSpan.FromSeconds(10), "the expiry's warning logged");
        Assert.Single(node.Logs.Messages, m => m.Contains(Warning, StringComparison.Ordinal));
    }

    [Fact]
    public async Task A_worker_that_keeps_its_lease_alive_keeps_its_grant_across_several_lease_periods()
    {
        var worker = Worker("lease-alive");
        Assert.IsType<ClaimResult.Granted>(await worker.ClaimAsync("lease-gpu"));
        await SubmitNeeding("lease-patient", "lease-gpu");
        using var keepAlive = new CancellationTokenSource();
        var renewing = worker.KeepAliveAsync(keepAlive.Token);

        // Three and a half leases: at every look the worker still holds lease-gpu and the run still waits for it.
        var until = DateTimeOffset.UtcNow + 3.5 * Lease;
        await Eventually.Until(async () =>
        {
            Assert.Equal(["worker/lease-alive"], await Ids("lease-gpu", "holders"));
            Assert.Equal("QUEUED", (await Client.GetRun("lease-patient")).TaskState("t"));
            return DateTimeOffset.UtcNow > until;
        }, TimeSpan.FromSeconds(30), "three and a half leases pass");

        Assert.True(await worker.ReleaseAsync("lease-gpu"));
        Assert.Equal("SUCCEEDED", (await Client.AwaitRun("lease-patient", r => r.Str("status") == "SUCCEEDED", "the run gets lease-gpu once released")).Str("status"));
        // With nothing left to keep alive, the keep-alive ends by itself at its next renewal.
        await renewing.WaitAsync(TimeSpan.FromSeconds(10));
    }

    [Fact]
    public async Task A_worker_waiting_in_AcquireAsync_keeps_its_place_across_several_leases_and_is_granted_when_the_holder_releases()
    {
        var holder = Worker("lease-keeper");
        var waiter = Worker("lease-acquirer");
        Assert.IsType<ClaimResult.Granted>(await holder.ClaimAsync("lease-queue"));
        using var keepAlive = new CancellationTokenSource();
        var renewing = holder.KeepAliveAsync(keepAlive.Token);
        using var within = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        var acquiring = waiter.AcquireAsync("lease-queue", poll: TimeSpan.FromMilliseconds(100), ct: within.Token);

        var until = DateTimeOffset.UtcNow + 3.5 * Lease;
        await Eventually.Until(async () =>
        {
            Assert.False(acquiring.IsCompleted, "AcquireAsync returned while the resource was held");
            return (await Ids("lease-queue", "waiters")).SequenceEqual(["worker/lease-acquirer"]) && DateTimeOffset.UtcNow > until;
        }, TimeSpan.FromSeconds(30), "three and a half leases pass with the waiter still in line");
        Assert.Equal(["worker/lease-acquirer"], await Ids("lease-queue", "waiters"));

        Assert.True(await holder.ReleaseAsync("lease-queue"));
        Assert.Equal(new ClaimResult.Granted("lease-queue", 1), await acquiring);
        await keepAlive.CancelAsync();
        await renewing;
        Assert.True(await waiter.ReleaseAsync("lease-queue"));
    }

    [Fact]
    public async Task An_expired_waiters_wait_is_withdrawn_and_it_is_no_longer_in_the_resources_line()
    {
        var holder = Worker("lease-holder");
        var waiter = Worker("lease-waiter");
        Assert.IsType<ClaimResult.Granted>(await holder.ClaimAsync("lease-line"));
        using var keepAlive = new CancellationTokenSource();
        var renewing = holder.KeepAliveAsync(keepAlive.Token);
        Assert.IsType<ClaimResult.Waiting>(await waiter.ClaimAsync("lease-line"));
        Assert.Equal(["worker/lease-waiter"], await Ids("lease-line", "waiters"));

        await Eventually.Until(async () => (await Ids("lease-line", "waiters")).Length == 0, TimeSpan.FromSeconds(15), "the silent waiter's wait withdrawn");

        Assert.IsType<ClaimResult.None>(await waiter.StatusAsync("lease-line"));
        Assert.Equal(["worker/lease-holder"], await Ids("lease-line", "holders"));
        await keepAlive.CancelAsync();
        await renewing;
        Assert.True(await holder.ReleaseAsync("lease-line"));
    }

    [Fact]
    public async Task Renewing_answers_the_lease_repeating_a_claim_renews_it_and_a_worker_without_claims_or_a_bad_id_is_refused()
    {
        Assert.Null(await Worker("lease-nobody").RenewAsync());
        var missing = await Client.PutAsync("/claims/lease-nobody/lease", null);
        Assert.Equal(HttpStatusCode.NotFound, missing.StatusCode);
        Assert.Equal("application/problem+json", missing.Content.Headers.ContentType?.MediaType);
        var bad = await Client.PutAsync($"/claims/{new string('w', 129)}/lease", null);
        Assert.Equal(HttpStatusCode.BadRequest, bad.StatusCode);
        Assert.Equal("worker_id", (await bad.ReadObject()).Str("field"));
        Assert.Equal(HttpStatusCode.BadRequest, (await Client.PutAsync("/claims/no%20spaces/lease", null)).StatusCode);

        var first = await (await Client.PutJson("/resources/lease-renewed/claims/lease-renewer", """{"count":1}""")).ReadObject();
        var firstExpiry = DateTimeOffset.Parse(first.Str("lease_expires_at"), CultureInfo.InvariantCulture);
        var lease = await Worker("lease-renewer").RenewAsync();
        Assert.NotNull(lease);
        Assert.Equal((1, Lease), (lease.Claims, lease.Lease));
        Assert.True(lease.ExpiresAt >= firstExpiry);

        var repeated = await Client.PutJson("/resources/lease-renewed/claims/lease-renewer", """{"count":1}""");
        Assert.Equal(HttpStatusCode.OK, repeated.StatusCode);
        Assert.True(DateTimeOffset.Parse((await repeated.ReadObject()).Str("lease_expires_at"), CultureInfo.InvariantCulture) > lease.ExpiresAt,
            "the repeated claim answers the lease it renewed");
        var shown = await (await Client.GetAsync("/resources/lease-renewed/claims/lease-renewer")).ReadObject();
        Assert.Equal("granted", shown.Str("state"));
        Assert.True(DateTimeOffset.Parse(shown.Str("lease_expires_at"), CultureInfo.InvariantCulture) >= lease.ExpiresAt);
        Assert.True(await Worker("lease-renewer").ReleaseAsync("lease-renewed"));
        Assert.Null((await (await Client.GetAsync("/resources/lease-renewed/claims/lease-renewer")).ReadObject())["lease_expires_at"]);
    }

    [Fact]
    public async Task A_worker_whose_lease_ran_out_is_told_so_until_it_claims_again()
    {
        var worker = Worker("lease-paused");
        Assert.Equal(new ClaimResult.Granted("lease-paused-db", 1), await worker.ClaimAsync("lease-paused-db"));
        // The worker pauses longer than its lease: its grant is released meanwhile.
        await Eventually.Until(async () => await worker.StatusAsync("lease-paused-db") is ClaimResult.None, TimeSpan.FromSeconds(15), "the grant released");

        var gone = await Client.PutAsync("/claims/lease-paused/lease", null);
        Assert.Equal(HttpStatusCode.Gone, gone.StatusCode);
        Assert.Contains("did not renew its lease in time", (await gone.ReadObject()).Str("detail"));
        await Assert.ThrowsAsync<ClaimLeaseExpiredException>(() => worker.RenewAsync());
        // The keep-alive loop does not end quietly as it does after a release: the worker must stop using the grant.
        using var deadline = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        await Assert.ThrowsAsync<ClaimLeaseExpiredException>(() => worker.KeepAliveAsync(deadline.Token));

        // Claiming again starts over: a renewal answers the new lease.
        Assert.Equal(new ClaimResult.Granted("lease-paused-db", 1), await worker.ClaimAsync("lease-paused-db"));
        Assert.NotNull(await worker.RenewAsync());
        Assert.True(await worker.ReleaseAsync("lease-paused-db"));
        Assert.Null(await worker.RenewAsync());
    }
}
