using System.Text.RegularExpressions;

namespace Candor.Interop.Tests.Infrastructure;

/// <summary>
/// A flood of half-open connections from many loopback addresses (scripts/half_open_flood.py), split over
/// processes of at most <see cref="PerProcess"/> connections each so that none needs more file descriptors than
/// a usual limit allows (20,000 here). Stops by itself after <c>seconds</c>, or when disposed.
/// </summary>
public sealed partial class HalfOpenFlood : IAsyncDisposable
{
    public const int PerProcess = 10_000;

    private readonly ChildProcess[] _processes;

    private HalfOpenFlood(ChildProcess[] processes) => _processes = processes;

    /// <summary><paramref name="xmpp"/>: a mix of silence, cut-short and whole stream headers; otherwise silence only.</summary>
    public static HalfOpenFlood Start(int port, int count, bool xmpp = true, int seconds = 120)
    {
        Assert.True(File.Exists(Tools.Python), $"{Tools.Python} not found: install the Debian package python3 (./test.sh does this)");
        var processes = Enumerable.Range(0, (count + PerProcess - 1) / PerProcess).Select(i =>
        {
            string[] arguments = [Tools.Script("half_open_flood.py"), CandorServer.Host, port.ToString(),
                Math.Min(PerProcess, count - i * PerProcess).ToString(), "--octet", (10 + i).ToString(), "--seconds", seconds.ToString()];
            return ChildProcess.Start(Tools.Python, xmpp ? [.. arguments, "--xmpp"] : arguments);
        }).ToArray();
        return new HalfOpenFlood(processes);
    }

    public async Task<bool> AllConnectedOnceAsync(TimeSpan timeout)
    {
        foreach (var process in _processes)
            if (!await process.WaitForOutputAsync("READY", timeout)) return false;
        return true;
    }

    public int Open => Sum("open");
    public int ClosedByServer => Sum("closed");

    private int Sum(string field) => _processes.Sum(p =>
        StatsLine().Matches(p.Output) is { Count: > 0 } lines ? int.Parse(lines[^1].Groups[field].Value) : 0);

    public override string ToString() => string.Join(" + ", _processes.Select(p =>
        StatsLine().Matches(p.Output) is { Count: > 0 } lines ? lines[^1].Value : "no STATS yet"));

    [GeneratedRegex(@"STATS open=(?<open>\d+) connects=(?<connects>\d+) closed=(?<closed>\d+) failures=(?<failures>\d+)")]
    private static partial Regex StatsLine();

    public async ValueTask DisposeAsync()
    {
        foreach (var process in _processes) await process.DisposeAsync();
    }
}
