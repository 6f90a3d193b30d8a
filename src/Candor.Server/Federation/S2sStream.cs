using System.Buffers;
using System.IO.Pipelines;
using System.Net.Security;
using System.Threading.Channels;
using Candor.Server.Connections;
using Candor.Server.Core;
using Candor.Server.Modules.StreamManagement;
using Candor.Xml;
using Candor.Xmpp;
using Microsoft.Extensions.Logging;

namespace Candor.Server.Federation;

/// <summary>
/// What incoming and outgoing server-to-server streams share (RFC 6120): reading top-level elements with the
/// restricted-XML parser, the STARTTLS swap of the pipes, one bounded outbound queue drained by one writer
/// (back-pressure as on c2s), the idle deadline and the inbound rate limit.
/// </summary>
internal abstract partial class S2sStream
{
    protected readonly XmppServer Server;
    protected readonly S2sService S2s;
    protected readonly ILogger Logger;
    protected readonly CancellationTokenSource Lifetime = new();
    private readonly Channel<Element?> _outbound;
    private readonly Lock _sendGate = new();
    private readonly XmppStreamParser _parser;
    private readonly InboundRate _rate;
    private PipeReader _input;
    private PipeWriter _output;
    private ReadOnlySequence<byte> _buffer;
    private bool _holding;
    private bool _completed;
    private long _queuedBytes;
    private int _closing;
    private Task _writer = Task.CompletedTask;
    protected SslStream? Ssl;

    protected S2sStream(S2sService s2s, PipeReader input, PipeWriter output)
    {
        S2s = s2s;
        Server = s2s.Server;
        Logger = Server.LoggerFactory.CreateLogger(GetType());
        _input = input;
        _output = output;
        _parser = new XmppStreamParser(Server.Xml);
        _rate = new InboundRate(Server.Options.InboundBytesPerSecond, Server.Options.InboundBurstBytes);
        _outbound = Channel.CreateBounded<Element?>(new BoundedChannelOptions(Server.Options.MaxOutboundQueue)
        {
            SingleReader = true,
            FullMode = BoundedChannelFullMode.Wait,
        });
    }

    public bool IsClosing => _closing != 0;
    /// <summary>XEP-0198 on this stream, once enabled (or resumed).</summary>
    internal S2sStreamManagement? Sm { get; private protected set; }
    /// <summary>XEP-0288: the stream carries stanzas both ways.</summary>
    internal bool Bidirectional { get; private protected set; }
    /// <summary>The stream id of the stream we receive (ours when incoming, the peer's when outgoing).</summary>
    protected string StreamId { get; set; } = "";

    protected void StartWriter() => _writer = WriteLoopAsync();

    /// <summary>The next stream header, element or end of stream; throws when the connection ends or the idle deadline passes.</summary>
    protected async ValueTask<(XmlEvent Event, Element? Element)> NextAsync()
    {
        while (true)
        {
            if (_holding)
            {
                var ev = _parser.Read(_buffer, out var consumed, out var element);
                var before = _buffer.Length;
                _buffer = _buffer.Slice(consumed);
                if (ev != XmlEvent.None)
                {
                    if (element is not null) element.SourceLength = (int)Math.Min(int.MaxValue, before - _buffer.Length);
                    return (ev, element);
                }
                _input.AdvanceTo(_buffer.Start, _buffer.End);
                _holding = false;
                if (_completed) throw new IOException("the peer closed the connection");
                var wait = _rate.Take(before);
                if (wait > TimeSpan.Zero) await Task.Delay(wait, Lifetime.Token);
            }
            if (_closing == 0) Lifetime.CancelAfter(TimeSpan.FromSeconds(Server.Options.S2sIdleSeconds));
            var result = await _input.ReadAsync(Lifetime.Token);
            _buffer = result.Buffer;
            _holding = true;
            _completed = result.IsCompleted || result.IsCanceled;
        }
    }

