using System.Net;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using Candor.Server.Connections;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Server.Kestrel.Transport.Sockets;
using Microsoft.Extensions.Logging;

namespace Candor.Server.Hosting;

/// <summary>
/// Kestrel's socket transport with an accept loop that keeps the process clear of its file-descriptor limit.
/// Kestrel's own listener takes every failed accept for a connection reset in the backlog and retries at once: when
/// the process is out of descriptors (EMFILE) the waiting connection stays in the backlog, so that loop spins a core
/// and logs each failure — and the runtime itself fails once it cannot open a file (it aborted with "Out of memory."
/// in our tests). Here connections are counted and at most the file limit less a reserve are open at once (the
/// reserve is for the database, TLS, logging and the runtime). At that point, or on a failed accept for lack of
/// resources, the condition is logged (at most once a minute), a few of the stalest half-open logins are shed so that
/// waiting connections can come in, and accepting pauses, longer each time; existing connections are served
/// meanwhile. Connections to the XMPP stream listeners (<see cref="StreamEndPoints"/>) are <see cref="StreamSocketConnection"/>s;
/// the others (HTTP) are Kestrel's own (<see cref="SocketConnectionContextFactory"/>).
/// </summary>
internal sealed partial class GuardedSocketTransport : IConnectionListenerFactory, IConnectionListenerFactorySelector
{
    /// <summary>
    /// Connections the kernel completes before they are accepted (Linux caps it at net.core.somaxconn, 4096 by
    /// default). Kestrel's 512 fills in a flood, and then an honest client's SYN is dropped and retried only a
    /// second or three later; queued, it waits for the accept loop, which keeps up.
    /// </summary>
    private const int Backlog = 4096;
    /// <summary>Half-open logins shed each time accepting has to wait.</summary>
    private const int ShedPerPause = 8;
    private const long ReportEveryMilliseconds = 60_000;
    private static readonly TimeSpan FirstPause = TimeSpan.FromMilliseconds(20), LongestPause = TimeSpan.FromSeconds(1);

    private readonly Func<EndPoint, Socket> _createListenSocket;
    private readonly ConnectionLimits _limits;
    private readonly ILogger _logger;
    private readonly SocketConnectionContextFactory _connections;
    private readonly Action<StreamSocketConnection> _streamClosed;
    private int _open;
    private int _reported;
    private long _reportedAt;
    private long _pauses;

    public GuardedSocketTransport(Func<EndPoint, Socket> createListenSocket, ISet<EndPoint> streamEndPoints, ConnectionLimits limits, ILoggerFactory loggers)
    {
        _createListenSocket = createListenSocket;
        StreamEndPoints = streamEndPoints;
        _streamClosed = _ => Interlocked.Decrement(ref _open);
        _limits = limits;
        _logger = loggers.CreateLogger<GuardedSocketTransport>();
        _connections = new SocketConnectionContextFactory(new SocketConnectionFactoryOptions(), _logger);
        var files = FileLimit();
        // The runtime alone holds about 200 descriptors (assemblies, epoll, the database); 1 % more for what grows with load.
        Capacity = files is { } limit ? (int)Math.Min(int.MaxValue, limit - 256 - limit / 100) : int.MaxValue;
        var configured = limits.MaxTotal;
        if (limits.FitTo(Capacity) < configured) Log.CapLowered(_logger, configured, limits.MaxTotal, Capacity, files ?? 0);
    }

    /// <summary>The endpoints (as Kestrel's listen options hold them) of the listeners that carry XMPP streams.</summary>
    public ISet<EndPoint> StreamEndPoints { get; }

    /// <summary>Connections open at once at most, over every listener.</summary>
    public int Capacity { get; }

    public bool CanBind(EndPoint endpoint) => endpoint is IPEndPoint;

    public ValueTask<IConnectionListener> BindAsync(EndPoint endpoint, CancellationToken cancellationToken = default)
    {
        Socket socket;
        try
        {
            socket = _createListenSocket(endpoint);
        }
        catch (SocketException e) when (e.SocketErrorCode == SocketError.AddressAlreadyInUse)
        {
            // What Kestrel's own transport throws, so that the host reports "address already in use" in one line.
            throw new AddressInUseException(e.Message, e);
        }
        try
        {
            socket.Listen(Backlog);
        }
        catch
        {
            socket.Dispose();
            throw;
        }
        return new(new Listener(this, socket, StreamEndPoints.Contains(endpoint)));
    }

