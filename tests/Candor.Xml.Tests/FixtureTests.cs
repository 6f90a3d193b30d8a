using System.Text;

namespace Candor.Xml.Tests;

public class FixtureTests
{
    [Theory]
    [MemberData(nameof(RfcFixtures.Names), MemberType = typeof(RfcFixtures))]
    public void Every_way_of_splitting_gives_the_same_events(string name)
    {
        var fixture = RfcFixtures.Get(name);
        var events = Feed.AllWaysAgree(Encoding.UTF8.GetBytes(fixture.Xml), fixture.Fragment);

        Assert.Equal(fixture.Expected.Length, events.Count);
        for (var i = 0; i < events.Count; i++)
            Assert.True(events[i].StartsWith(fixture.Expected[i], StringComparison.Ordinal), $"event {i}:\n{events[i]}\nexpected to start with\n{fixture.Expected[i]}");
    }

    [Theory]
    [MemberData(nameof(RfcFixtures.Names), MemberType = typeof(RfcFixtures))]
    public void Writing_and_parsing_again_gives_the_same_tree(string name)
    {
        var fixture = RfcFixtures.Get(name);
        var defaultNamespace = fixture.Fragment ? null : "jabber:client";
        var elements = Parse(fixture.Xml, fixture.Fragment).ToList();
        Assert.NotEmpty(elements);

        foreach (var element in elements)
        {
            var written = ElementWriter.ToXmlString(element, defaultNamespace);
            var again = fixture.Fragment
                ? Parse(written, fragment: true).Single()
                : Parse(RfcFixtures.ClientHeader + written, fragment: false).Single();
            Assert.Equal(Feed.Dump(element), Feed.Dump(again));
        }
    }

    private static IEnumerable<Element> Parse(string xml, bool fragment)
    {
        var parser = new XmppStreamParser(XmlLimits.Default, fragment);
        var buffer = new System.Buffers.ReadOnlySequence<byte>(Encoding.UTF8.GetBytes(xml));
        while (true)
        {
            var ev = parser.Read(buffer, out var consumed, out var element);
            buffer = buffer.Slice(consumed);
            if (ev == XmlEvent.None) yield break;
            if (ev == XmlEvent.Element) yield return element!;
        }
    }
}
