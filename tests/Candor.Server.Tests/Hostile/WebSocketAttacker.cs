using System.Buffers;
using System.Net.WebSockets;
using System.Text;
using System.Threading.Channels;
using Candor.Xml;
using Candor.Xmpp;

namespace Candor.Server.Tests.Hostile;

/// <summary>A raw XMPP-over-WebSocket connection (RFC 7395): sends any frame, reads each message as one element.</summary>
public sealed class WebSocketAttacker : IAsyncDisposable
{
    public const string Framing = "urn:ietf:params:xml:ns:xmpp-framing";
    public const string Open = $"<open xmlns='{Framing}' to='localhost' version='1.0'/>";
    private const string ClosedName = "ws-closed";

    private readonly ClientWebSocket _socket = new();
    private readonly Channel<Element> _received = Channel.CreateUnbounded<Element>();
    private Task _reader = Task.CompletedTask;

    public static async Task<WebSocketAttacker> ConnectAsync(int httpPort)
    {
        var attacker = new WebSocketAttacker();
        attacker._socket.Options.AddSubProtocol("xmpp");
        await attacker._socket.ConnectAsync(new Uri($"ws://127.0.0.1:{httpPort}/xmpp-websocket"), CancellationToken.None);
        attacker._reader = Task.Run(attacker.ReadLoopAsync);
        return attacker;
    }

    public Task SendAsync(string text) => SendAsync(Encoding.UTF8.GetBytes(text), WebSocketMessageType.Text);

    public async Task SendAsync(byte[] data, WebSocketMessageType type)
    {
        try
        {
            await _socket.SendAsync(data, type, endOfMessage: true, CancellationToken.None);
        }
        catch (Exception e) when (e is WebSocketException or IOException or ObjectDisposedException)
        {
        }
    }

    /// <summary>Opens the stream and waits for the features.</summary>
    public async Task OpenAsync()
    {
        await SendAsync(Open);
        await ExpectAsync(e => e.Is("open", Framing));
        await ExpectAsync(e => e.Is("features", Ns.Stream));
    }

    public async Task<Element> ExpectAsync(Func<Element, bool> match)
    {
        using var timeout = new CancellationTokenSource(CaseContext.Timeout);
        var seen = new List<string>();
        try
        {
            while (true)
            {
                var next = await _received.Reader.ReadAsync(timeout.Token);
                if (match(next)) return next;
                seen.Add(next.ToString());
                if (next.Name == ClosedName) Assert.Fail("the WebSocket closed first; received: " + string.Join("\n", seen));
            }
        }
        catch (OperationCanceledException)
        {
            Assert.Fail("expected element not received; received: " + string.Join("\n", seen));
            throw;
        }
    }

    /// <summary>RFC 7395 §3.6: &lt;stream:error/&gt; with the condition, then &lt;close/&gt;, then the WebSocket closes.</summary>
    public async Task ExpectStreamErrorAsync(string condition)
    {
        var error = await ExpectAsync(e => e.Is("error", Ns.Stream));
        Assert.True(error.GetChild(condition, Ns.Streams) is not null, $"expected <{condition}/>, got {error}");
        await ExpectAsync(e => e.Is("close", Framing));
        await ExpectAsync(e => e.Name == ClosedName);
    }

    /// <summary>Waits for the WebSocket to close; returns the status the server gave.</summary>
    public async Task<WebSocketCloseStatus?> ExpectClosedAsync()
    {
        await ExpectAsync(e => e.Name == ClosedName);
        return _socket.CloseStatus;
    }

    private async Task ReadLoopAsync()
    {
        var buffer = new ArrayBufferWriter<byte>();
        var parser = new XmppStreamParser(XmlLimits.Default with { MaxStanzaBytes = 16 * 1024 * 1024 }, fragmentMode: true);
        try
        {
            while (true)
            {
                var result = await _socket.ReceiveAsync(buffer.GetMemory(16 * 1024), CancellationToken.None);
                if (result.MessageType == WebSocketMessageType.Close) break;
                buffer.Advance(result.Count);
                if (!result.EndOfMessage) continue;
                parser.Reset();
                var ev = parser.Read(new ReadOnlySequence<byte>(buffer.WrittenMemory), out _, out var element);
                if (ev == XmlEvent.Element) _received.Writer.TryWrite(element!);
                buffer.ResetWrittenCount();
            }
        }
        catch (Exception e) when (e is WebSocketException or IOException or ObjectDisposedException or XmlStreamException)
        {
        }
        _received.Writer.TryWrite(new Element(ClosedName, "urn:candor:test"));
    }

    public async ValueTask DisposeAsync()
    {
        _socket.Abort();
        await _reader.WaitAsync(TimeSpan.FromSeconds(2)).ContinueWith(_ => { });
        _socket.Dispose();
    }
}
