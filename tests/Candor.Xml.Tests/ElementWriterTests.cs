namespace Candor.Xml.Tests;

public class ElementWriterTests
{
    [Fact]
    public void Text_and_attributes_are_escaped()
    {
        var message = new Element("message", "jabber:client").SetAttribute("id", "a'b\"c<d>e&f\tg\nh\ri");
        message.AddChild("body").AddText("1 < 2 && 3 > 2 'q' \"q\" line\r\nend");

        Assert.Equal(
            "<message id='a&apos;b&quot;c&lt;d&gt;e&amp;f&#x9;g&#xA;h&#xD;i'><body>1 &lt; 2 &amp;&amp; 3 &gt; 2 'q' \"q\" line&#xD;\nend</body></message>",
            ElementWriter.ToXmlString(message, "jabber:client"));
    }

    [Fact]
    public void Namespaces_are_declared_where_they_change()
    {
        var iq = new Element("iq", "jabber:client").SetAttribute("type", "get");
        iq.AddChild("query", "jabber:iq:roster").AddChild("item").SetAttribute("{urn:x}flag", "1");

        Assert.Equal("<iq type='get'><query xmlns='jabber:iq:roster'><item xmlns:a0='urn:x' a0:flag='1'/></query></iq>",
            ElementWriter.ToXmlString(iq, "jabber:client"));
        Assert.StartsWith("<iq xmlns='jabber:client' ", iq.ToString());
    }

    [Fact]
    public void Everything_written_parses_back_to_the_same_tree()
    {
        var message = new Element("message", "jabber:client").SetAttribute("xml:lang", "en").SetAttribute("to", "\t<&>'\"\r\n");
        message.AddChild("body").AddText("\r\n\t<&>]]>'\" \u00e9 \U0001F339");
        message.AddChild("x", "urn:x").SetAttribute("{urn:y}a", "1").SetAttribute("{urn:z}a", "2").AddChild("y").AddText(" ");
        message.Add(new Element("features", ElementWriter.StreamNamespace));

        var again = Feed.AllWaysAgree(RfcFixtures.ClientHeader + ElementWriter.ToXmlString(message, "jabber:client"))[1];

        Assert.Equal("Element " + Feed.Dump(message), again);
    }
}
