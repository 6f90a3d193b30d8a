using System.Buffers;
using System.IO.Pipelines;
using System.Net;
using System.Net.Security;
using System.Security.Authentication;
using System.Security.Cryptography;
using System.Threading.Channels;
using Candor.Server.Core;
using Candor.Xml;
using Candor.Xmpp;
using Microsoft.AspNetCore.Connections;
using Microsoft.Extensions.Logging;

namespace Candor.Server.Connections;

/// <summary>
/// One client-to-server TCP stream (RFC 6120): stream headers and features, STARTTLS or direct TLS,
/// SASL, resource binding, then stanzas handed to <see cref="SessionInput"/>. Reading happens on the
/// connection's own loop; everything written goes through one bounded queue drained by a writer loop,
/// which batches stanzas into one flush.
/// </summary>
internal sealed partial class C2sConnection : ISessionTransport
{
    private readonly XmppServer _server;
    private readonly ConnectionContext _context;
    private readonly TlsSettings _tls;
    private readonly bool _directTls;
    private readonly ILogger _logger;
    private readonly XmppStreamParser _parser;
    private readonly Channel<Node> _outbound;
    private readonly CancellationTokenSource _lifetime = new();
    private string _streamId = NewStreamId();

    private PipeReader _input;
    private PipeWriter _output;
    private SslStream? _ssl;
    private SaslNegotiator? _sasl;
    private Session? _session;
    private bool _headerSent;
    private Element? _closingError;
    private int _closing;
    private Task _writer = Task.CompletedTask;

    public C2sConnection(XmppServer server, ConnectionContext context, TlsSettings tls, bool directTls)
    {
        _server = server;
        _context = context;
        _tls = tls;
        _directTls = directTls;
        _logger = server.LoggerFactory.CreateLogger<C2sConnection>();
        _input = context.Transport.Input;
        _output = context.Transport.Output;
        _parser = new XmppStreamParser(server.Xml);
        _outbound = Channel.CreateBounded<Node>(new BoundedChannelOptions(server.Options.MaxOutboundQueue)
        {
            SingleReader = true,
            FullMode = BoundedChannelFullMode.Wait,
        });
        RemoteAddress = (context.RemoteEndPoint as IPEndPoint)?.Address is { } a
            ? (a.IsIPv4MappedToIPv6 ? a.MapToIPv4() : a)
            : IPAddress.None;
    }

    public IPAddress RemoteAddress { get; }
    public bool IsSecure => _ssl is not null;
    private bool Authenticated => _sasl?.User is not null;

    public async Task RunAsync()
    {
        using var authTimeout = new CancellationTokenSource(TimeSpan.FromSeconds(_server.Options.AuthenticationTimeoutSeconds));
        using var registration = authTimeout.Token.Register(() =>
        {
            if (_session is null) Close(StreamErrors.ConnectionTimeout, "authentication took too long");
        });
        _writer = WriteLoopAsync();
        _server.Streams.TryAdd(this, 0);
        try
        {
            if (_directTls) await StartTlsAsync();
            await ReadLoopAsync();
        }
        catch (XmlStreamException e)
        {
            Close(StreamErrors.FromXml(e.Condition), e.Message);
        }
        catch (StreamErrorException e)
        {
            Close(e.Condition, e.Message);
        }
        catch (Exception e) when (e is IOException or AuthenticationException or ConnectionResetException or OperationCanceledException or ObjectDisposedException)
        {
            Log.ConnectionLost(_logger, RemoteAddress, e.Message);
            Abort();
        }
        catch (Exception e)
        {
            Log.Crashed(_logger, e);
            Close(StreamErrors.InternalServerError, null);
        }
        finally
        {
            _server.Streams.TryRemove(this, out _);
            _outbound.Writer.TryComplete();
            await EndSessionAsync();
            await AwaitWriterAsync();
            _ssl?.Dispose();
        }
    }

