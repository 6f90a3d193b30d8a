using System.Buffers;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using Candor.Xml;
using Candor.Xmpp;
using Candor.Xmpp.Sasl;

namespace Candor.Server.Tests.Harness;

/// <summary>
/// A deliberately small XMPP client for wire-level tests: it writes raw XML strings and reads what the server
/// sends with the project's own <see cref="XmppStreamParser"/>. Everything it receives (stream headers,
/// stanzas, the stream's end, EOF) is queued in order in an <see cref="Inbox{T}"/>.
/// It exists for input a correct client library never produces (malformed streams, SASL and stream negotiation
/// step by step, hostile clients, abrupt disconnects, exact stream errors); feature tests use Candor.Client's
/// <c>XmppClient</c> through <see cref="ServerFixture.ClientAsync"/>.
/// </summary>
public sealed class XmppTestClient : IAsyncDisposable
{
    public static readonly TimeSpan DefaultTimeout = TimeSpan.FromSeconds(5);

    /// <summary>Queued when the server closes the stream with &lt;/stream:stream&gt;.</summary>
    public const string StreamClosedName = "stream-closed";
    /// <summary>Queued when the TCP connection reaches its end.</summary>
    public const string EofName = "eof";
    /// <summary>Queued when what the server sent does not parse.</summary>
    public const string ParseErrorName = "parse-error";
    public const string TestNs = "urn:candor:test";

    private readonly TcpClient _tcp;
    private readonly Inbox<Element> _inbox = new(e => e.Namespace == TestNs && e.Name is EofName or ParseErrorName);
    private readonly XmppStreamParser _parser = new(XmlLimits.Default with { MaxStanzaBytes = 16 * 1024 * 1024 });
    private Stream _stream;
    private Task _reader = Task.CompletedTask;

    private XmppTestClient(TcpClient tcp, string domain)
    {
        _tcp = tcp;
        _stream = tcp.GetStream();
        Domain = domain;
    }

    public string Domain { get; }
    public X509Certificate2? ServerCertificate { get; private set; }
    public SslApplicationProtocol NegotiatedAlpn { get; private set; }
    public bool IsSecure => _stream is SslStream;
    /// <summary>The server's last stream header.</summary>
    public Element? StreamHeader { get; private set; }
    /// <summary>The last &lt;stream:features/&gt;.</summary>
    public Element? Features { get; private set; }
    /// <summary>The bound full JID.</summary>
    public Jid? Jid { get; private set; }
    public string Full => Jid!.ToString();
    public string Bare => Jid!.Bare.ToString();

    /// <summary>Opens TCP (and TLS for <paramref name="directTls"/>) without sending anything.</summary>
    public static async Task<XmppTestClient> ConnectTcpAsync(int port, bool directTls = false, string domain = "localhost",
        string[]? alpn = null, int? receiveBufferSize = null)
    {
        var tcp = new TcpClient { NoDelay = true };
        // Set before connecting, a small receive buffer also caps the TCP window (no autotuning): a client that
        // stops reading then stops the server's writes after a few kilobytes.
        if (receiveBufferSize is { } size) tcp.ReceiveBufferSize = size;
        await tcp.ConnectAsync("127.0.0.1", port);
        var client = new XmppTestClient(tcp, domain);
        if (directTls) await client.HandshakeAsync(alpn);
        client.StartReader();
        return client;
    }

    /// <summary>Connects and opens the stream: returns once the server's header and features arrived.</summary>
    public static async Task<XmppTestClient> ConnectAsync(int port, bool directTls = false, string domain = "localhost")
    {
        var client = await ConnectTcpAsync(port, directTls, domain);
        await client.OpenStreamAsync();
        return client;
    }

    /// <summary>Connects, negotiates TLS, authenticates and binds: a ready session (no presence sent).</summary>
    public static async Task<XmppTestClient> LoginAsync(int port, string user, string password, string? resource = null,
        string mechanism = "SCRAM-SHA-256", string domain = "localhost")
    {
        var client = await ConnectAsync(port, domain: domain);
        await client.StartTlsAsync();
        await client.AuthenticateAsync(user, password, mechanism);
        await client.BindAsync(resource);
        return client;
    }

    // ---- stream ----

    public static string Header(string? to = "localhost", string? version = "1.0", string ns = "jabber:client",
        string streamNs = "http://etherx.jabber.org/streams", string? from = null) =>
        $"<?xml version='1.0'?><stream:stream xmlns='{ns}' xmlns:stream='{streamNs}'"
        + (to is null ? "" : $" to='{to}'") + (from is null ? "" : $" from='{from}' xmlns:db='jabber:server:dialback'")
        + (version is null ? "" : $" version='{version}'") + ">";

