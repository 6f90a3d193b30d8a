using System.Net;
using System.Text;
using System.Xml.Linq;
using Candor.Server.Hosting;
using Candor.Server.Tests.Harness;

namespace Candor.Server.Tests;

/// <summary>A server with its HTTP and HTTPS listeners on; BOSH requests are held at most 3 s, sessions idle at most 2 s.</summary>
public sealed class BoshFixture : ServerFixture
{
    public const int MaxWait = 3;
    public const int Inactivity = 2;

    public int HttpPort => Host.HttpPort;
    public int HttpsPort => Host.HttpsPort;

    protected override void Configure(ServerOptions options)
    {
        options.HttpPort = 0;
        options.HttpsPort = 0;
        options.BoshMaxWaitSeconds = MaxWait;
        options.BoshInactivitySeconds = Inactivity;
    }
}

/// <summary>XMPP over BOSH (XEP-0124, XEP-0206) at /http-bind over real HTTP: sessions, the rid window, resends, limits, terminal conditions.</summary>
public sealed class BoshTests(BoshFixture server) : IClassFixture<BoshFixture>
{
    private static readonly XNamespace Bind = "http://jabber.org/protocol/httpbind";
    private static readonly XNamespace Xbosh = "urn:xmpp:xbosh";
    private static readonly XNamespace Streams = "http://etherx.jabber.org/streams";
    private static readonly XNamespace Client = "jabber:client";

    private string Https => $"https://localhost:{server.HttpsPort}/http-bind";

    [Fact]
    public async Task The_creation_response_grants_the_limits_and_carries_the_stream_features()
    {
        var bosh = new BoshClient(Https);
        var created = await bosh.CreateAsync(wait: 60, hold: 5);
        Assert.Equal("3", (string?)created.Attribute("wait"));   // the server's maximum, not the 60 asked
        Assert.Equal("1", (string?)created.Attribute("hold"));
        Assert.Equal("2", (string?)created.Attribute("requests"));
        Assert.Equal("2", (string?)created.Attribute("inactivity"));
        Assert.Equal("2", (string?)created.Attribute("polling"));
        Assert.Equal("1.11", (string?)created.Attribute("ver"));
        Assert.Equal("localhost", (string?)created.Attribute("from"));
        Assert.Equal("1.0", (string?)created.Attribute(Xbosh + "version"));
        Assert.Equal("true", (string?)created.Attribute(Xbosh + "restartlogic"));
        Assert.False(string.IsNullOrEmpty((string?)created.Attribute("authid")));
        Assert.True(((string?)created.Attribute("sid"))!.Length >= 32, "the sid carries 128 random bits");
        var mechanisms = created.Element(Streams + "features")!.Element(XName.Get("mechanisms", "urn:ietf:params:xml:ns:xmpp-sasl"))!;
        Assert.Contains(mechanisms.Elements(), m => m.Value == "PLAIN");
    }

    [Fact]
    public async Task A_BOSH_client_logs_in_and_chats_with_a_TCP_client_and_the_login_notice_names_BOSH()
    {
        var user = await server.CreateUserAsync("bosh");
        await using var other = await server.LoginAsync(user, "desk");
        await other.SendPresenceAsync();
        other.ReceiveLoginNotices = true;
        await using var peer = await server.OnlineUserAsync("peer");

        var bosh = new BoshClient(Https);
        var jid = await bosh.LoginAsync(user, "web", answerVersion: false);
        // The server asks a new client its name (XEP-0092) for the notice.
        var version = await bosh.ReceiveAsync(e => e.Name == Client + "iq" && e.Element(XName.Get("query", "jabber:iq:version")) is not null);
        await bosh.SendAsync($"<iq type='result' id='{(string?)version.Attribute("id")}' to='localhost' xmlns='jabber:client'><query xmlns='jabber:iq:version'><name>BoshTest</name></query></iq>");
        var notice = await other.ExpectAsync(e => e.Name == "message" && e.GetChild("login", "urn:xmpp:candor:login:0") is not null);
        Assert.Contains("New login to your account: BoshTest, resource \"web\", from 127.0.0.1 over BOSH at ", notice.GetChildText("body", "jabber:client"));
        Assert.Equal("BOSH", notice.GetChild("login", "urn:xmpp:candor:login:0")!.GetAttribute("transport"));

        await bosh.SendAsync($"<message to='{peer.Full}' type='chat' xmlns='jabber:client'><body>hello over BOSH</body></message>");
        var got = await peer.ExpectMessageAsync("hello over BOSH");
        Assert.Equal(jid, got.GetAttribute("from"));

        // A held request gets the peer's answer as soon as it is sent, long before 'wait' is over.
        var held = bosh.SendAsync("");
        await Task.Delay(200);
        var started = DateTime.UtcNow;
        await peer.SendAsync($"<message to='{jid}' type='chat'><body>hello back over TCP</body></message>");
        await held;
        Assert.True(DateTime.UtcNow - started < TimeSpan.FromSeconds(2));
        var answer = await bosh.ReceiveAsync(e => e.Name == Client + "message" && e.Element(Client + "body")?.Value == "hello back over TCP");
        Assert.Equal(peer.Full, (string?)answer.Attribute("from"));
    }

