using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace Deepline.Worker.Sdk;

/// <summary>How the node answered a resource claim. Transport failures and 5xx are exceptions (retry them); these are not.</summary>
public abstract record ClaimResult
{
    private ClaimResult()
    {
    }

    /// <summary>The worker holds <see cref="Count"/> of the resource (journalled): use it, then release it.</summary>
    public sealed record Granted(string Resource, int Count) : ClaimResult;

    /// <summary>
    /// The wait is journalled and takes part in the cluster's wait-for graph; <see cref="Explanation"/> says who holds the
    /// resource and what they wait for. Ask again (or use <see cref="ResourceClaimsClient.AcquireAsync"/>) until granted.
    /// </summary>
    public sealed record Waiting(string Resource, int Count, string? Explanation) : ClaimResult;

    /// <summary>
    /// The wait closed a deadlock among external workers and this worker's wait was refused: release what it holds,
    /// then claim again. <see cref="Explanation"/> names the cycle.
    /// </summary>
    public sealed record Refused(string Resource, string Explanation) : ClaimResult;

    /// <summary>The worker has no claim on the resource (never made, released, or made under another key).</summary>
    public sealed record None(string Resource) : ClaimResult;

    /// <summary>400/401/403/404/409/422: the request itself is wrong (bad name, count, another count already claimed, a key without the worker role).</summary>
    public sealed record Rejected(int Status, string Detail, string? Field) : ClaimResult;
}

/// <summary>
/// The lease over all of a worker's claims as the node renewed it: <see cref="Claims"/> resources held or waited for,
/// released at <see cref="ExpiresAt"/> (the node's clock) unless renewed again.
/// </summary>
public sealed record ClaimLease(int Claims, TimeSpan Lease, DateTimeOffset ExpiresAt)
{
    /// <summary>A third of the lease: renewing this often, two renewals can be lost before the claims are.</summary>
    public TimeSpan RenewEvery => Lease / 3;
}

/// <summary>
/// Claims and releases named resources for one external worker (PUT/GET/DELETE /resources/{name}/claims/{worker_id}).
/// Its waits enter the node's wait-for graph with the runs' tasks: a cycle between this worker's holdings and a run's
/// wait is detected at once and a run is cancelled to break it.
/// <para>
/// All of a worker's claims, grants and waits alike, live under one lease (the node's
/// <c>orchestrator.resources.claim_lease_s</c>, 30 s by default): a worker that stops renewing it (it crashed, hung, lost
/// the network) loses them all when it runs out, so it cannot starve the runs and workers behind it. A worker holding a
/// grant must renew every lease/3: run <see cref="KeepAliveAsync"/> beside its work, or call <see cref="RenewAsync"/> or
/// repeat <see cref="ClaimAsync"/>. <see cref="AcquireAsync"/> renews by itself while it waits. After a failover of the
/// node's resource coordinator every claim starts a fresh lease.
/// </para>
/// </summary>
/// <param name="http">A client whose BaseAddress is the node, e.g. <c>http://127.0.0.1:8001</c>, with a key of role worker.</param>
/// <param name="workerId">This worker's id: 1..128 characters of <c>[A-Za-z0-9._:-]</c>.</param>
public sealed class ResourceClaimsClient(HttpClient http, string workerId)
{
    public string WorkerId { get; } = string.IsNullOrWhiteSpace(workerId) ? throw new ArgumentException("worker id is required", nameof(workerId)) : workerId;

    /// <summary>Claims <paramref name="count"/> of the resource once; repeating the same claim changes nothing but renews the lease of all the worker's claims.</summary>
    public async Task<ClaimResult> ClaimAsync(string resource, int count = 1, CancellationToken ct = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(resource);
        using var response = await http.PutAsJsonAsync(Path(resource), new ClaimBody(count), RedisContract.Json, ct);
        return await ReadAsync(resource, response, ct);
    }

    /// <summary>Where the claim stands now.</summary>
    public async Task<ClaimResult> StatusAsync(string resource, CancellationToken ct = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(resource);
        using var response = await http.GetAsync(Path(resource), ct);
        return await ReadAsync(resource, response, ct);
    }

