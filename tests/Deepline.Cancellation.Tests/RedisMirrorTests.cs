using System.Collections.Concurrent;
using System.Diagnostics;
using System.Text.Json;
using Deepline.Worker.Sdk;
using StackExchange.Redis;
using Deepline.Tests.Shared;

namespace Deepline.Cancellation.Tests;

/// <summary>Cancels through the real node reach Redis, survive Redis outages and flushes, and stop tasks elsewhere.</summary>
public sealed class RedisMirrorTests(RedisNodeFixture node) : IClassFixture<RedisNodeFixture>
{
    private static readonly TimeSpan Within = TimeSpan.FromSeconds(20);

    private const string HangTask = """[{"task_id": "train", "type": "hang"}]""";

    [Fact]
    public async Task A_cancel_writes_the_set_the_hash_and_two_identical_channel_messages()
    {
        var messages = new ConcurrentQueue<string>();
        var channel = RedisChannel.Literal(RedisContract.Channel);
        await node.Client.GetSubscriber().SubscribeAsync(channel, (_, m) => messages.Enqueue(m!));
        var offsetBefore = (long)await node.Db.StringGetAsync(RedisContract.MirrorOffset);

        await node.SubmitAsync("mirror-1", HangTask);
        await node.AwaitRunAsync("mirror-1", r => RedisNodeFixture.Task(r, "train")["state"]!.GetValue<string>() == "RUNNING", "train running");
        var answer = await node.CancelAsync("mirror-1", "user requested cancellation");

        await Eventually.Until(() => node.Db.SetContainsAsync(RedisContract.CancelledRuns, "mirror-1"), Within, "run in cancelled_runs");
        var hash = (await node.Db.HashGetAllAsync(RedisContract.RunHash("mirror-1"))).ToDictionary(e => e.Name.ToString(), e => e.Value.ToString());
        Assert.Equal("mirror-1", hash["run_id"]);
        Assert.Equal("user requested cancellation", hash["reason"]);
        Assert.Equal("api", hash["cancelled_by"]);
        Assert.Equal(answer["cancelled_at"]!.GetValue<string>(), hash["cancelled_at"]);
        Assert.NotNull(await node.Db.SortedSetScoreAsync(RedisContract.CancelledRunsByTime, "mirror-1"));

        await Eventually.Until(() => messages.Count(m => m.Contains("\"mirror-1\"")) == 2, Within, "the early message and the set's");
        // The journal path mirrors the same cancel again (offset moves past it): no third message. The two carry the same record.
        await Eventually.Until(async () => (long)await node.Db.StringGetAsync(RedisContract.MirrorOffset) > offsetBefore, Within, "journal offset mirrored");
        var mine = messages.Where(m => m.Contains("\"mirror-1\"")).ToList();
        Assert.Equal(2, mine.Count);
        var message = Assert.Single(mine.Distinct());
        using var json = JsonDocument.Parse(message);
        Assert.Equal(["cancelled_at", "cancelled_by", "reason", "run_id"], json.RootElement.EnumerateObject().Select(p => p.Name).Order());
        Assert.Equal("mirror-1", json.RootElement.GetProperty("run_id").GetString());
        Assert.Equal("user requested cancellation", json.RootElement.GetProperty("reason").GetString());
        Assert.Equal(hash["cancelled_at"], json.RootElement.GetProperty("cancelled_at").GetString());
        await node.Client.GetSubscriber().UnsubscribeAsync(channel);
    }