    [Fact]
    public async Task A_request_resent_with_the_same_rid_gets_the_same_response_and_a_dropped_request_loses_nothing()
    {
        var user = await server.CreateUserAsync("resend");
        await using var peer = await server.OnlineUserAsync("peer");
        var bosh = new BoshClient(Https);
        var jid = await bosh.LoginAsync(user, "web");

        var rid = bosh.NextRid();
        var first = await bosh.PostRawAsync(rid, "<iq type='get' id='p1' to='localhost' xmlns='jabber:client'><ping xmlns='urn:xmpp:ping'/></iq>");
        var again = await bosh.PostRawAsync(rid, "<iq type='get' id='p1' to='localhost' xmlns='jabber:client'><ping xmlns='urn:xmpp:ping'/></iq>");
        Assert.Contains("id='p1'", first.Replace('"', '\''));
        Assert.Equal(first, again);

        // The HTTP request is dropped while held; the message that arrives meanwhile is its response, sent again
        // to the same rid when the client retries.
        var dropped = bosh.NextRid();
        using (var cancel = new CancellationTokenSource(TimeSpan.FromMilliseconds(300)))
            await Assert.ThrowsAnyAsync<OperationCanceledException>(() => bosh.PostRawAsync(dropped, "", cancel.Token));
        await peer.SendAsync($"<message to='{jid}' type='chat'><body>sent while the request was gone</body></message>");
        await Task.Delay(300);
        var retried = await bosh.PostRawAsync(dropped, "");
        Assert.Contains("sent while the request was gone", retried);
        Assert.Equal(retried, await bosh.PostRawAsync(dropped, ""));
    }

    [Fact]
    public async Task Payloads_are_processed_in_rid_order_whatever_order_the_requests_arrive_in()
    {
        var user = await server.CreateUserAsync("order");
        await using var peer = await server.OnlineUserAsync("peer");
        var bosh = new BoshClient(Https);
        await bosh.LoginAsync(user, "web");

        var one = bosh.NextRid();
        var two = bosh.NextRid();
        var later = bosh.PostRawAsync(two, $"<message to='{peer.Full}' type='chat' xmlns='jabber:client'><body>second</body></message>");
        await Task.Delay(300);
        await peer.ExpectNothingAsync(TimeSpan.FromMilliseconds(300), e => e.Name == "message");
        var earlier = bosh.PostRawAsync(one, $"<message to='{peer.Full}' type='chat' xmlns='jabber:client'><body>first</body></message>");
        Assert.Equal("first", (await peer.ExpectStanzaAsync("message")).GetChildText("body", "jabber:client"));
        Assert.Equal("second", (await peer.ExpectStanzaAsync("message")).GetChildText("body", "jabber:client"));
        await Task.WhenAll(earlier, later);
    }

    [Fact]
    public async Task An_idle_held_request_is_answered_empty_after_wait_and_an_idle_session_ends_after_inactivity()
    {
        var user = await server.CreateUserAsync("idle");
        var bosh = new BoshClient(Https);
        await bosh.LoginAsync(user, "web");

        var started = DateTime.UtcNow;
        var empty = await bosh.SendAsync("");
        var held = DateTime.UtcNow - started;
        Assert.False(empty.HasElements);
        Assert.InRange(held.TotalSeconds, BoshFixture.MaxWait - 0.5, BoshFixture.MaxWait + 2);
        Assert.NotEmpty(server.Host.Server.Sessions.Get(user));

        await Task.Delay(TimeSpan.FromSeconds(BoshFixture.Inactivity + 1.5));
        Assert.Empty(server.Host.Server.Sessions.Get(user));
        var after = await bosh.SendAsync("");
        Assert.Equal("terminate", (string?)after.Attribute("type"));
    }

