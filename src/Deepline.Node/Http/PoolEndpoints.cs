using System.Collections.Immutable;
using System.Security.Claims;
using Akka.Actor;
using Akka.Hosting;
using Deepline.Actors.Queues;
using Deepline.Domain;
using Deepline.Node.Configuration;
using Deepline.Node.Security;
using Microsoft.AspNetCore.Http.HttpResults;

namespace Deepline.Node.Http;

/// <summary>Task queues for external workers: a worker key long-polls its pool and receives leased tasks.</summary>
public static class PoolEndpoints
{
    public const int MaxWaitS = 60;
    public const int MaxTasksPerPoll = 100;

    /// <summary>Polls one node holds open at once; more are 429 (each holds a request and an entry in the queue actor).</summary>
    public const int MaxWaitingPolls = 4096;

    /// <summary>A pool with queued tasks and no poll for this long is shown as having no worker.</summary>
    public const double NoPollerAfterS = 5;

    private static int _waitingPolls;

    public static IEndpointRouteBuilder MapPoolEndpoints(this IEndpointRouteBuilder app)
    {
        // Role worker (a key bound to pools polls only those) or admin.
        app.MapPost("/pools/{pool}/tasks/poll", async Task<Results<Ok<PollResponse>, ProblemHttpResult>> (string pool, HttpRequest request,
            ClaimsPrincipal user, IRequiredActor<TaskQueues> queues, RunsGateway gateway, DeeplineConfig config, CancellationToken ct) =>
        {
            if (!Identifiers.IsValid(pool)) return Problems.BadRequest(Identifiers.Describe("pool"), "pool");
            if (user.Pools() is { } pools && !pools.Contains(pool))
                return Problems.Of(403, "Forbidden", $"this key serves pools {string.Join(", ", pools)}, not '{pool}'", "pool");
            var (body, error) = await HttpJson.ReadAsync<PollRequest>(request, ct);
            if (error is not null) return error;
            if (!RunEndpoints.IsWorkerId(body!.WorkerId))
                return Problems.BadRequest($"worker_id is required: 1..{RunEndpoints.MaxWorkerIdLength} characters without spaces or control characters", "worker_id");
            if (body.WaitS is < 0 or > MaxWaitS)
                return Problems.Of(422, "Invalid poll", $"wait_s must be 0..{MaxWaitS}, got {body.WaitS}", "wait_s");
            if (body.MaxTasks is < 1 or > MaxTasksPerPoll)
                return Problems.Of(422, "Invalid poll", $"max_tasks must be 1..{MaxTasksPerPoll}, got {body.MaxTasks}", "max_tasks");
            if (Interlocked.Increment(ref _waitingPolls) > MaxWaitingPolls)
            {
                Interlocked.Decrement(ref _waitingPolls);
                return Problems.Of(429, "Too many pollers", $"this node holds {MaxWaitingPolls} polls open already; poll another node or again later");
            }
            try
            {
                var leased = await PollAsync(pool, body.WorkerId!, body.MaxTasks ?? 1, TimeSpan.FromSeconds(body.WaitS ?? 20),
                    user.Pools(), user.Name(), await queues.GetAsync(ct), gateway, config.Deadlock.HeartbeatTimeoutS, ct);
                return TypedResults.Ok(new PollResponse(leased));
            }
            finally
            {
                Interlocked.Decrement(ref _waitingPolls);
            }
        }).RequireAuthorization(Policies.ReportTasks)
            .Documented("tasks", "Long-poll a pool for leased tasks (external workers)", 400, 403, 413, 415, 422, 429, 503)
            .Accepts<PollRequest>("application/json");

        // Role operator or admin.
        app.MapGet("/pools", async Task<Ok<IReadOnlyList<PoolQueueResponse>>> (IRequiredActor<TaskQueues> queues, CancellationToken ct) =>
            TypedResults.Ok(await QueuesAsync(await queues.GetAsync(ct), ct)))
            .RequireAuthorization(Policies.Operate)
            .Documented("tasks", "This node's task queues: depth, oldest age, pollers", 503);
        return app;
    }

