using System.Diagnostics;
using System.Net.WebSockets;
using System.Text;
using Candor.Server.Tests.Harness;
using Candor.Xmpp;
using static Candor.Xmpp.StreamErrors;

namespace Candor.Server.Tests.Hostile;

/// <summary>
/// Slow-loris (partial data, then silence), floods, connection floods and the WebSocket transport (RFC 7395).
/// The suite's server: AuthenticationTimeoutSeconds 4, MaxUnauthenticatedStreamsLoopback 40, default inbound rate.
/// </summary>
public static partial class HostileCases
{
    private static readonly TimeSpan AuthTimeout = TimeSpan.FromSeconds(4);

    /// <summary>Sends a partial input and goes silent: the stream must end with connection-timeout (RFC 6120 §4.9.3.4).</summary>
    private static HostileCase SlowLoris(string id, Stage stage, string partial) => new("slow-loris: " + id, stage, async c =>
    {
        var clock = Stopwatch.StartNew();
        if (partial.Length > 0) await c.Client.SendAsync(partial);
        await c.Client.ExpectStreamErrorAsync(ConnectionTimeout, AuthTimeout + TimeSpan.FromSeconds(10));
        Assert.True(clock.Elapsed < AuthTimeout + TimeSpan.FromSeconds(8), $"timed out only after {clock.Elapsed}");
    });