    [Fact]
    public async Task A_client_terminate_sends_its_payload_and_ends_the_session()
    {
        var user = await server.CreateUserAsync("bye");
        await using var peer = await server.OnlineUserAsync("peer");
        var bosh = new BoshClient(Https);
        var jid = await bosh.LoginAsync(user, "web");

        var response = await bosh.PostAsync(bosh.NextRid(), $"<message to='{peer.Full}' type='chat' xmlns='jabber:client'><body>last words</body></message>", "type='terminate'");
        Assert.Equal("terminate", (string?)response.Attribute("type"));
        Assert.Null(response.Attribute("condition"));
        await peer.ExpectMessageAsync("last words");
        Assert.Empty(server.Host.Server.Sessions.Get(user));
        var next = await bosh.SendAsync("");
        Assert.Equal("terminate", (string?)next.Attribute("type"));
        Assert.DoesNotContain(jid, string.Join(",", server.Host.Server.Sessions.Get(user).Select(s => s.Jid.ToString())));
    }

    [Fact]
    public async Task A_terminate_between_authentication_and_the_restart_ends_the_session_and_later_requests_are_told()
    {
        var user = await server.CreateUserAsync("half");
        var bosh = new BoshClient(Https);
        await bosh.CreateAsync();
        var plain = Convert.ToBase64String(Encoding.UTF8.GetBytes($"\0{user}\0{ServerFixture.Password(user)}"));
        await bosh.ExchangeAsync($"<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>{plain}</auth>", e => e.Name.LocalName == "success");
        var bye = await bosh.PostAsync(bosh.NextRid(), "", "type='terminate'");
        Assert.Equal("terminate", (string?)bye.Attribute("type"));
        for (var i = 0; i < 2; i++)
        {
            using var response = await BoshClient.Http.PostAsync(Https, new StringContent(
                $"<body xmlns='http://jabber.org/protocol/httpbind' rid='{bosh.NextRid()}' sid='{(string?)bosh.Created!.Attribute("sid")}'/>", Encoding.UTF8, "text/xml"));
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            Assert.Equal("terminate", (string?)XElement.Parse(await response.Content.ReadAsStringAsync()).Attribute("type"));
        }
    }

    [Fact]
    public async Task Bad_requests_get_the_terminal_condition_the_XEP_names()
    {
        var http = BoshClient.Http;
        async Task<XElement> Post(string url, string content)
        {
            using var response = await http.PostAsync(url, new StringContent(content, Encoding.UTF8, "text/xml"));
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            Assert.Equal("text/xml", response.Content.Headers.ContentType?.MediaType);
            return XElement.Parse(await response.Content.ReadAsStringAsync());
        }
        void Terminal(XElement body, string condition)
        {
            Assert.Equal(Bind + "body", body.Name);
            Assert.Equal("terminate", (string?)body.Attribute("type"));
            Assert.Equal(condition, (string?)body.Attribute("condition"));
        }

        Terminal(await Post(Https, "<body xmlns='http://jabber.org/protocol/httpbind' rid='1' to='localhost'"), "bad-request");
        Terminal(await Post(Https, "<presence xmlns='jabber:client'/>"), "bad-request");
        Terminal(await Post(Https, "<body xmlns='http://jabber.org/protocol/httpbind' to='localhost' wait='60' hold='1'/>"), "bad-request");
        Terminal(await Post(Https, "<body xmlns='http://jabber.org/protocol/httpbind' rid='-4' to='localhost'/>"), "bad-request");
        Terminal(await Post(Https, "<body xmlns='http://jabber.org/protocol/httpbind' rid='10' to='elsewhere.example' xmlns:xmpp='urn:xmpp:xbosh' xmpp:version='1.0'/>"), "host-unknown");
        Terminal(await Post(Https, "<body xmlns='http://jabber.org/protocol/httpbind' rid='10' sid='0123456789abcdef0123456789abcdef'/>"), "item-not-found");
        var huge = $"<body xmlns='http://jabber.org/protocol/httpbind' rid='10' to='localhost'>{new string(' ', server.Host.Server.Options.MaxStanzaBytes)}</body>";
        Terminal(await Post(Https, huge), "policy-violation");

        // A rid beyond the window ends the session: even a rid in the window is refused afterwards.
        var bosh = new BoshClient(Https);
        await bosh.CreateAsync();
        Terminal(await bosh.PostAsync(bosh.Rid + 5, ""), "item-not-found");
        Terminal(await bosh.PostAsync(bosh.NextRid(), ""), "item-not-found");

        // A polling session (hold 0) that polls twice within 'polling' seconds, the first poll answered empty.
        var poller = new BoshClient(Https);
        await poller.CreateAsync(hold: 0);
        Assert.Equal("0", (string?)poller.Created!.Attribute("hold"));
        Assert.Equal("1", (string?)poller.Created.Attribute("requests"));
        XElement? previous = null, poll = null;
        for (var i = 0; i < 4 && (string?)poll?.Attribute("type") != "terminate"; i++)
        {
            previous = poll;
            poll = await poller.SendAsync("");
        }
        Terminal(poll!, "policy-violation");
        Assert.False(previous!.HasElements, "only a poll after an empty answer is too soon");
    }

