using System.Buffers;
using System.Text;

namespace Candor.Xml.Tests;

public class StreamTests
{
    private const string Header = RfcFixtures.ClientHeader;

    private static ReadOnlySequence<byte> Utf8(string s) => new(Encoding.UTF8.GetBytes(s));

    private static long Offset(ReadOnlySequence<byte> buffer, SequencePosition position) =>
        buffer.Slice(buffer.Start, position).Length;

    [Fact]
    public void The_stream_header_gives_its_attributes_and_default_namespace()
    {
        var parser = new XmppStreamParser(XmlLimits.Default);
        var buffer = Utf8("<?xml version='1.0' encoding='utf-8' standalone='yes'?>\n" + Header);

        Assert.Equal(XmlEvent.StreamOpen, parser.Read(buffer, out var consumed, out var header));

        Assert.Equal(buffer.End, consumed);
        Assert.Equal("jabber:client", parser.DefaultNamespace);
        Assert.True(header!.Is("stream", "http://etherx.jabber.org/streams"));
        Assert.Equal(["from", "to", "version", "xml:lang"], header.Attributes.Select(a => a.Key));
        Assert.Equal("en", header.GetAttribute("xml:lang"));
    }

    [Fact]
    public void The_header_may_use_any_prefix_or_none()
    {
        var events = Feed.AllWaysAgree("<s:stream xmlns:s='http://etherx.jabber.org/streams' xmlns='jabber:server'><s:features/><message/></s:stream>");
        Assert.Equal(
        [
            "StreamOpen default=jabber:server {http://etherx.jabber.org/streams}stream",
            "Element {http://etherx.jabber.org/streams}features",
            "Element {jabber:server}message",
            "StreamClose",
        ], events);
        Assert.Equal("StreamOpen default=urn:x {urn:x}stream", Feed.AllWaysAgree("<stream xmlns='urn:x'>")[0]);
    }

    [Fact]
    public void An_incomplete_stanza_consumes_nothing_but_the_whitespace_in_front_of_it()
    {
        var parser = new XmppStreamParser(XmlLimits.Default);
        var buffer = Utf8(Header + " \n <message><bo");
        Assert.Equal(XmlEvent.StreamOpen, parser.Read(buffer, out var consumed, out _));
        buffer = buffer.Slice(consumed);

        Assert.Equal(XmlEvent.None, parser.Read(buffer, out consumed, out var element));

        Assert.Null(element);
        Assert.Equal(3, Offset(buffer, consumed));
    }

    [Fact]
    public void Keepalives_alone_are_consumed()
    {
        var parser = new XmppStreamParser(XmlLimits.Default);
        var buffer = Utf8(Header);
        parser.Read(buffer, out _, out _);
        var keepalive = Utf8(" ");

        Assert.Equal(XmlEvent.None, parser.Read(keepalive, out var consumed, out _));

        Assert.Equal(keepalive.End, consumed);
        Assert.Equal(XmlEvent.None, parser.Read(ReadOnlySequence<byte>.Empty, out consumed, out _));
    }

    [Fact]
    public void One_event_per_read()
    {
        var parser = new XmppStreamParser(XmlLimits.Default);
        var buffer = Utf8(Header + "<presence/><message/></stream:stream>");
        var events = new List<XmlEvent>();
        while (true)
        {
            var ev = parser.Read(buffer, out var consumed, out _);
            buffer = buffer.Slice(consumed);
            if (ev == XmlEvent.None) break;
            events.Add(ev);
        }
        Assert.Equal([XmlEvent.StreamOpen, XmlEvent.Element, XmlEvent.Element, XmlEvent.StreamClose], events);
        Assert.Equal(0, buffer.Length);
    }

    [Fact]
    public void Whitespace_after_the_stream_close_is_ignored_and_anything_else_refused()
    {
        Assert.Equal("StreamClose", Feed.AllWaysAgree(Header + "</stream:stream >\n ")[^1]);
        Feed.Refused(Header + "</stream:stream> <presence/>", XmlErrorCondition.NotWellFormed);
    }

