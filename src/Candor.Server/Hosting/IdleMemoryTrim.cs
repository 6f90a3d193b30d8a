using System.Diagnostics;
using System.Runtime.InteropServices;
using Microsoft.Extensions.Logging;

namespace Candor.Server.Hosting;

/// <summary>
/// Gives memory back to the operating system once a burst of work is over. The garbage collector keeps what it grew
/// into during a burst (a wave of logins, a flood of messages) as room for the next one, and glibc keeps the native
/// memory that TLS handshakes freed in its arenas, so a server left holding thousands of idle connections would go on
/// holding tens of megabytes it does not use. When <see cref="ServerOptions.TrimMemoryAfterMegabytes"/> were allocated
/// since the last trim and the process then allocates less than <see cref="QuietBytesPerSecond"/> for
/// <see cref="QuietSeconds"/> seconds in a row, one full compacting collection that decommits what it frees runs,
/// followed on Linux by glibc's <c>malloc_trim</c>. At most once per <see cref="MinInterval"/>, and never under load,
/// where the collection's pause would be felt. A process-wide step: <c>candor serve</c> runs it, not each server
/// that tests host in one process.
/// </summary>
public static partial class IdleMemoryTrim
{
    public const long QuietBytesPerSecond = 256 << 10;
    public const int QuietSeconds = 2;
    public static readonly TimeSpan MinInterval = TimeSpan.FromSeconds(60);

    /// <summary>Checks once a second and trims when due, until <paramref name="stopping"/>; nothing when <paramref name="afterMegabytes"/> is 0.</summary>
    public static async Task RunAsync(int afterMegabytes, ILogger log, CancellationToken stopping)
    {
        if (afterMegabytes == 0) return;
        using var timer = new PeriodicTimer(TimeSpan.FromSeconds(1));
        var watch = new QuietWatch((long)afterMegabytes << 20, GC.GetTotalAllocatedBytes(), DateTimeOffset.UtcNow);
        try
        {
            while (await timer.WaitForNextTickAsync(stopping))
            {
                if (!watch.Tick(GC.GetTotalAllocatedBytes(), DateTimeOffset.UtcNow)) continue;
                var before = Environment.WorkingSet;
                var started = Stopwatch.GetTimestamp();
                Trim();
                Log.Trimmed(log, before >> 10, Environment.WorkingSet >> 10, Stopwatch.GetElapsedTime(started).TotalMilliseconds);
            }
        }
        catch (OperationCanceledException)
        {
        }
    }

    private static void Trim()
    {
        GC.Collect(GC.MaxGeneration, GCCollectionMode.Aggressive, blocking: true, compacting: true);
        if (!OperatingSystem.IsLinux()) return;
        try
        {
            malloc_trim(0);
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
        {
            // A C library without malloc_trim (musl): the managed part is done.
        }
    }

    [DllImport("libc", EntryPoint = "malloc_trim")]
    private static extern int malloc_trim(nuint pad);

    /// <summary>When a trim is due, apart from the clock and the collector.</summary>
    public sealed class QuietWatch(long burstBytes, long allocated, DateTimeOffset started)
    {
        private long _allocated = allocated;
        private long _sinceTrim;
        private int _quietSeconds;
        private DateTimeOffset _lastTrim = started - MinInterval;

        /// <summary>Takes the bytes the process has allocated so far, once a second; true when a trim is due now.</summary>
        public bool Tick(long allocated, DateTimeOffset now)
        {
            var recent = allocated - _allocated;
            _allocated = allocated;
            _sinceTrim += recent;
            _quietSeconds = recent < QuietBytesPerSecond ? _quietSeconds + 1 : 0;
            if (_quietSeconds < QuietSeconds || _sinceTrim < burstBytes || now - _lastTrim < MinInterval) return false;
            _sinceTrim = 0;
            _lastTrim = now;
            return true;
        }
    }

    private static partial class Log
    {
        [LoggerMessage(Level = LogLevel.Debug, Message = "Idle after a burst: memory given back to the system, resident {Before} KiB -> {After} KiB in {Milliseconds:F0} ms")]
        public static partial void Trimmed(ILogger logger, long before, long after, double milliseconds);
    }
}
