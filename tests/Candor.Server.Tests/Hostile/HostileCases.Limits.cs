using Candor.Server.Tests.Harness;
using Candor.Xmpp;
using static Candor.Xmpp.StreamErrors;

namespace Candor.Server.Tests.Hostile;

/// <summary>
/// Limits (ServerOptions, docs/CONFIGURATION.md): over a limit the stream ends with policy-violation (RFC 6120
/// §4.9.3.14, "the entity has violated some local service policy, e.g., a stanza exceeds a configured size limit");
/// at the limit the stanza is served. The suite's server runs with MaxStanzaBytes 64 KiB and MaxXmlAttributeBytes
/// 16 KiB (HostileServer.Configure); depth 64, 64 attributes and 256-byte names are the defaults.
/// </summary>
public static partial class HostileCases
{
    private static string Nested(int depth) =>
        "<iq type='get' id='deep' to='localhost'><ping xmlns='urn:xmpp:ping'>" + string.Concat(Enumerable.Repeat("<a>", depth - 2))
        + string.Concat(Enumerable.Repeat("</a>", depth - 2)) + "</ping></iq>";

    private static string WithAttributes(int count, string prefix = "a") =>
        "<iq type='get' id='attrs' to='localhost' " + string.Join(' ', Enumerable.Range(0, count - 3).Select(i => $"{prefix}{i}='v'")) + "><ping xmlns='urn:xmpp:ping'/></iq>";

    /// <summary>Sends a stanza at a limit: it must be answered (a ping result), not refused.</summary>
    private static HostileCase Served(string id, string iq) => new(id, Stage.LoggedIn, async c =>
    {
        var result = await c.Client.RequestAsync(iq, CaseContext.Timeout);
        Assert.Equal("result", result.Type());
    });

    private static IEnumerable<HostileCase> Limits()
    {
        const int stanza = 64 * 1024;
        var body = (int n) => $"<message to='{{0}}'><body>{new string('A', n)}</body></message>";
        yield return Refused("stanza over MaxStanzaBytes", Stage.LoggedIn, string.Format(body(stanza), "nobody@localhost"), PolicyViolation);
        yield return Refused("stanza over MaxStanzaBytes before auth", Stage.Secure, string.Format(body(stanza), "nobody@localhost"), PolicyViolation);
        yield return Refused("stanza over MaxStanzaBytes, never closed", Stage.LoggedIn, "<message><body>" + new string('A', stanza + 10), PolicyViolation);
        yield return Refused("stanza over MaxStanzaBytes in whitespace inside it", Stage.LoggedIn, "<message>" + new string(' ', stanza + 10), PolicyViolation);
        yield return Refused("nesting one over MaxXmlDepth", Stage.LoggedIn, Nested(65), PolicyViolation);
        yield return Refused("nesting far over MaxXmlDepth, never closed", Stage.LoggedIn, "<message>" + string.Concat(Enumerable.Repeat("<a>", 5000)), PolicyViolation);
        yield return Refused("nesting of empty-looking elements", Stage.LoggedIn, "<message>" + string.Concat(Enumerable.Repeat("<a x='/'>", 100)), PolicyViolation);
        yield return Refused("attributes one over MaxXmlAttributes", Stage.LoggedIn, WithAttributes(65), PolicyViolation);
        yield return Refused("namespace declarations over MaxXmlAttributes", Stage.LoggedIn,
            "<message " + string.Join(' ', Enumerable.Range(0, 70).Select(i => $"xmlns:p{i}='urn:{i}'")) + "/>", PolicyViolation);
        yield return Refused("attribute value over MaxXmlAttributeBytes", Stage.LoggedIn, $"<message id='{new string('x', 16 * 1024 + 1)}'/>", PolicyViolation);
        yield return Refused("namespace URI over MaxXmlAttributeBytes", Stage.LoggedIn, $"<message xmlns:p='urn:{new string('x', 16 * 1024)}'/>", PolicyViolation);
        yield return Refused("element name over MaxXmlNameBytes", Stage.LoggedIn, $"<message><{new string('n', 257)}/></message>", PolicyViolation);
        yield return Refused("attribute name over MaxXmlNameBytes", Stage.LoggedIn, $"<message {new string('n', 257)}='1'/>", PolicyViolation);
        yield return Refused("prefix over MaxXmlNameBytes", Stage.LoggedIn, $"<message xmlns:{new string('p', 300)}='urn:p'/>", PolicyViolation);
        yield return Refused("multi-byte element name over MaxXmlNameBytes", Stage.LoggedIn, $"<message><{string.Concat(Enumerable.Repeat("名", 90))}/></message>", PolicyViolation);
        yield return Refused("top-level name over MaxXmlNameBytes", Stage.Secure, $"<{new string('m', 300)}/>", PolicyViolation);
        yield return Served("nesting exactly MaxXmlDepth is served", Nested(64));
        yield return Served("exactly MaxXmlAttributes is served", WithAttributes(64));
        yield return Served("attribute value of exactly MaxXmlAttributeBytes is served",
            $"<iq type='get' id='long' to='localhost' x='{new string('x', 16 * 1024)}'><ping xmlns='urn:xmpp:ping'/></iq>");
        yield return Served("name of exactly MaxXmlNameBytes is served",
            $"<iq type='get' id='name' to='localhost'><ping xmlns='urn:xmpp:ping' {new string('n', 256)}='1'/></iq>");
        yield return Served("stanza just under MaxStanzaBytes is served",
            $"<iq type='get' id='big' to='localhost'><ping xmlns='urn:xmpp:ping'>{new string('A', stanza - 200)}</ping></iq>");
        yield return new("a body just under the limit is delivered whole", Stage.LoggedIn, async c =>
        {
            var text = new string('B', stanza - 500);
            await c.Client.SendAsync($"<message to='{c.Suite.Victim.Full}' id='near-limit'><body>{text}</body></message>");
            var got = await c.Suite.Victim.ExpectStanzaAsync("message", m => m.Id() == "near-limit", CaseContext.Timeout);
            Assert.Equal(text, got.GetChildText("body", Ns.Client));
        });
    }
}