    /// <summary>
    /// Claims and waits until granted (asking every <paramref name="poll"/>, default 200 ms), or until the claim is refused
    /// or rejected, which are returned as they are. While it waits it renews the worker's lease every lease/3; once
    /// granted, renewing is the caller's (see <see cref="KeepAliveAsync"/>). Cancelling <paramref name="ct"/> withdraws the wait.
    /// </summary>
    public async Task<ClaimResult> AcquireAsync(string resource, int count = 1, TimeSpan? poll = null, CancellationToken ct = default)
    {
        var result = await ClaimAsync(resource, count, ct);
        try
        {
            // The claim itself renewed the lease; its length is learnt from the first renewal, at the first poll.
            var renewAt = DateTimeOffset.UtcNow;
            while (result is ClaimResult.Waiting)
            {
                await Task.Delay(poll ?? TimeSpan.FromMilliseconds(200), ct);
                if (DateTimeOffset.UtcNow >= renewAt && await RenewAsync(ct) is { } lease) renewAt = DateTimeOffset.UtcNow + lease.RenewEvery;
                result = await StatusAsync(resource, ct);
            }
            return result;
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
            await ReleaseAsync(resource, CancellationToken.None);
            throw;
        }
    }

    /// <summary>
    /// Renews the lease of all the worker's claims (PUT /claims/{worker_id}/lease, one request however many claims): the
    /// lease as renewed, or null when the worker has no claims left (released, or made under another key; an expired
    /// lease is an exception, below, unless the node restarted since and forgot it).
    /// Transport failures and 5xx are exceptions (retry them soon: the lease is still running).
    /// </summary>
    /// <exception cref="ClaimLeaseExpiredException">The lease ran out before this renewal (410): the worker's claims were
    /// released and its waits withdrawn; it must stop using what it held and claim again.</exception>
    public async Task<ClaimLease?> RenewAsync(CancellationToken ct = default)
    {
        using var response = await http.PutAsync($"claims/{Uri.EscapeDataString(WorkerId)}/lease", content: null, ct);
        if (response.StatusCode == HttpStatusCode.NotFound) return null;
        if (response.StatusCode == HttpStatusCode.Gone) throw new ClaimLeaseExpiredException(WorkerId);
        response.EnsureSuccessStatusCode();
        var l = await response.Content.ReadFromJsonAsync<LeaseAnswer>(RedisContract.Json, ct) ?? throw new HttpRequestException("empty answer to a lease renewal");
        return new ClaimLease(l.Claims, TimeSpan.FromSeconds(l.LeaseS), l.LeaseExpiresAt);
    }

    /// <summary>
    /// Keeps the worker's claims alive: renews the lease every lease/3 until <paramref name="ct"/> is cancelled (then it
    /// returns) or the worker has no claims left. A failed renewal (node restarting, network, a request timing out, 5xx) is
    /// retried after a second (or a third of the lease, if shorter), within the lease that is still running; a refusal
    /// that retrying cannot change (401, 403) ends it with its <see cref="HttpRequestException"/>, and a lease that ran
    /// out before a renewal got through ends it with <see cref="ClaimLeaseExpiredException"/> (stop the work: the grants
    /// are gone). Run it beside the work a grant is for; it ends by itself once the worker has released everything.
    /// </summary>
    public async Task KeepAliveAsync(CancellationToken ct)
    {
        var retry = TimeSpan.FromSeconds(1);
        try
        {
            while (true)
            {
                TimeSpan wait;
                try
                {
                    if (await RenewAsync(ct) is not { } lease) return;
                    wait = lease.RenewEvery;
                    retry = lease.RenewEvery < TimeSpan.FromSeconds(1) ? lease.RenewEvery : TimeSpan.FromSeconds(1);
                }
                catch (Exception e) when (e is HttpRequestException h ? Transient(h) : e is OperationCanceledException && !ct.IsCancellationRequested)
                {
                    wait = retry;
                }
                await Task.Delay(wait, ct);
            }
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
        }
    }

