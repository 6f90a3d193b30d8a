using System.Net;
using System.Net.Sockets;
using System.Text;
using Candor.Server.Tests.Harness;
using Candor.Xml;
using Candor.Xmpp;

namespace Candor.Server.Tests.Federation;

/// <summary>
/// XEP-0288 (one connection both ways), XEP-0198 on s2s (a connection cut mid-flow loses and duplicates nothing),
/// and a refused outgoing authentication (the stream ends with not-authorized, the sender gets an error).
/// Each test has two servers of its own: the connection counts are the test's.
/// </summary>
public sealed class FederationStreamTests : IAsyncLifetime
{
    private static readonly TimeSpan Slow = TimeSpan.FromSeconds(20);
    private readonly TwoDomains _servers = new();

    public Task InitializeAsync() => _servers.InitializeAsync();
    public Task DisposeAsync() => _servers.DisposeAsync();

    private static async Task EventuallyAsync(Func<bool> condition, string what)
    {
        for (var i = 0; i < 100 && !condition(); i++) await Task.Delay(100);
        Assert.True(condition(), what);
    }

    [Fact]
    public async Task With_bidirectional_streams_one_connection_carries_both_directions()
    {
        var (a, b) = (_servers.A.Server, _servers.B.Server);
        await using var alice = await TwoDomains.OnlineAsync(_servers.A, "alice");
        await using var bob = await TwoDomains.OnlineAsync(_servers.B, "bob");

        await alice.SendMessageAsync(bob.Full, "a to b");
        await bob.ExpectMessageAsync("a to b", Slow);
        // b.test answers over the stream a.test opened (the dialback verification connection b.test made closes).
        await EventuallyAsync(() => b.Metrics.S2sConnections(incoming: false) == 0 && a.Metrics.S2sConnections(incoming: true) == 0,
            "the verification connection should have closed");
        for (var i = 0; i < 3; i++)
        {
            await bob.SendMessageAsync(alice.Full, $"b to a {i}");
            await alice.ExpectMessageAsync($"b to a {i}", Slow);
            await alice.SendMessageAsync(bob.Full, $"a to b {i}");
            await bob.ExpectMessageAsync($"a to b {i}", Slow);
        }
        Assert.Equal(1, a.Metrics.S2sConnections(incoming: false));
        Assert.Equal(0, a.Metrics.S2sConnections(incoming: true));
        Assert.Equal(1, b.Metrics.S2sConnections(incoming: true));
        Assert.Equal(0, b.Metrics.S2sConnections(incoming: false));
    }

    [Fact]
    public async Task A_connection_cut_mid_flow_is_resumed_and_every_message_arrives_exactly_once()
    {
        await using var link = await ThroughProxyAsync();
        var (proxy, alice, bob) = (link.Proxy, link.Alice, link.Bob);

        const int count = 300;
        // First the link stalls both ways with stanzas on it (and bob's acks of those it got held back), then it is
        // cut: what was on it is lost, and a.test must learn from b.test's h what to send again.
        proxy.Stall();
        for (var i = 0; i < 150; i++) await alice.SendMessageAsync(bob.Full, $"n{i}");
        await Task.Delay(500);
        proxy.Cut();
        var sending = Task.Run(async () =>
        {
            for (var i = 150; i < count; i++)
            {
                // Then cut again while stanzas are being written.
                if (i == 220)
                {
                    await EventuallyAsync(() => proxy.Connections == 2, "a.test should have reconnected");
                    proxy.Cut();
                }
                await alice.SendMessageAsync(bob.Full, $"n{i}");
            }
        });
        var received = new List<string>();
        for (var i = 0; i < count; i++)
        {
            var message = await bob.ExpectStanzaAsync("message", m => m.GetChildText("body", Ns.Client)?.StartsWith('n') == true, Slow);
            received.Add(message.GetChildText("body", Ns.Client)!);
        }
        await sending;
        await bob.ExpectNothingAsync(TimeSpan.FromSeconds(1), e => e.IsMessage());
        Assert.Equal(Enumerable.Range(0, count).Select(i => $"n{i}").Order(), received.Order());
        Assert.InRange(proxy.Connections, 3, 4);
        // Acks flow both ways: bob's answer crosses the resumed stream back (XEP-0288) and is acknowledged too.
        await bob.SendMessageAsync(alice.Full, "after the cut");
        await alice.ExpectMessageAsync("after the cut", Slow);
        await alice.ExpectNothingAsync(TimeSpan.FromMilliseconds(300), e => e.IsMessage() && e.Type() == "error");
    }