    /// <summary>Shown to the server during the TLS handshake (a peer server's certificate, for SASL EXTERNAL).</summary>
    public X509Certificate2? ClientCertificate { get; set; }

    /// <summary>Set, the client opens server-to-server streams (jabber:server) from this domain.</summary>
    public string? ServerFrom { get; set; }

    public async Task<Element> OpenStreamAsync()
    {
        await SendAsync(ServerFrom is null ? Header(Domain) : Header(Domain, ns: "jabber:server", from: ServerFrom));
        StreamHeader = await ExpectAsync(e => e.Is("stream", Ns.Stream));
        Features = await ExpectAsync(e => e.Is("features", Ns.Stream));
        return Features;
    }

    public async Task StartTlsAsync()
    {
        Assert.NotNull(Features?.GetChild("starttls", Ns.Tls));
        await SendAsync("<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>");
        await ExpectAsync(e => e.Is("proceed", Ns.Tls));
        // The reader stops by itself after <proceed/>: nothing else is read from the plain socket.
        await _reader;
        await HandshakeAsync(null);
        _parser.Reset();
        StartReader();
        await OpenStreamAsync();
    }

    private async Task HandshakeAsync(string[]? alpn)
    {
        var ssl = new SslStream(_stream, leaveInnerStreamOpen: false);
        var options = new SslClientAuthenticationOptions
        {
            TargetHost = Domain,
            RemoteCertificateValidationCallback = (_, _, _, _) => true,
            ClientCertificates = ClientCertificate is null ? null : [ClientCertificate],
        };
        if (alpn is not null) options.ApplicationProtocols = [.. alpn.Select(p => new SslApplicationProtocol(p))];
        using var timeout = new CancellationTokenSource(DefaultTimeout);
        await ssl.AuthenticateAsClientAsync(options, timeout.Token);
        ServerCertificate = ssl.RemoteCertificate is X509Certificate2 c2 ? c2 : new X509Certificate2(ssl.RemoteCertificate!);
        NegotiatedAlpn = ssl.NegotiatedApplicationProtocol;
        _stream = ssl;
    }

    public IReadOnlyList<string> Mechanisms =>
        Features?.GetChild("mechanisms", Ns.Sasl)?.Elements.Select(e => e.Text).ToList() ?? [];

    // ---- SASL ----

    /// <summary>Authenticates and restarts the stream; fails the test unless the server says success.</summary>
    public async Task AuthenticateAsync(string user, string password, string mechanism = "SCRAM-SHA-256")
    {
        var outcome = await TryAuthenticateAsync(user, password, mechanism);
        Assert.True(outcome.Is("success", Ns.Sasl), "expected SASL success, got " + outcome);
        await OpenStreamAsync();
    }

    /// <summary>Runs one SASL exchange; returns the server's &lt;success/&gt; or &lt;failure/&gt; (no stream restart).</summary>
    public async Task<Element> TryAuthenticateAsync(string user, string password, string mechanism = "SCRAM-SHA-256",
        TimeSpan? timeout = null)
    {
        static bool Outcome(Element e) => e.Namespace == Ns.Sasl && e.Name is "success" or "failure";
        if (mechanism == "PLAIN")
        {
            var plain = Convert.ToBase64String(SaslPlain.Create(null, user, password));
            await SendAsync($"<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>{plain}</auth>");
            return await ExpectAsync(Outcome, timeout);
        }
        var algorithm = mechanism.StartsWith("SCRAM-SHA-256", StringComparison.Ordinal) ? ScramAlgorithm.Sha256 : ScramAlgorithm.Sha1;
        var plus = mechanism.EndsWith("-PLUS", StringComparison.Ordinal);
        var scram = plus
            ? new ScramClient(algorithm, user, password, ChannelBinding.TlsServerEndPointType,
                ChannelBinding.TlsServerEndPoint(ServerCertificate!), serverSupportsPlus: true)
            : new ScramClient(algorithm, user, password);
        Assert.Equal(mechanism, scram.MechanismName);
        await SendAsync($"<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='{mechanism}'>{Convert.ToBase64String(scram.CreateClientFirst())}</auth>");
        var challenge = await ExpectAsync(e => e.Is("challenge", Ns.Sasl) || Outcome(e), timeout);
        if (!challenge.Is("challenge", Ns.Sasl)) return challenge;
        var final = scram.CreateClientFinal(Convert.FromBase64String(challenge.Text));
        await SendAsync($"<response xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>{Convert.ToBase64String(final)}</response>");
        var outcome = await ExpectAsync(Outcome, timeout);
        if (outcome.Name == "success")
            Assert.True(scram.VerifyServerFinal(Convert.FromBase64String(outcome.Text)), "the server signature does not verify");
        return outcome;
    }