    /// <summary>
    /// Accepting must wait. Descriptors are the process's, so all listeners report together, at most once a minute
    /// (in a flood accepting can stop and resume many times a second).
    /// </summary>
    /// <returns>Whether half-open logins were shed, so that descriptors are about to be free.</returns>
    private bool Pause(EndPoint listening, string reason)
    {
        var pauses = Interlocked.Increment(ref _pauses);
        var shed = _limits.ShedStalest(ShedPerPause) > 0;
        var now = Environment.TickCount64;
        var last = Interlocked.Read(ref _reportedAt);
        if (last != 0 && now - last < ReportEveryMilliseconds || Interlocked.CompareExchange(ref _reportedAt, now, last) != last) return shed;
        Interlocked.Exchange(ref _pauses, 0);
        Volatile.Write(ref _reported, 1);
        Log.CannotAccept(_logger, listening, reason, pauses);
        return shed;
    }

    private ConnectionContext Accepted(EndPoint listening, Socket socket, bool stream)
    {
        if (Volatile.Read(ref _reported) != 0 && Interlocked.Exchange(ref _reported, 0) != 0)
            Log.AcceptingAgain(_logger, listening, (Environment.TickCount64 - Interlocked.Read(ref _reportedAt)) / 1000.0);
        socket.NoDelay = true;
        if (stream) return new StreamSocketConnection(socket, _streamClosed);
        var connection = _connections.Create(socket);
        connection.ConnectionClosed.Register(static state => Interlocked.Decrement(ref ((GuardedSocketTransport)state!)._open), this);
        return connection;
    }

    private sealed class Listener(GuardedSocketTransport transport, Socket socket, bool stream) : IConnectionListener
    {
        public EndPoint EndPoint { get; } = socket.LocalEndPoint!;

        public async ValueTask<ConnectionContext?> AcceptAsync(CancellationToken cancellationToken = default)
        {
            var pause = FirstPause;
            while (true)
            {
                string reason;
                if (Interlocked.Increment(ref transport._open) <= transport.Capacity)
                {
                    try
                    {
                        return transport.Accepted(EndPoint, await socket.AcceptAsync(cancellationToken), stream);
                    }
                    catch (Exception e) when (e is ObjectDisposedException or OperationCanceledException
                                                   || e is SocketException { SocketErrorCode: SocketError.OperationAborted })
                    {
                        Interlocked.Decrement(ref transport._open);
                        return null;
                    }
                    catch (SocketException e) when (e.SocketErrorCode is SocketError.TooManyOpenSockets or SocketError.NoBufferSpaceAvailable)
                    {
                        reason = e.Message;
                    }
                    catch (SocketException)
                    {
                        // The connection was reset while it waited in the backlog: take the next one.
                        Interlocked.Decrement(ref transport._open);
                        continue;
                    }
                }
                else
                {
                    reason = $"{transport.Capacity} connections are open, as many as the file limit allows with a reserve for the server";
                }
                Interlocked.Decrement(ref transport._open);
                // Waits longer each time only while nothing can be shed: then only closing connections free descriptors.
                var shed = transport.Pause(EndPoint, reason);
                try
                {
                    await Task.Delay(pause, cancellationToken);
                }
                catch (OperationCanceledException)
                {
                    return null;
                }
                pause = shed ? FirstPause : pause * 2 < LongestPause ? pause * 2 : LongestPause;
            }
        }

        public ValueTask UnbindAsync(CancellationToken cancellationToken = default)
        {
            socket.Dispose();
            return ValueTask.CompletedTask;
        }

        public ValueTask DisposeAsync()
        {
            socket.Dispose();
            return ValueTask.CompletedTask;
        }
    }

    /// <summary>The process's limit on open files (RLIMIT_NOFILE), where there is one.</summary>
    private static ulong? FileLimit()
    {
        if (!OperatingSystem.IsLinux()) return null;
        return GetRLimit(RlimitNoFile, out var limit) == 0 && limit.Current < int.MaxValue ? limit.Current : null;
    }

    private const int RlimitNoFile = 7;

    [StructLayout(LayoutKind.Sequential)]
    private struct RLimit
    {
        public ulong Current;
        public ulong Maximum;
    }

    [DllImport("libc", EntryPoint = "getrlimit")]
    private static extern int GetRLimit(int resource, out RLimit limit);

    private static partial class Log
    {
        [LoggerMessage(Level = LogLevel.Warning, Message = "Cannot accept connections on {EndPoint}: {Reason} ({Pauses} pauses since the last report). Existing connections are served; the stalest half-open logins are shed and accepting resumes, retried at most once a second, as connections close")]
        public static partial void CannotAccept(ILogger logger, EndPoint endPoint, string reason, long pauses);

        [LoggerMessage(Level = LogLevel.Warning, Message = "MaxUnauthenticatedStreams {Configured} lowered to {Cap}: half the {Capacity} connections the file limit ({Limit}) allows. Raise ulimit -n for more")]
        public static partial void CapLowered(ILogger logger, int configured, int cap, int capacity, ulong limit);

        [LoggerMessage(Level = LogLevel.Warning, Message = "Accepting connections again on {EndPoint}, {Seconds:F1} s after the report")]
        public static partial void AcceptingAgain(ILogger logger, EndPoint endPoint, double seconds);
    }
}