    private async Task ReadLoopAsync()
    {
        var token = _lifetime.Token;
        while (true)
        {
            var input = _input;
            var result = await input.ReadAsync(token);
            var buffer = result.Buffer;
            var restartTransport = false;
            try
            {
                while (!restartTransport)
                {
                    var ev = _parser.Read(buffer, out var consumed, out var element);
                    buffer = buffer.Slice(consumed);
                    if (ev == XmlEvent.None) break;
                    switch (ev)
                    {
                        case XmlEvent.StreamOpen:
                            OnStreamOpen(element!);
                            break;
                        case XmlEvent.StreamClose:
                            Close(null);
                            return;
                        default:
                            restartTransport = await OnElementAsync(element!);
                            if (restartTransport && !buffer.IsEmpty)
                                throw new StreamErrorException(StreamErrors.PolicyViolation, "data sent after starttls before the TLS handshake");
                            break;
                    }
                    if (_closing != 0) return;
                }
            }
            finally
            {
                input.AdvanceTo(buffer.Start, buffer.End);
            }
            if (restartTransport)
            {
                await StartTlsAsync();
                continue;
            }
            if (result.IsCompleted || result.IsCanceled) return;
        }
    }

    private void OnStreamOpen(Element header)
    {
        // Answer with our own header first, so that any stream error below is sent inside a stream (§4.9.1.1).
        SendHeader(header.GetAttribute("from"));
        if (!header.Is("stream", Ns.Stream))
            throw new StreamErrorException(StreamErrors.InvalidNamespace, "the stream element must be <stream> in " + Ns.Stream);
        if (_parser.DefaultNamespace != Ns.Client)
            throw new StreamErrorException(StreamErrors.InvalidNamespace, "the content namespace of a client stream is jabber:client");
        var to = header.GetAttribute("to");
        if (to is not null && (!Jid.TryParse(to, out var toJid) || toJid != _server.Domain))
            throw new StreamErrorException(StreamErrors.HostUnknown, $"this server serves {_server.Domain}");
        if (!IsVersionOneOrLater(header.GetAttribute("version")))
            throw new StreamErrorException(StreamErrors.UnsupportedVersion, "XMPP 1.0 streams only");
        Send(StreamFeatures());
    }

    private static bool IsVersionOneOrLater(string? version)
    {
        if (version is null) return false;
        var dot = version.IndexOf('.');
        return int.TryParse(dot < 0 ? version : version[..dot], out var major) && major >= 1;
    }

    private void SendHeader(string? clientFrom)
    {
        if (_headerSent) return;
        // Each restart (after STARTTLS and SASL) is a new stream with a new id, as Prosody and ejabberd do:
        // nothing learnt before the restart carries over (RFC 6120 §4.3.3, §5.4.3.3).
        _streamId = NewStreamId();
        Enqueue(new StreamHeaderMarker(ResponseHeader(clientFrom)));
        _headerSent = true;
    }

    private Element ResponseHeader(string? clientFrom)
    {
        var header = new Element("stream", Ns.Stream)
            .SetAttribute("from", _server.Domain.ToString())
            .SetAttribute("id", _streamId)
            .SetAttribute("version", "1.0")
            .SetAttribute("xml:lang", "en");
        if (clientFrom is not null && Jid.TryParse(clientFrom, out var from)) header.SetAttribute("to", from.ToString());
        return header;
    }

