using System.Buffers;
using System.Text;

namespace Candor.Xml.Tests;

/// <summary>
/// Feeds bytes to a parser the way a pipe does: each read sees everything from the last consumed position to
/// what has arrived so far. Events come back as structural dumps so runs can be compared exactly.
/// </summary>
public static class Feed
{
    /// <summary>A way of delivering the data: arrival points and where the buffer is cut into segments.</summary>
    public sealed record Way(string Name, IReadOnlyList<int> Arrivals, Func<byte[], int, int, ReadOnlySequence<byte>> View);

    public static IEnumerable<Way> AllWays(int length)
    {
        yield return new("whole", [length], Single);
        for (var k = 1; k < length; k++)
        {
            var cut = k;
            yield return new($"split at {k}", [cut, length], (d, s, e) => Chunks.Cut(d, s, e, [cut]));
        }
        yield return new("one byte at a time", [.. Enumerable.Range(1, length)], Single);
        yield return new("one-byte segments", [length], (d, s, e) => Chunks.Cut(d, s, e, Enumerable.Range(0, length)));
        yield return new("7-byte arrivals in 3-byte segments", [.. Enumerable.Range(1, length).Where(n => n % 7 == 0 || n == length)],
            (d, s, e) => Chunks.Cut(d, s, e, Enumerable.Range(0, length).Where(n => n % 3 == 0)));
    }

    public static ReadOnlySequence<byte> Single(byte[] data, int start, int end) => new(data, start, end - start);

    public static List<string> Run(byte[] data, Way way, bool fragment = false, XmlLimits? limits = null) =>
        Run(new XmppStreamParser(limits ?? XmlLimits.Default, fragment), data, way);

    public static List<string> Run(XmppStreamParser parser, byte[] data, Way way)
    {
        var events = new List<string>();
        var start = 0;
        foreach (var arrived in way.Arrivals)
        {
            while (true)
            {
                var buffer = way.View(data, start, arrived);
                var ev = parser.Read(buffer, out var consumed, out var element);
                start += (int)buffer.Slice(buffer.Start, consumed).Length;
                if (ev == XmlEvent.None) break;
                events.Add(Describe(ev, element, parser));
            }
        }
        Assert.Equal(data.Length, start);
        return events;
    }

    /// <summary>Parses in every way and checks they all agree; returns the events.</summary>
    public static List<string> AllWaysAgree(byte[] data, bool fragment = false, XmlLimits? limits = null)
    {
        var expected = Run(data, new("whole", [data.Length], Single), fragment, limits);
        foreach (var way in AllWays(data.Length))
            Assert.True(expected.SequenceEqual(Run(data, way, fragment, limits)), way.Name);
        return expected;
    }

    public static List<string> AllWaysAgree(string xml, bool fragment = false) => AllWaysAgree(Encoding.UTF8.GetBytes(xml), fragment);

    /// <summary>Checks that every way of feeding fails with <paramref name="condition"/>.</summary>
    public static void Refused(byte[] data, XmlErrorCondition condition, bool fragment = false, XmlLimits? limits = null)
    {
        foreach (var way in AllWays(data.Length))
        {
            var error = Assert.Throws<XmlStreamException>(() => Run(data, way, fragment, limits));
            Assert.True(condition == error.Condition, $"{way.Name}: {error.Condition} ({error.Message}), expected {condition}");
        }
    }

    public static void Refused(string xml, XmlErrorCondition condition, bool fragment = false, XmlLimits? limits = null) =>
        Refused(Encoding.UTF8.GetBytes(xml), condition, fragment, limits);

    public static string Describe(XmlEvent ev, Element? element, XmppStreamParser parser) => ev switch
    {
        XmlEvent.StreamOpen => $"StreamOpen default={parser.DefaultNamespace} {Dump(element!)}",
        XmlEvent.Element => $"Element {Dump(element!)}",
        _ => ev.ToString(),
    };

    /// <summary>Every detail of a tree: names, namespaces, attributes in order, text nodes as separate nodes.</summary>
    public static string Dump(Node node)
    {
        if (node is TextNode text) return Quote(text.Value);
        var element = (Element)node;
        var sb = new StringBuilder();
        sb.Append('{').Append(element.Namespace).Append('}').Append(element.Name);
        if (element.Attributes.Count > 0)
            sb.Append('[').AppendJoin(' ', element.Attributes.Select(a => $"{a.Key}={Quote(a.Value)}")).Append(']');
        if (element.Nodes.Count > 0) sb.Append('(').AppendJoin(' ', element.Nodes.Select(Dump)).Append(')');
        return sb.ToString();
    }

    private static string Quote(string s) =>
        "\"" + s.Replace("\\", "\\\\").Replace("\"", "\\\"").Replace("\n", "\\n").Replace("\r", "\\r").Replace("\t", "\\t") + "\"";
}
