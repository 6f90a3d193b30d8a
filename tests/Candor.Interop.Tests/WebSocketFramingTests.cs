using System.Net;
using System.Net.WebSockets;
using System.Text;
using System.Text.Json;
using System.Xml.Linq;
using Candor.Interop.Tests.Infrastructure;
using Candor.Xmpp.Sasl;
using Xunit.Abstractions;

namespace Candor.Interop.Tests;

/// <summary>A candor process with two accounts, shared by the WebSocket tests.</summary>
public sealed class WebSocketServerFixture : IAsyncLifetime
{
    public CandorServer Server { get; private set; } = null!;

    public async Task InitializeAsync()
    {
        Server = await CandorServer.StartAsync();
        await Server.AddUserAsync("alice@localhost", "alice-secret");
        await Server.AddUserAsync("bob@localhost", "bob-secret");
    }

    public async Task DisposeAsync() => await Server.DisposeAsync();
}

/// <summary>
/// XMPP over WebSocket (RFC 7395) against a real server with <see cref="ClientWebSocket"/>: the upgrade and
/// its subprotocol, a whole session (open, SASL, restart, bind, messages, close) over ws:// and wss://, the
/// framing rules and each kind of bad input, and XEP-0156 discovery.
/// </summary>
[Trait("Category", "Interop")]
public sealed class WebSocketFramingTests(WebSocketServerFixture fixture, ITestOutputHelper output) : IClassFixture<WebSocketServerFixture>
{
    private static readonly XNamespace Framing = "urn:ietf:params:xml:ns:xmpp-framing";
    private static readonly XNamespace Stream = "http://etherx.jabber.org/streams";
    private static readonly XNamespace Streams = "urn:ietf:params:xml:ns:xmpp-streams";
    private static readonly XNamespace Sasl = "urn:ietf:params:xml:ns:xmpp-sasl";
    private static readonly XNamespace Bind = "urn:ietf:params:xml:ns:xmpp-bind";
    private static readonly XNamespace Client = "jabber:client";
    private const string Open = "<open xmlns='urn:ietf:params:xml:ns:xmpp-framing' to='localhost' version='1.0'/>";

    private CandorServer Server => fixture.Server;
    private Uri Ws => new($"ws://{CandorServer.Host}:{Server.HttpPort}/xmpp-websocket");
    private Uri Wss => new($"wss://{CandorServer.Host}:{Server.HttpsPort}/xmpp-websocket");

    // ------------------------------------------------------------------ the upgrade

    [Fact]
    public async Task Upgrade_without_a_subprotocol_is_refused()
    {
        var status = await RefusedUpgradeAsync(Ws, subprotocol: null);
        Assert.Equal(HttpStatusCode.BadRequest, status);
    }

    [Fact]
    public async Task Upgrade_with_another_subprotocol_is_refused()
    {
        var status = await RefusedUpgradeAsync(Ws, subprotocol: "mqtt");
        Assert.Equal(HttpStatusCode.BadRequest, status);
    }

    [Fact]
    public async Task Plain_GET_of_the_endpoint_asks_for_an_upgrade()
    {
        using var http = new HttpClient();
        var response = await http.GetAsync(new Uri($"http://{CandorServer.Host}:{Server.HttpPort}/xmpp-websocket"));
        Assert.Equal(HttpStatusCode.UpgradeRequired, response.StatusCode);
    }

    // ------------------------------------------------------------------ whole sessions