    /// <summary>Hands the connection to TLS (after &lt;proceed/&gt;): the parser restarts on the decrypted stream.</summary>
    protected async Task SwapToTlsAsync(Func<SslStream, Task> handshake, Stream transport)
    {
        if (_holding)
        {
            if (!_buffer.IsEmpty) throw new StreamErrorException(StreamErrors.PolicyViolation, "data sent before the TLS handshake");
            _input.AdvanceTo(_buffer.End);
            _holding = false;
        }
        var ssl = new SslStream(transport, leaveInnerStreamOpen: false);
        Lifetime.CancelAfter(TimeSpan.FromSeconds(Server.Options.TlsTimeoutSeconds));
        await handshake(ssl);
        Ssl = ssl;
        _input = PipeReader.Create(ssl, new StreamPipeReaderOptions(bufferSize: 16 * 1024, minimumReadSize: 2048, useZeroByteReads: true));
        _output = PipeWriter.Create(ssl, new StreamPipeWriterOptions(minimumBufferSize: 16 * 1024));
        _parser.Reset();
    }

    /// <summary>After SASL success (RFC 6120 §6.4.6): the peer opens a new stream on the same connection.</summary>
    protected void RestartStream() => _parser.Reset();

    protected void WriteHeader(string from, string to, string? id)
    {
        _output.WriteAscii("<?xml version='1.0'?><stream:stream xmlns='jabber:server' xmlns:stream='http://etherx.jabber.org/streams' xmlns:db='jabber:server:dialback' version='1.0' from='");
        ElementWriter.WriteEscaped(_output, from, attribute: true);
        _output.WriteAscii("' to='");
        ElementWriter.WriteEscaped(_output, to, attribute: true);
        if (id is not null)
        {
            _output.WriteAscii("' id='");
            ElementWriter.WriteEscaped(_output, id, attribute: true);
        }
        _output.WriteAscii("'>");
    }

    /// <summary>Writes at once, outside the queue (negotiation, before the writer runs).</summary>
    protected async ValueTask WriteNowAsync(Element? element)
    {
        if (element is not null) Write(element);
        await _output.FlushAsync(Lifetime.Token);
    }

    private void Write(Element element)
    {
        if (element.Namespace == Ns.Dialback)
        {
            // ejabberd's parser matches dialback elements by the literal name "db:result" / "db:verify", so they are
            // written with the db: prefix the stream header declares rather than with a default namespace.
            var prefixed = element.Clone();
            prefixed.Name = "db:" + element.Name;
            prefixed.Namespace = Ns.Server;
            element = prefixed;
        }
        ElementWriter.Write(element, _output, Ns.Server);
    }

    /// <summary>Queues an element; a peer that does not read is cut off instead of growing the queue without bound.</summary>
    public bool Send(Element element)
    {
        if (_closing != 0) return false;
        var weight = Math.Max(element.SourceLength, 256);
        if (Interlocked.Add(ref _queuedBytes, weight) > Server.Options.MaxOutboundQueueBytes || !_outbound.Writer.TryWrite(element))
        {
            Interlocked.Add(ref _queuedBytes, -weight);
            Close(StreamErrors.PolicyViolation, "too much data queued: the peer is not reading");
            return false;
        }
        return true;
    }

    /// <summary>Sends a stanza of the router's (in jabber:client, possibly shared) as a jabber:server stanza.</summary>
    public bool SendStanza(Element stanza)
    {
        var copy = stanza.Clone();
        copy.SourceLength = stanza.SourceLength;
        Remap(copy, Ns.Client, Ns.Server);
        return SendServerStanza(copy);
    }

    /// <summary>Sends a stanza already in jabber:server, numbered when stream management is on.</summary>
    public bool SendServerStanza(Element stanza)
    {
        lock (_sendGate)
            if (Sm is { } sm ? !sm.Send(this, stanza) : !Send(stanza)) return false;
        Server.Metrics.S2sSent(stanza.Name);
        return true;
    }

    /// <summary>
    /// Stream management runs on this stream from now on (enabled or resumed): <paramref name="announce"/> (given
    /// the h to tell the peer) is written first, then what the peer has not acknowledged, and only then new stanzas,
    /// so both sides count the same ones. False when the peer's <paramref name="h"/> counts more than was sent.
    /// </summary>
    private protected bool Manage(S2sStreamManagement sm, uint? h, Func<uint, Element>? announce)
    {
        lock (_sendGate)
        {
            if (!sm.Attach(this, h, announce)) return false;
            Sm = sm;
            return true;
        }
    }

