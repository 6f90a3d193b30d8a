using System.IO.Pipelines;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Authentication;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using Candor.Xml;
using Candor.Xmpp;

namespace Candor.Client;

/// <summary>
/// One TCP connection carrying an XMPP stream: pipes over the socket (or the TLS stream once negotiated),
/// the restricted-XML parser for reading and <see cref="ElementWriter"/> for writing. Reads come from one
/// caller at a time; writes are serialized.
/// </summary>
internal sealed class XmppTransport : IAsyncDisposable
{
    private readonly Socket _socket;
    private readonly NetworkStream _network;
    private readonly SemaphoreSlim _writeLock = new(1, 1);
    private readonly XmppStreamParser _parser = new(XmlLimits.Default with { MaxStanzaBytes = 1024 * 1024 });
    private Stream _stream;
    private PipeReader _reader;
    private PipeWriter _writer;
    private int _disposed;

    private XmppTransport(Socket socket, string endPoint)
    {
        _socket = socket;
        RemoteEndPoint = endPoint;
        _network = new NetworkStream(socket, ownsSocket: true);
        _stream = _network;
        (_reader, _writer) = Pipes(_stream);
    }

    public SslStream? Tls => _stream as SslStream;
    public X509Certificate2? ServerCertificate { get; private set; }
    public string RemoteEndPoint { get; }

    private static (PipeReader, PipeWriter) Pipes(Stream stream) =>
        (PipeReader.Create(stream, new StreamPipeReaderOptions(leaveOpen: true)),
         PipeWriter.Create(stream, new StreamPipeWriterOptions(leaveOpen: true)));