    /// <summary>
    /// Alice over ws:// with SCRAM-SHA-256 (PLAIN is not offered without TLS), Bob over wss:// with PLAIN;
    /// each message is one element, a chat goes both ways, and &lt;close/&gt; is answered with &lt;close/&gt;
    /// and a normal WebSocket closure.
    /// </summary>
    [Fact]
    public async Task Session_over_ws_and_wss_open_auth_bind_chat_close()
    {
        await using var alice = await XmppWebSocket.ConnectAsync(Ws, output, "alice");
        await alice.SendAsync(Open);
        var open = await alice.ReceiveAsync();
        Assert.Equal(Framing + "open", open.Name);
        Assert.Equal("localhost", (string?)open.Attribute("from"));
        Assert.Equal("1.0", (string?)open.Attribute("version"));
        Assert.False(string.IsNullOrEmpty((string?)open.Attribute("id")), "the server's <open/> carries a stream id");
        var features = await alice.ReceiveAsync();
        Assert.Equal(Stream + "features", features.Name);
        var mechanisms = Mechanisms(features);
        Assert.Contains("SCRAM-SHA-256", mechanisms);
        Assert.DoesNotContain("PLAIN", mechanisms);
        Assert.Null(features.Element("{urn:ietf:params:xml:ns:xmpp-tls}starttls"));
        await ScramAsync(alice, "alice", "alice-secret");
        var aliceJid = await RestartAndBindAsync(alice, "ws");
        Assert.Equal("alice@localhost/ws", aliceJid);

        await using var bob = await XmppWebSocket.ConnectAsync(Wss, output, "bob");
        await bob.SendAsync(Open);
        Assert.Equal(Framing + "open", (await bob.ReceiveAsync()).Name);
        var secureMechanisms = Mechanisms(await bob.ReceiveAsync());
        Assert.Contains("PLAIN", secureMechanisms);
        Assert.Contains("SCRAM-SHA-256-PLUS", secureMechanisms);
        var plain = Convert.ToBase64String(Encoding.UTF8.GetBytes("\0bob\0bob-secret"));
        await bob.SendAsync($"<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>{plain}</auth>");
        Assert.Equal(Sasl + "success", (await bob.ReceiveAsync()).Name);
        var bobJid = await RestartAndBindAsync(bob, "wss");
        Assert.Equal("bob@localhost/wss", bobJid);

        await alice.SendAsync($"<message xmlns='jabber:client' to='{bobJid}' type='chat' id='m1'><body>Hello over ws</body></message>");
        var atBob = await bob.ReceiveUntilAsync(e => e.Name == Client + "message");
        Assert.Equal(aliceJid, (string?)atBob.Attribute("from"));
        Assert.Equal("Hello over ws", (string?)atBob.Element(Client + "body"));

        await bob.SendAsync($"<message xmlns='jabber:client' to='{aliceJid}' type='chat' id='m2'><body>And back over wss</body></message>");
        var atAlice = await alice.ReceiveUntilAsync(e => e.Name == Client + "message");
        Assert.Equal(bobJid, (string?)atAlice.Attribute("from"));
        Assert.Equal("And back over wss", (string?)atAlice.Element(Client + "body"));

        await alice.SendAsync("<close xmlns='urn:ietf:params:xml:ns:xmpp-framing'/>");
        var close = await alice.ReceiveUntilAsync(e => e.Name == Framing + "close");
        Assert.Equal(Framing + "close", close.Name);
        Assert.Equal(WebSocketCloseStatus.NormalClosure, await alice.ReceiveCloseAsync());
    }

    // ------------------------------------------------------------------ bad input

    [Fact]
    public async Task Message_above_the_stanza_limit_ends_the_stream_with_policy_violation()
    {
        await using var ws = await OpenedAsync();
        // MaxStanzaBytes is 262144 by default.
        var huge = "<message xmlns='jabber:client' to='bob@localhost'><body>" + new string('x', 300_000) + "</body></message>";
        var sending = ws.SendAsync(huge);
        await ExpectStreamErrorAsync(ws, "policy-violation", WebSocketCloseStatus.MessageTooBig);
        await IgnoreSendFailureAsync(sending);
    }

    [Fact]
    public async Task Two_elements_in_one_message_are_not_well_formed()
    {
        await using var ws = await OpenedAsync();
        await ws.SendAsync("<presence xmlns='jabber:client'/><presence xmlns='jabber:client'/>");
        await ExpectStreamErrorAsync(ws, "not-well-formed");
    }

    [Theory]
    [InlineData("")]
    [InlineData("   ")]
    [InlineData("just text")]
    public async Task Message_without_an_element_is_not_well_formed(string text)
    {
        await using var ws = await OpenedAsync();
        await ws.SendAsync(text);
        await ExpectStreamErrorAsync(ws, "not-well-formed");
    }

