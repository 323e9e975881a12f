using Deepline.Worker.Sdk;
using StackExchange.Redis;
using Deepline.Tests.Shared;

namespace Deepline.Cancellation.Tests;

/// <summary>The worker SDK against a real redis-server: the set on start, the channel, and reconnects.</summary>
public sealed class SdkTests : IAsyncLifetime
{
    private static readonly TimeSpan Within = TimeSpan.FromSeconds(15);
    private readonly string _dir = Directory.CreateTempSubdirectory("deepline-sdk-").FullName;
    private RedisServer _redis = null!;

    public async Task InitializeAsync() => _redis = await RedisServer.StartAsync(dir: _dir);

    public async Task DisposeAsync()
    {
        await _redis.DisposeAsync();
        try { Directory.Delete(_dir, true); } catch (IOException) { }
    }

    [Fact]
    public async Task Runs_already_in_the_set_are_cancelled_from_the_start()
    {
        await using (var admin = await ConnectionMultiplexer.ConnectAsync(_redis.AdminConnection))
            await admin.GetDatabase().SetAddAsync(RedisContract.CancelledRuns, "old-1");

        await using var signals = await CancellationSignals.ConnectAsync(_redis.Connection);

        Assert.True(signals.TokenFor("old-1").IsCancellationRequested);
        Assert.True(await signals.IsCancelledAsync("old-1"));
        Assert.False(await signals.IsCancelledAsync("fresh-1"));
        Assert.False(signals.TokenFor("fresh-1").IsCancellationRequested);
    }

    [Fact]
    public async Task A_channel_message_fires_the_runs_token()
    {
        await using var signals = await CancellationSignals.ConnectAsync(_redis.Connection);
        var token = signals.TokenFor("live-1");
        var fired = new TaskCompletionSource();
        token.Register(() => fired.TrySetResult());

        await using var admin = await ConnectionMultiplexer.ConnectAsync(_redis.AdminConnection);
        var message = new CancelMessage("live-1", "user requested cancellation", "api", DateTimeOffset.UtcNow).ToJson();
        await admin.GetSubscriber().PublishAsync(RedisChannel.Literal(RedisContract.Channel), message);

        await fired.Task.WaitAsync(Within);
        Assert.True(signals.TokenFor("live-1").IsCancellationRequested);
        Assert.True(await signals.IsCancelledAsync("live-1"));
    }

    [Fact]
    public async Task A_cancel_published_while_the_worker_was_disconnected_fires_after_reconnect()
    {
        await using var signals = await CancellationSignals.ConnectAsync(_redis.Connection);
        var token = signals.TokenFor("missed-1");
        var loadsBefore = signals.Loads;

        // Redis goes away; meanwhile the run is cancelled (its message went to nobody) and only the set keeps it.
        await _redis.StopAsync();
        await WriteSnapshotWith("missed-1");
        await _redis.StartAsync(); // loads the snapshot: the set holds the run, no message will ever come

        await Eventually.Until(() => token.IsCancellationRequested, Within, "token fired after the reload on reconnect");
        Assert.True(signals.Loads > loadsBefore);
        Assert.True(await signals.IsCancelledAsync("missed-1"));
    }

    /// <summary>Leaves dump.rdb in the server's directory holding the run in cancelled_runs, written by a second server.</summary>
    private async Task WriteSnapshotWith(string runId)
    {
        await using var other = await RedisServer.StartAsync(dir: _dir);
        await using var admin = await ConnectionMultiplexer.ConnectAsync(other.AdminConnection);
        var db = admin.GetDatabase();
        await db.SetAddAsync(RedisContract.CancelledRuns, runId);
        await db.ExecuteAsync("SAVE");
    }
}