    private Element StreamFeatures()
    {
        var features = new Element("features", Ns.Stream);
        if (!IsSecure && _tls.Certificate is not null)
        {
            var starttls = features.AddChild("starttls", Ns.Tls);
            if (!_server.Options.AllowPlaintext)
            {
                starttls.AddChild("required");
                return features;
            }
            // TLS is voluntary-to-negotiate (RFC 6120 §5.3.1): offer what may be negotiated without it too,
            // or a client has no way to know it may authenticate in plain text.
        }
        if (!Authenticated)
        {
            _sasl ??= new SaslNegotiator(_server, _server.AuthThrottle, RemoteAddress, IsSecure, IsSecure ? _tls.ChannelBinding : null);
            foreach (var feature in _sasl.Features()) features.Add(feature);
            foreach (var contribute in _server.StreamFeatures.BeforeAuthentication)
                if (contribute() is { } feature) features.Add(feature);
            return features;
        }
        features.AddChild("bind", Ns.Bind);
        features.AddChild("session", Ns.Session).AddChild("optional");
        foreach (var contribute in _server.StreamFeatures.AfterAuthentication) features.Add(contribute());
        return features;
    }

    /// <summary>Handles one top-level element; true when the transport must now be wrapped in TLS.</summary>
    private async ValueTask<bool> OnElementAsync(Element element)
    {
        if (!_headerSent) throw new StreamErrorException(StreamErrors.NotWellFormed, "stream header expected");
        if (element.Namespace == Ns.Tls)
        {
            if (element.Name != "starttls" || IsSecure || _tls.Certificate is null || Authenticated)
                throw new StreamErrorException(StreamErrors.PolicyViolation, "STARTTLS is not allowed now");
            Send(new Element("proceed", Ns.Tls));
            await FlushOutboundAsync();
            return true;
        }
        if (!IsSecure && !_server.Options.AllowPlaintext)
            throw new StreamErrorException(StreamErrors.PolicyViolation, "STARTTLS is required first");
        if (element.Namespace == Ns.Sasl)
        {
            await OnSaslAsync(element);
            return false;
        }
        if (!element.Namespace.Equals(Ns.Client) || element.Name is not ("message" or "presence" or "iq"))
            throw new StreamErrorException(StreamErrors.UnsupportedStanzaType, $"<{element.Name}/> in {element.Namespace} is not a stanza");
        if (!Authenticated)
        {
            if (element.IsIq() && element.FirstElement is { } payload
                && _server.UnauthenticatedIq.TryGetValue(payload.Namespace, out var handler))
            {
                Send(await handler(element, this));
                return false;
            }
            throw new StreamErrorException(StreamErrors.NotAuthorized, "authenticate first");
        }
        if (_session is null)
        {
            await OnBindAsync(element);
            return false;
        }
        await SessionInput.HandleAsync(_server, _session, element);
        return false;
    }

    private async ValueTask OnSaslAsync(Element element)
    {
        if (Authenticated || _sasl is null)
            throw new StreamErrorException(StreamErrors.PolicyViolation, "SASL is not available now");
        var (outcome, reply) = await _sasl.HandleAsync(element);
        Send(reply);
        if (outcome == SaslOutcome.Success)
        {
            Log.Authenticated(_logger, _sasl.User!, RemoteAddress, _sasl.Mechanism!);
            _parser.Reset();
            _headerSent = false;
        }
        else if (outcome == SaslOutcome.Failure)
        {
            Log.AuthenticationFailed(_logger, RemoteAddress, reply.FirstElement?.Name ?? "", reply.GetChildText("text", Ns.Sasl) ?? "");
        }
        if (outcome == SaslOutcome.Failure && _sasl.Failures >= SaslNegotiator.MaxAttempts)
        {
            throw new StreamErrorException(StreamErrors.PolicyViolation, "too many failed authentication attempts");
        }
    }

