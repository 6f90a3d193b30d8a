using System.Buffers;
using System.IO.Pipelines;
using System.Security.Cryptography;
using System.Text;
using Candor.Server.Hosting;

namespace Candor.Server.Tests;

/// <summary>
/// The reader of a TLS connection's decrypted input, over a real SslStream on loopback TCP: bytes of every size, no
/// buffer held while waiting or once everything is consumed, cancellation, the peer's end; and, over a stream made to
/// behave so, a read that goes on after the zero-byte read said bytes were there, and a failing stream.
/// </summary>
public class StreamInputTests
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(10);

    [Theory]
    [InlineData(1)]
    [InlineData(4096)]
    [InlineData(300_000)]
    public async Task Bytes_of_every_size_arrive_whole_and_no_buffer_is_held_once_they_are_consumed(int size)
    {
        await using var pair = await TlsPair.StartAsync();
        var input = new StreamInput(pair.Server);
        var sent = RandomNumberGenerator.GetBytes(size);

        var sending = pair.Peer.WriteAsync(sent).AsTask();
        var received = new MemoryStream();
        while (received.Length < size)
        {
            var result = await input.ReadAsync().AsTask().WaitAsync(Timeout);
            foreach (var segment in result.Buffer) received.Write(segment.Span);
            input.AdvanceTo(result.Buffer.End);
        }
        await sending;
        Assert.Equal(sent, received.ToArray());
        Assert.False(input.HoldsBuffer);
    }

    [Fact]
    public async Task A_waiting_read_holds_no_buffer_and_CancelPendingRead_ends_it_without_losing_what_comes_next()
    {
        await using var pair = await TlsPair.StartAsync();
        var input = new StreamInput(pair.Server);

        var waiting = input.ReadAsync().AsTask();
        await Task.Delay(100);
        Assert.False(waiting.IsCompleted, "a read returned although nothing was sent");
        Assert.False(input.HoldsBuffer);
        input.CancelPendingRead();
        var canceled = await waiting.WaitAsync(Timeout);
        Assert.True(canceled.IsCanceled);
        input.AdvanceTo(canceled.Buffer.End);

        await pair.Peer.WriteAsync("<presence/>"u8.ToArray());
        Assert.Equal("<presence/>", await ReadTextAsync(input.ReadAsync().AsTask(), input));
        Assert.False(input.HoldsBuffer);
    }

    [Fact]
    public async Task What_a_read_leaves_unconsumed_comes_again_with_what_arrives_next()
    {
        await using var pair = await TlsPair.StartAsync();
        var input = new StreamInput(pair.Server);
        await pair.Peer.WriteAsync("abcdef"u8.ToArray());

        var first = await input.ReadAsync().AsTask().WaitAsync(Timeout);
        Assert.Equal("abcdef", Encoding.UTF8.GetString(first.Buffer.ToArray()));
        input.AdvanceTo(first.Buffer.GetPosition(3), first.Buffer.End);
        Assert.True(input.HoldsBuffer);

        var next = input.ReadAsync().AsTask();
        await Task.Delay(100);
        Assert.False(next.IsCompleted, "a read returned although nothing new arrived");
        await pair.Peer.WriteAsync("gh"u8.ToArray());
        Assert.Equal("defgh", await ReadTextAsync(next, input));
        Assert.False(input.HoldsBuffer);
    }

    [Fact]
    public async Task The_peers_close_completes_the_input_after_its_last_bytes()
    {
        await using var pair = await TlsPair.StartAsync();
        var input = new StreamInput(pair.Server);
        await pair.Peer.WriteAsync("</stream:stream>"u8.ToArray());
        await pair.Peer.ShutdownAsync();

        var text = "";
        while (true)
        {
            var result = await input.ReadAsync().AsTask().WaitAsync(Timeout);
            text += Encoding.UTF8.GetString(result.Buffer.ToArray());
            input.AdvanceTo(result.Buffer.End);
            if (result.IsCompleted) break;
        }
        Assert.Equal("</stream:stream>", text);
    }

    [Fact]
    public async Task A_read_that_goes_on_after_the_wait_fills_the_buffer_later_and_cancellation_does_not_take_its_buffer()
    {
        var stream = new ScriptedStream();
        var input = new StreamInput(stream);

        var reading = input.ReadAsync().AsTask();
        Assert.False(reading.IsCompleted);
        input.CancelPendingRead();
        var canceled = await reading.WaitAsync(Timeout);
        Assert.True(canceled.IsCanceled);
        input.AdvanceTo(canceled.Buffer.End);
        Assert.True(input.HoldsBuffer, "the buffer a read still fills was given back");

        var next = input.ReadAsync().AsTask();
        stream.Fill("<iq/>"u8);
        Assert.Equal("<iq/>", await ReadTextAsync(next, input));
        Assert.False(input.HoldsBuffer);
    }

    [Fact]
    public async Task A_failing_stream_fails_the_read_with_its_exception()
    {
        var stream = new ScriptedStream { Failure = new IOException("connection reset") };
        var input = new StreamInput(stream);

        var error = await Assert.ThrowsAsync<IOException>(() => input.ReadAsync().AsTask().WaitAsync(Timeout));
        Assert.Equal("connection reset", error.Message);
    }

    /// <summary>The text a read returns, not canceled, all of it then consumed.</summary>
    private static async Task<string> ReadTextAsync(Task<ReadResult> reading, PipeReader input)
    {
        var result = await reading.WaitAsync(Timeout);
        Assert.False(result.IsCanceled);
        var text = Encoding.UTF8.GetString(result.Buffer.ToArray());
        input.AdvanceTo(result.Buffer.End);
        return text;
    }

    /// <summary>
    /// A stream whose zero-byte read says bytes are there at once and whose next read completes only when told
    /// (<see cref="Fill"/>), or whose reads fail (<see cref="Failure"/>).
    /// </summary>
    private sealed class ScriptedStream : Stream
    {
        private TaskCompletionSource<int>? _read;
        private Memory<byte> _into;

        public Exception? Failure { get; init; }

        public void Fill(ReadOnlySpan<byte> bytes)
        {
            bytes.CopyTo(_into.Span);
            _read!.SetResult(bytes.Length);
        }

        public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
        {
            if (Failure is not null) return ValueTask.FromException<int>(Failure);
            if (buffer.IsEmpty) return new(0);
            _into = buffer;
            _read = new TaskCompletionSource<int>(TaskCreationOptions.RunContinuationsAsynchronously);
            return new(_read.Task);
        }

        public override bool CanRead => true;
        public override bool CanSeek => false;
        public override bool CanWrite => false;
        public override long Length => throw new NotSupportedException();
        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }
        public override void Flush() { }
        public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }
}