    // ---- bind ----

    public async Task<Jid> BindAsync(string? resource = null)
    {
        Assert.NotNull(Features?.GetChild("bind", Ns.Bind));
        var inner = resource is null ? "" : $"<resource>{Escape(resource)}</resource>";
        var result = await RequestAsync($"<iq type='set' id='bind1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'>{inner}</bind></iq>");
        Assert.Equal("result", result.Type());
        Jid = Candor.Xmpp.Jid.Parse(result.GetChild("bind", Ns.Bind)!.GetChildText("jid", Ns.Bind)!);
        return Jid;
    }

    // ---- sending and receiving ----

    public Task SendAsync(string xml) => SendRawAsync(Encoding.UTF8.GetBytes(xml));

    /// <summary>Sends, ignoring a connection the server has already cut (it refused the data half way).</summary>
    public async Task SendIgnoringResetAsync(string xml)
    {
        try
        {
            await SendAsync(xml);
        }
        catch (IOException)
        {
        }
    }

    public async Task SendRawAsync(byte[] bytes)
    {
        await _stream.WriteAsync(bytes);
        await _stream.FlushAsync();
    }

    private int _ids;

    /// <summary>Sends an IQ (its id must be set, or "{id}" is replaced by a fresh one) and waits for its result or error.</summary>
    public async Task<Element> RequestAsync(string iqXml, TimeSpan? timeout = null)
    {
        var id = "q" + Interlocked.Increment(ref _ids);
        if (iqXml.Contains("{id}")) iqXml = iqXml.Replace("{id}", id);
        else id = Candor.Server.Storage.StoredStanza.Parse(iqXml).Id()!;
        await SendAsync(iqXml);
        return await ExpectAsync(e => e.IsIq() && e.Id() == id && e.Type() is "result" or "error", timeout);
    }

    /// <summary>Takes the first received item matching <paramref name="match"/>, waiting up to the timeout.</summary>
    public Task<Element> ExpectAsync(Func<Element, bool> match, TimeSpan? timeout = null) =>
        _inbox.ExpectAsync(match, timeout ?? DefaultTimeout);

    /// <summary>A stanza of the given kind, optionally with a condition on it.</summary>
    public Task<Element> ExpectStanzaAsync(string name, Func<Element, bool>? match = null, TimeSpan? timeout = null) =>
        ExpectAsync(e => e.Namespace == Ns.Client && e.Name == name && (match?.Invoke(e) ?? true), timeout);

    /// <summary>A &lt;message/&gt; with that body.</summary>
    public Task<Element> ExpectMessageAsync(string body, TimeSpan? timeout = null) =>
        ExpectStanzaAsync("message", m => m.GetChildText("body", Ns.Client) == body, timeout);

    /// <summary>Asserts &lt;stream:error/&gt; with <paramref name="condition"/>, followed by the stream's end.</summary>
    public async Task<Element> ExpectStreamErrorAsync(string condition, TimeSpan? timeout = null)
    {
        var error = await ExpectAsync(e => e.Is("error", Ns.Stream) || (e.Namespace == TestNs && e.Name is EofName or ParseErrorName), timeout);
        Assert.True(error.Is("error", Ns.Stream), $"expected stream error <{condition}/>, got {error}");
        Assert.True(error.GetChild(condition, Ns.Streams) is not null, $"expected stream error <{condition}/>, got {error}");
        await ExpectAsync(e => e.Namespace == TestNs && e.Name is StreamClosedName, timeout);
        await ExpectAsync(e => e.Namespace == TestNs && e.Name is EofName, timeout);
        return error;
    }

    /// <summary>Asserts the server ends the stream (&lt;/stream:stream&gt; then EOF) without a stream error.</summary>
    public async Task ExpectStreamClosedAsync(TimeSpan? timeout = null)
    {
        var end = await ExpectAsync(e => e.Is("error", Ns.Stream) || (e.Namespace == TestNs && e.Name is StreamClosedName or EofName), timeout);
        Assert.True(end.Name == StreamClosedName, $"expected </stream:stream>, got {end}");
        await ExpectAsync(e => e.Namespace == TestNs && e.Name is EofName, timeout);
    }

