using System.Buffers;
using System.Text;
using Candor.Xml;

namespace Candor.Server.Storage;

/// <summary>
/// Stanzas kept in stores as XML text: written with <see cref="ElementWriter"/> with the root's namespace
/// declared (<c>ToXmlString(element)</c>), and read back with the parser in fragment mode.
/// </summary>
public static class StoredStanza
{
    public static Element Parse(string xml)
    {
        var parser = new XmppStreamParser(XmlLimits.Default with { MaxStanzaBytes = int.MaxValue }, fragmentMode: true);
        var bytes = Encoding.UTF8.GetBytes(xml);
        var ev = parser.Read(new ReadOnlySequence<byte>(bytes), out _, out var element);
        if (ev != XmlEvent.Element || element is null) throw new InvalidDataException("stored stanza is not one element");
        return element;
    }
}
