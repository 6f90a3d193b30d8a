using System.Buffers;
using System.Text;

namespace Candor.Xml;

/// <summary>Serializes element trees as UTF-8 straight into a buffer writer.</summary>
public static class ElementWriter
{
    public const string StreamNamespace = "http://etherx.jabber.org/streams";

    /// <summary>
    /// Writes <paramref name="element"/>. <paramref name="parentNamespace"/> is the default namespace in scope
    /// (for stanzas on a c2s stream, <c>jabber:client</c>); an element in another namespace gets an
    /// <c>xmlns</c> declaration. Elements in the streams namespace use the <c>stream:</c> prefix, which the
    /// stream header declares.
    /// </summary>
    public static void Write(Element element, IBufferWriter<byte> output, string? parentNamespace) =>
        Write(element, output, parentNamespace, declareStreamPrefix: false);

    /// <summary>
    /// As <see cref="Write(Element, IBufferWriter{byte}, string?)"/>; with <paramref name="declareStreamPrefix"/>
    /// a root element in the streams namespace declares the <c>stream:</c> prefix itself, for framings without a
    /// stream header (RFC 7395 WebSocket messages).
    /// </summary>
    public static void Write(Element element, IBufferWriter<byte> output, string? parentNamespace, bool declareStreamPrefix)
    {
        var prefixed = element.Namespace == StreamNamespace;
        output.WriteByte((byte)'<');
        if (prefixed) output.WriteAscii("stream:");
        output.WriteUtf8(element.Name);
        if (prefixed && declareStreamPrefix) output.WriteAscii(" xmlns:stream='" + StreamNamespace + "'");
        if (!prefixed && element.Namespace != parentNamespace)
        {
            output.WriteAscii(" xmlns='");
            WriteEscaped(output, element.Namespace, attribute: true);
            output.WriteByte((byte)'\'');
        }
        var clarkPrefixes = 0;
        var attributes = element.Attributes;
        for (var i = 0; i < attributes.Count; i++)
        {
            var (name, value) = attributes[i];
            output.WriteByte((byte)' ');
            if (name.StartsWith('{'))
            {
                var close = name.IndexOf('}');
                var prefix = "a" + clarkPrefixes++;
                output.WriteAscii("xmlns:");
                output.WriteAscii(prefix);
                output.WriteAscii("='");
                WriteEscaped(output, name.AsSpan(1, close - 1), attribute: true);
                output.WriteAscii("' ");
                output.WriteAscii(prefix);
                output.WriteByte((byte)':');
                output.WriteUtf8(name.AsSpan(close + 1));
            }
            else
            {
                output.WriteUtf8(name);
            }
            output.WriteAscii("='");
            WriteEscaped(output, value, attribute: true);
            output.WriteByte((byte)'\'');
        }
        var count = element.ChildCount;
        if (count == 0)
        {
            output.WriteAscii("/>");
            return;
        }
        output.WriteByte((byte)'>');
        var childNamespace = prefixed ? parentNamespace : element.Namespace;
        if (element.InlineText is { } text) WriteEscaped(output, text, attribute: false);
        else
            for (var i = 0; i < count; i++)
            {
                var node = element.ChildAt(i);
                if (node is Element child) Write(child, output, childNamespace);
                else if (node is SerializedContent content) output.Write(content.Utf8);
                else WriteEscaped(output, ((TextNode)node).Value, attribute: false);
            }
        output.WriteAscii("</");
        if (prefixed) output.WriteAscii("stream:");
        output.WriteUtf8(element.Name);
        output.WriteByte((byte)'>');
    }

    public static string ToXmlString(Element element, string? parentNamespace = null) =>
        Encoding.UTF8.GetString(Serialized(element, parentNamespace));

    public static byte[] ToUtf8(Element element, string? parentNamespace = null) =>
        Serialized(element, parentNamespace).ToArray();

    private const int MaxKeptScratch = 64 * 1024;
    [ThreadStatic] private static ArrayBufferWriter<byte>? t_scratch;

    // The archive serializes every message it keeps: a buffer per thread instead of one grown from 256 bytes per call
    // (about 1.8 KB of garbage per stanza). Valid until the thread's next call; Write never calls back in here.
    private static ReadOnlySpan<byte> Serialized(Element element, string? parentNamespace)
    {
        var buffer = t_scratch ??= new ArrayBufferWriter<byte>(1024);
        buffer.ResetWrittenCount();
        Write(element, buffer, parentNamespace);
        if (buffer.Capacity > MaxKeptScratch) t_scratch = null;
        return buffer.WrittenSpan;
    }

    // SearchValues: vectorized, where IndexOfAny over more than five characters is not.
    private static readonly SearchValues<char> AttributeSpecials = SearchValues.Create("&<>'\"\t\n\r");
    private static readonly SearchValues<char> ContentSpecials = SearchValues.Create("&<>\r");

    public static void WriteEscaped(IBufferWriter<byte> output, ReadOnlySpan<char> text, bool attribute)
    {
        while (!text.IsEmpty)
        {
            // A parser normalizes literal tab, CR and LF in attribute values to spaces, and CR in text to LF;
            // references keep them as they are.
            var special = text.IndexOfAny(attribute ? AttributeSpecials : ContentSpecials);
            if (special < 0)
            {
                output.WriteUtf8(text);
                return;
            }
            output.WriteUtf8(text[..special]);
            output.WriteAscii(text[special] switch
            {
                '&' => "&amp;",
                '<' => "&lt;",
                '>' => "&gt;",
                '\'' => "&apos;",
                '"' => "&quot;",
                '\t' => "&#x9;",
                '\n' => "&#xA;",
                _ => "&#xD;",
            });
            text = text[(special + 1)..];
        }
    }
}

public static class BufferWriterExtensions
{
    public static void WriteByte(this IBufferWriter<byte> output, byte value)
    {
        output.GetSpan(1)[0] = value;
        output.Advance(1);
    }

    public static void WriteAscii(this IBufferWriter<byte> output, string ascii)
    {
        var span = output.GetSpan(ascii.Length);
        for (var i = 0; i < ascii.Length; i++) span[i] = (byte)ascii[i];
        output.Advance(ascii.Length);
    }

    public static void WriteUtf8(this IBufferWriter<byte> output, ReadOnlySpan<char> text)
    {
        if (text.IsEmpty) return;
        var span = output.GetSpan(Encoding.UTF8.GetMaxByteCount(text.Length));
        output.Advance(Encoding.UTF8.GetBytes(text, span));
    }

    public static void WriteBytes(this IBufferWriter<byte> output, ReadOnlySpan<byte> bytes) => output.Write(bytes);
}
