using Deepline.Actors.Index;

namespace Deepline.Actors.Tests;

/// <summary>
/// Which rows of a page the run index's journal tail hands on when orderings can have holes (PostgreSQL): never a row
/// above a missing ordering that may still commit, and a hole that outlived the timeout is stepped over.
/// </summary>
public sealed class JournalTailHoleTests
{
    private static readonly DateTime T0 = new(2026, 12, 6, 9, 0, 0, DateTimeKind.Utc);
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(10);

    /// <summary>Rows written at <see cref="T0"/>.</summary>
    private static List<(long, DateTime)> Young(params long[] orderings) => [.. orderings.Select(o => (o, T0))];

    [Fact]
    public void Rows_without_a_hole_are_all_handed_on()
    {
        var (take, hole) = JournalTail.Contiguous(10, Young(11, 12, 13), null, T0, Timeout);
        Assert.Equal(3, take);
        Assert.Null(hole);
    }

    [Fact]
    public void Rows_stop_at_the_first_missing_ordering_and_the_hole_is_remembered()
    {
        var (take, hole) = JournalTail.Contiguous(10, Young(11, 12, 14, 15), null, T0, Timeout);
        Assert.Equal(2, take);
        Assert.Equal(new JournalTail.Hole(13, T0), hole);
    }

    [Fact]
    public void A_hole_at_the_offset_hands_on_nothing()
    {
        var (take, hole) = JournalTail.Contiguous(10, Young(12, 13), null, T0, Timeout);
        Assert.Equal(0, take);
        Assert.Equal(13 - 2, hole!.Value.At);
    }

    [Fact]
    public void A_hole_seen_again_keeps_the_time_it_was_first_seen()
    {
        var first = new JournalTail.Hole(11, T0);
        var (take, hole) = JournalTail.Contiguous(10, Young(12), first, T0.AddSeconds(9), Timeout);
        Assert.Equal(0, take);
        Assert.Equal(first, hole);
    }

    [Fact]
    public void A_hole_that_filled_lets_every_row_through()
    {
        var (take, hole) = JournalTail.Contiguous(10, Young(11, 12), new JournalTail.Hole(11, T0), T0.AddSeconds(1), Timeout);
        Assert.Equal(2, take);
        Assert.Null(hole);
    }

    [Fact]
    public void A_hole_older_than_the_timeout_is_stepped_over_and_the_next_one_gets_its_own_time()
    {
        var now = T0.AddSeconds(10);
        var (take, hole) = JournalTail.Contiguous(10, [(12, T0), (13, T0), (15, now)], new JournalTail.Hole(11, T0), now, Timeout);
        Assert.Equal(2, take);
        Assert.Equal(new JournalTail.Hole(14, now), hole);
    }

    [Fact]
    public void A_hole_before_a_row_written_longer_ago_than_the_timeout_is_stepped_over_at_once()
    {
        var now = T0.AddSeconds(30);
        // History: the rows around the old holes were written at T0; the newest row only now, after a hole of its own.
        var (take, hole) = JournalTail.Contiguous(10, [(12, T0), (13, T0), (15, T0), (17, now)], null, now, Timeout);
        Assert.Equal(3, take);
        Assert.Equal(new JournalTail.Hole(16, now), hole);
    }
}
