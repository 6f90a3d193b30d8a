using System.Buffers;
using System.Text;
using static Candor.Xml.XmlErrorCondition;

namespace Candor.Xml.Tests;

public class LimitTests
{
    private const string Header = RfcFixtures.ClientHeader;

    [Fact]
    public void A_stanza_at_the_size_limit_is_accepted()
    {
        var stanza = "<message><body>" + new string('a', 100) + "</body></message>";
        var limits = new XmlLimits { MaxStanzaBytes = stanza.Length };
        Feed.AllWaysAgree(Encoding.UTF8.GetBytes(Header + "\n" + stanza + "\n" + stanza), limits: limits);
        Feed.Refused(Header + stanza.Replace("<body>", "<body>a"), PolicyViolation, limits: limits);
    }

    [Fact]
    public void Too_large_a_stanza_is_refused_as_soon_as_it_passes_the_limit()
    {
        var limits = new XmlLimits { MaxStanzaBytes = 1000 };
        var parser = new XmppStreamParser(limits);
        var data = Encoding.UTF8.GetBytes(Header + "  <message><body>" + new string('a', 5000));
        var stanzaStart = Header.Length + 2;
        var start = 0;
        for (var arrived = 1; arrived <= data.Length; arrived++)
        {
            var buffer = new ReadOnlySequence<byte>(data, start, arrived - start);
            try
            {
                XmlEvent ev;
                do
                {
                    ev = parser.Read(buffer, out var consumed, out _);
                    start += (int)buffer.Slice(buffer.Start, consumed).Length;
                    buffer = buffer.Slice(consumed);
                } while (ev != XmlEvent.None);
            }
            catch (XmlStreamException e)
            {
                Assert.Equal(PolicyViolation, e.Condition);
                Assert.Equal(stanzaStart + limits.MaxStanzaBytes + 1, arrived);
                return;
            }
        }
        Assert.Fail("the oversized stanza was never refused");
    }

    [Fact]
    public void Too_large_a_header_is_refused()
    {
        var limits = new XmlLimits { MaxHeaderBytes = 200 };
        Feed.AllWaysAgree(Encoding.UTF8.GetBytes(Header), limits: limits);
        Feed.Refused(Header.Replace("to='", "to='" + new string('x', 100)), PolicyViolation, limits: limits);
        Feed.Refused("<?xml version='1.0'" + new string(' ', 300) + "?>", PolicyViolation, limits: limits);
    }

    [Fact]
    public void Nesting_deeper_than_the_limit_is_refused()
    {
        var limits = new XmlLimits { MaxDepth = 3 };
        Feed.AllWaysAgree(Encoding.UTF8.GetBytes(Header + "<a><b><c/></b></a><a><b><c></c></b></a>"), limits: limits);
        Feed.Refused(Header + "<a><b><c><d/></c></b></a>", PolicyViolation, limits: limits);
        Feed.Refused(Header + "<a><b><c><d>", PolicyViolation, limits: limits);
    }

    // The stream header itself would break these tiny limits, so these use WebSocket frames.
    [Fact]
    public void Too_many_attributes_are_refused()
    {
        var limits = new XmlLimits { MaxAttributes = 3 };
        Feed.AllWaysAgree(Encoding.UTF8.GetBytes("<a x='1' y='2' z='3'/>"), fragment: true, limits: limits);
        Feed.Refused("<a x='1' y='2' z='3' w='4'/>", PolicyViolation, fragment: true, limits: limits);
        Feed.Refused("<a xmlns='urn:a' y='2' z='3' w='4'/>", PolicyViolation, fragment: true, limits: limits);
    }

    [Fact]
    public void Too_long_an_attribute_value_is_refused()
    {
        var limits = new XmlLimits { MaxAttributeBytes = 10 };
        Feed.AllWaysAgree(Encoding.UTF8.GetBytes("<a x='0123456789'/>"), fragment: true, limits: limits);
        Feed.Refused("<a x='0123456789A'/>", PolicyViolation, fragment: true, limits: limits);
    }

    [Fact]
    public void Too_long_a_name_is_refused()
    {
        var limits = new XmlLimits { MaxNameBytes = 8 };
        Feed.AllWaysAgree(Encoding.UTF8.GetBytes("<abcdefgh abcdefgh='1'><p:abcdef xmlns:p='urn:p'/></abcdefgh>"), fragment: true, limits: limits);
        Feed.Refused("<abcdefghi/>", PolicyViolation, fragment: true, limits: limits);
        Feed.Refused("<a abcdefghi='1'/>", PolicyViolation, fragment: true, limits: limits);
        Feed.Refused("<p:abcdefg xmlns:p='urn:p'/>", PolicyViolation, fragment: true, limits: limits);
    }

    [Fact]
    public void A_large_stanza_arriving_one_byte_at_a_time_is_scanned_once()
    {
        // 200 KiB fed byte by byte: rescanning the pending stanza on every read would take minutes.
        var body = string.Concat(Enumerable.Repeat("Wherefore art thou, Romeo? &amp; ", 6000));
        var data = Encoding.UTF8.GetBytes(Header + "<message><body>" + body + "</body><x a='" + new string('v', 60000) + "'/></message>");
        var events = Feed.Run(data, new Feed.Way("one byte at a time", [.. Enumerable.Range(1, data.Length)], Feed.Single));
        Assert.Equal(2, events.Count);
        Assert.Contains("Romeo? & Wherefore", events[1]);
    }
}
