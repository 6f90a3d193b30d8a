using System.Buffers;
using System.IO.Pipelines;
using System.Net.Sockets;
using System.Threading.Tasks.Sources;
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

    /// <summary>
    /// Reads from the socket. One zero-byte receive is outstanding at most; a read waits for it (its continuation
    /// completes the read), and <see cref="CancelPendingRead"/> or the caller's token can end the wait first.
    /// </summary>
    private sealed class SocketInput : PipeReader, IValueTaskSource<ReadResult>
    {
        private const int BufferSize = 4096;
        /// <summary>Bytes buffered unconsumed at most (Kestrel's default): the parser's own stanza limit is far below it.</summary>
        private const int MaxBuffered = 1 << 20;
        private const int Idle = 0, Pending = 1;

        private readonly StreamSocketConnection _connection;
        private readonly Action _onDataReady;
        private ManualResetValueTaskSourceCore<ReadResult> _read;
        private CancellationTokenRegistration _cancellation;
        private CancellationToken _readToken;
        private ValueTask<int> _wait;
        private byte[]? _buffer;
        private int _start, _end, _examined;
        private int _readState;
        private volatile bool _waiting;
        private volatile bool _dataReady;
        private volatile bool _cancelNext;
        private bool _ended;
        private bool _completed;
        private Exception? _error;

        public bool HoldsBuffer => _buffer is not null;

        public SocketInput(StreamSocketConnection connection)
        {
            _connection = connection;
            _onDataReady = OnDataReady;
        }

        public override ValueTask<ReadResult> ReadAsync(CancellationToken cancellationToken = default)
        {
            ObjectDisposedException.ThrowIf(_completed, this);
            if (_cancelNext)
            {
                _cancelNext = false;
                return new(Result(canceled: true));
            }
            cancellationToken.ThrowIfCancellationRequested();
            while (_end == _examined && !_ended && _error is null)
            {
                if (_waiting) return Wait(cancellationToken);
                if (!_dataReady && !StartWaiting()) return Wait(cancellationToken);
                _dataReady = false;
                Receive();
            }
            if (_error is { } error) throw error;
            return new(Result(canceled: false));
        }

        /// <summary>Starts the zero-byte receive; false when it is still waiting.</summary>
        private bool StartWaiting()
        {
            ValueTask<int> wait;
            try
            {
                wait = _connection._socket.ReceiveAsync(Memory<byte>.Empty, SocketFlags.None);
            }
            catch (Exception e) when (e is SocketException or ObjectDisposedException)
            {
                Fail(e);
                return true;
            }
            if (wait.IsCompleted)
            {
                Observe(wait);
                return true;
            }
            _wait = wait;
            _waiting = true;
            wait.ConfigureAwait(false).GetAwaiter().UnsafeOnCompleted(_onDataReady);
            return false;
        }

        private void Observe(ValueTask<int> wait)
        {
            try
            {
                wait.GetAwaiter().GetResult();
            }
            catch (Exception e) when (e is SocketException or ObjectDisposedException)
            {
                Fail(e);
            }
        }

        private void Fail(Exception e)
        {
            // Closed by us after the output ended: the peer has had the whole stream, and reading simply ends.
            if (Volatile.Read(ref _connection._state) == 1) _ended = true;
            else _error = _connection.Failure(e);
        }

        /// <summary>The socket has no more to give: the peer closed its side, or we closed or aborted the connection.</summary>
        private void Ended()
        {
            if (_connection.Aborted) _error = new ConnectionAbortedException("The connection was aborted.");
            else _ended = true;
        }

        private ValueTask<ReadResult> Wait(CancellationToken cancellationToken)
        {
            _read.Reset();
            _readToken = cancellationToken;
            _cancellation = cancellationToken.CanBeCanceled
                ? cancellationToken.UnsafeRegister(static state => ((SocketInput)state!).EndWaitLater(Ending.ByToken), this)
                : default;
            Publish();
            return new(this, _read.Version);
        }

        /// <summary>
        /// Makes the read pending, then completes it at once if what it waits for came meanwhile: the zero-byte
        /// receive's end, a cancellation, or its token (whose callback found no pending read to end).
        /// </summary>
        private void Publish()
        {
            Interlocked.Exchange(ref _readState, Pending);
            if (_readToken.IsCancellationRequested) EndWait(Ending.ByToken);
            else if (_cancelNext) EndWait(Ending.Canceled);
            else if (!_waiting) EndWait(Ending.Data);
        }

        private void OnDataReady()
        {
            Observe(_wait);
            _wait = default;
            // In this order: a read that sees the wait over must also see its data ready.
            _dataReady = true;
            _waiting = false;
            EndWait(Ending.Data);
        }

        private enum Ending { Data, Canceled, ByToken }

        /// <summary>Ends a pending read from the thread pool: its continuation must not run inside whoever cancels.</summary>
        private void EndWaitLater(Ending ending) =>
            ThreadPool.UnsafeQueueUserWorkItem(static state => state.Input.EndWait(state.Ending), (Input: this, Ending: ending), preferLocal: false);

        /// <summary>Completes the pending read, if there is one and nothing else completed it first.</summary>
        private void EndWait(Ending ending)
        {
            if (Interlocked.CompareExchange(ref _readState, Idle, Pending) != Pending)
            {
                // No read is pending: the next one is canceled.
                if (ending == Ending.Canceled) _cancelNext = true;
                return;
            }
            if (ending == Ending.ByToken)
            {
                _cancellation.Unregister();
                _read.SetException(new OperationCanceledException(_readToken));
                return;
            }
            if (ending == Ending.Canceled || _cancelNext)
            {
                _cancelNext = false;
                _cancellation.Unregister();
                _read.SetResult(Result(canceled: true));
                return;
            }
            while (_end == _examined && !_ended && _error is null && _dataReady)
            {
                _dataReady = false;
                Receive();
                if (_end != _examined || _ended || _error is not null) break;
                // The data the zero-byte receive saw is gone (it should not be): wait again.
                if (!StartWaiting())
                {
                    Publish();
                    return;
                }
                _dataReady = true;
            }
            _cancellation.Unregister();
            if (_error is { } error) _read.SetException(error);
            else _read.SetResult(Result(canceled: false));
        }

        /// <summary>Receives what the socket has without waiting.</summary>
        private void Receive()
        {
            if (_buffer is null)
            {
                _buffer = ArrayPool<byte>.Shared.Rent(BufferSize);
                _start = _end = _examined = 0;
            }
            else if (_buffer.Length - _end < BufferSize / 2)
            {
                MakeRoom();
                if (_error is not null) return;
            }
            int received;
            SocketError error;
            try
            {
                received = _connection._socket.Receive(_buffer.AsSpan(_end), SocketFlags.None, out error);
            }
            catch (ObjectDisposedException e)
            {
                Fail(e);
                return;
            }
            if (error == SocketError.WouldBlock) return;
            if (error != SocketError.Success) Fail(new SocketException((int)error));
            else if (received == 0) Ended();
            else _end += received;
        }

        private void MakeRoom()
        {
            var buffer = _buffer!;
            var unconsumed = _end - _start;
            if (_start > 0 && buffer.Length - unconsumed >= BufferSize / 2)
            {
                buffer.AsSpan(_start, unconsumed).CopyTo(buffer);
            }
            else if (buffer.Length >= MaxBuffered)
            {
                _error = new IOException($"more than {MaxBuffered} bytes received and not consumed");
                return;
            }
            else
            {
                var larger = ArrayPool<byte>.Shared.Rent(buffer.Length * 2);
                buffer.AsSpan(_start, unconsumed).CopyTo(larger);
                ArrayPool<byte>.Shared.Return(buffer);
                _buffer = larger;
            }
            _examined -= _start;
            _end = unconsumed;
            _start = 0;
        }

        private ReadResult Result(bool canceled) => new(
            _buffer is null ? ReadOnlySequence<byte>.Empty : new ReadOnlySequence<byte>(_buffer, _start, _end - _start),
            canceled, isCompleted: _ended && _end == _examined);

        public override bool TryRead(out ReadResult result)
        {
            ObjectDisposedException.ThrowIf(_completed, this);
            if (_cancelNext)
            {
                _cancelNext = false;
                result = Result(canceled: true);
                return true;
            }
            result = Result(canceled: false);
            return _end > _examined || _ended;
        }

        public override void AdvanceTo(SequencePosition consumed) => AdvanceTo(consumed, consumed);

        public override void AdvanceTo(SequencePosition consumed, SequencePosition examined)
        {
            if (_buffer is null) return;
            _start = consumed.GetObject() is null ? _start : consumed.GetInteger();
            _examined = Math.Max(_start, examined.GetObject() is null ? _examined : examined.GetInteger());
            if (_start != _end) return;
            // All consumed: an idle connection holds no buffer.
            ArrayPool<byte>.Shared.Return(_buffer);
            _buffer = null;
            _start = _end = _examined = 0;
        }

        public override void CancelPendingRead()
        {
            if (Volatile.Read(ref _readState) == Pending) EndWaitLater(Ending.Canceled);
            else _cancelNext = true;
        }

        public override void Complete(Exception? exception = null)
        {
            if (_completed) return;
            _completed = true;
            if (_readState == Idle && _buffer is { } buffer)
            {
                _buffer = null;
                ArrayPool<byte>.Shared.Return(buffer);
            }
        }

        public ReadResult GetResult(short token) => _read.GetResult(token);
        public ValueTaskSourceStatus GetStatus(short token) => _read.GetStatus(token);

        public void OnCompleted(Action<object?> continuation, object? state, short token, ValueTaskSourceOnCompletedFlags flags) =>
            _read.OnCompleted(continuation, state, token, flags);
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
