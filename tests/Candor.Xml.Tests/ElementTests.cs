using System.Buffers;
using System.Text;

namespace Candor.Xml.Tests;

/// <summary>The compact storage of parsed elements (inline text, one child, a sized attribute array) behaves like a list.</summary>
public class ElementTests
{
    private static Element Parse(string xml)
    {
        var parser = new XmppStreamParser(XmlLimits.Default, fragmentMode: true);
        Assert.Equal(XmlEvent.Element, parser.Read(new ReadOnlySequence<byte>(Encoding.UTF8.GetBytes(xml)), out _, out var element));
        return element!;
    }

    [Fact]
    public void A_parsed_text_only_element_grows_into_mixed_content()
    {
        var message = Parse("<message xmlns='jabber:client' to='a@b' id='1'><body>hi &amp; bye</body></message>");
        var body = message.GetChild("body", "jabber:client")!;
        Assert.Equal("hi & bye", body.Text);
        Assert.Equal("hi & bye", Assert.IsType<TextNode>(Assert.Single(body.Nodes)).Value);
        Assert.Empty(body.Elements);

        body.AddChild("b").AddText("x");
        body.AddText(" end");

        Assert.Equal(["TextNode", "Element", "TextNode"], body.Nodes.Select(n => n.GetType().Name));
        Assert.Equal("hi & bye end", body.Text);
        Assert.Equal("<body>hi &amp; bye<b>x</b> end</body>", ElementWriter.ToXmlString(body, "jabber:client"));
    }

    [Fact]
    public void Attributes_fill_the_spare_slot_then_grow_and_removals_keep_order()
    {
        var message = Parse("<message xmlns='jabber:client' to='a@b' type='chat' id='1'/>");
        Assert.Equal(["to", "type", "id"], message.Attributes.Select(a => a.Key));

        message.SetAttribute("from", "c@d/e").SetAttribute("xml:lang", "en").SetAttribute("type", null).SetAttribute("to", "x@y");

        Assert.Equal(["to=x@y", "id=1", "from=c@d/e", "xml:lang=en"], message.Attributes.Select(a => $"{a.Key}={a.Value}"));
        Assert.Null(message.GetAttribute("type"));
        message.SetAttribute("type", "normal").SetAttribute("nothing", null);
        Assert.Equal(5, message.Attributes.Count);
        Assert.Equal("normal", message.Attributes[4].Value);
        Assert.Throws<ArgumentOutOfRangeException>(() => message.Attributes[5]);
    }

    [Fact]
    public void Removing_children_keeps_the_others_in_order()
    {
        var message = Parse("<message xmlns='jabber:client'><a/><b/>text<a/><c/></message>");
        var firstA = message.FirstElement!;

        message.RemoveChild(firstA);
        Assert.Equal("<message><b/>text<a/><c/></message>", ElementWriter.ToXmlString(message, "jabber:client"));
        message.RemoveChildren(n => n is TextNode || n is Element { Name: "c" });
        Assert.Equal(["b", "a"], message.Elements.Select(e => e.Name));
        message.RemoveChildren(_ => true);
        Assert.Empty(message.Nodes);
        Assert.Equal("<message/>", ElementWriter.ToXmlString(message, "jabber:client"));

        var single = Parse("<message xmlns='jabber:client'><body>x</body></message>");
        single.RemoveChild(single.FirstElement!);
        Assert.Null(single.FirstElement);
    }

    [Fact]
    public void A_clone_is_independent_of_the_original()
    {
        var message = Parse("<message xmlns='jabber:client' to='a@b'><body>hi</body><x xmlns='urn:x'><y/></x></message>");
        var copy = message.Clone();

        copy.SetAttribute("to", "c@d").GetChild("body", "jabber:client")!.AddText("!");
        copy.GetChild("urn:x")!.ClearChildren();

        Assert.Equal("<message to='a@b'><body>hi</body><x xmlns='urn:x'><y/></x></message>", ElementWriter.ToXmlString(message, "jabber:client"));
        Assert.Equal("<message to='c@d'><body>hi!</body><x xmlns='urn:x'/></message>", ElementWriter.ToXmlString(copy, "jabber:client"));
    }
}
