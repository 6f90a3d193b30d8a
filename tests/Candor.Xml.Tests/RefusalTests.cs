using System.Buffers;
using System.Text;
using static Candor.Xml.XmlErrorCondition;

namespace Candor.Xml.Tests;

/// <summary>Every construct RFC 6120 §11 refuses, with the exact stream error condition, however the bytes arrive.</summary>
public class RefusalTests
{
    private const string Header = RfcFixtures.ClientHeader;

    private static byte[] Bytes(params object[] parts) =>
        [.. parts.SelectMany(p => p is string s ? Encoding.UTF8.GetBytes(s) : (byte[])p)];

    [Theory]
    [InlineData("<!DOCTYPE stream>" + Header)]
    [InlineData("<?xml version='1.0'?><!DOCTYPE stream:stream [<!ENTITY xxe SYSTEM 'file:///etc/passwd'>]>" + Header)]
    [InlineData(Header + "<!DOCTYPE message>")]
    [InlineData(Header + "<message><!ENTITY x 'y'></message>")]
    [InlineData(Header + "<message><!ELEMENT message ANY></message>")]
    public void Declarations_are_restricted(string xml) => Feed.Refused(xml, RestrictedXml);

    [Fact]
    public void An_entity_expansion_bomb_is_refused_at_its_DTD()
    {
        var bomb = new StringBuilder("<?xml version='1.0'?><!DOCTYPE lolz [<!ENTITY lol 'lol'>");
        for (var i = 1; i < 10; i++)
            bomb.Append($"<!ENTITY lol{i} '{string.Concat(Enumerable.Repeat($"&lol{i - 1};", 10))}'>");
        bomb.Append("]>").Append(Header).Append("<message><body>&lol9;</body></message>");
        Feed.Refused(bomb.ToString(), RestrictedXml);
        // Without the DTD, the reference alone is refused too.
        Feed.Refused(Header + "<message><body>&lol9;</body></message>", RestrictedXml);
    }

    [Theory]
    [InlineData("<!-- hello -->" + Header)]
    [InlineData(Header + "<!-- keepalive -->")]
    [InlineData(Header + "<message><!-- hidden --><body/></message>")]
    public void Comments_are_restricted(string xml) => Feed.Refused(xml, RestrictedXml);

    [Theory]
    [InlineData("<?xml-stylesheet href='a.xsl'?>" + Header)]
    [InlineData("<?php echo 1; ?>" + Header)]
    [InlineData(Header + "<?xml version='1.0'?>")]
    [InlineData(Header + "<message><?pi data?></message>")]
    [InlineData("<?xml version='1.0'?><?xml version='1.0'?>" + Header)]
    public void Processing_instructions_are_restricted(string xml) => Feed.Refused(xml, RestrictedXml);

    [Theory]
    [InlineData("&foo;")]
    [InlineData("&nbsp;")]
    [InlineData("&xxe;")]
    public void Entity_references_other_than_the_predefined_ones_are_restricted(string reference)
    {
        Feed.Refused(Header + $"<message><body>{reference}</body></message>", RestrictedXml);
        Feed.Refused(Header + $"<message id='{reference}'/>", RestrictedXml);
    }

    [Theory]
    [InlineData("&")]
    [InlineData("& x")]
    [InlineData("&;")]
    [InlineData("&#;")]
    [InlineData("&#x;")]
    [InlineData("&#xZZ;")]
    [InlineData("&#12a;")]
    [InlineData("&#x110000;")]
    [InlineData("&#99999999999;")]
    [InlineData("&#0;")]
    [InlineData("&#x1;")]
    [InlineData("&#xFFFE;")]
    [InlineData("&#xD800;")]
    [InlineData("&1abc;")]
    public void Malformed_or_forbidden_references_are_not_well_formed(string reference) =>
        Feed.Refused(Header + $"<message><body>{reference}</body></message>", NotWellFormed);

    public static TheoryData<string, byte[]> InvalidUtf8 => new()
    {
        { "lone continuation byte", [0x80] },
        { "invalid byte FF", [0xFF] },
        { "overlong slash (2 bytes)", [0xC0, 0xAF] },
        { "overlong slash (3 bytes)", [0xE0, 0x80, 0xAF] },
        { "overlong NUL", [0xC0, 0x80] },
        { "UTF-16 surrogate", [0xED, 0xA0, 0x80] },
        { "above U+10FFFF", [0xF4, 0x90, 0x80, 0x80] },
        { "truncated 2-byte sequence", [0xC3] },
        { "truncated 4-byte sequence", [0xF0, 0x9F, 0x8C] },
    };