    private async ValueTask OnBindAsync(Element iq)
    {
        var bind = iq.IsIq() && iq.Type() == "set" ? iq.GetChild("bind", Ns.Bind) : null;
        if (bind is null)
        {
            // The legacy session IQ may come before bind in some clients' order; anything else must wait.
            throw new StreamErrorException(StreamErrors.NotAuthorized, "bind a resource first");
        }
        var requested = bind.GetChildText("resource", Ns.Bind)?.Trim();
        Jid full;
        try
        {
            full = Jid.Create(_sasl!.User, _server.Domain.Domain, string.IsNullOrEmpty(requested) ? NewResource() : requested);
        }
        catch (JidFormatException)
        {
            Send(Stanza.ErrorFor(iq, StanzaError.BadRequest, "invalid resource"));
            return;
        }
        var session = new Session(this, full);
        var replaced = _server.Sessions.Add(session);
        // RFC 6120 §7.7.2.2: the new session wins; the old one is told why it ends.
        replaced?.Close(StreamErrors.Conflict, "replaced by a new session with the same resource");
        _session = session;
        var result = Stanza.ResultFor(iq, new Element("bind", Ns.Bind).Add(new Element("jid", Ns.Bind).AddText(full.ToString())));
        result.SetAttribute("from", null).SetAttribute("to", null);
        Send(result);
        Log.Bound(_logger, full, RemoteAddress);
        await _server.Hooks.SessionStarted.FireAsync(session);
    }

