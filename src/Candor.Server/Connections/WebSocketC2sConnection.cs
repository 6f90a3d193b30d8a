using System.Buffers;
using System.Net.WebSockets;
using Candor.Server.Core;
using Candor.Xml;
using Candor.Xmpp;
using System.Security.Cryptography.X509Certificates;
using Candor.Xmpp.Sasl;
using Microsoft.AspNetCore.Server.Kestrel.Core.Features;
using Microsoft.AspNetCore.Http;

namespace Candor.Server.Connections;

/// <summary>
/// A client stream over WebSocket (RFC 7395): each message is exactly one element — &lt;open/&gt;,
/// &lt;close/&gt;, a stanza or a negotiation element — in a text frame. TLS, when there is any, belongs to
/// the HTTP layer (wss://), so there is no STARTTLS.
/// </summary>
internal sealed class WebSocketC2sConnection : C2sStream
{
    public const string SubProtocol = "xmpp";

    private readonly WebSocket _socket;
    private readonly bool _secure;
    /// <summary>Of the certificate this connection's handshake used (a reload since then must not change it).</summary>
    private readonly byte[]? _channelBinding;
    private readonly ArrayBufferWriter<byte> _pending = new(4096);
    private readonly List<int> _messageEnds = [];
    private WebSocketCloseStatus _closeStatus = WebSocketCloseStatus.NormalClosure;

    public WebSocketC2sConnection(XmppServer server, WebSocket socket, HttpContext context, TlsSettings tls)
        : base(server, context.Connection.RemoteIpAddress)
    {
        _socket = socket;
        _secure = context.Request.IsHttps;
        var negotiated = context.Features.Get<ISslStreamFeature>()?.SslStream.LocalCertificate as X509Certificate2;
        _channelBinding = !_secure ? null : negotiated is null ? tls.ChannelBinding : ChannelBinding.TlsServerEndPoint(negotiated);
    }

    public override string TransportName => "WebSocket";
    public override bool IsSecure => _secure;
    public override string? TlsProtocol => _secure ? "TLS" : null;
    protected override byte[]? ChannelBindingData => _channelBinding;
    protected override bool CanStartTls => false;
    protected override bool MustStartTls => false;

    protected override async Task ReadLoopAsync()
    {
        var limit = Server.Options.MaxStanzaBytes;
        var buffer = ArrayPool<byte>.Shared.Rent(Math.Min(limit, 16 * 1024) + 1);
        var parser = new XmppStreamParser(Server.Xml, fragmentMode: true);
        try
        {
            var token = Lifetime.Token;
            var received = 0;
            while (!Closing)
            {
                if (received == buffer.Length)
                {
                    var larger = ArrayPool<byte>.Shared.Rent(Math.Min(buffer.Length * 2, limit + 1));
                    buffer.AsSpan(0, received).CopyTo(larger);
                    ArrayPool<byte>.Shared.Return(buffer);
                    buffer = larger;
                }
                var result = await _socket.ReceiveAsync(buffer.AsMemory(received), token);
                if (result.MessageType == WebSocketMessageType.Close)
                {
                    Close(null);
                    return;
                }
                if (result.MessageType == WebSocketMessageType.Binary)
                {
                    _closeStatus = WebSocketCloseStatus.InvalidMessageType;
                    throw new StreamErrorException(StreamErrors.BadFormat, "XMPP over WebSocket uses text frames only (RFC 7395 §3.2)");
                }
                received += result.Count;
                if (received > limit)
                {
                    _closeStatus = WebSocketCloseStatus.MessageTooBig;
                    throw new StreamErrorException(StreamErrors.PolicyViolation, $"message larger than {limit} bytes");
                }
                if (!result.EndOfMessage) continue;
                var element = ParseOne(parser, new ReadOnlySequence<byte>(buffer, 0, received));
                await ThrottleAsync(received);
                received = 0;
                await OnMessageAsync(element);
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    /// <summary>RFC 7395 §3.3.3: every message is one complete element — no more, no less.</summary>
    internal static Element ParseOne(XmppStreamParser parser, ReadOnlySequence<byte> message)
    {
        parser.Reset();
        Element? found = null;
        var rest = message;
        while (!rest.IsEmpty)
        {
            var ev = parser.Read(rest, out var consumed, out var element);
            var advanced = !consumed.Equals(rest.Start);
            rest = rest.Slice(consumed);
            if (ev == XmlEvent.Element)
            {
                if (found is not null)
                    throw new StreamErrorException(StreamErrors.NotWellFormed, "a WebSocket message must hold exactly one XML element");
                found = element;
            }
            else if (!advanced)
            {
                break;
            }
        }
        if (found is null || !rest.IsEmpty)
            throw new StreamErrorException(StreamErrors.NotWellFormed, "a WebSocket message must hold one complete XML element");
        return found;
    }

    private async ValueTask OnMessageAsync(Element element)
    {
        if (element.Namespace == Ns.Framing)
        {
            switch (element.Name)
            {
                case "open":
                    // RFC 7395 §3.3.2: <open/> starts the stream, and restarts it after SASL success. Another one
                    // while the stream is open is an error, not a second set of features without an <open/>.
                    if (HeaderSent)
                        throw new StreamErrorException(StreamErrors.BadFormat, "the stream is already open; <open/> only starts it or restarts it after authentication");
                    OnStreamOpen(element, contentNamespace: null, "open", Ns.Framing);
                    return;
                case "close":
                    Close(null);
                    return;
            }
            throw new StreamErrorException(StreamErrors.UnsupportedStanzaType, $"<{element.Name}/> is not a framing element");
        }
        await OnElementAsync(element);
    }

    protected override void WriteHeader(Element header)
    {
        _pending.WriteAscii("<open xmlns='" + Ns.Framing + "'");
        foreach (var (name, value) in header.Attributes)
        {
            _pending.WriteByte((byte)' ');
            _pending.WriteAscii(name);
            _pending.WriteAscii("='");
            ElementWriter.WriteEscaped(_pending, value, attribute: true);
            _pending.WriteByte((byte)'\'');
        }
        _pending.WriteAscii("/>");
        _messageEnds.Add(_pending.WrittenCount);
    }

    protected override void WriteElement(Element element)
    {
        ElementWriter.Write(element, _pending, parentNamespace: null, declareStreamPrefix: true);
        _messageEnds.Add(_pending.WrittenCount);
    }

    protected override void WriteClose(Element? error, bool headerWritten)
    {
        if (error is not null)
        {
            if (!headerWritten) WriteHeader(ResponseHeader(null));
            WriteElement(error);
        }
        _pending.WriteAscii("<close xmlns='" + Ns.Framing + "'/>");
        _messageEnds.Add(_pending.WrittenCount);
    }

    protected override async ValueTask FlushAsync()
    {
        var start = 0;
        foreach (var end in _messageEnds)
        {
            await _socket.SendAsync(_pending.WrittenMemory[start..end], WebSocketMessageType.Text, endOfMessage: true, Lifetime.Token);
            start = end;
        }
        _messageEnds.Clear();
        _pending.ResetWrittenCount();
    }

    protected override async ValueTask CompleteOutputAsync()
    {
        if (_socket.State is WebSocketState.Open or WebSocketState.CloseReceived)
            await _socket.CloseOutputAsync(_closeStatus, null, Lifetime.Token);
    }

    protected override void AbortTransport() => _socket.Abort();
}