    /// <summary>Ends the connection at once, outside the queue (before the writer runs): a stream error, the closing tag.</summary>
    internal async Task EndNowAsync(string? condition, string? text)
    {
        Interlocked.Exchange(ref _closing, 1);
        try
        {
            if (condition is not null)
            {
                Log.StreamError(Logger, Describe(), condition, text ?? "");
                ElementWriter.Write(StreamErrors.Create(condition, text), _output, Ns.Server);
            }
            _output.WriteAscii("</stream:stream>");
            await _output.FlushAsync().AsTask().WaitAsync(TimeSpan.FromSeconds(2));
        }
        catch (Exception e) when (e is IOException or ObjectDisposedException or InvalidOperationException or TimeoutException or OperationCanceledException)
        {
        }
        finally
        {
            Lifetime.Cancel();
            AbortTransport();
        }
    }

    /// <summary>
    /// A stanza from the peer (RFC 6120 §8.1.1.1, §8.1.2.1): on a server stream both addresses are required, 'from'
    /// of a domain the stream proved, 'to' of a domain we serve (we relay for no one); then routed like a c2s stanza.
    /// </summary>
    protected async ValueTask ReceiveStanzaAsync(Element element)
    {
        if (element.Namespace != Ns.Server || element.Name is not ("message" or "presence" or "iq"))
            throw new StreamErrorException(StreamErrors.UnsupportedStanzaType, $"<{element.Name}/> in {element.Namespace} is not a stanza");
        if (!Jid.TryParse(element.GetAttribute("from") ?? "", out var from))
            throw new StreamErrorException(StreamErrors.InvalidFrom, "a stanza between servers needs a valid 'from'");
        if (!MayComeFrom(from.Domain))
        {
            Log.Forged(Logger, Describe(), from.Domain);
            throw new StreamErrorException(StreamErrors.InvalidFrom, $"this stream is not authenticated for {from.Domain}");
        }
        if (!Jid.TryParse(element.GetAttribute("to") ?? "", out var to))
            throw new StreamErrorException(StreamErrors.ImproperAddressing, "a stanza between servers needs a valid 'to'");
        if (!MayGoTo(to.Domain))
            throw new StreamErrorException(StreamErrors.HostUnknown, $"{to.Domain} is not served here");
        Remap(element, Ns.Server, Ns.Client);
        Server.Metrics.S2sReceived(element.Name);
        await Server.Router.DeliverAsync(element, from, to);
        Sm?.Received(this);
    }

    /// <summary>True when the peer proved <paramref name="domain"/> on this stream (stanzas may come from it).</summary>
    protected abstract bool MayComeFrom(string domain);

    /// <summary>True when a stanza from the peer may be addressed to <paramref name="domain"/>.</summary>
    protected virtual bool MayGoTo(string domain) => S2s.Serves(domain);

    /// <summary>&lt;r/&gt; and &lt;a/&gt; (XEP-0198 §4) on a stream with stream management; false for other elements.</summary>
    protected bool OnAckElement(Element element)
    {
        if (element.Namespace != StreamManagementModule.Namespace || element.Name is not ("r" or "a")) return false;
        if (Sm is not { } sm) throw new StreamErrorException(StreamErrors.UnsupportedStanzaType, "stream management is not enabled on this stream");
        if (element.Name == "r")
        {
            Send(sm.Ack());
            return true;
        }
        if (!uint.TryParse(element.GetAttribute("h"), System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var h))
            throw new StreamErrorException(StreamErrors.InvalidXml, "<a/> needs a number h");
        // XEP-0198 §4: an h above what was sent is the handled-count-too-high stream error.
        if (!sm.Acknowledge(h)) throw new StreamErrorException(StreamErrors.UndefinedCondition, "handled-count-too-high");
        return true;
    }

    /// <summary>Moves a stanza and its descendants from one stanza namespace to the other (RFC 6120 §4.8.3).</summary>
    internal static void Remap(Element element, string from, string to)
    {
        if (element.Namespace == from) element.Namespace = to;
        foreach (var child in element.Elements) Remap(child, from, to);
    }

