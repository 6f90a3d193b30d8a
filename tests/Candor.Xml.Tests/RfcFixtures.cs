namespace Candor.Xml.Tests;

/// <summary>Streams built from the examples of RFC 6120, RFC 6121 and RFC 7395.</summary>
public static class RfcFixtures
{
    public const string ClientHeader =
        "<stream:stream from='juliet@im.example.com' to='im.example.com' version='1.0' xml:lang='en' " +
        "xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>";

    public const string ServerHeader =
        "<stream:stream from='im.example.com' id='t7AMCin9zjMNwQKDnplntZPIDEI=' to='juliet@im.example.com' " +
        "version='1.0' xml:lang='en' xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>";

    public sealed record Fixture(string Name, string Xml, bool Fragment, string[] Expected);

    /// <summary>Each fixture with the start of each event's dump it must produce.</summary>
    public static readonly Fixture[] All =
    [
        new("RFC 6120 9.1.1 STARTTLS", "<?xml version='1.0'?>\n" + ClientHeader + "\n<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>", false,
        [
            "StreamOpen default=jabber:client {http://etherx.jabber.org/streams}stream[from=\"juliet@im.example.com\" to=\"im.example.com\" version=\"1.0\" xml:lang=\"en\"]",
            "Element {urn:ietf:params:xml:ns:xmpp-tls}starttls",
        ]),
        new("RFC 6120 9.1.1 features and proceed", ServerHeader + """

            <stream:features>
              <starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'>
                <required/>
              </starttls>
            </stream:features>
            <proceed xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>
            """, false,
        [
            "StreamOpen default=jabber:client {http://etherx.jabber.org/streams}stream[from=\"im.example.com\" id=\"t7AMCin9zjMNwQKDnplntZPIDEI=\"",
            "Element {http://etherx.jabber.org/streams}features(\"\\n  \" {urn:ietf:params:xml:ns:xmpp-tls}starttls(\"\\n    \" {urn:ietf:params:xml:ns:xmpp-tls}required",
            "Element {urn:ietf:params:xml:ns:xmpp-tls}proceed",
        ]),
        new("RFC 6120 9.1.2 SASL", ClientHeader + """
            <auth xmlns="urn:ietf:params:xml:ns:xmpp-sasl" mechanism="SCRAM-SHA-1">biwsbj1qdWxpZXQscj1vTXNUQUF3QUFBQU1BQUFBTlAwVEFBQUFBQUJQVTBBQQ==</auth>
            <response xmlns="urn:ietf:params:xml:ns:xmpp-sasl">Yz1iaXdzLHI9b01zVEFBd0FBQUFNQUFBQU5QMFRBQUFBQUFCUFUwQUFlMTI0Njk1Yi02OWE5LTRkZTYtOWMzMC1iNTFiMzgwOGM1OWUscD1VQTU3dE0vU3ZwQVRCa0gyRlhzMFdEWHZKWXc9</response>
            """, false,
        [
            "StreamOpen",
            "Element {urn:ietf:params:xml:ns:xmpp-sasl}auth[mechanism=\"SCRAM-SHA-1\"](\"biwsbj1q",
            "Element {urn:ietf:params:xml:ns:xmpp-sasl}response(\"Yz1iaXdz",
        ]),
        new("RFC 6120 7.6 resource binding", ClientHeader + """
            <iq id='tn281v37' type='set'>
             <bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'>
               <resource>balcony</resource>
             </bind>
            </iq>
            <iq id="tn281v37" type="result"><bind xmlns="urn:ietf:params:xml:ns:xmpp-bind"><jid>juliet@im.example.com/balcony</jid></bind></iq>
            """, false,
        [
            "StreamOpen",
            "Element {jabber:client}iq[id=\"tn281v37\" type=\"set\"](\"\\n \" {urn:ietf:params:xml:ns:xmpp-bind}bind(\"\\n   \" {urn:ietf:params:xml:ns:xmpp-bind}resource(\"balcony\")",
            "Element {jabber:client}iq[id=\"tn281v37\" type=\"result\"]({urn:ietf:params:xml:ns:xmpp-bind}bind({urn:ietf:params:xml:ns:xmpp-bind}jid(\"juliet@im.example.com/balcony\")))",
        ]),
        new("RFC 6121 5.2 messages", ClientHeader + """
            <message from='juliet@example.com/balcony' id='ktx72v49' to='romeo@example.net' type='chat' xml:lang='en'>
              <body>Art thou not Romeo, and a Montague?</body>
              <thread>e0ffe42b28561960c6b12b944a092794b9683a38</thread>
            </message>
            <message from='juliet@example.com/balcony' id='z94nb37h' to='romeo@example.net' type='chat' xml:lang='en'>
              <body>Wherefore art thou, Romeo?</body>
              <body xml:lang='cs'>Pro&#x010D;e&#x017E; jsi ty, Romeo?</body>
              <body xml:lang='ru'>Ромео, где ты? 🌹</body>
            </message>
            """, false,
        [
            "StreamOpen",
            "Element {jabber:client}message[from=\"juliet@example.com/balcony\" id=\"ktx72v49\" to=\"romeo@example.net\" type=\"chat\" xml:lang=\"en\"](\"\\n  \" {jabber:client}body(\"Art thou not Romeo, and a Montague?\") \"\\n  \" {jabber:client}thread(\"e0ffe42b28561960c6b12b944a092794b9683a38\") \"\\n\")",
            "Element {jabber:client}message[from=\"juliet@example.com/balcony\" id=\"z94nb37h\" to=\"romeo@example.net\" type=\"chat\" xml:lang=\"en\"](\"\\n  \" {jabber:client}body(\"Wherefore art thou, Romeo?\") \"\\n  \" {jabber:client}body[xml:lang=\"cs\"](\"Pročež jsi ty, Romeo?\") \"\\n  \" {jabber:client}body[xml:lang=\"ru\"](\"Ромео, где ты? 🌹\") \"\\n\")",
        ]),
        new("RFC 6121 4 presence", ClientHeader + """
            <presence/>
            <presence xml:lang='en'>
              <show>dnd</show>
              <status>Wooing Juliet</status>
              <priority>1</priority>
            </presence>
            <presence id='xk3h1v69' to='juliet@example.com' type='subscribe'/>
            <presence from='juliet@example.com/balcony' id='yhc13a95' type='unavailable'/>
            """, false,
        [
            "StreamOpen",
            "Element {jabber:client}presence",
            "Element {jabber:client}presence[xml:lang=\"en\"](\"\\n  \" {jabber:client}show(\"dnd\")",
            "Element {jabber:client}presence[id=\"xk3h1v69\" to=\"juliet@example.com\" type=\"subscribe\"]",
            "Element {jabber:client}presence[from=\"juliet@example.com/balcony\" id=\"yhc13a95\" type=\"unavailable\"]",
        ]),
        new("RFC 6121 2.1 roster", ClientHeader + """
            <iq from='juliet@example.com/balcony' id='bv1bs71f' type='get'>
              <query xmlns='jabber:iq:roster'/>
            </iq>
            <iq id='bv1bs71f' to='juliet@example.com/chamber' type='result'><query xmlns='jabber:iq:roster' ver='ver11'><item jid='romeo@example.net' name='Romeo' subscription='both'><group>Friends</group></item><item jid='mercutio@example.com' name='Mercutio' subscription='from'/></query></iq>
            """, false,
        [
            "StreamOpen",
            "Element {jabber:client}iq[from=\"juliet@example.com/balcony\" id=\"bv1bs71f\" type=\"get\"](\"\\n  \" {jabber:iq:roster}query \"\\n\")",
            "Element {jabber:client}iq[id=\"bv1bs71f\" to=\"juliet@example.com/chamber\" type=\"result\"]({jabber:iq:roster}query[ver=\"ver11\"]({jabber:iq:roster}item[jid=\"romeo@example.net\" name=\"Romeo\" subscription=\"both\"]({jabber:iq:roster}group(\"Friends\")) {jabber:iq:roster}item[jid=\"mercutio@example.com\" name=\"Mercutio\" subscription=\"from\"]))",
        ]),
        new("RFC 6120 8.3 stanza error", ServerHeader + """
            <message from='romeo@example.net' id='ktx72v49' to='juliet@im.example.com/balcony' type='error'><error by='example.net' type='cancel'><item-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/><text xmlns='urn:ietf:params:xml:ns:xmpp-stanzas' xml:lang='en'>Some special application diagnostic information!</text></error></message>
            """, false,
        [
            "StreamOpen",
            "Element {jabber:client}message[from=\"romeo@example.net\" id=\"ktx72v49\" to=\"juliet@im.example.com/balcony\" type=\"error\"]({jabber:client}error[by=\"example.net\" type=\"cancel\"]({urn:ietf:params:xml:ns:xmpp-stanzas}item-not-found {urn:ietf:params:xml:ns:xmpp-stanzas}text[xml:lang=\"en\"](\"Some special application diagnostic information!\")))",
        ]),
        new("RFC 6120 4.9 stream error and close", ServerHeader + """
            <stream:error><not-well-formed xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error>
            </stream:stream>
            """, false,
        [
            "StreamOpen",
            "Element {http://etherx.jabber.org/streams}error({urn:ietf:params:xml:ns:xmpp-streams}not-well-formed)",
            "StreamClose",
        ]),
        new("escapes, references, CDATA and line ends", ClientHeader +
            "<message><body>a &lt; b &amp;&amp; c &gt; d &quot;q&quot; &apos;s&apos; &#65;&#x42;&#x1F339;</body>" +
            "<body>one<![CDATA[ <two> & ]] ]]>three\r\nfour\rfive</body>" +
            "<x a='tab\there&#9;kept' b=\"line\r\nend\nx\" c='&lt;&amp;&#x27;'/></message>", false,
        [
            "StreamOpen",
            "Element {jabber:client}message({jabber:client}body(\"a < b && c > d \\\"q\\\" 's' AB🌹\") " +
            "{jabber:client}body(\"one <two> & ]] three\\nfour\\nfive\") " +
            "{jabber:client}x[a=\"tab here\\tkept\" b=\"line end x\" c=\"<&'\"])",
        ]),
        new("prefixes and namespaced attributes", ClientHeader +
            "<iq type='get' id='v1'><v:query xmlns:v='jabber:iq:version'><v:name/><other/></v:query></iq>" +
            "<message xmlns:e='urn:example:e' e:flag='1' xml:lang='de'><e:x xmlns='urn:example:d'><y/></e:x></message>", false,
        [
            "StreamOpen",
            "Element {jabber:client}iq[type=\"get\" id=\"v1\"]({jabber:iq:version}query({jabber:iq:version}name {jabber:client}other))",
            "Element {jabber:client}message[{urn:example:e}flag=\"1\" xml:lang=\"de\"]({urn:example:e}x({urn:example:d}y))",
        ]),
        new("whitespace keepalives", ClientHeader + " \n \t <presence/>\n\n \r\n <presence/>   ", false,
        [
            "StreamOpen",
            "Element {jabber:client}presence",
            "Element {jabber:client}presence",
        ]),
        new("RFC 7395 WebSocket frames", """
            <?xml version="1.0" encoding="UTF-8"?><open xmlns="urn:ietf:params:xml:ns:xmpp-framing" to="example.com" version="1.0" />
            <message xmlns="jabber:client" to="romeo@example.net"><body>hi</body></message>
            <close xmlns="urn:ietf:params:xml:ns:xmpp-framing" />
            """, true,
        [
            "Element {urn:ietf:params:xml:ns:xmpp-framing}open[to=\"example.com\" version=\"1.0\"]",
            "Element {jabber:client}message[to=\"romeo@example.net\"]({jabber:client}body(\"hi\"))",
            "Element {urn:ietf:params:xml:ns:xmpp-framing}close",
        ]),
    ];

    public static TheoryData<string> Names => [.. All.Select(f => f.Name)];

    public static Fixture Get(string name) => All.Single(f => f.Name == name);
}
