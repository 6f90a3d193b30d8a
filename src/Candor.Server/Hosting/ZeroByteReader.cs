using System.Buffers;
using System.IO.Pipelines;
using System.Threading.Tasks.Sources;

namespace Candor.Server.Hosting;

/// <summary>
/// A reader that holds no buffer while it waits: a read waits with a zero-byte read of its source, rents a buffer only
/// once the source has bytes for it, and returns the buffer when they are all consumed (an idle connection then holds
/// nothing but the wait). One wait is outstanding at most; a read waits for it (its continuation completes the read),
/// and <see cref="CancelPendingRead"/> or the caller's token can end the read first, leaving the wait outstanding for
/// the next read.
/// </summary>
internal abstract class ZeroByteReader : PipeReader, IValueTaskSource<ReadResult>
{
    private const int BufferSize = 4096;
    /// <summary>Bytes buffered unconsumed at most (Kestrel's default): the parser's own stanza limit is far below it.</summary>
    private const int MaxBuffered = 1 << 20;
    private const int Idle = 0, Pending = 1;
    /// <summary>What <see cref="ReceiveNow"/> returns when nothing can be read without waiting.</summary>
    protected const int WouldBlock = -1;
    /// <summary>What <see cref="ReceiveNow"/> returns when the read goes on in the background (it completes the wait).</summary>
    protected const int Later = -2;

    private readonly Action _onWaitOver;
    private ManualResetValueTaskSourceCore<ReadResult> _read;
    private CancellationTokenRegistration _cancellation;
    private CancellationToken _readToken;
    private ValueTask<int> _wait;
    private byte[]? _buffer;
    private int _start, _end, _examined;
    private int _readState;
    private volatile bool _waiting;
    /// <summary>The outstanding wait is a read into the buffer at <see cref="_end"/>, not a zero-byte wait.</summary>
    private volatile bool _filling;
    private volatile bool _dataReady;
    private volatile bool _cancelNext;
    private bool _ended;
    private bool _completed;
    private Exception? _error;

    protected ZeroByteReader() => _onWaitOver = OnWaitOver;

    public bool HoldsBuffer => _buffer is not null;

    /// <summary>Starts a zero-byte read: it completes once the source has bytes (or has ended).</summary>
    protected abstract ValueTask<int> WaitAsync();

    /// <summary>
    /// Reads what the source has into <paramref name="into"/>: the count, 0 at its end, <see cref="WouldBlock"/>, or
    /// <see cref="Later"/> with <paramref name="later"/> the read that goes on (rare: the zero-byte wait said bytes were there).
    /// </summary>
    protected abstract int ReceiveNow(Memory<byte> into, out ValueTask<int> later);

    /// <summary>What a failed read surfaces to the reader, or null when the failure simply ends the input.</summary>
    protected abstract Exception? Failure(Exception e);

    /// <summary>What the source's end surfaces to the reader, or null when it simply ends the input.</summary>
    protected virtual Exception? AtEnd() => null;

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
            if (!Receive()) return Wait(cancellationToken);
        }
        if (_error is { } error) throw error;
        return new(Result(canceled: false));
    }

    /// <summary>Starts the zero-byte read; false when it is still waiting.</summary>
    private bool StartWaiting()
    {
        ValueTask<int> wait;
        try
        {
            wait = WaitAsync();
        }
        catch (Exception e)
        {
            Fail(e);
            return true;
        }
        if (wait.IsCompleted)
        {
            Observe(wait);
            return true;
        }
        Outstanding(wait, filling: false);
        return false;
    }

    private void Outstanding(ValueTask<int> wait, bool filling)
    {
        _wait = wait;
        _filling = filling;
        _waiting = true;
        wait.ConfigureAwait(false).GetAwaiter().UnsafeOnCompleted(_onWaitOver);
    }

    /// <summary>The zero-byte read's end, or a read's result.</summary>
    private int Observe(ValueTask<int> wait)
    {
        try
        {
            return wait.GetAwaiter().GetResult();
        }
        catch (Exception e)
        {
            Fail(e);
            return 0;
        }
    }

    private void Fail(Exception e)
    {
        if (Failure(e) is { } error) _error = error;
        else _ended = true;
    }

    private void Ended()
    {
        if (AtEnd() is { } error) _error = error;
        else _ended = true;
    }

    private ValueTask<ReadResult> Wait(CancellationToken cancellationToken)
    {
        _read.Reset();
        _readToken = cancellationToken;
        _cancellation = cancellationToken.CanBeCanceled
            ? cancellationToken.UnsafeRegister(static state => ((ZeroByteReader)state!).EndWaitLater(Ending.ByToken), this)
            : default;
        Publish();
        return new(this, _read.Version);
    }

    /// <summary>
    /// Makes the read pending, then completes it at once if what it waits for came meanwhile: the wait's end, a
    /// cancellation, or its token (whose callback found no pending read to end).
    /// </summary>
    private void Publish()
    {
        Interlocked.Exchange(ref _readState, Pending);
        if (_readToken.IsCancellationRequested) EndWait(Ending.ByToken);
        else if (_cancelNext) EndWait(Ending.Canceled);
        else if (!_waiting) EndWait(Ending.Data);
    }

    private void OnWaitOver()
    {
        var received = Observe(_wait);
        _wait = default;
        if (!_filling)
        {
            // In this order: a read that sees the wait over must also see its data ready.
            _dataReady = true;
        }
        else if (_error is null && !_ended)
        {
            if (received > 0) _end += received;
            else Ended();
        }
        _waiting = false;
        EndWait(Ending.Data);
    }

    private enum Ending { Data, Canceled, ByToken }

    /// <summary>Ends a pending read from the thread pool: its continuation must not run inside whoever cancels.</summary>
    private void EndWaitLater(Ending ending) =>
        ThreadPool.UnsafeQueueUserWorkItem(static state => state.Reader.EndWait(state.Ending), (Reader: this, Ending: ending), preferLocal: false);

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
            if (!Receive())
            {
                // Its read goes on in the background.
                Publish();
                return;
            }
            if (_end != _examined || _ended || _error is not null) break;
            // The data the wait saw is gone (it should not be): wait again.
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

    /// <summary>Receives what the source has without waiting; false when the read goes on in the background.</summary>
    private bool Receive()
    {
        if (_buffer is null)
        {
            _buffer = ArrayPool<byte>.Shared.Rent(BufferSize);
            _start = _end = _examined = 0;
        }
        else if (_buffer.Length - _end < BufferSize / 2)
        {
            MakeRoom();
            if (_error is not null) return true;
        }
        int received;
        ValueTask<int> later;
        try
        {
            received = ReceiveNow(_buffer.AsMemory(_end), out later);
        }
        catch (Exception e)
        {
            Fail(e);
            return true;
        }
        if (received == Later)
        {
            Outstanding(later, filling: true);
            return false;
        }
        if (received == 0) Ended();
        else if (received > 0) _end += received;
        return true;
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
        // All consumed: an idle connection holds no buffer (unless a read still fills it).
        if (_start != _end || (_waiting && _filling)) return;
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
        if (_readState == Idle && !(_waiting && _filling) && _buffer is { } buffer)
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
