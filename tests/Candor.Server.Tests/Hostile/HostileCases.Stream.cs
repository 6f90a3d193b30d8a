using Candor.Server.Tests.Harness;
using Candor.Xmpp;
using static Candor.Xmpp.StreamErrors;

namespace Candor.Server.Tests.Hostile;

/// <summary>
/// Stream headers (RFC 6120 §4.7, §4.8), namespace and prefix abuse, stanzas before TLS or authentication (§5.3.1,
/// §6.4.x: not-authorized), forged 'from' (§8.1.2.1: invalid-from) and malformed stanzas (§8.3: stanza errors, the
/// stream stays open).
/// </summary>
public static partial class HostileCases
{
    private static string HeaderWith(string attributes) =>
        $"<?xml version='1.0'?><stream:stream {attributes} xmlns:stream='http://etherx.jabber.org/streams'>";

    private static HostileCase StanzaError(string id, string stanza, string stanzaId, string condition) =>
        new(id, Stage.LoggedIn, async c =>
        {
            await c.Client.SendAsync(stanza);
            await c.ExpectStanzaErrorAsync(stanzaId, condition);
        });

    /// <summary>A forged 'from' ends the stream with invalid-from, and the stanza reaches nobody.</summary>
    private static HostileCase Forged(string id, Func<CaseContext, string> from) => new("invalid-from: " + id, Stage.LoggedIn, async c =>
    {
        var marker = "forged-" + Guid.NewGuid().ToString("N");
        await c.SendAsync($"<message from='{from(c)}' to='{c.Suite.Victim.Full}' id='{marker}'><body>{marker}</body></message>");
        await c.ExpectStreamErrorAsync(InvalidFrom);
        await c.Suite.Victim.ExpectNothingAsync(TimeSpan.FromMilliseconds(200), e => e.Id() == marker);
    });