    [Theory]
    [InlineData("<message xmlns='jabber:client'><body>unclosed</message>")]
    [InlineData("<message xmlns='jabber:client'><body>half")]
    [InlineData("<presence xmlns='jabber:client' type='available/>")]
    [InlineData("<presence xmlns='jabber:client'/><")]
    public async Task Malformed_XML_is_not_well_formed(string text)
    {
        await using var ws = await OpenedAsync();
        await ws.SendAsync(text);
        await ExpectStreamErrorAsync(ws, "not-well-formed");
    }

    [Fact]
    public async Task Comment_is_restricted_xml()
    {
        await using var ws = await OpenedAsync();
        await ws.SendAsync("<!-- hello --><presence xmlns='jabber:client'/>");
        await ExpectStreamErrorAsync(ws, "restricted-xml");
    }

    [Theory]
    [InlineData(" {0}")]
    [InlineData("{0}\n")]
    [InlineData("<?xml version='1.0'?>{0}")]
    public async Task Whitespace_and_an_XML_declaration_around_the_element_are_accepted(string frame)
    {
        await using var ws = await XmppWebSocket.ConnectAsync(Ws, output, "client");
        await ws.SendAsync(string.Format(frame, Open));
        Assert.Equal(Framing + "open", (await ws.ReceiveAsync()).Name);
        Assert.Equal(Stream + "features", (await ws.ReceiveAsync()).Name);
    }

    /// <summary>A second &lt;open/&gt; without a restart (no SASL success since the first) ends the stream.</summary>
    [Fact]
    public async Task Open_while_the_stream_is_open_is_bad_format()
    {
        await using var ws = await OpenedAsync();
        await ws.SendAsync(Open);
        await ExpectStreamErrorAsync(ws, "bad-format");
    }

    [Fact]
    public async Task Unknown_framing_element_is_unsupported_stanza_type()
    {
        await using var ws = await OpenedAsync();
        await ws.SendAsync("<reopen xmlns='urn:ietf:params:xml:ns:xmpp-framing'/>");
        await ExpectStreamErrorAsync(ws, "unsupported-stanza-type");
    }

    [Fact]
    public async Task Binary_frame_is_refused_with_bad_format()
    {
        await using var ws = await OpenedAsync();
        await ws.SendBinaryAsync(Encoding.UTF8.GetBytes("<presence xmlns='jabber:client'/>"));
        await ExpectStreamErrorAsync(ws, "bad-format", WebSocketCloseStatus.InvalidMessageType);
    }

    [Fact]
    public async Task Bad_input_before_open_still_gets_open_error_close()
    {
        await using var ws = await XmppWebSocket.ConnectAsync(Ws, output, "early");
        await ws.SendAsync("<presence xmlns='jabber:client'/><presence xmlns='jabber:client'/>");
        var open = await ws.ReceiveAsync();
        Assert.Equal(Framing + "open", open.Name);
        await ExpectStreamErrorAsync(ws, "not-well-formed");
    }

    // ------------------------------------------------------------------ discovery (XEP-0156)