    private static string NewStreamId() => Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(8));

    private static string NewResource() => "candor-" + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(6));

    private async Task StartTlsAsync()
    {
        var transport = _context.Transport;
        var ssl = new SslStream(new DuplexPipeStream(transport.Input, transport.Output), leaveInnerStreamOpen: false);
        using var handshakeTimeout = CancellationTokenSource.CreateLinkedTokenSource(_lifetime.Token);
        handshakeTimeout.CancelAfter(TimeSpan.FromSeconds(30));
        await ssl.AuthenticateAsServerAsync(_directTls ? _tls.DirectOptions : _tls.StartTlsOptions, handshakeTimeout.Token);
        _ssl = ssl;
        _input = PipeReader.Create(ssl, new StreamPipeReaderOptions(bufferSize: 16 * 1024, minimumReadSize: 2048));
        _output = PipeWriter.Create(ssl, new StreamPipeWriterOptions(minimumBufferSize: 16 * 1024));
        _parser.Reset();
        _headerSent = false;
    }

    // ---- writing ----

    /// <summary>Marks the stream header in the outbound queue: written as an opening tag with the namespace declarations.</summary>
    private sealed class StreamHeaderMarker(Element header) : Node
    {
        public Element Header { get; } = header;
    }

    /// <summary>Marks a point in the outbound queue whose flush someone awaits (STARTTLS must flush &lt;proceed/&gt; before the handshake).</summary>
    private sealed class FlushMarker : Node
    {
        public TaskCompletionSource Flushed { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
    }

    public void Send(Element stanza) => Enqueue(stanza);

    private void Enqueue(Node item)
    {
        if (_closing != 0) return;
        if (!_outbound.Writer.TryWrite(item))
            Close(StreamErrors.PolicyViolation, "too many stanzas queued: the client is not reading");
    }

    private Task FlushOutboundAsync()
    {
        var marker = new FlushMarker();
        Enqueue(marker);
        return marker.Flushed.Task;
    }

    private async Task WriteLoopAsync()
    {
        var reader = _outbound.Reader;
        try
        {
            while (await reader.WaitToReadAsync())
            {
                var output = _output;
                FlushMarker? flushed = null;
                while (reader.TryRead(out var item))
                {
                    if (item is FlushMarker marker)
                    {
                        flushed = marker;
                        break;
                    }
                    WriteItem(output, item);
                }
                await output.FlushAsync();
                flushed?.Flushed.TrySetResult();
            }
            var closing = _output;
            if (_closingError is not null)
            {
                // A stream error is sent inside a stream, even before the peer's header (RFC 6120 §4.9.1.1).
                if (!_headerSent) WriteItem(closing, new StreamHeaderMarker(ResponseHeader(null)));
                ElementWriter.Write(_closingError, closing, Ns.Client);
                closing.WriteAscii("</stream:stream>");
            }
            else if (_headerSent)
            {
                closing.WriteAscii("</stream:stream>");
            }
            await closing.FlushAsync();
            // The read loop may be waiting for the peer: wake it so that the handler returns and Kestrel closes
            // the connection gracefully, after sending what is written. Aborting instead would discard it.
            _input.CancelPendingRead();
        }
        catch (Exception e) when (e is IOException or ObjectDisposedException or InvalidOperationException or OperationCanceledException or ConnectionResetException)
        {
            Abort();
        }
    }

    private void WriteItem(PipeWriter output, Node item)
    {
        if (item is StreamHeaderMarker header)
        {
            output.WriteAscii("<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'");
            foreach (var (name, value) in header.Header.Attributes)
            {
                output.WriteByte((byte)' ');
                output.WriteAscii(name);
                output.WriteAscii("='");
                ElementWriter.WriteEscaped(output, value, attribute: true);
                output.WriteByte((byte)'\'');
            }
            output.WriteByte((byte)'>');
            return;
        }
        ElementWriter.Write((Element)item, output, Ns.Client);
    }

    /// <summary>
    /// Ends the stream: the stream error (if any) and the closing tag are written after what is already
    /// queued, then the connection closes. A peer that does not read is cut off after a grace period.
    /// </summary>
    public void Close(string? condition, string? text = null)
    {
        if (Interlocked.Exchange(ref _closing, 1) != 0) return;
        if (condition is not null)
        {
            _closingError = StreamErrors.Create(condition, text);
            Log.StreamError(_logger, RemoteAddress, condition, text ?? "");
        }
        _session?.MarkClosed();
        _outbound.Writer.TryComplete();
        _lifetime.CancelAfter(TimeSpan.FromSeconds(5));
    }

    private void Abort()
    {
        Interlocked.Exchange(ref _closing, 1);
        _session?.MarkClosed();
        _outbound.Writer.TryComplete();
        _lifetime.Cancel();
        _context.Abort();
    }

    private async Task AwaitWriterAsync()
    {
        try
        {
            await _writer.WaitAsync(TimeSpan.FromSeconds(5));
        }
        catch (TimeoutException)
        {
            _context.Abort();
        }
    }

    private async Task EndSessionAsync()
    {
        var session = _session;
        if (session is null) return;
        session.MarkClosed();
        _server.Sessions.Remove(session);
        await _server.Hooks.SessionEnded.FireAsync(session);
        Log.Unbound(_logger, session.Jid);
    }

    private static partial class Log
    {
        [LoggerMessage(Level = LogLevel.Debug, Message = "Connection from {Address} lost: {Reason}")]
        public static partial void ConnectionLost(ILogger logger, IPAddress address, string reason);

        [LoggerMessage(Level = LogLevel.Error, Message = "Connection handler failed")]
        public static partial void Crashed(ILogger logger, Exception exception);

        [LoggerMessage(Level = LogLevel.Information, Message = "{User} authenticated from {Address} with {Mechanism}")]
        public static partial void Authenticated(ILogger logger, string user, IPAddress address, string mechanism);

        [LoggerMessage(Level = LogLevel.Information, Message = "Authentication from {Address} failed: {Condition} {Text}")]
        public static partial void AuthenticationFailed(ILogger logger, IPAddress address, string condition, string text);

        [LoggerMessage(Level = LogLevel.Information, Message = "Session {Jid} bound from {Address}")]
        public static partial void Bound(ILogger logger, Jid jid, IPAddress address);

        [LoggerMessage(Level = LogLevel.Information, Message = "Session {Jid} ended")]
        public static partial void Unbound(ILogger logger, Jid jid);

        [LoggerMessage(Level = LogLevel.Information, Message = "Stream error to {Address}: {Condition} {Text}")]
        public static partial void StreamError(ILogger logger, IPAddress address, string condition, string text);
    }
}

/// <summary>Ends the stream with the given RFC 6120 stream error condition.</summary>
public sealed class StreamErrorException(string condition, string message) : Exception(message)
{
    public string Condition { get; } = condition;
}
