using System.Buffers;
using System.IO.Pipelines;
using System.Net.Sockets;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Http.Features;

namespace Candor.Server.Hosting;

/// <summary>
/// A TCP connection of an XMPP stream listener, handed to Kestrel's connection handler like Kestrel's own: the socket
/// read straight into the reader's buffer and written straight from the writer's, without Kestrel's two pipes and
/// their receive and send loops in between. What an idle connection costs is the point: a read waits for data with a
/// zero-byte receive and rents its buffer only once the socket has bytes for it, returning it when they are consumed;
/// written bytes are sent at each flush and their buffer returned. (Kestrel's transport keeps two pipes, two loops and
/// their state per connection, and its receive loop was found waiting in a receive with a 4 KiB buffer on about a
/// quarter of the idle connections of the benchmark: docs/PERFORMANCE.md.) Reads and writes run on the caller's thread.
/// The socket is closed when the output is completed (as Kestrel's transport does), when aborted, or when disposed.
/// </summary>
internal sealed class StreamSocketConnection : ConnectionContext, IDuplexPipe
{
    private static long s_lastId;
    private readonly Socket _socket;
    private readonly Action<StreamSocketConnection> _closed;
    private readonly SocketInput _input;
    private readonly SocketOutput _output;
    private IDictionary<object, object?>? _items;
    private string? _id;
    /// <summary>0 open; 1 closed by us after the output ended; 2 aborted.</summary>
    private int _state;

    public StreamSocketConnection(Socket socket, Action<StreamSocketConnection> closed)
    {
        _socket = socket;
        _closed = closed;
        // Reads are attempted only once a zero-byte receive said data is there; should it be gone, the read must not block.
        socket.Blocking = false;
        LocalEndPoint = socket.LocalEndPoint;
        RemoteEndPoint = socket.RemoteEndPoint;
        _input = new SocketInput(this);
        _output = new SocketOutput(this);
    }

    public override string ConnectionId
    {
        get => _id ??= "s" + Interlocked.Increment(ref s_lastId).ToString("x");
        set => _id = value;
    }

    public override IFeatureCollection Features { get; } = new FewFeatures();

    public override IDictionary<object, object?> Items
    {
        get => _items ??= new ConnectionItems();
        set => _items = value;
    }

    public override IDuplexPipe Transport
    {
        get => this;
        set => throw new NotSupportedException("the transport of a socket connection is its socket");
    }

    public PipeReader Input => _input;
    public PipeWriter Output => _output;

    /// <summary>A read or write buffer is rented (none is while the connection is idle).</summary>
    internal bool HoldsBuffer => _input.HoldsBuffer || _output.HoldsBuffer;

    public override void Abort(ConnectionAbortedException abortReason) => Close(aborted: true);

    public override async ValueTask DisposeAsync()
    {
        // Completing the output closes the socket (it did already if the output was completed before).
        await _output.CompleteAsync();
        _input.Complete();
    }

    private bool Aborted => Volatile.Read(ref _state) == 2;

    private void Close(bool aborted)
    {
        if (Interlocked.CompareExchange(ref _state, aborted ? 2 : 1, 0) != 0) return;
        try
        {
            // Closing a socket with received bytes unread resets the connection, and the peer may then lose the end of
            // what was sent (a stream error): what the peer sent meanwhile is read and dropped first.
            if (!aborted) DrainReceived();
            _socket.Shutdown(SocketShutdown.Both);
        }
        catch (SocketException)
        {
            // Already reset by the peer.
        }
        _socket.Dispose();
        _closed(this);
    }

    private void DrainReceived()
    {
        Span<byte> scratch = stackalloc byte[1024];
        for (var drained = 0; drained < 64 * 1024;)
        {
            var received = _socket.Receive(scratch, SocketFlags.None, out var error);
            if (error != SocketError.Success || received == 0) return;
            drained += received;
        }
    }

    /// <summary>What a failed socket call means to the reader or the writer.</summary>
    private Exception Failure(Exception e) => e switch
    {
        _ when Aborted => new ConnectionAbortedException("The connection was aborted.", e),
        SocketException { SocketErrorCode: SocketError.ConnectionReset or SocketError.ConnectionAborted or SocketError.Shutdown } =>
            new ConnectionResetException(e.Message, e),
        SocketException or ObjectDisposedException => new IOException(e.Message, e),
        _ => e,
    };

