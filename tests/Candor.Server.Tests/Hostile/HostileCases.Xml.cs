using static Candor.Server.Tests.Hostile.CaseContext;
using static Candor.Xmpp.StreamErrors;

namespace Candor.Server.Tests.Hostile;

/// <summary>
/// Malformed XML, restricted XML (RFC 6120 §11.1), bad encodings (§11.6) and limits. Each payload is sent both before
/// authentication (over TLS) and from a bound session where the parser state differs (a stanza being routed, the
/// header's bindings in scope); the answer is the same stream error either way (RFC 6120 §4.9.3).
/// </summary>
public static partial class HostileCases
{
    /// <summary>Sends <paramref name="payload"/> and expects the stream error.</summary>
    private static HostileCase Refused(string id, Stage stage, object payload, string condition) =>
        new(id, stage, async c =>
        {
            await c.SendRawAsync(Bytes(payload));
            await c.ExpectStreamErrorAsync(condition);
        });

    /// <summary>The payload in both stages.</summary>
    private static IEnumerable<HostileCase> Both(string id, object payload, string condition) =>
    [
        Refused(id + " (before auth)", Stage.Secure, payload, condition),
        Refused(id + " (bound)", Stage.LoggedIn, payload, condition),
    ];

    // RFC 6120 §4.9.3.13 not-well-formed: violates the well-formedness rules of XML or XML-NAMES.
    private static readonly (string Id, object Payload)[] NotWellFormedPayloads =
    [
        ("mismatched end tag", "<message><body>x</message></body>"),
        ("end tag of another element", "<message><body>x</bodyy></message>"),
        ("end tag without start at stream level", "</message>"),
        ("malformed stream end tag", "</stream:stream junk='1'>"),
        ("duplicate attribute", "<message a='1' a='2'/>"),
        ("duplicate expanded attribute", "<message xmlns:p='urn:p' xmlns:q='urn:p' p:a='1' q:a='2'/>"),
        ("unquoted attribute", "<message a=1/>"),
        ("mismatched quotes", "<message a=\"1'/><presence/>"),
        ("'<' in attribute value", "<message a='<'/>"),
        ("missing '='", "<message a '1'/>"),
        ("attribute without name", "<message ='1'/>"),
        ("no space between attributes", "<message a='1'b='2'/>"),
        ("bare ampersand", "<message><body>fish & chips</body></message>"),
        ("unterminated reference", "<message><body>&amp</body></message>"),
        ("reference without name", "<message><body>&;</body></message>"),
        ("char ref to NUL", "<message><body>&#0;</body></message>"),
        ("char ref to a surrogate", "<message><body>&#xD800;</body></message>"),
        ("char ref beyond Unicode", "<message><body>&#x110000;</body></message>"),
        ("char ref overflow", "<message><body>&#99999999999999999999;</body></message>"),
        ("char ref with bad digits", "<message><body>&#xZZ;</body></message>"),
        ("empty char ref", "<message><body>&#;</body></message>"),
        ("uppercase X char ref", "<message><body>&#X41;</body></message>"),
        ("char ref to U+FFFE", "<message><body>&#xFFFE;</body></message>"),
        ("char ref to a control", "<message><body>&#x1B;</body></message>"),
        ("char ref in attribute to NUL", "<message id='&#0;'/>"),
        ("']]>' in text", "<message><body>]]></body></message>"),
        ("name starting with a digit", "<1message/>"),
        ("name starting with '-'", "<-message/>"),
        ("space before name", "< message/>"),
        ("space inside empty tag end", "<message/ >"),
        ("empty local name", "<message xmlns:p='urn:p'><p:/></message>"),
        ("empty prefix", "<:message/>"),
        ("two colons", "<a:b:c xmlns:a='urn:a'/>"),
        ("malformed CDATA opening", "<message><![CDAT[x]]></message>"),
        ("CDATA at stream level", "<![CDATA[x]]>"),
        ("text at stream level", "hello"),
        ("NUL byte", "<message><body>\0</body></message>"),
        ("escape control character", "<message><body>\u001B[31m</body></message>"),
        ("form feed", "<message><body>\f</body></message>"),
        ("vertical tab in attribute", "<message id='\v'/>"),
        ("U+FFFE", "<message><body>\uFFFE</body></message>"),
        ("U+FFFF", "<message><body>\uFFFF</body></message>"),
        ("'<' inside a tag", "<message <body/>"),
        ("name with a multiplication sign", "<message><a\u00D7/></message>"),
        ("name starting with a combining mark", "<message><\u0300a/></message>"),
        ("attribute name with a soft hyphen", "<message a\u00AD='1'/>"),
    ];