    /// <summary>This node's queues as the API shows them; empty when the queue actor does not answer in time.</summary>
    public static async Task<IReadOnlyList<PoolQueueResponse>> QueuesAsync(IActorRef queues, CancellationToken ct)
    {
        var now = DateTimeOffset.UtcNow;
        QueueStats stats;
        try
        {
            stats = await queues.Ask<QueueStats>(GetQueueStats.Instance, TimeSpan.FromSeconds(2), ct);
        }
        catch (AskTimeoutException)
        {
            return [];
        }
        return [.. stats.Pools.Select(p =>
        {
            // Queued and unpolled since the later of the last poll and the oldest task's arrival.
            var unpolled = p.Depth > 0 && p.WaitingPolls == 0
                ? (now - (p.LastPollAt is { } l && l > p.OldestQueuedAt ? l : p.OldestQueuedAt ?? now)).TotalSeconds
                : 0;
            return new PoolQueueResponse(p.Pool, p.Depth, p.OldestQueuedAt is { } o ? Math.Round((now - o).TotalSeconds, 3) : null,
                p.WaitingPolls, p.Pollers, p.LastPollAt)
            {
                NoPollerForS = unpolled >= NoPollerAfterS ? Math.Round(unpolled, 3) : null,
            };
        })];
    }

    /// <summary>
    /// Takes tasks for the poller and leases each from its run. A task whose run refuses the lease (cancelled, taken by
    /// a poll that raced this one) is dropped; one whose run did not answer goes back to the queue (the run may have
    /// leased it after all: then that attempt's lease runs out and it is retried), and one the run could not store is
    /// left to the run's own re-offer. All stale: the poll goes on waiting.
    /// </summary>
    private static async Task<IReadOnlyList<LeasedTaskResponse>> PollAsync(string pool, string workerId, int max, TimeSpan wait,
        ImmutableArray<string>? keyPools, string caller, IActorRef queues, RunsGateway gateway, int heartbeatTimeoutS, CancellationToken ct)
    {
        var deadline = DateTimeOffset.UtcNow + wait;
        while (true)
        {
            var remaining = deadline - DateTimeOffset.UtcNow;
            if (remaining < TimeSpan.Zero) remaining = TimeSpan.Zero;
            // The queue answers by the wait (its timer); the margin only covers a node too busy to answer on time.
            var polled = await queues.Ask<PolledTasks>(new PollTasks(pool, workerId, max, remaining), remaining + TimeSpan.FromSeconds(10));
            if (polled.Tasks.IsEmpty) return [];
            if (ct.IsCancellationRequested)
            {
                // The worker hung up: nobody would run these.
                queues.Tell(new ReturnTasks(polled.Tasks));
                return [];
            }
            var leases = await Task.WhenAll(polled.Tasks.Select(async t =>
            {
                var (leased, failure) = await gateway.AskAsync<TaskLeased>(new LeaseTask(t.RunId, t.TaskId, workerId) { Pools = keyPools, Caller = caller }, CancellationToken.None);
                // Only a run that did not answer in time gets it back (it may answer next time); a 500 (not stored, history
                // unreadable) would come back at once and again: the run offers its ready tasks again on its own timer.
                if (failure?.StatusCode == 503) queues.Tell(new ReturnTasks([t]));
                return (Queued: t, Leased: leased);
            }));
            var tasks = leases.Where(l => l.Leased is not null).Select(x =>
            {
                var l = x.Leased!;
                var timeout = l.HeartbeatTimeoutS ?? heartbeatTimeoutS;
                return new LeasedTaskResponse(l.RunId, l.TaskId, l.Type, l.Pool, l.Attempt, l.Params, l.Inputs,
                    [.. l.Resources.Select(r => new ResourceRequestBody(r.Name, r.Count))], l.StartedAt.AddSeconds(timeout), timeout)
                { TraceParent = l.TraceParent, QueuedAt = x.Queued.QueuedAt };
            }).ToList();
            if (tasks.Count > 0 || DateTimeOffset.UtcNow >= deadline) return tasks;
        }
    }
}