    [Fact]
    public void Reset_expects_a_new_declaration_and_header()
    {
        var parser = new XmppStreamParser(XmlLimits.Default);
        var first = Utf8("<?xml version='1.0'?>" + Header + "<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>");
        Assert.Equal(XmlEvent.StreamOpen, parser.Read(first, out var consumed, out _));
        Assert.Equal(XmlEvent.Element, parser.Read(first.Slice(consumed), out _, out _));

        parser.Reset();
        Assert.Null(parser.DefaultNamespace);
        var second = Utf8("<?xml version='1.0'?><stream:stream xmlns='jabber:server' xmlns:stream='http://etherx.jabber.org/streams' version='1.0'><message/>");

        Assert.Equal(XmlEvent.StreamOpen, parser.Read(second, out consumed, out var header));
        Assert.Equal("jabber:server", parser.DefaultNamespace);
        Assert.Equal("1.0", header!.GetAttribute("version"));
        Assert.Equal(XmlEvent.Element, parser.Read(second.Slice(consumed), out _, out var message));
        Assert.Equal("jabber:server", message!.Namespace);
    }

    [Fact]
    public void Reset_in_the_middle_of_a_stanza_forgets_it()
    {
        var parser = new XmppStreamParser(XmlLimits.Default);
        var buffer = Utf8(Header + "<message><body>");
        parser.Read(buffer, out var consumed, out _);
        Assert.Equal(XmlEvent.None, parser.Read(buffer.Slice(consumed), out _, out _));

        parser.Reset();

        Assert.Equal(XmlEvent.StreamOpen, parser.Read(Utf8(Header), out _, out _));
    }

    [Fact]
    public void Fragment_mode_reads_top_level_elements_without_a_header()
    {
        var events = Feed.AllWaysAgree("<?xml version='1.0'?> <message xmlns='jabber:client'><body>a</body></message>\n<iq xmlns='jabber:client' type='get'/><r/>", fragment: true);
        Assert.Equal(
        [
            "Element {jabber:client}message({jabber:client}body(\"a\"))",
            "Element {jabber:client}iq[type=\"get\"]",
            "Element {}r",
        ], events);
    }

    [Fact]
    public void Stanzas_see_the_prefixes_the_header_declares()
    {
        var events = Feed.AllWaysAgree("<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' xmlns:db='jabber:server:dialback'><db:result to='a' from='b'>key</db:result>");
        Assert.Equal("Element {jabber:server:dialback}result[to=\"a\" from=\"b\"](\"key\")", events[1]);
    }

    [Fact]
    public void Declarations_are_scoped_to_their_element()
    {
        Feed.Refused(Header + "<message xmlns:x='urn:x'/><x:y/>", XmlErrorCondition.NotWellFormed);
        var events = Feed.AllWaysAgree(Header + "<message><a xmlns='urn:a'><b/></a><c/></message>");
        Assert.Equal("Element {jabber:client}message({urn:a}a({urn:a}b) {jabber:client}c)", events[1]);
        events = Feed.AllWaysAgree(Header + "<message><a xmlns=''><b/></a></message>");
        Assert.Equal("Element {jabber:client}message({}a({}b))", events[1]);
    }

    [Fact]
    public void Common_names_are_shared_between_stanzas()
    {
        var parser = new XmppStreamParser(XmlLimits.Default);
        var buffer = Utf8(Header + "<message type='chat' foo='bar'><body/><custom-name/></message><message type='chat' foo='bar'><body/><custom-name/></message>");
        parser.Read(buffer, out var consumed, out _);
        parser.Read(buffer = buffer.Slice(consumed), out consumed, out var first);
        parser.Read(buffer.Slice(consumed), out _, out var second);

        Assert.Same(first!.Name, second!.Name);
        Assert.Same(first.Namespace, second.Namespace);
        Assert.Same(first.Attributes[0].Value, second.Attributes[0].Value);
        Assert.Same(first.Attributes[1].Key, second.Attributes[1].Key);
        Assert.Same(first.Elements.Last().Name, second.Elements.Last().Name);
    }
}
