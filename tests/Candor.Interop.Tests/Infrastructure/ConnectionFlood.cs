using System.Net;
using System.Net.Sockets;
using System.Text;

namespace Candor.Interop.Tests.Infrastructure;

/// <summary>
/// The engine of <see cref="HalfOpenFlood"/>, run in a child process (<see cref="Program"/>): holds <c>count</c> half-open connections to a port, each from its own loopback address (127.10.y.z: Linux
/// routes all of 127.0.0.0/8 to the loopback interface), the way a small botnet would: a third send nothing,
/// a third a stream header cut short and then one byte every two seconds, a third a whole header and then
/// nothing. Whenever the server closes one, it is opened again from the same address a second later, so the
/// flood keeps its size for as long as it runs. The connections are this process's, so it holds as many as its own file limit
/// allows (a connection that cannot get a descriptor counts as a failure and is retried). Stops after the given
/// time or when disposed.
/// </summary>
public sealed class ConnectionFlood : IAsyncDisposable
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
    private int _mostOpen;
    private long _connects;
    private long _closedByServer;
    private long _failures;

    private ConnectionFlood(IPEndPoint server, int firstSlot, int count, bool xmpp, TimeSpan duration)
    {
        _stop.CancelAfter(duration);
        _server = server;
        _xmpp = xmpp;
        _slots = new Task[count];
        for (var i = 0; i < count; i++)
        {
            var slot = firstSlot + i;
            _slots[i] = Task.Run(() => HoldAsync(slot));
        }
    }

    /// <summary>Starts the flood; <paramref name="xmpp"/> false sends nothing on any connection (for an HTTP port).</summary>
    public static ConnectionFlood Start(int port, int firstSlot, int count, bool xmpp, TimeSpan duration) =>
        new(new IPEndPoint(IPAddress.Loopback, port), firstSlot, count, xmpp, duration);

    /// <summary>Runs until the duration is over, printing READY once every connection was opened once and STATS every second.</summary>
    public async Task RunAsync()
    {
        var ready = false;
        while (!_stop.IsCancellationRequested)
        {
            try
            {
                await Task.Delay(TimeSpan.FromSeconds(1), _stop.Token);
            }
            catch (OperationCanceledException)
            {
                break;
            }
            if (!ready && Connects + Failures >= _slots.Length)
            {
                ready = true;
                Console.WriteLine("READY");
            }
            Console.WriteLine($"STATS open={Open} most={MostOpen} connects={Connects} closed={ClosedByServer} failures={Failures}");
        }
        await DisposeAsync();
    }

    /// <summary>Connections open now.</summary>
    public int Open => Volatile.Read(ref _open);
    /// <summary>The most connections open at once so far.</summary>
    public int MostOpen => Volatile.Read(ref _mostOpen);
    public long Connects => Interlocked.Read(ref _connects);
    public long ClosedByServer => Interlocked.Read(ref _closedByServer);
    public long Failures => Interlocked.Read(ref _failures);

    private static IPAddress AddressOf(int slot) => new([127, (byte)(10 + slot / 62_500), (byte)(slot / 250 % 250), (byte)(slot % 250 + 1)]);

    private async Task HoldAsync(int slot)
    {
        var token = _stop.Token;
        var address = AddressOf(slot);
        while (!token.IsCancellationRequested)
        {
            Socket? socket = null;
            var counted = false;
            try
            {
                socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
                socket.Bind(new IPEndPoint(address, 0));
                await socket.ConnectAsync(_server, token);
                Interlocked.Increment(ref _connects);
                var open = Interlocked.Increment(ref _open);
                counted = true;
                for (var most = MostOpen; open > most; most = MostOpen)
                    Interlocked.CompareExchange(ref _mostOpen, open, most);
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
                // A bot's retry delay: it keeps the flood's size without spending this machine's CPU (shared with
                // the server under test) on reconnecting as fast as the server closes.
                await Task.Delay(TimeSpan.FromSeconds(1), token);
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
                socket?.Dispose();
            }
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        await Task.WhenAll(_slots);
        _stop.Dispose();
    }
}