    [Fact]
    public async Task Host_meta_advertises_the_endpoints_the_requester_can_use()
    {
        using var http = Https();
        foreach (var (baseUri, expected) in new[]
        {
            // A loopback browser may use plain ws:// (and http:// for BOSH) on the port it asked; wss:// and https:// on
            // the HTTPS port work for everyone. WebSocket first, then BOSH.
            ($"http://{CandorServer.Host}:{Server.HttpPort}", new[]
            {
                ("urn:xmpp:alt-connections:websocket", Ws.ToString()), ("urn:xmpp:alt-connections:websocket", Wss.ToString()),
                ("urn:xmpp:alt-connections:xbosh", $"http://{CandorServer.Host}:{Server.HttpPort}/http-bind"),
                ("urn:xmpp:alt-connections:xbosh", $"https://{CandorServer.Host}:{Server.HttpsPort}/http-bind"),
            }),
            ($"https://{CandorServer.Host}:{Server.HttpsPort}", new[]
            {
                ("urn:xmpp:alt-connections:websocket", Wss.ToString()),
                ("urn:xmpp:alt-connections:xbosh", $"https://{CandorServer.Host}:{Server.HttpsPort}/http-bind"),
            }),
        })
        {
            var xrd = await http.GetAsync($"{baseUri}/.well-known/host-meta");
            Assert.Equal(HttpStatusCode.OK, xrd.StatusCode);
            Assert.Equal("application/xrd+xml", xrd.Content.Headers.ContentType?.MediaType);
            var doc = XDocument.Parse(await xrd.Content.ReadAsStringAsync());
            XNamespace xrdNs = "http://docs.oasis-open.org/ns/xri/xrd-1.0";
            Assert.Equal(xrdNs + "XRD", doc.Root!.Name);
            var links = doc.Root.Elements(xrdNs + "Link").ToList();
            Assert.Equal(expected, links.Select(link => ((string)link.Attribute("rel")!, (string)link.Attribute("href")!)));

            var json = await http.GetAsync($"{baseUri}/.well-known/host-meta.json");
            Assert.Equal(HttpStatusCode.OK, json.StatusCode);
            Assert.Equal("application/json", json.Content.Headers.ContentType?.MediaType);
            using var parsed = JsonDocument.Parse(await json.Content.ReadAsStringAsync());
            var jsonLinks = parsed.RootElement.GetProperty("links").EnumerateArray().ToList();
            Assert.Equal(expected, jsonLinks.Select(link => (link.GetProperty("rel").GetString()!, link.GetProperty("href").GetString()!)));
        }
    }

    // ------------------------------------------------------------------ the web client page

    [Fact]
    public async Task Web_client_page_names_this_server_under_a_strict_content_security_policy()
    {
        using var http = Https();
        foreach (var (baseUri, websocket) in new[]
        {
            ($"http://{CandorServer.Host}:{Server.HttpPort}", Ws.ToString()),
            ($"https://{CandorServer.Host}:{Server.HttpsPort}", Wss.ToString()),
        })
        {
            var page = await http.GetAsync($"{baseUri}/");
            Assert.Equal(HttpStatusCode.OK, page.StatusCode);
            Assert.Equal("text/html", page.Content.Headers.ContentType?.MediaType);
            var html = await page.Content.ReadAsStringAsync();
            Assert.Contains($"<meta name=\"candor-websocket-url\" content=\"{websocket}\">", html);
            Assert.Contains("<meta name=\"candor-domain\" content=\"localhost\">", html);
            Assert.DoesNotContain("{{", html);
            var csp = string.Join(";", page.Headers.GetValues("Content-Security-Policy"));
            Assert.Contains("default-src 'none'", csp);
            // Beside the page's own origin only this server's upload service (XEP-0363), for sending and showing files.
            var uploads = $"https://localhost:{Server.HttpsPort}";
            Assert.Contains($"connect-src 'self' {websocket} {uploads}", csp);
            Assert.Contains($"img-src 'self' data: blob: {uploads}", csp);
            Assert.Contains("script-src 'self' 'wasm-unsafe-eval'", csp);
            Assert.DoesNotContain("http", csp.Replace(websocket, "").Replace(uploads, ""));
            Assert.Contains("<meta name=\"candor-upload-host\" content=\"localhost\">", html);
            Assert.Equal("no-referrer", string.Join("", page.Headers.GetValues("Referrer-Policy")));

            var script = await http.GetAsync($"{baseUri}/converse/converse.min.js");
            Assert.Equal(HttpStatusCode.OK, script.StatusCode);
            Assert.Equal("text/javascript", script.Content.Headers.ContentType?.MediaType);
            var wasm = await http.GetAsync($"{baseUri}/converse/curve25519_compiled.wasm");
            Assert.Equal("application/wasm", wasm.Content.Headers.ContentType?.MediaType);
            Assert.Contains("Mozilla Public License", await http.GetStringAsync($"{baseUri}/converse/LICENSE.txt"));
        }
    }

    // ------------------------------------------------------------------ helpers

