using System.Net;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using System.Text;

namespace Candor.Interop.Tests.Infrastructure;

/// <summary>
/// Holds <c>count</c> half-open connections to a port, each from its own loopback address (127.10.y.z: Linux
/// routes all of 127.0.0.0/8 to the loopback interface), the way a small botnet would: a third send nothing,
/// a third a stream header cut short and then one byte every two seconds, a third a whole header and then
/// nothing. Whenever the server closes one, it is opened again from the same address, so the flood keeps its
/// size for as long as it runs. Stops when disposed.
/// </summary>
public sealed class HalfOpenFlood : IAsyncDisposable
{
    private static readonly byte[] PartialHeader = Encoding.ASCII.GetBytes(
        "<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='localhost' ");
    private static readonly byte[] FullHeader = Encoding.ASCII.GetBytes(
        "<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='localhost' version='1.0'>");
    /// <summary>What the server says is read and thrown away; every connection shares this buffer.</summary>
    private static readonly byte[] Discard = new byte[4096];

    private readonly CancellationTokenSource _stop = new();
    private readonly IPEndPoint _server;
    private readonly Task[] _slots;
    private readonly bool _xmpp;
    private int _open;
    private long _connects;
    private long _closedByServer;
    private long _failures;

    private HalfOpenFlood(IPEndPoint server, int count, bool xmpp)
    {
        _server = server;
        _xmpp = xmpp;
        _slots = new Task[count];
        for (var i = 0; i < count; i++)
        {
            var slot = i;
            _slots[i] = Task.Run(() => HoldAsync(slot));
        }
    }

    /// <summary>Starts the flood; <paramref name="xmpp"/> false sends nothing on any connection (for an HTTP port).</summary>
    public static HalfOpenFlood Start(int port, int count, bool xmpp = true) =>
        new(new IPEndPoint(IPAddress.Loopback, port), count, xmpp);

    /// <summary>Connections open now.</summary>
    public int Open => Volatile.Read(ref _open);
    public long Connects => Interlocked.Read(ref _connects);
    public long ClosedByServer => Interlocked.Read(ref _closedByServer);
    public long Failures => Interlocked.Read(ref _failures);

    public override string ToString() => $"{Open} open, {Connects} connects, {ClosedByServer} closed by the server, {Failures} failed connects";

    /// <summary>Waits until every connection has been opened once (or the timeout passes).</summary>
    public async Task<bool> AllConnectedOnceAsync(TimeSpan timeout)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (Connects + Failures < _slots.Length)
        {
            if (DateTime.UtcNow > deadline) return false;
            await Task.Delay(100);
        }
        return true;
    }

    public static IPAddress AddressOf(int slot) => new([127, 10, (byte)(slot / 250), (byte)(slot % 250 + 1)]);

    private async Task HoldAsync(int slot)
    {
        var token = _stop.Token;
        var address = AddressOf(slot);
        while (!token.IsCancellationRequested)
        {
            using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
            var counted = false;
            try
            {
                socket.Bind(new IPEndPoint(address, 0));
                await socket.ConnectAsync(_server, token);
                Interlocked.Increment(ref _connects);
                Interlocked.Increment(ref _open);
                counted = true;
                var kind = _xmpp ? slot % 3 : 0;
                if (kind > 0) await socket.SendAsync(kind == 1 ? PartialHeader : FullHeader, token);
                var closed = socket.ReceiveAsync(Discard, token).AsTask();
                while (true)
                {
                    if (kind == 1)
                        await Task.WhenAny(closed, Task.Delay(TimeSpan.FromSeconds(2), token));
                    else
                        await closed;
                    if (closed.IsCompleted)
                    {
                        if (await closed == 0) break;
                        closed = socket.ReceiveAsync(Discard, token).AsTask();
                    }
                    else
                    {
                        await socket.SendAsync(" "u8.ToArray(), token);
                    }
                }
                Interlocked.Increment(ref _closedByServer);
            }
            catch (OperationCanceledException)
            {
                return;
            }
            catch (SocketException)
            {
                // Refused, reset, or no descriptor left here: try again a little later, as a bot would.
                if (!counted) Interlocked.Increment(ref _failures);
                else Interlocked.Increment(ref _closedByServer);
                try
                {
                    await Task.Delay(100, token);
                }
                catch (OperationCanceledException)
                {
                    return;
                }
            }
            finally
            {
                if (counted) Interlocked.Decrement(ref _open);
            }
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        await Task.WhenAll(_slots);
        _stop.Dispose();
    }

    /// <summary>Raises this process's soft and, if allowed (root), hard limit on open files to at least <paramref name="needed"/>.</summary>
    public static void RaiseFileLimit(int needed)
    {
        Assert.Equal(0, GetRLimit(RlimitNoFile, out var limit));
        if (limit.Current >= (ulong)needed) return;
        var raised = new RLimit { Current = (ulong)needed, Maximum = Math.Max(limit.Maximum, (ulong)needed) };
        Assert.True(SetRLimit(RlimitNoFile, ref raised) == 0,
            $"this test needs {needed} open files; the limit is {limit.Current} (hard {limit.Maximum}) and cannot be raised (errno {Marshal.GetLastPInvokeError()}): " +
            "run it as root or raise 'ulimit -n' first");
    }

    private const int RlimitNoFile = 7;

    [StructLayout(LayoutKind.Sequential)]
    private struct RLimit
    {
        public ulong Current;
        public ulong Maximum;
    }

    [DllImport("libc", EntryPoint = "getrlimit", SetLastError = true)]
    private static extern int GetRLimit(int resource, out RLimit limit);

    [DllImport("libc", EntryPoint = "setrlimit", SetLastError = true)]
    private static extern int SetRLimit(int resource, ref RLimit limit);
}