    [Fact]
    public async Task A_peer_that_refuses_our_dialback_key_gets_not_authorized_and_the_sender_an_error()
    {
        _servers.A.Server.Options.AllowPlaintext = true;
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        _servers.A.Server.Options.S2sRoutes = $"refusing.test=127.0.0.1:{((IPEndPoint)listener.LocalEndpoint).Port}";
        await using var alice = await TwoDomains.OnlineAsync(_servers.A, "alice");
        await alice.SendAsync("<message to='x@refusing.test' id='r1' type='chat'><body>hello?</body></message>");

        using var peer = await listener.AcceptTcpClientAsync();
        var stream = peer.GetStream();
        Assert.Contains("from='a.test'", await ReadUntilAsync(stream, "to='refusing.test'>"));
        await stream.WriteAsync(Encoding.UTF8.GetBytes(
            "<?xml version='1.0'?><stream:stream xmlns='jabber:server' xmlns:stream='http://etherx.jabber.org/streams' xmlns:db='jabber:server:dialback' " +
            "version='1.0' from='refusing.test' to='a.test' id='s1'><stream:features><dialback xmlns='urn:xmpp:features:dialback'/></stream:features>"));
        Assert.Contains("<db:result from='a.test' to='refusing.test'>", await ReadUntilAsync(stream, "</db:result>"));
        await stream.WriteAsync(Encoding.UTF8.GetBytes("<db:result from='refusing.test' to='a.test' type='invalid'/>"));
        var end = await ReadToEndAsync(stream);
        Assert.Contains("<not-authorized xmlns='urn:ietf:params:xml:ns:xmpp-streams'", end.Replace('"', '\''));
        Assert.EndsWith("</stream:stream>", end);

        var error = await alice.ExpectStanzaAsync("message", m => m.Id() == "r1", Slow);
        error.AssertError("remote-server-not-found", "cancel");
        await EventuallyAsync(() => _servers.A.Server.Metrics.S2sConnections(incoming: false) == 0, "the refused stream should be gone");
    }

    [Fact]
    public async Task A_server_that_stops_closes_its_links_once_acknowledged_and_does_not_reconnect()
    {
        var (a, b) = (_servers.A.Server, _servers.B.Server);
        await using var alice = await TwoDomains.OnlineAsync(_servers.A, "alice");
        await using var bob = await TwoDomains.OnlineAsync(_servers.B, "bob");
        for (var i = 0; i < 5; i++) await alice.SendMessageAsync(bob.Full, $"before the stop {i}");
        for (var i = 0; i < 5; i++) await bob.ExpectMessageAsync($"before the stop {i}", Slow);
        Assert.Equal(1, b.Metrics.S2sConnections(incoming: true));

        await _servers.A.StopAsync();

        // Everything was handed over, so alice hears of nothing but the shutdown itself.
        var first = await alice.ExpectAsync(e => e.Is("error", Ns.Stream) || (e.IsMessage() && e.Type() == "error"), Slow);
        Assert.True(first.Is("error", Ns.Stream) && first.GetChild("system-shutdown", Ns.Streams) is not null, $"expected system-shutdown first, got {first}");
        await EventuallyAsync(() => b.Metrics.S2sConnections(incoming: true) == 0, "b.test should have seen the link end");
        await Task.Delay(1500);
        Assert.Equal(0, b.Metrics.S2sConnections(incoming: true));
        Assert.Equal(0, a.Metrics.S2sConnections(incoming: false));
    }

    [Fact]
    public async Task Stanzas_a_stopping_server_cannot_have_acknowledged_go_back_to_their_senders()
    {
        await using var link = await ThroughProxyAsync();
        var (proxy, alice, bob) = (link.Proxy, link.Alice, link.Bob);

        proxy.Stall();
        for (var i = 0; i < 3; i++) await alice.SendAsync($"<message to='{bob.Full}' id='held{i}' type='chat'><body>held {i}</body></message>");
        await Task.Delay(300);
        var stopping = _servers.A.StopAsync();

        for (var i = 0; i < 3; i++)
        {
            var error = await alice.ExpectStanzaAsync("message", m => m.Id() == $"held{i}", Slow);
            error.AssertError("remote-server-timeout", "wait");
        }
        await alice.ExpectStreamErrorAsync("system-shutdown", Slow);
        await stopping.WaitAsync(Slow);
        Assert.Equal(1, proxy.Connections);
    }