    private static HttpClient Https() => new(new HttpClientHandler
    {
        ServerCertificateCustomValidationCallback = HttpClientHandler.DangerousAcceptAnyServerCertificateValidator,
    });

    private static List<string> Mechanisms(XElement features) =>
        features.Element(Sasl + "mechanisms")?.Elements(Sasl + "mechanism").Select(m => m.Value).ToList() ?? [];

    /// <summary>A connected stream past &lt;open/&gt; and its features, not authenticated.</summary>
    private async Task<XmppWebSocket> OpenedAsync()
    {
        var ws = await XmppWebSocket.ConnectAsync(Ws, output, "client");
        await ws.SendAsync(Open);
        Assert.Equal(Framing + "open", (await ws.ReceiveAsync()).Name);
        Assert.Equal(Stream + "features", (await ws.ReceiveAsync()).Name);
        return ws;
    }

    private static async Task ScramAsync(XmppWebSocket ws, string user, string password)
    {
        var scram = new ScramClient(ScramAlgorithm.Sha256, user, password);
        await ws.SendAsync($"<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='{scram.MechanismName}'>{Convert.ToBase64String(scram.CreateClientFirst())}</auth>");
        var challenge = await ws.ReceiveAsync();
        Assert.Equal(Sasl + "challenge", challenge.Name);
        var final = scram.CreateClientFinal(Convert.FromBase64String(challenge.Value));
        await ws.SendAsync($"<response xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>{Convert.ToBase64String(final)}</response>");
        var success = await ws.ReceiveAsync();
        Assert.Equal(Sasl + "success", success.Name);
        Assert.True(scram.VerifyServerFinal(Convert.FromBase64String(success.Value)), "the server proved it knows the password");
    }

    /// <summary>Stream restart after SASL (a new &lt;open/&gt;), resource binding, initial presence; returns the full JID.</summary>
    private static async Task<string> RestartAndBindAsync(XmppWebSocket ws, string resource)
    {
        await ws.SendAsync(Open);
        Assert.Equal(Framing + "open", (await ws.ReceiveAsync()).Name);
        var features = await ws.ReceiveAsync();
        Assert.NotNull(features.Element(Bind + "bind"));
        await ws.SendAsync($"<iq xmlns='jabber:client' type='set' id='bind1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>{resource}</resource></bind></iq>");
        var result = await ws.ReceiveUntilAsync(e => e.Name == Client + "iq" && (string?)e.Attribute("id") == "bind1");
        Assert.Equal("result", (string?)result.Attribute("type"));
        var jid = result.Element(Bind + "bind")?.Element(Bind + "jid")?.Value;
        Assert.NotNull(jid);
        await ws.SendAsync("<presence xmlns='jabber:client'/>");
        return jid;
    }

    /// <summary>RFC 7395 §3.6: the stream error, then &lt;close/&gt;, then the WebSocket closes.</summary>
    private static async Task ExpectStreamErrorAsync(XmppWebSocket ws, string condition,
        WebSocketCloseStatus? closeStatus = null)
    {
        var error = await ws.ReceiveUntilAsync(e => e.Name == Stream + "error");
        Assert.True(error.Element(Streams + condition) is not null, $"expected <{condition}/>, got {error}");
        var close = await ws.ReceiveAsync();
        Assert.Equal(Framing + "close", close.Name);
        var status = await ws.ReceiveCloseAsync();
        if (closeStatus is not null) Assert.Equal(closeStatus, status);
    }

    private static async Task IgnoreSendFailureAsync(Task sending)
    {
        try
        {
            await sending;
        }
        catch (Exception e) when (e is WebSocketException or IOException or OperationCanceledException)
        {
            // the server may close before it has read everything we sent: that is the point
        }
    }

    private static async Task<HttpStatusCode> RefusedUpgradeAsync(Uri uri, string? subprotocol)
    {
        using var ws = new ClientWebSocket();
        ws.Options.CollectHttpResponseDetails = true;
        if (subprotocol is not null) ws.Options.AddSubProtocol(subprotocol);
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        await Assert.ThrowsAsync<WebSocketException>(() => ws.ConnectAsync(uri, timeout.Token));
        return ws.HttpStatusCode;
    }
}

