using Deepline.Actors.Hosting;

namespace Deepline.Actors.Tests;

/// <summary>
/// The fence against a paused node's late writes, on a clock the test moves: a write queued before a pause as long as
/// the limit is refused, and so is every write for a while after the pause; ordinary delays are not.
/// </summary>
public sealed class PauseFenceTests
{
    private long _now = 1_000_000;

    private PauseFence Fence() => new(TimeSpan.FromSeconds(10), () => _now, TimeSpan.FromSeconds(13));

    [Fact]
    public void Writes_within_the_limit_go_ahead_while_the_watchdog_ticks()
    {
        var fence = Fence();
        for (var i = 0; i < 50; i++)
        {
            _now += 100;
            fence.Tick();
        }
        Assert.Null(fence.Refusal(_now - 9_000));
    }

    [Fact]
    public void A_write_queued_longer_ago_than_the_queue_limit_is_refused_naming_why()
    {
        var fence = Fence();
        var queued = _now;
        for (var i = 0; i < 125; i++)
        {
            _now += 100;
            fence.Tick();
        }
        // 12.5 s in the queue of a node that kept running: longer than a pause it could be fenced for, still written.
        Assert.Null(fence.Refusal(queued));
        for (var i = 0; i < 10; i++)
        {
            _now += 100;
            fence.Tick();
        }
        var refusal = fence.Refusal(queued);
        Assert.NotNull(refusal);
        Assert.Contains("longer than 13 s", refusal);
        // A write queued now is fine: the process never stood still.
        Assert.Null(fence.Refusal(_now));
    }

    [Fact]
    public void After_a_pause_of_the_limit_every_write_is_refused_until_the_fence_ends()
    {
        var fence = Fence();
        fence.Tick();
        _now += 30_000; // SIGSTOP for 30 s: no tick in between

        // The writer may run before the watchdog does: it sees the missed ticks itself.
        Assert.Contains("was paused", fence.Refusal(_now));
        fence.Tick();
        _now += 5_000;
        fence.Tick();
        Assert.Contains("was paused", fence.Refusal(_now));

        // FenceFor = 2 x 10 s + 10 s after the pause ended, ticking all along.
        for (var i = 0; i < 260; i++)
        {
            _now += 100;
            fence.Tick();
        }
        Assert.Null(fence.Refusal(_now));
    }
}