    private static IEnumerable<HostileCase> Abuse()
    {
        yield return SlowLoris("nothing sent at all", Stage.Tcp, "");
        yield return SlowLoris("half a stream header", Stage.Tcp, "<?xml version='1.0'?><stream:stream to='local");
        yield return SlowLoris("header, then nothing", Stage.Opened, "");
        yield return SlowLoris("half a stanza before TLS", Stage.Opened, "<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'");
        yield return SlowLoris("half a SASL exchange", Stage.Secure, Auth("SCRAM-SHA-256", B64("n,,n=user,r=abcdefgh")));
        yield return SlowLoris("half a stanza after TLS", Stage.Secure, "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>AGFsaWNl");
        yield return new("slow-loris: authenticated but never bound", Stage.None, async c =>
        {
            await using var client = await XmppTestClient.ConnectAsync(c.Suite.C2sPort);
            await client.StartTlsAsync();
            await client.AuthenticateAsync(c.Suite.Mallory, ServerFixture.Password(c.Suite.Mallory));
            await client.ExpectStreamErrorAsync(ConnectionTimeout, AuthTimeout + TimeSpan.FromSeconds(10));
        });
        yield return new("slow-loris: STARTTLS then no handshake", Stage.None, async c =>
        {
            // After <proceed/> only TLS can follow, so there is no room for a stream error: the connection is dropped.
            using var tcp = new System.Net.Sockets.TcpClient();
            await tcp.ConnectAsync("127.0.0.1", c.Suite.C2sPort);
            var stream = tcp.GetStream();
            await stream.WriteAsync(Encoding.UTF8.GetBytes(XmppTestClient.Header() + "<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>"));
            var clock = Stopwatch.StartNew();
            using var timeout = new CancellationTokenSource(AuthTimeout + TimeSpan.FromSeconds(20));
            var received = new StringBuilder();
            var buffer = new byte[4096];
            try
            {
                int n;
                while ((n = await stream.ReadAsync(buffer, timeout.Token)) > 0) received.Append(Encoding.UTF8.GetString(buffer, 0, n));
            }
            catch (IOException)
            {
            }
            Assert.Contains("<proceed", received.ToString());
            Assert.True(clock.Elapsed < AuthTimeout + TimeSpan.FromSeconds(15), $"dropped only after {clock.Elapsed}");
        });
        yield return new("slow-loris: 30 silent connections at once", Stage.None, async c =>
        {
            var clients = await Task.WhenAll(Enumerable.Range(0, 30).Select(_ => XmppTestClient.ConnectTcpAsync(c.Suite.C2sPort)));
            try
            {
                await Task.WhenAll(clients.Select(x => x.SendAsync("<?xml version='1.0'?><stream:stream to='loca")));
                await Task.WhenAll(clients.Select(x => x.ExpectStreamErrorAsync(ConnectionTimeout, AuthTimeout + TimeSpan.FromSeconds(15))));
            }
            finally
            {
                foreach (var x in clients) await x.DisposeAsync();
            }
        });
        yield return new("slow-loris: a bound session holding half a stanza does not block others", Stage.LoggedIn, async c =>
        {
            // After binding there is no timeout (clients idle for hours); the half stanza costs its own buffer only.
            await c.Client.SendAsync($"<message to='{c.Suite.Victim.Full}' id='slow'><body>par");
            await c.Suite.AssertPairStillServedAsync();
            await c.Client.SendAsync("t</body></message>");
            var got = await c.Suite.Victim.ExpectStanzaAsync("message", m => m.Id() == "slow", CaseContext.Timeout);
            Assert.Equal("part", got.GetChildText("body", Ns.Client));
        });
        yield return new("slow-loris: a header one byte at a time is still served", Stage.Tcp, async c =>
        {
            foreach (var b in Encoding.UTF8.GetBytes(Header))
            {
                await c.Client.SendRawAsync([b]);
                await Task.Delay(5);
            }
            await c.Client.ExpectAsync(e => e.Is("features", Ns.Stream), CaseContext.Timeout);
        });

        // Floods: everything sent is answered or delivered, in order, and the honest pair is not held up.
        yield return new("flood: 2000 pings", Stage.LoggedIn, async c =>
        {
            var sb = new StringBuilder();
            for (var i = 0; i < 2000; i++) sb.Append($"<iq type='get' id='f{i}' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>");
            await c.Client.SendAsync(sb.ToString());
            for (var i = 0; i < 2000; i++) await c.Client.ExpectAsync(e => e.Id() == "f" + i, CaseContext.Timeout);
        });
        yield return new("flood: 1000 messages to one recipient, none lost", Stage.LoggedIn, async c =>
        {
            await using var sink = await c.Suite.Server.OnlineUserAsync("sink");
            var sb = new StringBuilder();
            for (var i = 0; i < 1000; i++) sb.Append($"<message to='{sink.Full}' id='m{i}' type='chat'><body>flood {i}</body></message>");
            await c.Client.SendAsync(sb.ToString());
            for (var i = 0; i < 1000; i++) await sink.ExpectMessageAsync("flood " + i, CaseContext.Timeout);
        });
        yield return new("flood: 1000 presence updates", Stage.LoggedIn, async c =>
        {
            var sb = new StringBuilder();
            for (var i = 0; i < 1000; i++) sb.Append($"<presence><status>{i}</status></presence>");
            await c.Client.SendAsync(sb.ToString());
            await c.StillServedAsync();
        });
        yield return new("flood: 2 MB of whitespace is slowed, not cut", Stage.LoggedIn, async c =>
        {
            await c.Client.SendAsync(new string(' ', 2 * 1024 * 1024));
            await c.StillServedAsync();
        });
        yield return new("flood: 40 stanzas near the size limit", Stage.LoggedIn, async c =>
        {
            var body = new string('F', 60 * 1024);
            for (var i = 0; i < 40; i++) await c.Client.SendAsync($"<message to='nobody-here@localhost' type='error' id='big{i}'><body>{body}</body></message>");
            await c.StillServedAsync();
        });
        yield return new("flood: 200 SASL aborts on one stream end it", Stage.Secure, async c =>
        {
            var sb = new StringBuilder();
            for (var i = 0; i < 200; i++) sb.Append($"<abort xmlns='{SaslNs}'/>");
            await c.SendAsync(sb.ToString());
            await c.ExpectStreamErrorAsync(PolicyViolation);
        });
        yield return new("connection flood: over MaxUnauthenticatedStreamsLoopback gets policy-violation", Stage.None, async c =>
        {
            // Streams of earlier cases may still be closing, so count how many get in before the first refusal.
            var open = new List<XmppTestClient>();
            try
            {
                for (var i = 0; i <= 40; i++)
                {
                    var client = await XmppTestClient.ConnectTcpAsync(c.Suite.C2sPort);
                    open.Add(client);
                    await client.SendAsync(XmppTestClient.Header());
                    var answer = await client.ExpectAsync(e => e.Is("features", Ns.Stream) || e.Is("error", Ns.Stream), CaseContext.Timeout);
                    if (!answer.Is("error", Ns.Stream)) continue;
                    Assert.NotNull(answer.GetChild(PolicyViolation, Ns.Streams));
                    Assert.Contains("unauthenticated", answer.GetChildText("text", Ns.Streams));
                    Assert.InRange(i, 30, 40);
                    return;
                }
                Assert.Fail("41 unauthenticated streams were let in; the limit is 40");
            }
            finally
            {
                foreach (var x in open) await x.DisposeAsync();
                // Places are given back when the connections close.
                await Task.Delay(300);
                await using var after = await XmppTestClient.ConnectAsync(c.Suite.C2sPort);
                Assert.NotNull(after.Features);
            }
        });

        // XMPP over WebSocket (RFC 7395): the same parser in fragment mode, one element per message.
        foreach (var (id, frame, condition) in WebSocketFrames)
        {
            yield return new("websocket: " + id, Stage.None, async c =>
            {
                await using var ws = await WebSocketAttacker.ConnectAsync(c.Suite.HttpPort);
                await ws.OpenAsync();
                await ws.SendAsync(frame);
                await ws.ExpectStreamErrorAsync(condition);
            });
        }
        yield return new("websocket: binary frame", Stage.None, async c =>
        {
            // RFC 7395 §3.2: XMPP messages are text frames.
            await using var ws = await WebSocketAttacker.ConnectAsync(c.Suite.HttpPort);
            await ws.OpenAsync();
            await ws.SendAsync("<presence/>"u8.ToArray(), WebSocketMessageType.Binary);
            await ws.ExpectStreamErrorAsync(BadFormat);
        });
        yield return new("websocket: invalid UTF-8 in a text frame", Stage.None, async c =>
        {
            // RFC 6455 §8.1: invalid UTF-8 in a text frame fails the WebSocket connection: the server's WebSocket
            // sends close code 1007 and drops the connection, so the client sees 1007 or, if the drop wins, no code.
            await using var ws = await WebSocketAttacker.ConnectAsync(c.Suite.HttpPort);
            await ws.OpenAsync();
            await ws.SendAsync([.. "<presence><status>"u8, 0xC0, 0xAF, .. "</status></presence>"u8], WebSocketMessageType.Text);
            Assert.True(await ws.ExpectClosedAsync() is WebSocketCloseStatus.InvalidPayloadData or null);
        });
        yield return new("websocket: a stanza before <open/>", Stage.None, async c =>
        {
            await using var ws = await WebSocketAttacker.ConnectAsync(c.Suite.HttpPort);
            await ws.SendAsync("<message to='victim@localhost'><body>x</body></message>");
            await ws.ExpectStreamErrorAsync(NotWellFormed);
        });
        yield return new("websocket: <open/> for another host", Stage.None, async c =>
        {
            await using var ws = await WebSocketAttacker.ConnectAsync(c.Suite.HttpPort);
            await ws.SendAsync($"<open xmlns='{WebSocketAttacker.Framing}' to='evil.example' version='1.0'/>");
            await ws.ExpectStreamErrorAsync(HostUnknown);
        });
        yield return new("websocket: <open/> without version", Stage.None, async c =>
        {
            await using var ws = await WebSocketAttacker.ConnectAsync(c.Suite.HttpPort);
            await ws.SendAsync($"<open xmlns='{WebSocketAttacker.Framing}' to='localhost'/>");
            await ws.ExpectStreamErrorAsync(UnsupportedVersion);
        });
        yield return new("websocket: a TCP stream header instead of <open/>", Stage.None, async c =>
        {
            await using var ws = await WebSocketAttacker.ConnectAsync(c.Suite.HttpPort);
            await ws.SendAsync(XmppTestClient.Header());
            await ws.ExpectStreamErrorAsync(NotWellFormed);
        });
        yield return new("websocket: silence after <open/> times out", Stage.None, async c =>
        {
            await using var ws = await WebSocketAttacker.ConnectAsync(c.Suite.HttpPort);
            await ws.OpenAsync();
            var clock = Stopwatch.StartNew();
            await ws.ExpectStreamErrorAsync(ConnectionTimeout);
            Assert.True(clock.Elapsed < AuthTimeout + TimeSpan.FromSeconds(5));
        });
    }

