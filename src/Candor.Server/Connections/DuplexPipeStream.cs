using System.Buffers;
using System.IO.Pipelines;

namespace Candor.Server.Connections;

/// <summary>
/// A Stream over a connection's pipes, so that SslStream can wrap the transport mid-stream (STARTTLS). Reads
/// tell <paramref name="idle"/> (when given) when SslStream leaves OpenSSL to wait for the transport, and when it may enter it
/// again (data arrived).
/// </summary>
internal sealed class DuplexPipeStream(PipeReader input, PipeWriter output, TlsIdleMemory? idle = null) : Stream
{
    private readonly Stream _writer = output.AsStream(leaveOpen: true);

    public override bool CanRead => true;
    public override bool CanSeek => false;
    public override bool CanWrite => true;
    public override long Length => throw new NotSupportedException();
    public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

    public override int Read(byte[] buffer, int offset, int count) => ReadAsync(buffer.AsMemory(offset, count)).AsTask().GetAwaiter().GetResult();
    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) => ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        idle?.Exit(TlsIdleMemory.Reading);
        return ReadCoreAsync(buffer, cancellationToken);
    }

    private async ValueTask<int> ReadCoreAsync(Memory<byte> buffer, CancellationToken cancellationToken)
    {
        var result = await input.ReadAsync(cancellationToken);
        idle?.Enter(TlsIdleMemory.Reading);
        if (result.IsCanceled) throw new OperationCanceledException(cancellationToken);
        var data = result.Buffer;
        var count = (int)Math.Min(data.Length, buffer.Length);
        data.Slice(0, count).CopyTo(buffer.Span);
        input.AdvanceTo(data.GetPosition(count));
        return count;
    }

    public override void Write(byte[] buffer, int offset, int count) => _writer.Write(buffer, offset, count);
    public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default) => _writer.WriteAsync(buffer, cancellationToken);
    public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) => _writer.WriteAsync(buffer, offset, count, cancellationToken);
    public override void Flush() => _writer.Flush();
    public override Task FlushAsync(CancellationToken cancellationToken) => _writer.FlushAsync(cancellationToken);
    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
    public override void SetLength(long value) => throw new NotSupportedException();
}
