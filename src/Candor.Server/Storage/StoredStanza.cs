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
    // Stored stanzas were accepted under the limits in force when they arrived, which may since have been lowered.
    private static readonly XmlLimits Unlimited = new()
    {
        MaxStanzaBytes = int.MaxValue, MaxDepth = int.MaxValue, MaxAttributes = int.MaxValue,
        MaxAttributeBytes = int.MaxValue, MaxNameBytes = int.MaxValue, MaxHeaderBytes = int.MaxValue,
    };

    public static Element Parse(string xml) => Parse(Encoding.UTF8.GetBytes(xml));

    public static Element Parse(byte[] bytes)
    {
        var parser = new XmppStreamParser(Unlimited, fragmentMode: true);
        var ev = parser.Read(new ReadOnlySequence<byte>(bytes), out _, out var element);
        if (ev != XmlEvent.Element || element is null) throw new InvalidDataException("stored stanza is not one element");
        return element;
    }
}