    private static readonly (string Id, string Frame, string Condition)[] WebSocketFrames =
    [
        ("malformed XML", "<message><body>x</message>", NotWellFormed),
        ("two elements in one message", "<presence/><presence/>", NotWellFormed),
        ("half an element", "<message><body>", NotWellFormed),
        ("text only", "hello", NotWellFormed),
        ("a comment", "<!-- c -->", RestrictedXml),
        ("a DTD bomb", "<!DOCTYPE lolz [<!ENTITY lol 'lol'>]><message>&lol;</message>", RestrictedXml),
        ("an undefined entity", "<message><body>&lol9;</body></message>", RestrictedXml),
        ("<open/> twice", WebSocketAttacker.Open, BadFormat),
        ("unknown framing element", $"<reopen xmlns='{WebSocketAttacker.Framing}'/>", UnsupportedStanzaType),
        ("message over MaxStanzaBytes", $"<message><body>{new string('A', 70 * 1024)}</body></message>", PolicyViolation),
        ("deep nesting", "<message>" + string.Concat(Enumerable.Repeat("<a>", 70)) + string.Concat(Enumerable.Repeat("</a>", 70)) + "</message>", PolicyViolation),
        ("stanza before authentication", "<message xmlns='jabber:client' to='victim@localhost'><body>x</body></message>", NotAuthorized),
        ("stanza without its namespace (RFC 7395 §3.3.4)", "<message to='victim@localhost'><body>x</body></message>", UnsupportedStanzaType),
        ("a stanza in jabber:server", "<message xmlns='jabber:server'/>", UnsupportedStanzaType),
        ("undeclared prefix", "<x:message/>", NotWellFormed),
    ];
}