    [Theory]
    [MemberData(nameof(InvalidUtf8))]
    public void Invalid_UTF8_is_not_well_formed(string kind, byte[] bad)
    {
        Assert.NotNull(kind);
        Feed.Refused(Bytes(Header, "<message><body>a", bad, "</body></message>"), NotWellFormed);
        Feed.Refused(Bytes(Header, "<message id='", bad, "'/>"), NotWellFormed);
        Feed.Refused(Bytes(Header, "<message><b", bad, "/></message>"), NotWellFormed);
        Feed.Refused(Bytes("<stream:stream to='", bad, "' xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>"), NotWellFormed);
    }

    [Theory]
    [InlineData(new byte[] { 0x00 })]
    [InlineData(new byte[] { 0x01 })]
    [InlineData(new byte[] { 0x08 })]
    [InlineData(new byte[] { 0x0B })]
    [InlineData(new byte[] { 0x0C })]
    [InlineData(new byte[] { 0x1F })]
    [InlineData(new byte[] { 0xEF, 0xBF, 0xBE })] // U+FFFE
    [InlineData(new byte[] { 0xEF, 0xBF, 0xBF })] // U+FFFF
    public void Characters_XML_does_not_allow_are_not_well_formed(byte[] bad)
    {
        Feed.Refused(Bytes(Header, "<message><body>", bad, "</body></message>"), NotWellFormed);
        Feed.Refused(Bytes(Header, "<message type='", bad, "'/>"), NotWellFormed);
    }

    [Theory]
    [InlineData("<foo:message/>")]
    [InlineData("<message foo:bar='1'/>")]
    [InlineData("<message><x:y xmlns:x='urn:x'/><x:z/></message>")]
    [InlineData("<xmlns:message/>")]
    [InlineData("<message xmlns:p=''/>")]
    [InlineData("<message xmlns:xml='urn:not-xml'/>")]
    [InlineData("<message xmlns:p='http://www.w3.org/XML/1998/namespace'/>")]
    [InlineData("<message xmlns:xmlns='urn:x'/>")]
    public void Namespace_errors_are_not_well_formed(string stanza) => Feed.Refused(Header + stanza, NotWellFormed);

    [Theory]
    [InlineData("<message><body></message></body>")]
    [InlineData("<message></presence>")]
    [InlineData("<message><body></body></message extra>")]
    [InlineData("<message id='1' id='2'/>")]
    [InlineData("<message id='1' id=\"1\"/>")]
    [InlineData("<message xmlns:a='urn:x' xmlns:b='urn:x' a:id='1' b:id='2'/>")]
    [InlineData("<message xmlns:a='urn:x' xmlns:a='urn:y'/>")]
    [InlineData("<message xmlns='urn:x' xmlns='urn:y'/>")]
    [InlineData("<message id='a<b'/>")]
    [InlineData("<message id=1/>")]
    [InlineData("<message id/>")]
    [InlineData("<message id='1'type='2'/>")]
    [InlineData("<message id='1/><presence/>")]
    [InlineData("<1message/>")]
    [InlineData("<-message/>")]
    [InlineData("<a:/>")]
    [InlineData("<:a/>")]
    [InlineData("<a:b:c/>")]
    [InlineData("<></>")]
    [InlineData("< message/>")]
    [InlineData("<message / ></message>")]
    [InlineData("<message><body>]]></body></message>")]
    [InlineData("<message><![CDAT[x]]></message>")]
    [InlineData("hello")]
    [InlineData("<![CDATA[text]]>")]
    [InlineData("&amp;")]
    [InlineData("</stream:features>")]
    [InlineData("</stream>")]
    [InlineData("</stream:stream><presence/>")]
    public void Malformed_XML_is_not_well_formed(string xml) => Feed.Refused(Header + xml, NotWellFormed);

