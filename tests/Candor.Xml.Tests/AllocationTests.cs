using System.Buffers;
using System.Text;

namespace Candor.Xml.Tests;

public class AllocationTests
{
    [Fact]
    public void Reads_allocate_only_the_tree_however_the_bytes_arrive()
    {
        var body = new string('x', 10_000);
        var data = Encoding.UTF8.GetBytes($"<message to='romeo@example.net' type='chat' id='a1'><body>{body}</body></message>");
        var parser = new XmppStreamParser(XmlLimits.Default, fragmentMode: true);
        ReadByteByByte(parser, data); // warm up: name cache, pools, JIT

        var before = GC.GetAllocatedBytesForCurrentThread();
        var element = ReadByteByByte(parser, data);
        var allocated = GC.GetAllocatedBytesForCurrentThread() - before;

        Assert.Equal(body, element.GetChildText("body", ""));
        // The body string (2 bytes a character) plus a few small objects; anything per byte or per read would show.
        Assert.InRange(allocated, 2 * body.Length, 2 * body.Length + 1500);
    }

    private static Element ReadByteByByte(XmppStreamParser parser, byte[] data)
    {
        var start = 0;
        for (var arrived = 1; arrived <= data.Length; arrived++)
        {
            var buffer = new ReadOnlySequence<byte>(data, start, arrived - start);
            var ev = parser.Read(buffer, out var consumed, out var element);
            start += (int)buffer.Slice(buffer.Start, consumed).Length;
            if (ev == XmlEvent.Element) return element!;
        }
        throw new InvalidOperationException("no element");
    }
}