    // RFC 6120 §11.1: comments, processing instructions, DTDs and entity references other than the predefined
    // ones are restricted-xml (§4.9.3.18). Entity bombs never get to expand: their DTD is refused.
    private static readonly (string Id, object Payload)[] RestrictedPayloads =
    [
        ("comment at stream level", "<!-- keepalive -->"),
        ("comment in a stanza", "<message><!-- hidden --><body>x</body></message>"),
        ("processing instruction", "<?php system('id'); ?>"),
        ("processing instruction in a stanza", "<message><?pi data?></message>"),
        ("second XML declaration", "<?xml version='1.0'?>"),
        ("DOCTYPE after the header", "<!DOCTYPE message>"),
        ("ENTITY declaration in a stanza", "<message><!ENTITY x 'y'></message>"),
        ("ELEMENT declaration", "<message><!ELEMENT message ANY></message>"),
        ("ATTLIST declaration", "<message><!ATTLIST message a CDATA 'x'></message>"),
        ("undefined entity", "<message><body>&foo;</body></message>"),
        ("HTML entity", "<message><body>&nbsp;</body></message>"),
        ("billion laughs reference", "<message><body>&lol9;</body></message>"),
        ("external entity reference", "<message><body>&xxe;</body></message>"),
        ("entity in attribute", "<message id='&x;'/>"),
        ("parameter entity", "<!DOCTYPE x [<!ENTITY % p 'x'> %p;]>"),
        ("CDATA-like declaration", "<message><!x></message>"),
    ];

    private static readonly string BillionLaughs = "<!DOCTYPE lolz [<!ENTITY lol 'lol'>" + string.Concat(Enumerable.Range(1, 9)
        .Select(i => $"<!ENTITY lol{i} '{string.Concat(Enumerable.Repeat($"&lol{i - 1};", 10))}'>")) + "]>";

    // Before the stream header: the server answers with its own header, then the error (RFC 6120 §4.9.1.1).
    private static IEnumerable<HostileCase> BeforeHeader() =>
    [
        Refused("billion laughs DTD before the header", Stage.Tcp, "<?xml version='1.0'?>" + BillionLaughs + Header, RestrictedXml),
        Refused("XXE DTD before the header", Stage.Tcp, "<?xml version='1.0'?><!DOCTYPE s [<!ENTITY xxe SYSTEM 'file:///etc/passwd'>]>" + Header, RestrictedXml),
        Refused("quadratic blowup DTD", Stage.Tcp, $"<!DOCTYPE s [<!ENTITY a '{new string('a', 2000)}'>]>", RestrictedXml),
        Refused("comment before the header", Stage.Tcp, "<!-- hi -->" + Header, RestrictedXml),
        Refused("stylesheet PI before the header", Stage.Tcp, "<?xml-stylesheet href='a.xsl'?>" + Header, RestrictedXml),
        Refused("two XML declarations", Stage.Tcp, "<?xml version='1.0'?><?xml version='1.0'?>" + Header, RestrictedXml),
        Refused("UTF-16 declared", Stage.Tcp, "<?xml version='1.0' encoding='UTF-16'?>" + Header, UnsupportedEncoding),
        Refused("ISO-8859-1 declared", Stage.Tcp, "<?xml version='1.0' encoding='ISO-8859-1'?>" + Header, UnsupportedEncoding),
        Refused("UTF-16 byte order mark", Stage.Tcp, Bytes(new byte[] { 0xFF, 0xFE }, Header), NotWellFormed),
        Refused("UTF-8 byte order mark", Stage.Tcp, Bytes(new byte[] { 0xEF, 0xBB, 0xBF }, Header), NotWellFormed),
        Refused("declaration without version", Stage.Tcp, "<?xml encoding='UTF-8'?>" + Header, NotWellFormed),
        Refused("declaration pseudo-attributes out of order", Stage.Tcp, "<?xml encoding='UTF-8' version='1.0'?>" + Header, NotWellFormed),
        Refused("declaration with unknown pseudo-attribute", Stage.Tcp, "<?xml version='1.0' evil='1'?>" + Header, NotWellFormed),
        Refused("XML version 2.0", Stage.Tcp, "<?xml version='2.0'?>" + Header, NotWellFormed),
        Refused("empty stream header", Stage.Tcp, Header[..^1] + "/>", NotWellFormed),
        Refused("stream end before the header", Stage.Tcp, "</stream:stream>", NotWellFormed),
        Refused("text before the header", Stage.Tcp, "GET / HTTP/1.1\r\nHost: localhost\r\n\r\n", NotWellFormed),
        Refused("TLS ClientHello on the STARTTLS port", Stage.Tcp, new byte[] { 0x16, 0x03, 0x01, 0x00, 0xA5, 0x01, 0x00, 0x00, 0xA1, 0x03, 0x03 }, NotWellFormed),
        Refused("invalid UTF-8 in the header", Stage.Tcp, Bytes("<stream:stream to='local", new byte[] { 0xC0, 0xAF }, "host' version='1.0' xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>"), NotWellFormed),
        Refused("header too large", Stage.Tcp, $"<stream:stream to='localhost' version='1.0' xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' x='{new string('x', 5000)}'>", PolicyViolation),
        Refused("undeclared prefix in the header", Stage.Tcp, "<stream:stream to='localhost' version='1.0' xmlns='jabber:client'>", NotWellFormed),
    ];