    [Fact]
    public async Task A_cancel_is_announced_on_the_channel_while_its_journal_write_waits_and_enters_the_set_once_journalled()
    {
        var messages = new ConcurrentQueue<string>();
        var channel = RedisChannel.Literal(RedisContract.Channel);
        await node.Client.GetSubscriber().SubscribeAsync(channel, (_, m) => messages.Enqueue(m!));
        var offsetBefore = (long)await node.Db.StringGetAsync(RedisContract.MirrorOffset);
        await node.SubmitAsync("early-1", HangTask);
        await node.AwaitRunAsync("early-1", r => RedisNodeFixture.Task(r, "train")["state"]!.GetValue<string>() == "RUNNING", "train running");

        // Another connection holds SQLite's write lock: the journal's commit of the cancel waits for it (busy timeout).
        await using var blocker = new Microsoft.Data.Sqlite.SqliteConnection(Deepline.Actors.Hosting.SqliteStore.Prepare(node.DataDir).ConnectionString);
        await blocker.OpenAsync();
        await using (var begin = blocker.CreateCommand())
        {
            begin.CommandText = "BEGIN IMMEDIATE;";
            await begin.ExecuteNonQueryAsync();
        }
        var answer = node.CancelAsync("early-1", "stop early");

        await Eventually.Until(() => messages.Any(m => m.Contains("\"early-1\"")), Within, "channel message while the write waits");
        // Redis's set is a copy of the journal: nothing durable is written before the journal holds the cancel.
        Assert.False(await node.Db.SetContainsAsync(RedisContract.CancelledRuns, "early-1"));
        Assert.False(answer.IsCompleted, "the cancel was answered before its journal write was durable");

        await using (var rollback = blocker.CreateCommand())
        {
            rollback.CommandText = "ROLLBACK;";
            await rollback.ExecuteNonQueryAsync();
        }
        Assert.Single(messages, m => m.Contains("\"early-1\""));
        await answer;
        await Eventually.Until(() => node.Db.SetContainsAsync(RedisContract.CancelledRuns, "early-1"), Within, "run in cancelled_runs once journalled");
        // The set's own message follows (a worker that resubscribed in between reloaded a set without the run); the
        // journal path, mirroring it again, adds none.
        await Eventually.Until(async () => (long)await node.Db.StringGetAsync(RedisContract.MirrorOffset) > offsetBefore, Within, "journal offset mirrored");
        await Eventually.Until(() => messages.Count(m => m.Contains("\"early-1\"")) == 2, Within, "the set's message");
        Assert.Equal(2, messages.Count(m => m.Contains("\"early-1\"")));
        await node.Client.GetSubscriber().UnsubscribeAsync(channel);
    }

    [Fact]
    public async Task A_traced_cancel_puts_its_traceparent_in_the_channel_message()
    {
        var trace = ActivityTraceId.CreateRandom();
        using var listener = new ActivityListener
        {
            ShouldListenTo = s => s.Name is Deepline.Actors.Tracing.RunTracing.SourceName or "Microsoft.AspNetCore",
            // Only this test's trace: the other tests here compare the message's exact fields.
            Sample = (ref ActivityCreationOptions<ActivityContext> o) =>
                o.Parent.TraceId == trace ? ActivitySamplingResult.AllDataAndRecorded : ActivitySamplingResult.None,
        };
        ActivitySource.AddActivityListener(listener);
        var messages = new ConcurrentQueue<string>();
        var channel = RedisChannel.Literal(RedisContract.Channel);
        await node.Client.GetSubscriber().SubscribeAsync(channel, (_, m) => messages.Enqueue(m!));
        await node.SubmitAsync("traced-cancel-1", HangTask);
        await node.AwaitRunAsync("traced-cancel-1", r => RedisNodeFixture.Task(r, "train")["state"]!.GetValue<string>() == "RUNNING", "train running");

        var cancel = new HttpRequestMessage(HttpMethod.Put, "/runs/traced-cancel-1/cancel")
        {
            Content = new StringContent("""{"reason":"traced"}""", System.Text.Encoding.UTF8, "application/json"),
        };
        cancel.Headers.Add("traceparent", $"00-{trace}-{ActivitySpanId.CreateRandom()}-01");
        Assert.True((await node.Http.SendAsync(cancel)).IsSuccessStatusCode);

        await Eventually.Until(() => messages.Any(m => m.Contains("\"traced-cancel-1\"")), Within, "channel message");
        var message = CancelMessage.TryParse(messages.First(m => m.Contains("\"traced-cancel-1\"")));
        Assert.NotNull(message?.TraceParent);
        Assert.True(ActivityContext.TryParse(message!.TraceParent, null, out var context), message.TraceParent);
        Assert.Equal(trace, context.TraceId);
        await node.Client.GetSubscriber().UnsubscribeAsync(channel);
    }