    private static IEnumerable<HostileCase> Stream()
    {
        // Stream headers.
        yield return Refused("header: unknown host", Stage.Tcp, HeaderWith("to='evil.example' version='1.0' xmlns='jabber:client'"), HostUnknown);
        yield return Refused("header: 'to' not a JID", Stage.Tcp, HeaderWith("to='a@@b' version='1.0' xmlns='jabber:client'"), HostUnknown);
        yield return Refused("header: 'to' an account, not the domain", Stage.Tcp, HeaderWith("to='alice@localhost' version='1.0' xmlns='jabber:client'"), HostUnknown);
        yield return Refused("header: no version", Stage.Tcp, HeaderWith("to='localhost' xmlns='jabber:client'"), UnsupportedVersion);
        yield return Refused("header: version 0.9", Stage.Tcp, HeaderWith("to='localhost' version='0.9' xmlns='jabber:client'"), UnsupportedVersion);
        yield return Refused("header: version not a number", Stage.Tcp, HeaderWith("to='localhost' version='one' xmlns='jabber:client'"), UnsupportedVersion);
        yield return Refused("header: wrong stream namespace", Stage.Tcp,
            "<stream:stream to='localhost' version='1.0' xmlns='jabber:client' xmlns:stream='urn:evil'>", InvalidNamespace);
        yield return Refused("header: content namespace jabber:server", Stage.Tcp, HeaderWith("to='localhost' version='1.0' xmlns='jabber:server'"), InvalidNamespace);
        yield return Refused("header: content namespace is the stream namespace", Stage.Tcp,
            "<stream to='localhost' version='1.0' xmlns='http://etherx.jabber.org/streams'>", InvalidNamespace);
        yield return Refused("header: element not named stream", Stage.Tcp, "<stream:open to='localhost' version='1.0' xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>", InvalidNamespace);
        yield return Refused("header: WebSocket <open/> on TCP", Stage.Tcp, "<open xmlns='urn:ietf:params:xml:ns:xmpp-framing' to='localhost' version='1.0'>", InvalidNamespace);
        yield return new("header: version 2.0 is answered with 1.0", Stage.Tcp, async c =>
        {
            await c.Client.SendAsync(HeaderWith("to='localhost' version='2.0' xmlns='jabber:client'"));
            var header = await c.Client.ExpectAsync(e => e.Is("stream", Ns.Stream), CaseContext.Timeout);
            Assert.Equal("1.0", header.GetAttribute("version"));
            await c.Client.ExpectAsync(e => e.Is("features", Ns.Stream), CaseContext.Timeout);
        });
        yield return new("header: any prefix for the stream namespace is accepted (XML namespaces)", Stage.Tcp, async c =>
        {
            await c.Client.SendAsync("<foo:stream to='localhost' version='1.0' xmlns='jabber:client' xmlns:foo='http://etherx.jabber.org/streams'>");
            await c.Client.ExpectAsync(e => e.Is("features", Ns.Stream), CaseContext.Timeout);
        });
        yield return Refused("a second stream header inside the stream", Stage.Secure,
            "<stream:stream to='localhost' version='1.0' xmlns='jabber:client'></stream:stream>", UnsupportedStanzaType);

        // Stanzas and negotiation out of order.
        yield return Refused("message before TLS", Stage.Opened, "<message to='victim@localhost'><body>spam</body></message>", PolicyViolation);
        yield return Refused("SASL before TLS", Stage.Opened, "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>AGEAYg==</auth>", PolicyViolation);
        yield return Refused("bind before TLS", Stage.Opened, "<iq type='set' id='b'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></iq>", PolicyViolation);
        yield return Refused("TLS <proceed/> from the client", Stage.Opened, "<proceed xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>", PolicyViolation);
        yield return Refused("STARTTLS twice", Stage.Secure, "<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>", PolicyViolation);
        yield return Refused("STARTTLS after login", Stage.LoggedIn, "<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>", PolicyViolation);
        yield return Refused("message before authentication", Stage.Secure, "<message to='victim@localhost'><body>spam</body></message>", NotAuthorized);
        yield return Refused("presence before authentication", Stage.Secure, "<presence/>", NotAuthorized);
        yield return Refused("roster get before authentication", Stage.Secure, "<iq type='get' id='r'><query xmlns='jabber:iq:roster'/></iq>", NotAuthorized);
        yield return Refused("bind before authentication", Stage.Secure, "<iq type='set' id='b'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></iq>", NotAuthorized);
        yield return Refused("ping before authentication", Stage.Secure, "<iq type='get' id='p' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>", NotAuthorized);
        yield return Refused("message with forged from before authentication", Stage.Secure, "<message from='alice@localhost/x' to='victim@localhost'><body>x</body></message>", NotAuthorized);
        yield return new("in-band registration when it is disabled", Stage.Secure, async c =>
        {
            // XEP-0077 §3.1: a server that does not allow registration answers service-unavailable; the stream stays open.
            await c.Client.SendAsync("<iq type='get' id='reg1'><query xmlns='jabber:iq:register'/></iq>");
            var reply = await c.Client.ExpectAsync(e => e.Id() == "reg1" || e.Is("error", Ns.Stream), CaseContext.Timeout);
            reply.AssertError("service-unavailable");
        });
        yield return Refused("stanza before bind", Stage.None, "", NotAuthorized) with
        {
            Run = async c =>
            {
                await using var client = await XmppTestClient.ConnectAsync(c.Suite.C2sPort);
                await client.StartTlsAsync();
                await client.AuthenticateAsync(c.Suite.Mallory, ServerFixture.Password(c.Suite.Mallory));
                await client.SendIgnoringResetAsync($"<message to='{c.Suite.Victim.Full}'><body>unbound</body></message>");
                await client.ExpectStreamErrorAsync(NotAuthorized, CaseContext.Timeout);
            },
        };

        // Namespaces and prefixes at the top level.
        yield return Refused("unknown top-level element", Stage.LoggedIn, "<evil xmlns='jabber:client'/>", UnsupportedStanzaType);
        yield return Refused("stanza in jabber:server", Stage.LoggedIn, "<message xmlns='jabber:server' to='victim@localhost'><body>x</body></message>", UnsupportedStanzaType);
        yield return Refused("stanza in no namespace", Stage.LoggedIn, "<message xmlns='' to='victim@localhost'><body>x</body></message>", UnsupportedStanzaType);
        yield return Refused("stanza in the stream namespace", Stage.LoggedIn, "<stream:message to='victim@localhost'/>", UnsupportedStanzaType);
        yield return Refused("stream features from the client", Stage.LoggedIn, "<stream:features/>", UnsupportedStanzaType);
        yield return Refused("stanza in an unknown namespace", Stage.LoggedIn, "<message xmlns='urn:evil'/>", UnsupportedStanzaType);
        yield return Refused("jabber:client rebound to another prefix, element unprefixed", Stage.LoggedIn, "<message xmlns='urn:x' xmlns:c='jabber:client'/>", UnsupportedStanzaType);
        yield return Refused("undeclared prefix on a stanza", Stage.LoggedIn, "<x:message/>", NotWellFormed);
        yield return Refused("undeclared prefix on an attribute", Stage.LoggedIn, "<message x:type='chat'/>", NotWellFormed);
        yield return Refused("undeclared prefix on a child", Stage.LoggedIn, "<message><x:body/></message>", NotWellFormed);
        yield return Refused("prefix undeclared with an empty URI", Stage.LoggedIn, "<message xmlns:p=''/>", NotWellFormed);
        yield return Refused("xml prefix rebound", Stage.LoggedIn, "<message xmlns:xml='urn:evil'/>", NotWellFormed);
        yield return Refused("xmlns prefix declared", Stage.LoggedIn, "<message xmlns:xmlns='urn:evil'/>", NotWellFormed);
        yield return Refused("xml namespace bound to another prefix", Stage.LoggedIn, "<message xmlns:x='http://www.w3.org/XML/1998/namespace'/>", NotWellFormed);
        yield return Refused("xmlns namespace as default", Stage.LoggedIn, "<message xmlns='http://www.w3.org/2000/xmlns/'/>", NotWellFormed);
        yield return Refused("element with the xmlns prefix", Stage.LoggedIn, "<xmlns:message/>", NotWellFormed);
        yield return Refused("one prefix declared twice on an element", Stage.LoggedIn, "<message xmlns:p='urn:a' xmlns:p='urn:b'/>", NotWellFormed);
        yield return Refused("stream prefix rebound in a stanza", Stage.LoggedIn, "<message xmlns:stream='urn:evil'><stream:error/></message><stream:error/>", UnsupportedStanzaType);
        yield return new("stanza with jabber:client under a prefix is served", Stage.LoggedIn, async c =>
        {
            var result = await c.Client.RequestAsync("<c:iq xmlns:c='jabber:client' type='get' id='prefixed' to='localhost'><ping xmlns='urn:xmpp:ping'/></c:iq>", CaseContext.Timeout);
            Assert.Equal("result", result.Type());
        });
        yield return new("prefix-bound stream namespace children are not stanzas", Stage.LoggedIn, async c =>
        {
            await c.SendAsync("<s:error xmlns:s='http://etherx.jabber.org/streams'/>");
            await c.ExpectStreamErrorAsync(UnsupportedStanzaType);
        });

        // Forged 'from' (RFC 6120 §8.1.2.1: the server MUST check that 'from' is the session's JID).
        yield return Forged("another account's bare JID", c => c.Suite.Victim.Bare);
        yield return Forged("another account's full JID", c => c.Suite.Victim.Full);
        yield return Forged("the server's domain", _ => "localhost");
        yield return Forged("another resource of the same account", c => c.Suite.Mallory + "@localhost/not-mine");
        yield return Forged("another domain", c => c.Suite.Mallory + "@evil.example/attack");
        yield return Forged("a malformed JID", _ => "a@@b");
        yield return Forged("an empty from", _ => "");
        yield return Forged("a JID with a trailing slash", c => c.Suite.Mallory + "@localhost/");
        yield return Forged("a different account, case-folded", c => c.Suite.Victim.Bare.ToUpperInvariant());
        yield return new("invalid-from: on presence", Stage.LoggedIn, async c =>
        {
            await c.SendAsync($"<presence from='{c.Suite.Victim.Full}'/>");
            await c.ExpectStreamErrorAsync(InvalidFrom);
        });
        yield return new("invalid-from: on an IQ", Stage.LoggedIn, async c =>
        {
            await c.SendAsync($"<iq type='get' id='f' from='{c.Suite.Alice.Full}' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>");
            await c.ExpectStreamErrorAsync(InvalidFrom);
        });
        yield return new("own JID in another case is not forged", Stage.LoggedIn, async c =>
        {
            var own = c.Client.Jid!;
            var result = await c.Client.RequestAsync($"<iq type='get' id='own' from='{own.Local!.ToUpperInvariant()}@LOCALHOST/{own.Resource}' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>", CaseContext.Timeout);
            Assert.Equal("result", result.Type());
        });
        yield return new("own bare JID as from is accepted", Stage.LoggedIn, async c =>
        {
            var result = await c.Client.RequestAsync($"<iq type='get' id='bare' from='{c.Client.Bare}' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>", CaseContext.Timeout);
            Assert.Equal("result", result.Type());
        });

        // Malformed stanzas: a stanza error, and the stream stays open (RFC 6120 §8.3).
        yield return StanzaError("jid-malformed: to with two @", "<message to='a@@localhost' id='j1'><body>x</body></message>", "j1", "jid-malformed");
        yield return StanzaError("jid-malformed: to with empty localpart", "<message to='@localhost' id='j2'><body>x</body></message>", "j2", "jid-malformed");
        yield return StanzaError("jid-malformed: to with empty resource", "<message to='victim@localhost/' id='j3'><body>x</body></message>", "j3", "jid-malformed");
        yield return StanzaError("jid-malformed: to with an unclosed IPv6 literal", "<message to='a@[::1' id='j4'><body>x</body></message>", "j4", "jid-malformed");
        yield return StanzaError("jid-malformed: to with an oversize localpart", $"<message to='{new string('a', 1100)}@localhost' id='j5'><body>x</body></message>", "j5", "jid-malformed");
        yield return StanzaError("jid-malformed: to with a space", "<iq type='get' to='vic tim@localhost' id='j6'><ping xmlns='urn:xmpp:ping'/></iq>", "j6", "jid-malformed");
        yield return StanzaError("jid-malformed: to with a zero-width space", "<message to='a&#x200B;b@localhost' id='j7'><body>x</body></message>", "j7", "jid-malformed");
        yield return StanzaError("bad-request: IQ with an unknown type", "<iq type='bogus' id='t1' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>", "t1", "bad-request");
        yield return StanzaError("bad-request: IQ without type", "<iq id='t2' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>", "t2", "bad-request");
        yield return StanzaError("bad-request: IQ get with two payloads", "<iq type='get' id='t3' to='localhost'><ping xmlns='urn:xmpp:ping'/><ping xmlns='urn:xmpp:ping'/></iq>", "t3", "bad-request");
        yield return StanzaError("bad-request: IQ get without payload", "<iq type='get' id='t4' to='localhost'/>", "t4", "bad-request");
        yield return StanzaError("bad-request: presence with an unknown type", "<presence type='bogus' id='t5'/>", "t5", "bad-request");
        yield return StanzaError("service-unavailable: IQ in an unknown namespace", "<iq type='get' id='t6' to='localhost'><evil xmlns='urn:evil'/></iq>", "t6", "service-unavailable");
        yield return StanzaError("service-unavailable: message to no such account", "<message to='nobody-here@localhost' id='t7' type='chat'><body>x</body></message>", "t7", "service-unavailable");
        yield return StanzaError("service-unavailable: IQ to no such account", "<iq type='get' id='t8' to='nobody-here@localhost'><ping xmlns='urn:xmpp:ping'/></iq>", "t8", "service-unavailable");
        yield return StanzaError("remote-server-not-found: message to another domain", "<message to='someone@evil.example' id='t9'><body>x</body></message>", "t9", "remote-server-not-found");
        yield return new("IQ without id gets bad-request", Stage.LoggedIn, async c =>
        {
            await c.Client.SendAsync("<iq type='get' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>");
            var reply = await c.Client.ExpectAsync(e => e.IsIq() || e.Is("error", Ns.Stream), CaseContext.Timeout);
            reply.AssertError("bad-request");
            await c.StillServedAsync();
        });
        yield return new("unsolicited IQ result is ignored", Stage.LoggedIn, async c =>
        {
            await c.Client.SendAsync("<iq type='result' id='never-asked' to='localhost'/>");
            await c.StillServedAsync();
            await c.Client.ExpectNothingAsync(TimeSpan.FromMilliseconds(100), e => e.Id() == "never-asked");
        });
        yield return new("error stanzas are never answered with errors", Stage.LoggedIn, async c =>
        {
            await c.Client.SendAsync("<message type='error' to='nobody-here@localhost' id='no-loop'><error type='cancel'><item-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></message>");
            await c.StillServedAsync();
            await c.Client.ExpectNothingAsync(TimeSpan.FromMilliseconds(100), e => e.Id() == "no-loop");
        });
    }
}