    private const string Header = "<stream:stream to='localhost' version='1.0' xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>";

    // RFC 3629 §3 and §10: overlong forms, surrogates and code points beyond U+10FFFF are not UTF-8.
    private static readonly (string Id, byte[] Bytes)[] BadUtf8 =
    [
        ("0xFE", [0xFE]), ("0xFF", [0xFF]), ("overlong '/'", [0xC0, 0xAF]), ("overlong NUL", [0xC0, 0x80]),
        ("overlong 3-byte '/'", [0xE0, 0x80, 0xAF]), ("overlong 4-byte '/'", [0xF0, 0x80, 0x80, 0xAF]),
        ("encoded high surrogate", [0xED, 0xA0, 0x80]), ("encoded low surrogate", [0xED, 0xBF, 0xBF]),
        ("beyond U+10FFFF", [0xF4, 0x90, 0x80, 0x80]), ("5-byte lead", [0xF8, 0x88, 0x80, 0x80, 0x80]),
        ("lone continuation byte", [0x80]), ("truncated 2-byte sequence", [0xC3]), ("truncated 3-byte sequence", [0xE2, 0x82]),
        ("truncated 4-byte sequence", [0xF0, 0x9F, 0x98]),
    ];

    private static IEnumerable<HostileCase> Xml()
    {
        foreach (var (id, payload) in NotWellFormedPayloads)
            foreach (var c in Both("not-well-formed: " + id, payload, NotWellFormed)) yield return c;
        foreach (var (id, payload) in RestrictedPayloads)
            foreach (var c in Both("restricted-xml: " + id, payload, RestrictedXml)) yield return c;
        foreach (var c in BeforeHeader()) yield return c;
        foreach (var (id, bytes) in BadUtf8)
        {
            yield return Refused("invalid UTF-8 in text: " + id + " (bound)", Stage.LoggedIn, Bytes("<message><body>a", bytes, "b</body></message>"), NotWellFormed);
            yield return Refused("invalid UTF-8 in attribute: " + id + " (before auth)", Stage.Secure, Bytes("<message id='a", bytes, "'/>"), NotWellFormed);
        }
        yield return Refused("invalid UTF-8 in a name", Stage.LoggedIn, Bytes("<message><a", new byte[] { 0xC0, 0xAF }, "/></message>"), NotWellFormed);
        yield return Refused("invalid UTF-8 in CDATA", Stage.LoggedIn, Bytes("<message><body><![CDATA[", new byte[] { 0xED, 0xA0, 0x80 }, "]]></body></message>"), NotWellFormed);
        yield return new("invalid UTF-8 split across two writes", Stage.LoggedIn, async c =>
        {
            await c.SendRawAsync(Bytes("<message><body>a", new byte[] { 0xF0, 0x9F }));
            await Task.Delay(50);
            await c.SendRawAsync(Bytes(new byte[] { 0x41, 0x41 }, "</body></message>"));
            await c.ExpectStreamErrorAsync(NotWellFormed);
        });
    }
}