/// <summary>One XMPP-over-WebSocket client connection: text messages in and out, each parsed as one element.</summary>
internal sealed class XmppWebSocket : IAsyncDisposable
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(10);
    private readonly ClientWebSocket _socket;
    private readonly ITestOutputHelper _log;
    private readonly string _name;

    private XmppWebSocket(ClientWebSocket socket, ITestOutputHelper log, string name)
    {
        _socket = socket;
        _log = log;
        _name = name;
    }

    public static async Task<XmppWebSocket> ConnectAsync(Uri uri, ITestOutputHelper log, string name)
    {
        var socket = new ClientWebSocket();
        socket.Options.AddSubProtocol("xmpp");
        socket.Options.RemoteCertificateValidationCallback = (_, _, _, _) => true; // the test server's self-signed certificate
        using var timeout = new CancellationTokenSource(Timeout);
        await socket.ConnectAsync(uri, timeout.Token);
        Assert.Equal("xmpp", socket.SubProtocol);
        return new XmppWebSocket(socket, log, name);
    }

    public async Task SendAsync(string text)
    {
        _log.WriteLine($"{_name} >> {(text.Length > 200 ? text[..200] + $"... ({text.Length} chars)" : text)}");
        using var timeout = new CancellationTokenSource(Timeout);
        await _socket.SendAsync(Encoding.UTF8.GetBytes(text), WebSocketMessageType.Text, endOfMessage: true, timeout.Token);
    }

    public async Task SendBinaryAsync(byte[] data)
    {
        _log.WriteLine($"{_name} >> binary frame of {data.Length} bytes");
        using var timeout = new CancellationTokenSource(Timeout);
        await _socket.SendAsync(data, WebSocketMessageType.Binary, endOfMessage: true, timeout.Token);
    }

    /// <summary>The next text message as an element; fails on a close or a timeout.</summary>
    public async Task<XElement> ReceiveAsync()
    {
        var (type, text) = await ReceiveMessageAsync();
        Assert.True(type == WebSocketMessageType.Text,
            $"{_name}: expected a text message, got {type} (close status {_socket.CloseStatus} {_socket.CloseStatusDescription})");
        _log.WriteLine($"{_name} << {text}");
        return XElement.Parse(text); // RFC 7395 §3.3.3: every message is exactly one complete element
    }

    public async Task<XElement> ReceiveUntilAsync(Func<XElement, bool> wanted)
    {
        while (true)
        {
            var element = await ReceiveAsync();
            if (wanted(element)) return element;
        }
    }

    /// <summary>Waits for the server's close frame, answers it, and returns its status.</summary>
    public async Task<WebSocketCloseStatus?> ReceiveCloseAsync()
    {
        var (type, text) = await ReceiveMessageAsync();
        Assert.True(type == WebSocketMessageType.Close, $"{_name}: expected the WebSocket to close, got {type}: {text}");
        _log.WriteLine($"{_name} << close {_socket.CloseStatus}");
        return _socket.CloseStatus;
    }

    private async Task<(WebSocketMessageType Type, string Text)> ReceiveMessageAsync()
    {
        using var timeout = new CancellationTokenSource(Timeout);
        var buffer = new byte[64 * 1024];
        using var message = new MemoryStream();
        while (true)
        {
            var result = await _socket.ReceiveAsync(buffer, timeout.Token);
            if (result.MessageType == WebSocketMessageType.Close) return (WebSocketMessageType.Close, "");
            message.Write(buffer, 0, result.Count);
            if (result.EndOfMessage) return (result.MessageType, Encoding.UTF8.GetString(message.ToArray()));
        }
    }

    public async ValueTask DisposeAsync()
    {
        try
        {
            if (_socket.State is WebSocketState.Open or WebSocketState.CloseReceived)
            {
                using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(2));
                await _socket.CloseOutputAsync(WebSocketCloseStatus.NormalClosure, null, timeout.Token);
            }
        }
        catch (Exception e) when (e is WebSocketException or OperationCanceledException or IOException)
        {
        }
        _socket.Dispose();
    }
}
