namespace Candor.Server.Hosting;

/// <summary>
/// Stanza counts on the routing path, kept per thread: a thread adds to an array of its own with a plain
/// increment (no interlocked operation, no cache line shared with another core), and a scrape sums the arrays.
/// The counts of threads that have ended are folded into a total of their own, so no count is ever lost.
/// </summary>
internal sealed class StanzaCounts
{
    /// <summary>Each thread's slots start this far into its array, and as much is left after them: no cache line is shared.</summary>
    private const int Padding = 16;

    // One thread static, not two: on Linux each access to one is a call to __tls_get_addr.
    [ThreadStatic] private static ThreadCounts? t_counts;

    private sealed record ThreadCounts(StanzaCounts Owner, long[] Counts);

    private readonly int _slots;
    private readonly Dictionary<Thread, long[]> _threads = [];
    private readonly long[] _ended;

    public StanzaCounts(int slots)
    {
        _slots = slots;
        _ended = new long[slots];
    }

    public void Increment(int slot)
    {
        // Another instance's array on this thread happens only with several servers in one process (tests).
        var local = t_counts;
        var counts = local is not null && ReferenceEquals(local.Owner, this) ? local.Counts : Adopt();
        counts[Padding + slot]++;
    }

    private long[] Adopt()
    {
        var thread = Thread.CurrentThread;
        lock (_threads)
        {
            if (!_threads.TryGetValue(thread, out var counts)) _threads.Add(thread, counts = new long[_slots + 2 * Padding]);
            t_counts = new ThreadCounts(this, counts);
            return counts;
        }
    }

    public long Read(int slot)
    {
        lock (_threads)
        {
            var sum = _ended[slot];
            foreach (var (thread, counts) in _threads)
            {
                sum += Volatile.Read(ref counts[Padding + slot]);
                if (thread.IsAlive) continue;
                for (var i = 0; i < _slots; i++) _ended[i] += counts[Padding + i];
                _threads.Remove(thread);
            }
            return sum;
        }
    }
}
