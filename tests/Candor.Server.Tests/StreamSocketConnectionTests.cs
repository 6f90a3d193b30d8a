using System.Buffers;
using System.IO.Pipelines;
using System.Net;
using System.Net.Sockets;
using System.Text;
using Candor.Server.Hosting;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Connections.Features;

namespace Candor.Server.Tests;

/// <summary>
/// The c2s listeners' socket connection, over real loopback sockets: bytes of every size both ways, partial
/// consumption, the ways a read ends (data, cancellation, token, the peer's close, our close, abort), and no buffer
/// held by an idle connection.
/// </summary>
public class StreamSocketConnectionTests
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(10);

    [Theory]
    [InlineData(1)]
    [InlineData(4096)]
    [InlineData(300_000)]
    public async Task Bytes_flow_both_ways_and_no_buffer_is_held_once_they_are_consumed_and_sent(int size)
    {
        await using var pair = await Pair.StartAsync();
        var sent = RandomBytes(size);

        var sending = pair.Client.SendAsync(sent, SocketFlags.None);
        var received = await pair.ReadExactlyAsync(size);
        await sending;
        Assert.Equal(sent, received);
        Assert.False(pair.Connection.HoldsBuffer);

        await pair.Connection.Transport.Output.WriteAsync(sent);
        Assert.False(pair.Connection.HoldsBuffer);
        Assert.Equal(sent, await pair.ClientReadExactlyAsync(size));
    }

    [Fact]
    public async Task What_a_read_leaves_unconsumed_comes_again_with_what_arrives_next()
    {
        await using var pair = await Pair.StartAsync();
        var input = pair.Connection.Transport.Input;
        await pair.Client.SendAsync("abcdef"u8.ToArray(), SocketFlags.None);

        var first = await input.ReadAsync().AsTask().WaitAsync(Timeout);
        Assert.Equal("abcdef", Text(first.Buffer));
        input.AdvanceTo(first.Buffer.GetPosition(3), first.Buffer.End);
        Assert.True(pair.Connection.HoldsBuffer);

        var next = input.ReadAsync().AsTask();
        await Task.Delay(100);
        Assert.False(next.IsCompleted, "a read returned although nothing new arrived");
        await pair.Client.SendAsync("gh"u8.ToArray(), SocketFlags.None);
        var second = await next.WaitAsync(Timeout);
        Assert.Equal("defgh", Text(second.Buffer));
        input.AdvanceTo(second.Buffer.End);
        Assert.False(pair.Connection.HoldsBuffer);
    }

    [Fact]
    public async Task CancelPendingRead_ends_a_waiting_read_as_canceled_and_the_next_read_gets_the_data()
    {
        await using var pair = await Pair.StartAsync();
        var input = pair.Connection.Transport.Input;

        var waiting = input.ReadAsync().AsTask();
        await Task.Delay(50);
        input.CancelPendingRead();
        var canceled = await waiting.WaitAsync(Timeout);
        Assert.True(canceled.IsCanceled);
        Assert.False(canceled.IsCompleted);
        input.AdvanceTo(canceled.Buffer.End);

        // Canceled with no read waiting: the next read is the canceled one.
        input.CancelPendingRead();
        Assert.True((await input.ReadAsync().AsTask().WaitAsync(Timeout)).IsCanceled);

        await pair.SendAndReadAsync("x");
    }

    [Fact]
    public async Task A_canceled_token_ends_a_waiting_read_with_OperationCanceledException_and_reading_goes_on()
    {
        await using var pair = await Pair.StartAsync();
        var input = pair.Connection.Transport.Input;
        using var cancel = new CancellationTokenSource();

        var waiting = input.ReadAsync(cancel.Token).AsTask();
        await Task.Delay(50);
        await cancel.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => waiting.WaitAsync(Timeout));

        await pair.SendAndReadAsync("after");
    }

    [Fact]
    public async Task The_peer_closing_ends_reading_after_what_it_sent()
    {
        await using var pair = await Pair.StartAsync();
        var input = pair.Connection.Transport.Input;
        await pair.Client.SendAsync("last words"u8.ToArray(), SocketFlags.None);
        pair.Client.Shutdown(SocketShutdown.Send);

        var text = new StringBuilder();
        while (true)
        {
            var result = await input.ReadAsync().AsTask().WaitAsync(Timeout);
            text.Append(Text(result.Buffer));
            input.AdvanceTo(result.Buffer.End);
            if (result.IsCompleted) break;
        }
        Assert.Equal("last words", text.ToString());
        Assert.False(pair.Connection.HoldsBuffer);
    }

    [Fact]
    public async Task Completing_the_output_sends_everything_then_closes_and_a_waiting_read_just_ends()
    {
        await using var pair = await Pair.StartAsync();
        var input = pair.Connection.Transport.Input;
        var output = pair.Connection.Transport.Output;
        var waiting = input.ReadAsync().AsTask();
        var sent = RandomBytes(200_000);

        sent.CopyTo(output.GetSpan(sent.Length));
        output.Advance(sent.Length);
        var reading = pair.ClientReadToEndAsync();
        await output.CompleteAsync().AsTask().WaitAsync(Timeout);

        Assert.Equal(sent, await reading.WaitAsync(Timeout));
        Assert.True((await waiting.WaitAsync(Timeout)).IsCompleted);
        Assert.Equal(1, pair.Closed);
        await pair.Connection.DisposeAsync();
        Assert.Equal(1, pair.Closed);
    }

    [Fact]
    public async Task Closing_with_bytes_from_the_peer_left_unread_still_ends_with_everything_sent_not_a_reset()
    {
        await using var pair = await Pair.StartAsync();
        // A slow reader: most of what is sent is still queued on the server's side when it closes.
        pair.Client.ReceiveBufferSize = 64 * 1024;
        await pair.Client.SendAsync(RandomBytes(20_000), SocketFlags.None);
        await Task.Delay(100);
        var sent = RandomBytes(2_000_000);

        var reading = pair.ClientReadToEndAsync();
        await pair.Connection.Transport.Output.WriteAsync(sent);
        await pair.Connection.DisposeAsync();

        Assert.Equal(sent, await reading.WaitAsync(Timeout));
    }

    [Fact]
    public async Task Abort_closes_at_once_a_waiting_read_fails_and_flushes_report_the_output_completed()
    {
        await using var pair = await Pair.StartAsync();
        var input = pair.Connection.Transport.Input;
        var waiting = input.ReadAsync().AsTask();

        pair.Connection.Abort(new ConnectionAbortedException("test"));

        await Assert.ThrowsAsync<ConnectionAbortedException>(() => waiting.WaitAsync(Timeout));
        Assert.Equal(0, await pair.Client.ReceiveAsync(new byte[16].AsMemory(), SocketFlags.None).AsTask().WaitAsync(Timeout));
        var flushed = await pair.Connection.Transport.Output.WriteAsync("too late"u8.ToArray());
        Assert.True(flushed.IsCompleted);
        Assert.Equal(1, pair.Closed);
    }

    [Fact]
    public async Task Writing_to_a_peer_that_reset_the_connection_reports_the_output_completed_not_an_exception()
    {
        await using var pair = await Pair.StartAsync();
        pair.Client.LingerState = new LingerOption(true, 0);
        pair.Client.Close();
        await Task.Delay(100);

        FlushResult flushed = default;
        for (var i = 0; i < 20 && !flushed.IsCompleted; i++)
            flushed = await pair.Connection.Transport.Output.WriteAsync(RandomBytes(64 * 1024)).AsTask().WaitAsync(Timeout);
        Assert.True(flushed.IsCompleted);
        Assert.False(pair.Connection.HoldsBuffer);
    }

    [Fact]
    public async Task Input_left_unconsumed_past_a_megabyte_fails_the_read_instead_of_growing_on()
    {
        await using var pair = await Pair.StartAsync();
        var input = pair.Connection.Transport.Input;
        var sending = pair.Client.SendAsync(RandomBytes(1_200_000), SocketFlags.None);

        var failure = await Assert.ThrowsAsync<IOException>(async () =>
        {
            while (true)
            {
                var result = await input.ReadAsync().AsTask().WaitAsync(Timeout);
                input.AdvanceTo(result.Buffer.Start, result.Buffer.End);
            }
        });
        Assert.Contains("not consumed", failure.Message);
        pair.Connection.Abort(new ConnectionAbortedException());
        try
        {
            await sending.WaitAsync(Timeout);
        }
        catch (SocketException)
        {
            // Reset by the abort before the kernel took it all: either way the client is not left hanging.
        }
    }

    [Fact]
    public async Task Features_keep_what_is_set_replaced_and_removed_past_the_first_five()
    {
        await using var pair = await Pair.StartAsync();
        var features = pair.Connection.Features;
        var types = new[] { typeof(int), typeof(long), typeof(string), typeof(byte), typeof(char), typeof(short), typeof(double) };
        foreach (var type in types) features[type] = type.Name;
        features[typeof(string)] = "replaced";
        features[typeof(long)] = null;

        Assert.Equal("replaced", features[typeof(string)]);
        Assert.Null(features[typeof(long)]);
        Assert.Equal("Double", features[typeof(double)]);
        Assert.Equal(types.Length - 1, features.Count());
        Assert.Equal(types.Where(t => t != typeof(long)).OrderBy(t => t.Name), features.Select(f => f.Key).OrderBy(t => t.Name));
        features.Set<IConnectionEndPointFeature>(null);
        Assert.Null(features.Get<IConnectionEndPointFeature>());
        Assert.Equal(types.Length + 3, features.Revision);
    }

    private static byte[] RandomBytes(int size)
    {
        var bytes = new byte[size];
        Random.Shared.NextBytes(bytes);
        return bytes;
    }

    private static string Text(ReadOnlySequence<byte> bytes) => Encoding.ASCII.GetString(bytes);

    /// <summary>A connection accepted from a loopback listener, and the client socket at its other end.</summary>
    private sealed class Pair : IAsyncDisposable
    {
        private int _closed;

        private Pair(Socket client, Socket accepted)
        {
            Client = client;
            Connection = new StreamSocketConnection(accepted, _ => Interlocked.Increment(ref _closed));
        }

        public Socket Client { get; }
        public StreamSocketConnection Connection { get; }
        public int Closed => Volatile.Read(ref _closed);

        public static async Task<Pair> StartAsync()
        {
            using var listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
            listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
            listener.Listen();
            var client = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
            var accepting = listener.AcceptAsync();
            await client.ConnectAsync(listener.LocalEndPoint!);
            return new Pair(client, await accepting);
        }

        /// <summary>The client sends <paramref name="text"/>, and the connection's next read is exactly that.</summary>
        public async Task SendAndReadAsync(string text)
        {
            await Client.SendAsync(Encoding.ASCII.GetBytes(text), SocketFlags.None);
            var input = Connection.Transport.Input;
            var data = await input.ReadAsync().AsTask().WaitAsync(Timeout);
            Assert.False(data.IsCanceled);
            Assert.Equal(text, Text(data.Buffer));
            input.AdvanceTo(data.Buffer.End);
        }

        public async Task<byte[]> ReadExactlyAsync(int size)
        {
            var input = Connection.Transport.Input;
            var received = new byte[size];
            var count = 0;
            while (count < size)
            {
                var result = await input.ReadAsync().AsTask().WaitAsync(Timeout);
                var take = (int)Math.Min(result.Buffer.Length, size - count);
                result.Buffer.Slice(0, take).CopyTo(received.AsSpan(count));
                count += take;
                input.AdvanceTo(result.Buffer.GetPosition(take));
                Assert.False(result.IsCompleted && count < size, "the connection ended early");
            }
            return received;
        }

        public async Task<byte[]> ClientReadExactlyAsync(int size)
        {
            var received = new byte[size];
            for (var count = 0; count < size;)
            {
                var n = await Client.ReceiveAsync(received.AsMemory(count), SocketFlags.None).AsTask().WaitAsync(Timeout);
                Assert.NotEqual(0, n);
                count += n;
            }
            return received;
        }

        public async Task<byte[]> ClientReadToEndAsync()
        {
            using var stream = new NetworkStream(Client, ownsSocket: false);
            using var all = new MemoryStream();
            await stream.CopyToAsync(all);
            return all.ToArray();
        }

        public async ValueTask DisposeAsync()
        {
            await Connection.DisposeAsync();
            Client.Dispose();
        }
    }
}
