using System.Buffers;
using System.Text;

namespace Candor.Xml.Tests;

/// <summary>The name cache is one per process: parsers share its strings, and threads fill it at the same time.</summary>
public class NameTableTests
{
    [Fact]
    public void Parsers_share_the_strings_of_names_and_addresses()
    {
        const string stanza = "<message to='juliet@example.com/balcony' type='chat'><x xmlns='urn:example:shared-name-test'/></message>";
        var first = Parse(new XmppStreamParser(XmlLimits.Default, fragmentMode: true), stanza);
        var second = Parse(new XmppStreamParser(XmlLimits.Default, fragmentMode: true), stanza);

        Assert.Equal("juliet@example.com/balcony", second.GetAttribute("to"));
        Assert.Same(first.GetAttribute("to"), second.GetAttribute("to"));
        Assert.Same(first.FirstElement!.Namespace, second.FirstElement!.Namespace);
    }

    [Fact]
    public void Threads_filling_the_cache_at_once_each_read_their_own_names()
    {
        // Far more distinct names than the cache has entries, so threads keep replacing each other's entries.
        const int threads = 4, perThread = 20_000;
        var failures = 0;
        Parallel.For(0, threads, new ParallelOptions { MaxDegreeOfParallelism = threads }, t =>
        {
            var parser = new XmppStreamParser(XmlLimits.Default, fragmentMode: true);
            for (var i = 0; i < perThread; i++)
            {
                var name = $"n{(i * 7 + t) % 9_973}";
                var address = $"{name}@example.com";
                var element = Parse(parser, $"<{name} xmlns='urn:example:{name}' to='{address}'/>");
                if (element.Name != name || element.Namespace != "urn:example:" + name || element.GetAttribute("to") != address)
                    Interlocked.Increment(ref failures);
            }
        });
        Assert.Equal(0, failures);
    }

    private static Element Parse(XmppStreamParser parser, string xml)
    {
        var ev = parser.Read(new ReadOnlySequence<byte>(Encoding.UTF8.GetBytes(xml)), out _, out var element);
        Assert.Equal(XmlEvent.Element, ev);
        return element!;
    }
}