    [Fact]
    public async Task A_run_cancelled_elsewhere_never_starts_a_task_here_and_ends_CANCELLED_with_the_record_Redis_holds()
    {
        // Another cluster cancelled it; only Redis knows, with the record that cluster wrote.
        await node.Db.SetAddAsync(RedisContract.CancelledRuns, "elsewhere-1");
        await node.Db.HashSetAsync(RedisContract.RunHash("elsewhere-1"),
            [new("run_id", "elsewhere-1"), new("reason", "stopped on the other cluster"), new("cancelled_by", "oncall")]);

        // Two independent tasks and one that waits on them: none may run, none may be SKIPPED as after a failure.
        await node.SubmitAsync("elsewhere-1", """
            [{"task_id": "a", "type": "count"}, {"task_id": "b", "type": "count"}, {"task_id": "c", "type": "count", "depends_on": ["a", "b"]}]
            """);

        var run = await node.AwaitRunAsync("elsewhere-1", r => r["status"]!.GetValue<string>() is "CANCELLED" or "FAILED", "run finished");
        Assert.Equal("CANCELLED", run["status"]!.GetValue<string>());
        Assert.All(run["tasks"]!.AsArray(), t => Assert.Equal("CANCELLED", t!["state"]!.GetValue<string>()));
        var cancellation = run["cancellation"]!;
        Assert.Equal("stopped on the other cluster", cancellation["reason"]!.GetValue<string>());
        Assert.Equal("oncall", cancellation["cancelled_by"]!.GetValue<string>());
        Assert.Contains("cancelled_runs", RedisNodeFixture.Task(run, "a")["error"]!.GetValue<string>());
        Assert.DoesNotContain(node.Counting.Executed, e => e.StartsWith("elsewhere-1/", StringComparison.Ordinal));

        // Only the id, added by hand: still CANCELLED, with a reason that says where the cancel came from.
        await node.Db.SetAddAsync(RedisContract.CancelledRuns, "elsewhere-bare");
        await node.SubmitAsync("elsewhere-bare", """[{"task_id": "a", "type": "count"}]""");
        var bare = await node.AwaitRunAsync("elsewhere-bare", r => r["status"]!.GetValue<string>() is "CANCELLED" or "FAILED", "bare run finished");
        Assert.Equal("CANCELLED", bare["status"]!.GetValue<string>());
        Assert.Equal("cancelled elsewhere: found in Redis cancelled_runs", bare["cancellation"]!["reason"]!.GetValue<string>());
        Assert.Equal("redis", bare["cancellation"]!["cancelled_by"]!.GetValue<string>());

        // A run Redis does not know runs as usual.
        await node.SubmitAsync("elsewhere-2", """[{"task_id": "a", "type": "count"}]""");
        await node.AwaitRunAsync("elsewhere-2", r => r["status"]!.GetValue<string>() == "SUCCEEDED", "normal run succeeds");
        Assert.Contains("elsewhere-2/a", node.Counting.Executed);
    }

    [Fact]
    public async Task A_cancel_accepted_while_Redis_is_down_reaches_Redis_and_an_SDK_worker_when_it_is_back()
    {
        await using var worker = await CancellationSignals.ConnectAsync(node.Redis.Connection);
        await node.SubmitAsync("outage-1", HangTask);
        var token = worker.TokenFor("outage-1");
        Assert.False(token.IsCancellationRequested);

        await node.Redis.StopAsync();
        try
        {
            var answer = await node.CancelAsync("outage-1", "cancelled during a Redis outage");
            Assert.Equal("CANCELLING", answer["status"]!.GetValue<string>());

            // Redis is optional: without it, work goes on (the pre-start check does not hold tasks back).
            await node.SubmitAsync("outage-ok", """[{"task_id": "a", "type": "count"}]""");
            await node.AwaitRunAsync("outage-ok", r => r["status"]!.GetValue<string>() == "SUCCEEDED", "run succeeds while Redis is down");
        }
        finally
        {
            // Same port, empty database (no persistence): the mirror must write it again from the journal.
            await node.Redis.StartAsync();
        }

        await Eventually.Until(() => node.Db.SetContainsAsync(RedisContract.CancelledRuns, "outage-1"), Within, "cancel mirrored after Redis came back");
        Assert.Equal("cancelled during a Redis outage", (string?)await node.Db.HashGetAsync(RedisContract.RunHash("outage-1"), "reason"));
        await Eventually.Until(() => token.IsCancellationRequested, Within, "SDK token fired after reconnect");
        Assert.True(await worker.IsCancelledAsync("outage-1"));
    }