    [Fact]
    public async Task A_stream_error_ends_the_session_as_remote_stream_error_with_the_error_inside()
    {
        var user = await server.CreateUserAsync("err");
        var bosh = new BoshClient(Https);
        await bosh.LoginAsync(user, "web");
        var response = await bosh.SendAsync("<nonsense xmlns='urn:example:nonsense'/>");
        if ((string?)response.Attribute("type") != "terminate") response = await bosh.SendAsync("");
        Assert.Equal("terminate", (string?)response.Attribute("type"));
        Assert.Equal("remote-stream-error", (string?)response.Attribute("condition"));
        var error = response.Element(Streams + "error") ?? throw new Xunit.Sdk.XunitException(bosh.Transcript);
        Assert.NotNull(error.Element(XName.Get("unsupported-stanza-type", "urn:ietf:params:xml:ns:xmpp-streams")));
        Assert.Empty(server.Host.Server.Sessions.Get(user));
    }

    [Fact]
    public async Task Stream_management_works_over_BOSH()
    {
        var user = await server.CreateUserAsync("sm");
        var bosh = new BoshClient(Https);
        await bosh.LoginAsync(user, "web");
        var enabled = await bosh.ExchangeAsync("<enable xmlns='urn:xmpp:sm:3' resume='true'/>", e => e.Name.LocalName == "enabled");
        Assert.Equal("true", (string?)enabled.Attribute("resume"));
        await bosh.SendAsync("<iq type='get' id='sm1' to='localhost' xmlns='jabber:client'><ping xmlns='urn:xmpp:ping'/></iq>");
        var ack = await bosh.ExchangeAsync("<r xmlns='urn:xmpp:sm:3'/>", e => e.Name == XName.Get("a", "urn:xmpp:sm:3"));
        Assert.Equal("1", (string?)ack.Attribute("h"));
    }

    /// <summary>A BOSH client that stops polling is a lost connection: its stream-managed session waits, and a TCP stream resumes it with what came meanwhile.</summary>
    [Fact]
    public async Task A_session_that_went_quiet_over_BOSH_is_resumed_over_TCP_with_what_came_meanwhile()
    {
        var user = await server.CreateUserAsync("move");
        await using var peer = await server.OnlineUserAsync("peer");
        var bosh = new BoshClient(Https);
        var jid = await bosh.LoginAsync(user, "web");
        var enabled = await bosh.ExchangeAsync("<enable xmlns='urn:xmpp:sm:3' resume='true'/>", e => e.Name.LocalName == "enabled");
        var id = (string)enabled.Attribute("id")!;

        await Task.Delay(TimeSpan.FromSeconds(BoshFixture.Inactivity + 1.5));
        await peer.SendAsync($"<message to='{jid}' type='chat'><body>while you were away</body></message>");
        await using var tcp = await XmppTestClient.ConnectAsync(server.C2sPort);
        await tcp.StartTlsAsync();
        await tcp.AuthenticateAsync(user, ServerFixture.Password(user));
        await tcp.SendAsync($"<resume xmlns='urn:xmpp:sm:3' previd='{id}' h='0'/>");
        var resumed = await tcp.ExpectAsync(e => e.Namespace == "urn:xmpp:sm:3" && e.Name is "resumed" or "failed");
        Assert.Equal("resumed", resumed.Name);
        Assert.Equal(jid, (await tcp.ExpectMessageAsync("while you were away")).GetAttribute("to"));
    }

    [Fact]
    public async Task Plain_HTTP_serves_BOSH_to_this_machine_and_host_meta_lists_it()
    {
        var bosh = new BoshClient($"http://127.0.0.1:{server.HttpPort}/http-bind");
        var created = await bosh.CreateAsync();
        Assert.NotNull(created.Attribute("sid"));
        Assert.Equal(HttpStatusCode.MethodNotAllowed, (await BoshClient.Http.GetAsync(bosh.Url)).StatusCode);

        var xrd = XElement.Parse(await BoshClient.Http.GetStringAsync($"https://localhost:{server.HttpsPort}/.well-known/host-meta"));
        XNamespace ns = "http://docs.oasis-open.org/ns/xri/xrd-1.0";
        Assert.Contains(xrd.Elements(ns + "Link"), l => (string?)l.Attribute("rel") == "urn:xmpp:alt-connections:xbosh"
                                                      && (string?)l.Attribute("href") == $"https://localhost:{server.HttpsPort}/http-bind");
    }