    /// <summary>
    /// A failure that waiting may cure (no answer, 408, 429, 5xx). Any other answer (401, 403: a key that may not renew)
    /// would come back on every retry while the lease runs out unseen: it ends <see cref="KeepAliveAsync"/> instead.
    /// </summary>
    private static bool Transient(HttpRequestException e) =>
        e.StatusCode is null or HttpStatusCode.RequestTimeout or HttpStatusCode.TooManyRequests || (int)e.StatusCode >= 500;

    /// <summary>Releases what the worker holds of the resource, or withdraws its wait. True once journalled; releasing nothing is true too.</summary>
    public async Task<bool> ReleaseAsync(string resource, CancellationToken ct = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(resource);
        using var response = await http.DeleteAsync(Path(resource), ct);
        if (response.StatusCode is HttpStatusCode.NoContent or HttpStatusCode.NotFound) return true;
        if ((int)response.StatusCode is 400 or 401 or 403) return false;
        response.EnsureSuccessStatusCode();
        throw new HttpRequestException($"unexpected answer {(int)response.StatusCode}", null, response.StatusCode);
    }

    private string Path(string resource) => $"resources/{Uri.EscapeDataString(resource)}/claims/{Uri.EscapeDataString(WorkerId)}";

    private static async Task<ClaimResult> ReadAsync(string resource, HttpResponseMessage response, CancellationToken ct)
    {
        var status = (int)response.StatusCode;
        if (response.IsSuccessStatusCode)
        {
            var c = await response.Content.ReadFromJsonAsync<ClaimAnswer>(RedisContract.Json, ct)
                    ?? throw new HttpRequestException("empty answer to a claim");
            return c.State switch
            {
                "granted" => new ClaimResult.Granted(c.Resource, c.Count),
                "waiting" => new ClaimResult.Waiting(c.Resource, c.Count, c.Explanation),
                "refused" => new ClaimResult.Refused(c.Resource, c.Explanation ?? "resource deadlock"),
                _ => new ClaimResult.None(c.Resource),
            };
        }
        if (status is 400 or 401 or 403 or 404 or 409 or 422 or 429)
        {
            var problem = await ReadProblem(response, ct);
            if (status == 409 && problem.Title == "Claim refused") return new ClaimResult.Refused(resource, problem.Detail ?? "resource deadlock");
            return new ClaimResult.Rejected(status, problem.Detail ?? response.ReasonPhrase ?? "rejected", problem.Field);
        }
        response.EnsureSuccessStatusCode();
        throw new HttpRequestException($"unexpected answer {status}", null, response.StatusCode);
    }

    private static async Task<ProblemBody> ReadProblem(HttpResponseMessage response, CancellationToken ct)
    {
        try
        {
            return await response.Content.ReadFromJsonAsync<ProblemBody>(RedisContract.Json, ct) ?? new ProblemBody(null, null, null);
        }
        catch (JsonException)
        {
            return new ProblemBody(null, null, null);
        }
    }

    private sealed record ClaimBody([property: JsonPropertyName("count")] int Count);

    private sealed record ClaimAnswer(
        [property: JsonPropertyName("resource")] string Resource,
        [property: JsonPropertyName("count")] int Count,
        [property: JsonPropertyName("state")] string State,
        [property: JsonPropertyName("explanation")] string? Explanation);

    private sealed record LeaseAnswer(
        [property: JsonPropertyName("claims")] int Claims,
        [property: JsonPropertyName("lease_s")] double LeaseS,
        [property: JsonPropertyName("lease_expires_at")] DateTimeOffset LeaseExpiresAt);

    private sealed record ProblemBody(
        [property: JsonPropertyName("title")] string? Title,
        [property: JsonPropertyName("detail")] string? Detail,
        [property: JsonPropertyName("field")] string? Field);
}

/// <summary>
/// The worker's lease ran out before it was renewed (the node answered 410): everything it held was released and every
/// wait withdrawn, so another holder may have the resources now. Stop the work the grants were for, then claim again.
/// </summary>
public sealed class ClaimLeaseExpiredException(string workerId)
    : Exception($"the lease of worker '{workerId}' ran out before it was renewed: its claims were released; stop using them and claim again")
{
    public string WorkerId { get; } = workerId;
}
