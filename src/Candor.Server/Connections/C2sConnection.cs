using System.IO.Pipelines;
using System.Net;
using System.Net.Security;
using System.Security.Authentication;
using Candor.Server.Core;
using Candor.Server.Hosting;
using Candor.Xml;
using Candor.Xmpp;
using Microsoft.AspNetCore.Connections;

namespace Candor.Server.Connections;

/// <summary>
/// A client stream over TCP (RFC 6120): the restricted-XML parser over the connection's pipe, STARTTLS
/// (or TLS from the first byte on the XEP-0368 port), and the stream written as one continuous document.
/// </summary>
internal sealed class C2sConnection : C2sStream
{
    private readonly ConnectionContext _context;
    private readonly TlsSettings _tls;
    private readonly bool _directTls;
    private readonly XmppStreamParser _parser;
    private PipeReader _input;
    private PipeWriter _output;
    private SslStream? _ssl;
    /// <summary>Gives back the TLS layer's BIO buffers between reads and writes; null without TLS or where not possible.</summary>
    private TlsIdleMemory? _tlsIdle;
    /// <summary>Of the certificate this stream's handshake used: a reload since then must not change it.</summary>
    private byte[]? _channelBinding;

    public C2sConnection(XmppServer server, ConnectionContext context, TlsSettings tls, bool directTls)
        : base(server, (context.RemoteEndPoint as IPEndPoint)?.Address)
    {
        _context = context;
        _tls = tls;
        _directTls = directTls;
        _input = context.Transport.Input;
        _output = context.Transport.Output;
        _parser = new XmppStreamParser(server.Xml);
    }

    public override string TransportName => "TCP";
    public override bool IsSecure => _ssl is not null;

    public override string? TlsProtocol => _ssl?.SslProtocol switch
    {
        null => null,
        SslProtocols.Tls13 => "TLSv1.3",
        SslProtocols.Tls12 => "TLSv1.2",
        var other => other.ToString(),
    };

    protected override byte[]? ChannelBindingData => _channelBinding;
    /// <summary>A registration per waiting read would be ~150 bytes on every idle connection.</summary>
    protected override bool ReadsObserveLifetime => false;
    protected override bool CanStartTls => !IsSecure && _tls.Certificate is not null;
    protected override bool MustStartTls => !IsSecure && !Server.Options.AllowPlaintext;

    protected override async Task ReadLoopAsync()
    {
        if (_directTls) await StartTlsAsync();
        while (true)
        {
            var input = _input;
            var tlsIdle = _tlsIdle;
            if (tlsIdle is not null)
            {
                tlsIdle.TryRelease();
                tlsIdle.Enter(TlsIdleMemory.Reading);
            }
            var result = await input.ReadAsync();
            tlsIdle?.Exit(TlsIdleMemory.Reading);
            var buffer = result.Buffer;
            var received = buffer.Length;
            long consumedBytes;
            var startTls = false;
            try
            {
                while (!startTls)
                {
                    var ev = _parser.Read(buffer, out var consumed, out var element);
                    buffer = buffer.Slice(consumed);
                    if (ev == XmlEvent.None) break;
                    switch (ev)
                    {
                        case XmlEvent.StreamOpen:
                            OnStreamOpen(element!, _parser.DefaultNamespace, "stream", Ns.Stream);
                            break;
                        case XmlEvent.StreamClose:
                            Close(null);
                            return;
                        default:
                            startTls = await OnElementAsync(element!);
                            if (startTls && !buffer.IsEmpty)
                                throw new StreamErrorException(StreamErrors.PolicyViolation, "data sent after starttls before the TLS handshake");
                            break;
                    }
                    if (Closing) return;
                }
            }
            finally
            {
                consumedBytes = received - buffer.Length;
                input.AdvanceTo(buffer.Start, buffer.End);
            }
            if (startTls)
            {
                await StartTlsAsync();
                continue;
            }
            if (result.IsCompleted || result.IsCanceled) return;
            await ThrottleAsync(consumedBytes);
        }
    }

    protected override void OnStreamRestart()
    {
        base.OnStreamRestart();
        _parser.Reset();
    }

    protected override async Task StartTlsAsync()
    {
        var transport = _context.Transport;
        var tlsIdle = new TlsIdleMemory();
        var ssl = new SslStream(new DuplexPipeStream(transport.Input, transport.Output, tlsIdle), leaveInnerStreamOpen: false);
        // The TLS deadline (TlsTimeoutSeconds) aborts the connection, which cancels Lifetime.
        Progress(LoginPhase.Handshaking);
        var credentials = _tls.Current!;
        await ssl.AuthenticateAsServerAsync(_directTls ? credentials.DirectOptions : credentials.StartTlsOptions, Lifetime.Token);
        Progress(LoginPhase.Secured);
        TlsBuffers.ReleaseWhenIdle(ssl);
        if (tlsIdle.Bind(ssl)) _tlsIdle = tlsIdle;
        _ssl = ssl;
        _channelBinding = credentials.ChannelBinding;
        _input = new StreamInput(ssl);
        _output = new BufferedStreamWriter(ssl);
        OnStreamRestart();
    }

    protected override void WriteHeader(Element header)
    {
        var output = _output;
        output.WriteAscii("<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'");
        foreach (var (name, value) in header.Attributes)
        {
            output.WriteByte((byte)' ');
            output.WriteAscii(name);
            output.WriteAscii("='");
            ElementWriter.WriteEscaped(output, value, attribute: true);
            output.WriteByte((byte)'\'');
        }
        output.WriteByte((byte)'>');
    }

    protected override void WriteElement(Element element) => ElementWriter.Write(element, _output, Ns.Client);

    protected override void WriteClose(Element? error, bool headerWritten)
    {
        if (error is not null)
        {
            if (!headerWritten) WriteHeader(ResponseHeader(null));
            ElementWriter.Write(error, _output, Ns.Client);
        }
        _output.WriteAscii("</stream:stream>");
    }

    protected override async ValueTask FlushAsync()
    {
        var tlsIdle = _tlsIdle;
        if (tlsIdle is null)
        {
            await _output.FlushAsync();
            return;
        }
        tlsIdle.Enter(TlsIdleMemory.Writing);
        try
        {
            await _output.FlushAsync();
        }
        finally
        {
            tlsIdle.Exit(TlsIdleMemory.Writing);
        }
        tlsIdle.TryRelease();
    }

    protected override async ValueTask CompleteOutputAsync()
    {
        var tlsIdle = _tlsIdle;
        tlsIdle?.Enter(TlsIdleMemory.Writing);
        try
        {
            await _output.CompleteAsync();
        }
        finally
        {
            tlsIdle?.Exit(TlsIdleMemory.Writing);
        }
        // The read loop may be waiting for the peer: wake it, so the handler returns and Kestrel closes the
        // connection gracefully after sending what is written.
        _input.CancelPendingRead();
    }

    protected override void AbortTransport() => _context.Abort();

    protected override void DisposeTransport() => _ssl?.Dispose();
}