    private async Task WriteLoopAsync()
    {
        var reader = _outbound.Reader;
        try
        {
            while (await reader.WaitToReadAsync())
            {
                while (reader.TryRead(out var item))
                {
                    if (item is null) continue;
                    Write(item);
                    Interlocked.Add(ref _queuedBytes, -Math.Max(item.SourceLength, 256));
                }
                await _output.FlushAsync();
            }
            if (_closingError is not null) ElementWriter.Write(_closingError, _output, Ns.Server);
            _output.WriteAscii("</stream:stream>");
            await _output.FlushAsync();
            await _output.CompleteAsync();
        }
        catch (Exception e) when (e is IOException or ObjectDisposedException or InvalidOperationException or OperationCanceledException)
        {
            Abort();
        }
    }

    private Element? _closingError;

    /// <summary>Ends the stream after what is queued, with a stream error when <paramref name="condition"/> is given.</summary>
    public void Close(string? condition, string? text = null)
    {
        if (Interlocked.Exchange(ref _closing, 1) != 0) return;
        if (condition is not null)
        {
            _closingError = StreamErrors.Create(condition, text);
            Log.StreamError(Logger, Describe(), condition, text ?? "");
        }
        Ending();
        _outbound.Writer.TryComplete();
        Lifetime.CancelAfter(TimeSpan.FromSeconds(5));
    }

    protected void Abort()
    {
        Interlocked.Exchange(ref _closing, 1);
        Ending();
        _outbound.Writer.TryComplete();
        Lifetime.Cancel();
        AbortTransport();
    }

    private void Ending()
    {
        Sm?.Detach(this);
        OnClosing();
    }

    /// <summary>The stream stops taking stanzas (its route is forgotten).</summary>
    protected virtual void OnClosing()
    {
    }

    protected abstract void AbortTransport();
    protected abstract string Describe();
    /// <summary>True for a stream another server opened to us (for the metrics' direction).</summary>
    protected abstract bool Incoming { get; }

    /// <summary>Runs <paramref name="body"/> as the stream's life: errors become stream errors, then the writer finishes.</summary>
    protected async Task RunGuardedAsync(Func<Task> body)
    {
        Server.Metrics.S2sConnection(Incoming, +1);
        S2s.Started(this);
        try
        {
            await body();
        }
        catch (XmlStreamException e)
        {
            Close(StreamErrors.FromXml(e.Condition), e.Message);
        }
        catch (StreamErrorException e)
        {
            Close(e.Condition, e.Message);
        }
        catch (Exception e) when (e is IOException or System.Security.Authentication.AuthenticationException or OperationCanceledException
                                       or ObjectDisposedException or System.Net.Sockets.SocketException
                                       or Microsoft.AspNetCore.Connections.ConnectionResetException)
        {
            Log.ConnectionLost(Logger, Describe(), e.Message);
            // Idle past S2sIdleSeconds: closed politely (RFC 6120 §4.4); anything else ends the connection.
            if (Lifetime.IsCancellationRequested && _closing == 0 && Ssl is not null) Close(null);
            else Abort();
        }
        catch (Exception e)
        {
            Log.Crashed(Logger, e);
            Close(StreamErrors.InternalServerError, null);
        }
        finally
        {
            _outbound.Writer.TryComplete();
            Ending();
            try
            {
                await _writer.WaitAsync(TimeSpan.FromSeconds(5));
            }
            catch (TimeoutException)
            {
                AbortTransport();
            }
            Ssl?.Dispose();
            S2s.Ended(this);
            Server.Metrics.S2sConnection(Incoming, -1);
        }
    }

    private static partial class Log
    {
        [LoggerMessage(Level = LogLevel.Debug, Message = "s2s {Stream} lost: {Reason}")]
        public static partial void ConnectionLost(ILogger logger, string stream, string reason);

        [LoggerMessage(Level = LogLevel.Error, Message = "s2s stream failed")]
        public static partial void Crashed(ILogger logger, Exception exception);

        [LoggerMessage(Level = LogLevel.Warning, Message = "s2s {Stream} sent a stanza from {Domain}, which its stream has not proved")]
        public static partial void Forged(ILogger logger, string stream, string domain);

        [LoggerMessage(Level = LogLevel.Information, Message = "s2s stream error on {Stream}: {Condition} {Text}")]
        public static partial void StreamError(ILogger logger, string stream, string condition, string text);
    }
}
