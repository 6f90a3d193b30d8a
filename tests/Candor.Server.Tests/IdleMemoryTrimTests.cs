using Candor.Server.Hosting;
using static Candor.Server.Hosting.IdleMemoryTrim;

namespace Candor.Server.Tests;

/// <summary>When an idle server gives memory back (<see cref="IdleMemoryTrim"/>): after a burst, once quiet, never under load.</summary>
public sealed class IdleMemoryTrimTests
{
    private const long Burst = 64L << 20;
    private static readonly DateTimeOffset Start = new(2026, 12, 7, 12, 0, 0, TimeSpan.Zero);

    /// <summary>Ticks once a second from <paramref name="from"/>, each allocating the next of <paramref name="perSecond"/>; the seconds a trim was due.</summary>
    private static List<int> DueSeconds(QuietWatch watch, ref long allocated, int from, params long[] perSecond)
    {
        var due = new List<int>();
        for (var i = 0; i < perSecond.Length; i++)
        {
            allocated += perSecond[i];
            if (watch.Tick(allocated, Start.AddSeconds(from + i))) due.Add(from + i);
        }
        return due;
    }

    [Fact]
    public void A_burst_followed_by_two_quiet_seconds_makes_one_trim_due()
    {
        var allocated = 1_000L;
        var watch = new QuietWatch(Burst, allocated, Start);
        Assert.Equal([4], DueSeconds(watch, ref allocated, 1, 40 << 20, 30 << 20, 0, 1_000, 0, 0, 0, 0));
    }

    [Fact]
    public void Under_load_no_trim_is_due_however_much_is_allocated()
    {
        var allocated = 0L;
        var watch = new QuietWatch(Burst, allocated, Start);
        Assert.Empty(DueSeconds(watch, ref allocated, 1, [.. Enumerable.Repeat(QuietBytesPerSecond, 600)]));
        // One quiet second between busy ones is not idle either.
        Assert.Empty(DueSeconds(watch, ref allocated, 601, 100 << 20, 0, 100 << 20, 0, 100 << 20));
    }

    [Fact]
    public void A_quiet_server_that_allocated_little_is_left_alone()
    {
        var allocated = 0L;
        var watch = new QuietWatch(Burst, allocated, Start);
        Assert.Empty(DueSeconds(watch, ref allocated, 1, [.. Enumerable.Repeat(QuietBytesPerSecond - 1, 250)]));
        // Little by little it adds up to a burst's worth (64 MiB at just under 256 KiB a second: the 257th second).
        Assert.Equal([257], DueSeconds(watch, ref allocated, 251, [.. Enumerable.Repeat(QuietBytesPerSecond - 1, 10)]));
    }

    [Fact]
    public void A_second_burst_soon_after_waits_for_the_interval()
    {
        var allocated = 0L;
        var watch = new QuietWatch(Burst, allocated, Start);
        Assert.Equal([3], DueSeconds(watch, ref allocated, 1, 100 << 20, 0, 0));
        var seconds = (int)MinInterval.TotalSeconds;
        long[] busyThenQuiet = [100 << 20, .. Enumerable.Repeat(0L, seconds)];
        Assert.Equal([3 + seconds], DueSeconds(watch, ref allocated, 4, busyThenQuiet));
    }

    [Fact]
    public async Task Turned_off_it_returns_at_once()
    {
        var run = IdleMemoryTrim.RunAsync(0, Microsoft.Extensions.Logging.Abstractions.NullLogger.Instance, CancellationToken.None);
        Assert.True(run.IsCompleted);
        await run;
    }
}