    public static async Task<XmppTransport> ConnectAsync(string host, int port, CancellationToken cancellation)
    {
        var socket = new Socket(SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        try
        {
            await socket.ConnectAsync(host, port, cancellation);
            return new XmppTransport(socket, host.Contains(':') ? $"[{host}]:{port}" : $"{host}:{port}");
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }

    /// <summary>TLS on the current connection (direct TLS, or after &lt;proceed/&gt;). Validation follows the options.</summary>
    public async Task StartTlsAsync(string domain, XmppClientOptions options, bool directTls, CancellationToken cancellation)
    {
        // Nothing may be buffered: the server sends nothing between <proceed/> and the handshake.
        await _reader.CompleteAsync();
        await _writer.CompleteAsync();
        TlsFailure? failure = null;
        string? detail = null;
        var pin = NormalizeFingerprint(options.CertificateFingerprint);
        var ssl = new SslStream(_network, leaveInnerStreamOpen: true, (_, certificate, _, errors) =>
        {
            if (certificate is null)
            {
                (failure, detail) = (TlsFailure.CertificateInvalid, "the server sent no certificate");
                return false;
            }
            if (pin is not null)
            {
                var actual = Convert.ToHexString(certificate.GetCertHash(HashAlgorithmName.SHA256));
                if (actual == pin) return true;
                (failure, detail) = (TlsFailure.FingerprintMismatch,
                    $"the server certificate's SHA-256 fingerprint is {actual}, not the pinned {pin}");
                return false;
            }
            if (options.Insecure || errors == SslPolicyErrors.None) return true;
            (failure, detail) = (TlsFailure.CertificateInvalid, $"the certificate of {domain} is not valid ({Describe(errors)}); " +
                "use a certificate from a trusted CA, or pin it with its SHA-256 fingerprint");
            return false;
        });
        var authentication = new SslClientAuthenticationOptions
        {
            TargetHost = domain,
            EnabledSslProtocols = SslProtocols.Tls12 | SslProtocols.Tls13,
            CertificateRevocationCheckMode = X509RevocationMode.NoCheck,
        };
        if (directTls) authentication.ApplicationProtocols = [new SslApplicationProtocol("xmpp-client")];
        try
        {
            await ssl.AuthenticateAsClientAsync(authentication, cancellation);
        }
        catch (Exception e) when (e is AuthenticationException or IOException)
        {
            await ssl.DisposeAsync();
            if (failure is { } reason) throw new XmppTlsException(reason, detail!, e);
            throw new XmppTlsException(TlsFailure.HandshakeFailed, $"TLS handshake with {domain} failed: {e.GetBaseException().Message}", e);
        }
        if (ssl.RemoteCertificate is { } remote) ServerCertificate = new X509Certificate2(remote);
        _stream = ssl;
        (_reader, _writer) = Pipes(_stream);
    }

    private static string Describe(SslPolicyErrors errors)
    {
        var reasons = new List<string>();
        if (errors.HasFlag(SslPolicyErrors.RemoteCertificateNameMismatch)) reasons.Add("name mismatch");
        if (errors.HasFlag(SslPolicyErrors.RemoteCertificateChainErrors)) reasons.Add("untrusted or self-signed chain");
        if (errors.HasFlag(SslPolicyErrors.RemoteCertificateNotAvailable)) reasons.Add("no certificate");
        return string.Join(", ", reasons);
    }

    /// <summary>Upper-case hex without separators, or null. Throws for anything that is not 32 bytes of hex.</summary>
    public static string? NormalizeFingerprint(string? fingerprint)
    {
        if (fingerprint is null) return null;
        var hex = fingerprint.Replace(":", "").Replace(" ", "").ToUpperInvariant();
        if (hex.Length != 64 || !hex.All(Uri.IsHexDigit))
            throw new ArgumentException("a SHA-256 fingerprint is 64 hex digits (colons allowed)", nameof(fingerprint));
        return hex;
    }

    /// <summary>Starts a new stream: opens it and resets the parser for the server's new header.</summary>
    public Task OpenStreamAsync(string domain, Jid? from, CancellationToken cancellation)
    {
        _parser.Reset();
        var header = new StringBuilder("<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='");
        header.Append(Escape(domain)).Append('\'');
        if (from is not null) header.Append(" from='").Append(Escape(from.ToString())).Append('\'');
        header.Append(" version='1.0' xml:lang='en'>");
        return WriteRawAsync(header.ToString(), cancellation);
    }

    private static string Escape(string text) => text.Replace("&", "&amp;").Replace("'", "&apos;").Replace("<", "&lt;");

    public async Task WriteRawAsync(string text, CancellationToken cancellation)
    {
        await _writeLock.WaitAsync(cancellation);
        try
        {
            ThrowIfClosed();
            _writer.WriteUtf8(text);
            await Flush(cancellation);
        }
        finally
        {
            _writeLock.Release();
        }
    }

    public async Task WriteAsync(Element element, CancellationToken cancellation)
    {
        await _writeLock.WaitAsync(cancellation);
        try
        {
            ThrowIfClosed();
            ElementWriter.Write(element, _writer, Ns.Client);
            await Flush(cancellation);
        }
        finally
        {
            _writeLock.Release();
        }
    }

    private void ThrowIfClosed()
    {
        if (Volatile.Read(ref _disposed) != 0)
            throw new XmppConnectionException(ConnectionFailure.ClosedByServer, $"the connection to {RemoteEndPoint} is closed");
    }

    private async Task Flush(CancellationToken cancellation)
    {
        try
        {
            await _writer.FlushAsync(cancellation);
        }
        catch (Exception e) when (e is IOException or SocketException or ObjectDisposedException or InvalidOperationException)
        {
            throw new XmppConnectionException(ConnectionFailure.ClosedByServer, $"the connection to {RemoteEndPoint} was lost: {e.GetBaseException().Message}", e);
        }
    }

    /// <summary>The next stream event. Throws <see cref="XmppProtocolException"/> for malformed XML and
    /// <see cref="XmppConnectionException"/> when the connection ends.</summary>
    public async Task<(XmlEvent Event, Element? Element)> ReadAsync(CancellationToken cancellation)
    {
        while (true)
        {
            ReadResult result;
            try
            {
                result = await _reader.ReadAsync(cancellation);
            }
            catch (Exception e) when (e is IOException or SocketException or ObjectDisposedException or InvalidOperationException)
            {
                throw new XmppConnectionException(ConnectionFailure.ClosedByServer, $"the connection to {RemoteEndPoint} was lost: {e.GetBaseException().Message}", e);
            }
            var buffer = result.Buffer;
            XmlEvent ev;
            SequencePosition consumed;
            Element? element;
            try
            {
                ev = _parser.Read(buffer, out consumed, out element);
            }
            catch (XmlStreamException e)
            {
                _reader.AdvanceTo(buffer.Start, buffer.End);
                throw new XmppProtocolException($"the server sent malformed XML ({e.Message})", e);
            }
            if (ev != XmlEvent.None)
            {
                _reader.AdvanceTo(consumed);
                return (ev, element);
            }
            _reader.AdvanceTo(consumed, buffer.End);
            if (result.IsCompleted)
                throw new XmppConnectionException(ConnectionFailure.ClosedByServer, $"the server {RemoteEndPoint} closed the connection without closing the stream");
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0) return;
        try
        {
            _socket.Shutdown(SocketShutdown.Both);
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException)
        {
        }
        // A write still in progress fails on the shut-down socket; wait for it briefly so the pipes are not completed under it.
        var locked = await _writeLock.WaitAsync(TimeSpan.FromSeconds(2));
        try
        {
            await _reader.CompleteAsync();
            await _writer.CompleteAsync();
            await _stream.DisposeAsync();
            await _network.DisposeAsync();
        }
        catch (Exception e) when (e is IOException or SocketException or ObjectDisposedException or NotSupportedException or InvalidOperationException)
        {
        }
        finally
        {
            if (locked) _writeLock.Release();
            else _network.Dispose();
        }
    }
}
