using System.Collections.Concurrent;
using System.Net;
using Candor.Server.Core;
using Candor.Server.Hosting;

namespace Candor.Server.Connections;

/// <summary>
/// Caps streams that have not yet bound a resource, per address (an IPv6 /64 counts as one, see
/// <see cref="AddressKeys"/>) and in total, so that a flood of
/// half-open logins cannot starve honest users. Loopback has its own allowance (load generators, proxies
/// on the same machine).
/// </summary>
public sealed class ConnectionLimits(ServerOptions options)
{
    private readonly ConcurrentDictionary<IPAddress, int> _perAddress = new();
    private int _total;

    /// <summary>Counts a new unauthenticated stream; false (and nothing counted) when a limit is reached.</summary>
    public bool TryEnter(IPAddress address, out string reason)
    {
        reason = "";
        if (Interlocked.Increment(ref _total) > options.MaxUnauthenticatedStreams)
        {
            Interlocked.Decrement(ref _total);
            reason = "too many connections are logging in right now";
            return false;
        }
        var limit = IPAddress.IsLoopback(address) ? options.MaxUnauthenticatedStreamsLoopback : options.MaxUnauthenticatedStreamsPerAddress;
        var count = _perAddress.AddOrUpdate(AddressKeys.Of(address), 1, (_, n) => n + 1);
        if (count > limit)
        {
            Leave(address);
            reason = "too many unauthenticated connections from your address";
            return false;
        }
        return true;
    }

    public void Leave(IPAddress address)
    {
        Interlocked.Decrement(ref _total);
        address = AddressKeys.Of(address);
        while (_perAddress.TryGetValue(address, out var n))
        {
            if (n <= 1 ? _perAddress.TryRemove(new KeyValuePair<IPAddress, int>(address, n)) : _perAddress.TryUpdate(address, n - 1, n))
                return;
        }
    }
}

/// <summary>
/// A token bucket over the bytes a stream sends us: within the rate (and burst) nothing happens; beyond
/// it the reader pauses until the bucket refills, which slows the sender through TCP back-pressure
/// instead of disconnecting it.
/// </summary>
public sealed class InboundRate(int bytesPerSecond, int burstBytes)
{
    private double _tokens = burstBytes;
    private long _lastTicks = Environment.TickCount64;

    /// <summary>Takes the bytes just read; returns how long to wait before reading on.</summary>
    public TimeSpan Take(long bytes)
    {
        var now = Environment.TickCount64;
        _tokens = Math.Min(burstBytes, _tokens + (now - _lastTicks) * bytesPerSecond / 1000.0);
        _lastTicks = now;
        _tokens -= bytes;
        return _tokens >= 0 ? TimeSpan.Zero : TimeSpan.FromMilliseconds(-_tokens * 1000.0 / bytesPerSecond);
    }
}
