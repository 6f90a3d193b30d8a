using System.Text.RegularExpressions;

namespace Candor.Interop.Tests.Infrastructure;

/// <summary>
/// A flood of half-open connections from many loopback addresses (<see cref="ConnectionFlood"/>), run in child
/// processes of at most <see cref="PerProcess"/> connections each: a .NET process that runs out of file descriptors
/// aborts, so neither the test host nor a flood process may come near its limit (20,000 here). Stops by itself
/// after the given time, or when disposed.
/// </summary>
public sealed partial class HalfOpenFlood : IAsyncDisposable
{
    public const int PerProcess = 10_000;

    private readonly ChildProcess[] _processes;
    private readonly int _count;

    private HalfOpenFlood(ChildProcess[] processes, int count)
    {
        _processes = processes;
        _count = count;
    }

    /// <summary><paramref name="xmpp"/>: a mix of silence, cut-short and whole stream headers; otherwise silence only.</summary>
    public static HalfOpenFlood Start(int port, int count, bool xmpp = true, int seconds = 120)
    {
        var self = typeof(HalfOpenFlood).Assembly.Location;
        var processes = Enumerable.Range(0, (count + PerProcess - 1) / PerProcess).Select(i =>
            ChildProcess.Start(CandorServer.Launcher.DotnetHost, [self, "half-open-flood", port.ToString(), (i * PerProcess).ToString(),
                Math.Min(PerProcess, count - i * PerProcess).ToString(), xmpp.ToString(), seconds.ToString()])).ToArray();
        return new HalfOpenFlood(processes, count);
    }

    public async Task<bool> AllConnectedOnceAsync(TimeSpan timeout)
    {
        foreach (var process in _processes)
            if (!await process.WaitForOutputAsync("READY", timeout)) return false;
        return true;
    }

    /// <summary>The most connections open at once (summed over the processes' own maxima).</summary>
    public int MostOpen => Sum("most");

    private int Sum(string field) => _processes.Sum(p =>
        StatsLine().Matches(p.Output) is { Count: > 0 } lines ? int.Parse(lines[^1].Groups[field].Value) : 0);

    public override string ToString() => $"{_count} in {_processes.Length} process(es): " + string.Join(" + ", _processes.Select(p =>
        StatsLine().Matches(p.Output) is { Count: > 0 } lines ? lines[^1].Value[6..] : p.HasExited ? $"exited: {p.Output}" : "no STATS yet"));

    [GeneratedRegex(@"STATS open=(?<open>\d+) most=(?<most>\d+) connects=(?<connects>\d+) closed=(?<closed>\d+) failures=(?<failures>\d+)")]
    private static partial Regex StatsLine();

    public async ValueTask DisposeAsync()
    {
        foreach (var process in _processes) await process.DisposeAsync();
    }
}
