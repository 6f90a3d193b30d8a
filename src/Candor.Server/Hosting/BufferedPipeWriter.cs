using System.Buffers;
using System.IO.Pipelines;

namespace Candor.Server.Hosting;

/// <summary>
/// A writer that gathers what is written in one rented buffer, hands it on at each flush and gives the buffer back:
/// between flushes it holds no memory, which is what an idle connection's output should cost. One writer at a time,
/// as for any <see cref="PipeWriter"/>; a flush in progress runs to its end (<see cref="CancelPendingFlush"/> does nothing).
/// </summary>
internal abstract class BufferedPipeWriter : PipeWriter
{
    private const int BufferSize = 4096;
    private byte[]? _buffer;
    private int _written;
    private bool _completed;

    public bool HoldsBuffer => _buffer is not null;

    /// <summary>What lies below can take no more: flushes report the output completed.</summary>
    protected virtual bool Ended => false;

    /// <summary>Sends all of <paramref name="data"/>, or says in the result that the output has ended.</summary>
    protected abstract ValueTask<FlushResult> SendAsync(ReadOnlyMemory<byte> data, CancellationToken cancellationToken);

    /// <summary>After the last flush: ends what lies below (<paramref name="exception"/>: the output was abandoned).</summary>
    protected abstract ValueTask EndAsync(Exception? exception);

    public override Memory<byte> GetMemory(int sizeHint = 0)
    {
        Reserve(sizeHint);
        return _buffer.AsMemory(_written);
    }

    public override Span<byte> GetSpan(int sizeHint = 0)
    {
        Reserve(sizeHint);
        return _buffer.AsSpan(_written);
    }

    private void Reserve(int sizeHint)
    {
        ObjectDisposedException.ThrowIf(_completed, this);
        var needed = _written + Math.Max(sizeHint, 1);
        if (_buffer is { } buffer && buffer.Length >= needed) return;
        var larger = ArrayPool<byte>.Shared.Rent(Math.Max(needed, _buffer is null ? BufferSize : _buffer.Length * 2));
        if (_buffer is not null)
        {
            _buffer.AsSpan(0, _written).CopyTo(larger);
            ArrayPool<byte>.Shared.Return(_buffer);
        }
        _buffer = larger;
    }

    public override void Advance(int bytes) => _written += bytes;

    public override bool CanGetUnflushedBytes => true;
    public override long UnflushedBytes => _written;

    public override ValueTask<FlushResult> FlushAsync(CancellationToken cancellationToken = default)
    {
        if (_written == 0 || Ended)
        {
            Release();
            return new(new FlushResult(isCanceled: false, isCompleted: Ended));
        }
        var sending = SendAsync(_buffer.AsMemory(0, _written), cancellationToken);
        if (!sending.IsCompleted) return AwaitSendingAsync(sending);
        Release();
        return sending;
    }

    private async ValueTask<FlushResult> AwaitSendingAsync(ValueTask<FlushResult> sending)
    {
        try
        {
            return await sending;
        }
        finally
        {
            Release();
        }
    }

    private void Release()
    {
        _written = 0;
        if (_buffer is not { } buffer) return;
        _buffer = null;
        ArrayPool<byte>.Shared.Return(buffer);
    }

    public override void CancelPendingFlush()
    {
    }

    public override void Complete(Exception? exception = null) => CompleteAsync(exception).AsTask().GetAwaiter().GetResult();

    public override async ValueTask CompleteAsync(Exception? exception = null)
    {
        if (_completed) return;
        try
        {
            if (exception is null) await FlushAsync();
        }
        finally
        {
            _completed = true;
            Release();
            await EndAsync(exception);
        }
    }
}

/// <summary>A <see cref="BufferedPipeWriter"/> over a stream (the TLS layer of a connection), which it disposes when completed.</summary>
internal sealed class BufferedStreamWriter(Stream stream) : BufferedPipeWriter
{
    protected override ValueTask<FlushResult> SendAsync(ReadOnlyMemory<byte> data, CancellationToken cancellationToken)
    {
        var writing = stream.WriteAsync(data, cancellationToken);
        return writing.IsCompletedSuccessfully ? new(default(FlushResult)) : AwaitWritingAsync(writing);
    }

    private static async ValueTask<FlushResult> AwaitWritingAsync(ValueTask writing)
    {
        await writing;
        return default;
    }

    protected override ValueTask EndAsync(Exception? exception) => stream.DisposeAsync();
}