    /// <summary>
    /// A mismatched end tag is refused when its '&gt;' arrives, not when the stanza would have closed (which may be
    /// never): the scanner compares each end tag with the open element's name, in every way the bytes can arrive.
    /// </summary>
    [Theory]
    [InlineData("<message><body></message>")]
    [InlineData("<message><body>hi</bod>")]
    [InlineData("<message><body></bodyx >")]
    [InlineData("<message><b></bo>")]
    [InlineData("<a:message xmlns:a='jabber:client'><a:body></b:body>")]
    [InlineData("<message><x:verylongname-verylongname-verylongname-verylongname xmlns:x='urn:x'></x:verylongname-verylongname-verylongname-verylongnamf>")]
    public void A_mismatched_end_tag_is_refused_as_it_arrives(string xml)
    {
        var data = Encoding.UTF8.GetBytes(Header + xml);
        foreach (var way in Feed.AllWays(data.Length))
        {
            var error = Assert.Throws<XmlStreamException>(() => Feed.Run(data, way));
            Assert.True(error.Condition == NotWellFormed, $"{way.Name}: {error.Condition} ({error.Message})");
        }
        // One byte short of the end tag's '>', nothing is wrong yet.
        var parser = new XmppStreamParser(XmlLimits.Default);
        var rest = new ReadOnlySequence<byte>(data[..^1]);
        while (parser.Read(rest, out var consumed, out _) != XmlEvent.None) rest = rest.Slice(consumed);
    }

    [Theory]
    [InlineData("<message><body></body ></message>")]
    [InlineData("<message><body></body\n\t></message>")]
    [InlineData("<message><b:body xmlns:b='urn:b'></b:body></message>")]
    public void End_tags_with_whitespace_or_prefixes_still_close_their_element(string xml) =>
        Assert.Single(Feed.AllWaysAgree(Header + xml), e => e.StartsWith("Element", StringComparison.Ordinal));

    [Theory]
    [InlineData("</message>")]
    [InlineData("hello")]
    [InlineData("<message/>text")]
    [InlineData("<![CDATA[x]]>")]
    [InlineData("<message>")]
    public void Fragment_mode_refuses_stray_close_tags_and_text(string xml)
    {
        // An unclosed element is not refused, only left pending: frames are checked one by one by the caller.
        if (xml == "<message>")
        {
            var parser = new XmppStreamParser(XmlLimits.Default, fragmentMode: true);
            Assert.Equal(XmlEvent.None, parser.Read(new(Encoding.UTF8.GetBytes(xml)), out _, out _));
            return;
        }
        Feed.Refused(xml, NotWellFormed, fragment: true);
    }

    [Theory]
    [InlineData("<?xml version='1.0' encoding='ISO-8859-1'?>")]
    [InlineData("<?xml version='1.0' encoding='UTF-16'?>")]
    public void Encodings_other_than_UTF8_are_unsupported(string declaration) =>
        Feed.Refused(declaration + Header, UnsupportedEncoding);

    [Theory]
    [InlineData("<?xml?>")]
    [InlineData("<?xml encoding='UTF-8'?>")]
    [InlineData("<?xml version='2.0'?>")]
    [InlineData("<?xml version='1.0' foo='bar'?>")]
    [InlineData("<?xml version='1.0'standalone='yes'?>")]
    public void Malformed_declarations_are_refused(string declaration)
    {
        var expected = declaration == "<?xml?>" ? RestrictedXml : NotWellFormed;
        Feed.Refused(declaration + Header, expected);
    }

    [Fact]
    public void Stream_header_must_be_an_open_tag()
    {
        Feed.Refused("<stream:stream xmlns:stream='http://etherx.jabber.org/streams'/>", NotWellFormed);
        Feed.Refused("</stream:stream>", NotWellFormed);
        Feed.Refused("<stream:stream>", NotWellFormed);
    }

    [Fact]
    public void The_parser_is_dead_after_an_error()
    {
        var parser = new XmppStreamParser(XmlLimits.Default);
        var bad = new System.Buffers.ReadOnlySequence<byte>(Encoding.UTF8.GetBytes(Header + "<!-- x -->"));
        Assert.Equal(XmlEvent.StreamOpen, parser.Read(bad, out var consumed, out _));
        Assert.Throws<XmlStreamException>(() => parser.Read(bad.Slice(consumed), out _, out _));
        Assert.Throws<InvalidOperationException>(() => parser.Read(bad.Slice(consumed), out _, out _));
    }
}