    [Fact]
    public async Task After_a_flush_the_set_is_rebuilt_from_the_journal()
    {
        await node.SubmitAsync("flush-1", HangTask);
        await node.CancelAsync("flush-1", "before the flush");
        await Eventually.Until(() => node.Db.SetContainsAsync(RedisContract.CancelledRuns, "flush-1"), Within, "mirrored");

        var announced = new System.Collections.Concurrent.ConcurrentQueue<string>();
        var channel = await node.Client.GetSubscriber().SubscribeAsync(RedisChannel.Literal(RedisContract.Channel));
        channel.OnMessage(m => announced.Enqueue((string)m.Message!));

        await node.Db.ExecuteAsync("FLUSHALL");
        Assert.False(await node.Db.SetContainsAsync(RedisContract.CancelledRuns, "flush-1"));

        await Eventually.Until(() => node.Db.SetContainsAsync(RedisContract.CancelledRuns, "flush-1"), Within, "rebuilt without any new cancel");
        Assert.Equal("before the flush", (string?)await node.Db.HashGetAsync(RedisContract.RunHash("flush-1"), "reason"));
        Assert.True(await node.Db.KeyExistsAsync(RedisContract.MirrorOffset));

        // A cancel made after the rebuild is announced; the restored one is not announced again.
        await node.SubmitAsync("flush-2", HangTask);
        await node.CancelAsync("flush-2", "after the flush");
        await Eventually.Until(() => announced.Any(m => m.Contains("\"flush-2\"", StringComparison.Ordinal)), Within, "the new cancel announced");
        Assert.DoesNotContain(announced, m => m.Contains("\"flush-1\"", StringComparison.Ordinal));
        await channel.UnsubscribeAsync();
    }

    [Fact]
    public async Task External_worker_reports_through_the_SDK_and_a_409_is_a_typed_answer()
    {
        await node.SubmitAsync("sdk-http-1", """[{"task_id": "ext", "type": "anything", "pool": "external"}]""");
        var client = new TaskEventsClient(node.Http, "py-worker-1");

        var started = Assert.IsType<TaskEventResult.Accepted>(await client.StartedAsync("sdk-http-1", "ext"));
        Assert.Equal("RUNNING", started.State);
        Assert.True(started.HeartbeatTimeoutS > 0);
        Assert.IsType<TaskEventResult.Accepted>(await client.HeartbeatAsync("sdk-http-1", "ext"));

        await node.CancelAsync("sdk-http-1", "stop");
        var ack = Assert.IsType<TaskEventResult.Accepted>(await client.CancelledAsync("sdk-http-1", "ext", "stopped on token"));
        Assert.Equal("CANCELLED", ack.State);

        // The task is over: a late success is refused with 409, surfaced as TaskOver, not thrown.
        var late = Assert.IsType<TaskEventResult.TaskOver>(await client.SucceededAsync("sdk-http-1", "ext"));
        Assert.False(string.IsNullOrEmpty(late.Detail));
        var unknown = Assert.IsType<TaskEventResult.Rejected>(await client.StartedAsync("no-such-run", "ext"));
        Assert.Equal(404, unknown.Status);
    }

    [Fact]
    public async Task Entries_past_retention_are_pruned_from_the_set_the_hash_and_the_index()
    {
        // Written as the node writes them, cancelled long before the fixture's one-hour retention.
        var old = DateTimeOffset.UtcNow.AddHours(-2);
        await node.Db.SetAddAsync(RedisContract.CancelledRuns, "ancient-1");
        await node.Db.HashSetAsync(RedisContract.RunHash("ancient-1"), [new("reason", "old"), new("cancelled_at", RedisContract.Timestamp(old))]);
        await node.Db.SortedSetAddAsync(RedisContract.CancelledRunsByTime, "ancient-1", old.ToUnixTimeMilliseconds());

        await Eventually.Until(async () => !await node.Db.SetContainsAsync(RedisContract.CancelledRuns, "ancient-1"), TimeSpan.FromSeconds(30), "pruned");
        Assert.False(await node.Db.KeyExistsAsync(RedisContract.RunHash("ancient-1")));
        Assert.Null(await node.Db.SortedSetScoreAsync(RedisContract.CancelledRunsByTime, "ancient-1"));
    }
}