    /// <summary>alice at a.test and bob at b.test, a.test's link to b.test through a <see cref="CuttingProxy"/>, in use.</summary>
    private async Task<ProxiedLink> ThroughProxyAsync()
    {
        var proxy = new CuttingProxy(_servers.B.S2sPort);
        _servers.A.Server.Options.S2sRoutes = $"b.test=127.0.0.1:{proxy.Port}";
        var link = new ProxiedLink(proxy, await TwoDomains.OnlineAsync(_servers.A, "alice"), await TwoDomains.OnlineAsync(_servers.B, "bob"));
        await link.Alice.SendMessageAsync(link.Bob.Full, "warm-up");
        await link.Bob.ExpectMessageAsync("warm-up", Slow);
        return link;
    }

    private sealed record ProxiedLink(CuttingProxy Proxy, XmppTestClient Alice, XmppTestClient Bob) : IAsyncDisposable
    {
        public async ValueTask DisposeAsync()
        {
            await Alice.DisposeAsync();
            await Bob.DisposeAsync();
            await Proxy.DisposeAsync();
        }
    }

    private static async Task<string> ReadUntilAsync(NetworkStream stream, string marker)
    {
        var text = new StringBuilder();
        var buffer = new byte[4096];
        using var timeout = new CancellationTokenSource(Slow);
        while (!text.ToString().Contains(marker))
        {
            var read = await stream.ReadAsync(buffer, timeout.Token);
            if (read == 0) break;
            text.Append(Encoding.UTF8.GetString(buffer, 0, read));
        }
        return text.ToString();
    }

    private static async Task<string> ReadToEndAsync(NetworkStream stream)
    {
        var text = new StringBuilder();
        var buffer = new byte[4096];
        using var timeout = new CancellationTokenSource(Slow);
        int read;
        while ((read = await stream.ReadAsync(buffer, timeout.Token)) > 0) text.Append(Encoding.UTF8.GetString(buffer, 0, read));
        return text.ToString();
    }

    /// <summary>A TCP relay to a port on loopback whose connections the test can reset at once, in both directions.</summary>
    private sealed class CuttingProxy : IAsyncDisposable
    {
        private readonly TcpListener _listener = new(IPAddress.Loopback, 0);
        private readonly List<TcpClient> _sockets = [];
        private readonly CancellationTokenSource _stop = new();
        private readonly int _target;
        private int _connections;
        private TaskCompletionSource _flowing = CompletedGate();

        private static TaskCompletionSource CompletedGate()
        {
            var gate = new TaskCompletionSource();
            gate.SetResult();
            return gate;
        }

        public CuttingProxy(int target)
        {
            _target = target;
            _listener.Start();
            _ = AcceptAsync();
        }

        public int Port => ((IPEndPoint)_listener.LocalEndpoint).Port;
        public int Connections => Volatile.Read(ref _connections);

        private async Task AcceptAsync()
        {
            while (!_stop.IsCancellationRequested)
            {
                TcpClient inbound;
                try
                {
                    inbound = await _listener.AcceptTcpClientAsync(_stop.Token);
                }
                catch (Exception e) when (e is OperationCanceledException or SocketException or ObjectDisposedException)
                {
                    return;
                }
                var outbound = new TcpClient();
                await outbound.ConnectAsync(IPAddress.Loopback, _target);
                lock (_sockets) _sockets.AddRange([inbound, outbound]);
                Interlocked.Increment(ref _connections);
                _ = PumpAsync(inbound.GetStream(), outbound.GetStream());
                _ = PumpAsync(outbound.GetStream(), inbound.GetStream());
            }
        }

        private async Task PumpAsync(NetworkStream from, NetworkStream to)
        {
            var buffer = new byte[16 * 1024];
            try
            {
                int read;
                while ((read = await from.ReadAsync(buffer)) > 0)
                {
                    await _flowing.Task;
                    await to.WriteAsync(buffer.AsMemory(0, read));
                }
            }
            catch (Exception e) when (e is IOException or ObjectDisposedException or SocketException)
            {
            }
        }

        /// <summary>Stops relaying (both ways) until the next <see cref="Cut"/>: what is read is held, then lost.</summary>
        public void Stall() => _flowing = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);

        /// <summary>Resets every relayed connection (RST both ways); what was in flight is lost.</summary>
        public void Cut()
        {
            lock (_sockets)
            {
                foreach (var socket in _sockets)
                {
                    socket.Client.LingerState = new LingerOption(true, 0);
                    socket.Dispose();
                }
                _sockets.Clear();
            }
            _flowing.TrySetResult();
        }

        public ValueTask DisposeAsync()
        {
            _stop.Cancel();
            _listener.Stop();
            Cut();
            return ValueTask.CompletedTask;
        }
    }
}
