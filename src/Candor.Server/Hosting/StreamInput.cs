namespace Candor.Server.Hosting;

/// <summary>
/// Reads from a stream that supports zero-byte reads (SslStream over a connection): an idle TLS connection then waits
/// without a read buffer, and keeps none of <c>PipeReader.Create</c>'s segments, token source and parked read.
/// </summary>
internal sealed class StreamInput(Stream stream) : ZeroByteReader
{
    protected override ValueTask<int> WaitAsync() => stream.ReadAsync(Memory<byte>.Empty);

    protected override int ReceiveNow(Memory<byte> into, out ValueTask<int> later)
    {
        // After the zero-byte read SslStream has decrypted bytes, so this nearly always completes at once.
        later = stream.ReadAsync(into);
        if (!later.IsCompleted) return Later;
        var received = later.GetAwaiter().GetResult();
        later = default;
        return received;
    }

    protected override Exception? Failure(Exception e) => e;
}