    /// <summary>Asserts that nothing matching (by default: nothing at all) is received within the window.</summary>
    public Task ExpectNothingAsync(TimeSpan? window = null, Func<Element, bool>? match = null) =>
        _inbox.ExpectNothingAsync(match ?? (_ => true), window ?? TimeSpan.FromMilliseconds(300));

    private static string Escape(string s) => s.Replace("&", "&amp;").Replace("<", "&lt;").Replace("'", "&apos;");

    // ---- the reader ----

    private void StartReader() => _reader = Task.Run(ReadLoopAsync);

    private readonly SemaphoreSlim _readGate = new(1, 1);

    /// <summary>Stops reading from the socket (after the read in progress): a client that does not read.</summary>
    public Task PauseReadingAsync() => _readGate.WaitAsync();

    public void ResumeReading() => _readGate.Release();

    private async Task ReadLoopAsync()
    {
        var buffer = new byte[64 * 1024];
        int start = 0, end = 0;
        try
        {
            while (true)
            {
                if (end == buffer.Length)
                {
                    if (start > 0)
                    {
                        Buffer.BlockCopy(buffer, start, buffer, 0, end - start);
                        end -= start;
                        start = 0;
                    }
                    else
                    {
                        Array.Resize(ref buffer, buffer.Length * 2);
                    }
                }
                await _readGate.WaitAsync();
                _readGate.Release();
                var n = await _stream.ReadAsync(buffer.AsMemory(end));
                if (n == 0)
                {
                    Post(new Element(EofName, TestNs));
                    return;
                }
                end += n;
                while (true)
                {
                    var sequence = new ReadOnlySequence<byte>(buffer, start, end - start);
                    var ev = _parser.Read(sequence, out var consumed, out var element);
                    start += (int)sequence.Slice(0, consumed).Length;
                    if (ev == XmlEvent.None) break;
                    switch (ev)
                    {
                        case XmlEvent.StreamOpen:
                            Post(element!);
                            break;
                        case XmlEvent.StreamClose:
                            Post(new Element(StreamClosedName, TestNs));
                            break;
                        default:
                            Post(element!);
                            // After <proceed/> the next bytes are TLS: stop and let StartTlsAsync take over.
                            if (element!.Is("proceed", Ns.Tls)) return;
                            // After <success/> the server opens a new stream.
                            if (element.Is("success", Ns.Sasl)) _parser.Reset();
                            break;
                    }
                }
                if (start == end) start = end = 0;
            }
        }
        catch (XmlStreamException e)
        {
            Post(new Element(ParseErrorName, TestNs).AddText(e.Message));
        }
        catch (Exception e) when (e is IOException or ObjectDisposedException or SocketException or InvalidOperationException)
        {
            Post(new Element(EofName, TestNs).AddText(e.Message));
        }
    }

    private void Post(Element element)
    {
        if (element.Is("features", Ns.Stream)) Features = element;
        // Login notices (promise 3) arrive whenever another session of the account logs in; tests that are about
        // something else would trip over them, so they are dropped unless a test asks for them.
        if (!ReceiveLoginNotices && element.IsMessage() && element.GetChild("login", LoginNoticeNamespace) is not null) return;
        // Likewise the server's software version query after bind (it names the client in login notices; unanswered,
        // the notice goes out after ClientVersionTimeoutSeconds).
        if (!ReceiveVersionQueries && element.IsIq() && element.Type() == "get" && element.GetChild("query", Ns.Version) is not null) return;
        _inbox.Post(element);
    }

    public const string LoginNoticeNamespace = "urn:xmpp:candor:login:0";

    /// <summary>Deliver login notices like any other stanza instead of dropping them.</summary>
    public bool ReceiveLoginNotices { get; set; }

    /// <summary>Deliver the server's XEP-0092 version queries like any other stanza instead of dropping them.</summary>
    public bool ReceiveVersionQueries { get; set; }

    /// <summary>This client's end of the TCP connection.</summary>
    public System.Net.IPEndPoint LocalEndPoint => (System.Net.IPEndPoint)_tcp.Client.LocalEndPoint!;

    /// <summary>Drops the TCP connection without closing the stream (an abrupt disconnect).</summary>
    public void Abort()
    {
        _tcp.Client.LingerState = new LingerOption(true, 0);
        _tcp.Close();
    }

    public async ValueTask DisposeAsync()
    {
        try
        {
            _tcp.Close();
            await _reader.WaitAsync(TimeSpan.FromSeconds(2));
        }
        catch (Exception e) when (e is TimeoutException or IOException or ObjectDisposedException)
        {
        }
        _tcp.Dispose();
    }
}