    /// <summary>A BOSH client with one request at a time unless a test asks for more; everything received is kept.</summary>
    private sealed class BoshClient(string url)
    {
        public static readonly HttpClient Http = new(new SocketsHttpHandler
        {
            SslOptions = { RemoteCertificateValidationCallback = delegate { return true; } },
        }) { Timeout = TimeSpan.FromSeconds(30) };

        private readonly List<XElement> _received = [];
        private readonly StringBuilder _transcript = new();
        private string? _sid;

        public string Url { get; } = url;
        public long Rid { get; private set; } = Random.Shared.NextInt64(1L << 40, 1L << 41);
        public XElement? Created { get; private set; }

        public long NextRid() => ++Rid;

        public string Transcript
        {
            get
            {
                lock (_received) return _transcript.ToString();
            }
        }

        public async Task<XElement> CreateAsync(int wait = 60, int hold = 1)
        {
            Created = await PostAsync(Rid, "", $"to='localhost' wait='{wait}' hold='{hold}' ver='1.6' xml:lang='en' xmlns:xmpp='urn:xmpp:xbosh' xmpp:version='1.0'");
            _sid = (string?)Created.Attribute("sid");
            return Created;
        }

        public Task<XElement> SendAsync(string payload) => PostAsync(NextRid(), payload);

        public async Task<XElement> PostAsync(long rid, string payload, string attributes = "") =>
            XElement.Parse(await PostRawAsync(rid, payload, CancellationToken.None, attributes));

        public async Task<string> PostRawAsync(long rid, string payload, CancellationToken token = default, string attributes = "")
        {
            var sid = _sid is null ? "" : $" sid='{_sid}'";
            var body = $"<body xmlns='http://jabber.org/protocol/httpbind' rid='{rid}'{sid} {attributes}>{payload}</body>";
            using var response = await Http.PostAsync(Url, new StringContent(body, Encoding.UTF8, "text/xml"), token);
            var text = await response.Content.ReadAsStringAsync(token);
            lock (_received)
            {
                _received.AddRange(XElement.Parse(text).Elements());
                _transcript.AppendLine($"{body}\n  -> {text}");
            }
            return text;
        }

        /// <summary>Waits (sending empty requests) for an element received on any response so far.</summary>
        public async Task<XElement> ReceiveAsync(Func<XElement, bool> match)
        {
            for (var i = 0; i < 5; i++)
            {
                lock (_received)
                {
                    var found = _received.FirstOrDefault(match);
                    if (found is not null)
                    {
                        _received.Remove(found);
                        return found;
                    }
                }
                await SendAsync("");
            }
            throw new TimeoutException($"nothing matching arrived:\n{_transcript}");
        }

        public async Task<XElement> ExchangeAsync(string payload, Func<XElement, bool> match)
        {
            await SendAsync(payload);
            return await ReceiveAsync(match);
        }

        /// <summary>
        /// Creates the session, authenticates with PLAIN, restarts, binds and (unless <paramref name="answerVersion"/> is
        /// false) answers the XEP-0092 query the server sends a new client, so no later response carries it; returns the full JID.
        /// </summary>
        public async Task<string> LoginAsync(string user, string resource, bool answerVersion = true)
        {
            await CreateAsync();
            await ReceiveAsync(e => e.Name == Streams + "features");
            var plain = Convert.ToBase64String(Encoding.UTF8.GetBytes($"\0{user}\0{ServerFixture.Password(user)}"));
            await ExchangeAsync($"<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>{plain}</auth>", e => e.Name.LocalName == "success");
            await PostAsync(NextRid(), "", "to='localhost' xml:lang='en' xmlns:xmpp='urn:xmpp:xbosh' xmpp:restart='true'");
            await ReceiveAsync(e => e.Name == Streams + "features");
            var bound = await ExchangeAsync($"<iq type='set' id='b1' xmlns='jabber:client'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>{resource}</resource></bind></iq>",
                e => e.Name == Client + "iq" && (string?)e.Attribute("id") == "b1");
            if (answerVersion)
            {
                var version = await ReceiveAsync(e => e.Name == Client + "iq" && e.Element(XName.Get("query", "jabber:iq:version")) is not null);
                await SendAsync($"<iq type='result' id='{(string?)version.Attribute("id")}' to='localhost' xmlns='jabber:client'><query xmlns='jabber:iq:version'><name>BoshTest</name></query></iq>");
            }
            return bound.Descendants(XName.Get("jid", "urn:ietf:params:xml:ns:xmpp-bind")).Single().Value;
        }
    }
}