    /// <summary>
    /// The connection's features (Kestrel sets four or five on each): a short list searched in order, about a hundred
    /// bytes lighter per connection than <see cref="FeatureCollection"/>'s dictionary.
    /// </summary>
    private sealed class FewFeatures : IFeatureCollection
    {
        private KeyValuePair<Type, object>[] _features = new KeyValuePair<Type, object>[5];
        private int _count;

        public bool IsReadOnly => false;
        public int Revision { get; private set; }

        public object? this[Type key]
        {
            get
            {
                for (var i = 0; i < _count; i++)
                    if (_features[i].Key == key) return _features[i].Value;
                return null;
            }
            set
            {
                Revision++;
                for (var i = 0; i < _count; i++)
                {
                    if (_features[i].Key != key) continue;
                    if (value is not null)
                    {
                        _features[i] = new(key, value);
                        return;
                    }
                    _features[i] = _features[--_count];
                    _features[_count] = default;
                    return;
                }
                if (value is null) return;
                if (_count == _features.Length) Array.Resize(ref _features, _count * 2);
                _features[_count++] = new(key, value);
            }
        }

        public TFeature? Get<TFeature>() => (TFeature?)this[typeof(TFeature)];
        public void Set<TFeature>(TFeature? instance) => this[typeof(TFeature)] = instance;

        public IEnumerator<KeyValuePair<Type, object>> GetEnumerator()
        {
            for (var i = 0; i < _count; i++) yield return _features[i];
        }

        System.Collections.IEnumerator System.Collections.IEnumerable.GetEnumerator() => GetEnumerator();
    }

    /// <summary>Reads from the socket: a zero-byte receive waits, then what the socket has is read without blocking.</summary>
    private sealed class SocketInput(StreamSocketConnection connection) : ZeroByteReader
    {
        protected override ValueTask<int> WaitAsync() => connection._socket.ReceiveAsync(Memory<byte>.Empty, SocketFlags.None);

        protected override int ReceiveNow(Memory<byte> into, out ValueTask<int> later)
        {
            later = default;
            var received = connection._socket.Receive(into.Span, SocketFlags.None, out var error);
            return error switch
            {
                SocketError.Success => received,
                SocketError.WouldBlock => WouldBlock,
                _ => throw new SocketException((int)error),
            };
        }

        // Closed by us after the output ended: the peer has had the whole stream, and reading simply ends.
        protected override Exception? Failure(Exception e) => Volatile.Read(ref connection._state) == 1 ? null : connection.Failure(e);

        /// <summary>The socket has no more to give: the peer closed its side, or we closed or aborted the connection.</summary>
        protected override Exception? AtEnd() => connection.Aborted ? new ConnectionAbortedException("The connection was aborted.") : null;
    }

    /// <summary>Sends at each flush; the socket is closed when the output completes.</summary>
    private sealed class SocketOutput(StreamSocketConnection connection) : BufferedPipeWriter
    {
        protected override bool Ended => connection._state != 0;

        protected override ValueTask<FlushResult> SendAsync(ReadOnlyMemory<byte> data, CancellationToken cancellationToken)
        {
            // Sent at once while the socket's buffer has room (nearly always): the socket's asynchronous send state,
            // about 360 bytes kept for the connection's life once used, is then never made.
            int sent;
            SocketError error;
            try
            {
                sent = connection._socket.Send(data.Span, SocketFlags.None, out error);
            }
            catch (ObjectDisposedException e)
            {
                return new(Failed(e));
            }
            if (error == SocketError.Success && sent == data.Length) return new(default(FlushResult));
            if (error is not (SocketError.Success or SocketError.WouldBlock)) return new(Failed(new SocketException((int)error)));
            if (error == SocketError.WouldBlock) sent = 0;
            try
            {
                return AwaitSendAsync(connection._socket.SendAsync(data[sent..], SocketFlags.None, cancellationToken));
            }
            catch (Exception e) when (e is SocketException or ObjectDisposedException)
            {
                return new(Failed(e));
            }
        }

        private async ValueTask<FlushResult> AwaitSendAsync(ValueTask<int> send)
        {
            try
            {
                await send;
            }
            catch (Exception e) when (e is SocketException or ObjectDisposedException)
            {
                return Failed(e);
            }
            return default;
        }

        /// <summary>The peer is gone: like Kestrel's pipe once its send loop ended, the flush reports the output completed.</summary>
        private FlushResult Failed(Exception e)
        {
            if (e is not ObjectDisposedException) connection.Close(aborted: true);
            return new FlushResult(isCanceled: false, isCompleted: true);
        }

        protected override ValueTask EndAsync(Exception? exception)
        {
            connection.Close(aborted: exception is not null);
            return ValueTask.CompletedTask;
        }
    }
}
