using System.Net;
using System.Net.Sockets;
using Candor.Server.Connections;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Server.Kestrel.Transport.Sockets;
using Microsoft.Extensions.Logging;

namespace Candor.Server.Hosting;

/// <summary>
/// Kestrel's socket transport with an accept loop that survives running out of file descriptors. Kestrel's own
/// listener treats every failed accept as a connection reset in the backlog and retries at once; when the
/// process is out of descriptors (EMFILE) the waiting connection stays in the backlog, so that loop spins a core
/// and logs each failure. Here a failed accept for lack of resources is logged once, sheds a few of the stalest
/// half-open logins (their descriptors let the waiting connection in), and waits before trying again, longer
/// each time; existing connections are served meanwhile. The connections themselves are Kestrel's
/// (<see cref="SocketConnectionContextFactory"/>).
/// </summary>
internal sealed partial class GuardedSocketTransport(Func<EndPoint, Socket> createListenSocket, ConnectionLimits limits, ILoggerFactory loggers)
    : IConnectionListenerFactory, IConnectionListenerFactorySelector
{
    /// <summary>
    /// Connections the kernel completes before they are accepted (Linux caps it at net.core.somaxconn, 4096 by
    /// default). Kestrel's 512 fills in a flood, and then an honest client's SYN is dropped and retried only a
    /// second or three later; queued, it waits for the accept loop, which keeps up.
    /// </summary>
    private const int Backlog = 4096;
    /// <summary>Half-open logins shed per failed accept.</summary>
    private const int ShedPerFailure = 8;
    private static readonly TimeSpan FirstPause = TimeSpan.FromMilliseconds(20), LongestPause = TimeSpan.FromSeconds(1);
    private const long ReportEvery = 60_000;

    private readonly ILogger _logger = loggers.CreateLogger<GuardedSocketTransport>();
    private readonly SocketConnectionContextFactory _connections = new(new SocketConnectionFactoryOptions(), loggers.CreateLogger<GuardedSocketTransport>());
    private int _short;
    private long _reportedAt;
    private long _failedAccepts;

    public bool CanBind(EndPoint endpoint) => endpoint is IPEndPoint;

    public ValueTask<IConnectionListener> BindAsync(EndPoint endpoint, CancellationToken cancellationToken = default)
    {
        var socket = createListenSocket(endpoint);
        try
        {
            socket.Listen(Backlog);
        }
        catch
        {
            socket.Dispose();
            throw;
        }
        return new(new Listener(this, socket));
    }

    /// <summary>
    /// An accept failed for lack of resources. Descriptors are the process's, so all listeners report together,
    /// at most once a minute (a flood can make accepts fail and succeed many times a second).
    /// </summary>
    private void Short(SocketException e, EndPoint listening)
    {
        var failures = Interlocked.Increment(ref _failedAccepts);
        limits.ShedStalest(ShedPerFailure);
        var now = Environment.TickCount64;
        var last = Interlocked.Read(ref _reportedAt);
        if (last != 0 && now - last < ReportEvery || Interlocked.CompareExchange(ref _reportedAt, now, last) != last) return;
        Interlocked.Exchange(ref _failedAccepts, 0);
        Volatile.Write(ref _short, 1);
        Log.OutOfResources(_logger, listening, e.Message, failures);
    }

    /// <summary>After a reported failure, the first accept that works says so.</summary>
    private void Accepted(EndPoint listening)
    {
        if (Volatile.Read(ref _short) == 0 || Interlocked.Exchange(ref _short, 0) == 0) return;
        Log.AcceptingAgain(_logger, listening, (Environment.TickCount64 - Interlocked.Read(ref _reportedAt)) / 1000.0);
    }

    private sealed class Listener(GuardedSocketTransport transport, Socket socket) : IConnectionListener
    {
        public EndPoint EndPoint { get; } = socket.LocalEndPoint!;

        public async ValueTask<ConnectionContext?> AcceptAsync(CancellationToken cancellationToken = default)
        {
            var pause = TimeSpan.Zero;
            while (true)
            {
                Socket accepted;
                try
                {
                    accepted = await socket.AcceptAsync(cancellationToken);
                }
                catch (Exception e) when (e is ObjectDisposedException or OperationCanceledException
                                               || e is SocketException { SocketErrorCode: SocketError.OperationAborted })
                {
                    return null;
                }
                catch (SocketException e) when (e.SocketErrorCode is SocketError.TooManyOpenSockets or SocketError.NoBufferSpaceAvailable)
                {
                    transport.Short(e, EndPoint);
                    if (pause == TimeSpan.Zero) pause = FirstPause;
                    try
                    {
                        await Task.Delay(pause, cancellationToken);
                    }
                    catch (OperationCanceledException)
                    {
                        return null;
                    }
                    pause = pause * 2 < LongestPause ? pause * 2 : LongestPause;
                    continue;
                }
                catch (SocketException)
                {
                    // The connection was reset while it waited in the backlog: take the next one.
                    continue;
                }
                transport.Accepted(EndPoint);
                accepted.NoDelay = true;
                return transport._connections.Create(accepted);
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

    private static partial class Log
    {
        [LoggerMessage(Level = LogLevel.Warning, Message = "Cannot accept connections on {EndPoint}: {Reason} ({Failures} failed accepts since the last report). Existing connections are served; the stalest half-open logins are shed and accepting is retried, at most once a second, until descriptors are free")]
        public static partial void OutOfResources(ILogger logger, EndPoint endPoint, string reason, long failures);

        [LoggerMessage(Level = LogLevel.Warning, Message = "Accepting connections again on {EndPoint}, {Seconds:F1} s after the report")]
        public static partial void AcceptingAgain(ILogger logger, EndPoint endPoint, double seconds);
    }
}
