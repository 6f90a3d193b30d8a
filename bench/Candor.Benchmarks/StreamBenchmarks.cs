using System.Buffers;
using System.Text;
using BenchmarkDotNet.Attributes;
using Candor.Xml;

namespace Candor.Benchmarks;

/// <summary>
/// The stream parser and the writer on typical stanzas: throughput (see the MB/s column: bytes per
/// operation over time) and bytes allocated per stanza.
/// </summary>
[MemoryDiagnoser]
public class StreamBenchmarks
{
    private static readonly Dictionary<string, string> Stanzas = new()
    {
        ["message"] = "<message xmlns='jabber:client' from='alice@localhost/phone' to='bob@localhost' type='chat' id='m-123456'><body>Hello Bob, how are you today? This is a typical chat line.</body><active xmlns='http://jabber.org/protocol/chatstates'/><request xmlns='urn:xmpp:receipts'/></message>",
        ["presence"] = "<presence xmlns='jabber:client' from='alice@localhost/phone'><show>away</show><status>In a meeting</status><priority>5</priority><c xmlns='http://jabber.org/protocol/caps' hash='sha-1' node='https://gajim.org' ver='q07IKJEyjvHSyhy//CH0CxmKi8w='/></presence>",
        ["iq"] = "<iq xmlns='jabber:client' type='get' id='roster-1' from='alice@localhost/phone'><query xmlns='jabber:iq:roster' ver='42'/></iq>",
    };

    private byte[] _bytes = [];
    private XmppStreamParser _parser = null!;
    private Element _element = null!;
    private readonly ArrayBufferWriter<byte> _output = new(4096);

    [Params("message", "presence", "iq")]
    public string Kind { get; set; } = "message";

    [GlobalSetup]
    public void Setup()
    {
        _bytes = Encoding.UTF8.GetBytes(Stanzas[Kind]);
        _parser = new XmppStreamParser(XmlLimits.Default, fragmentMode: true);
        _parser.Read(new ReadOnlySequence<byte>(_bytes), out _, out var element);
        _element = element!;
    }

    [Benchmark]
    public Element? Parse()
    {
        _parser.Read(new ReadOnlySequence<byte>(_bytes), out _, out var element);
        return element;
    }

    [Benchmark]
    public int Write()
    {
        _output.ResetWrittenCount();
        ElementWriter.Write(_element, _output, "jabber:client");
        return _output.WrittenCount;
    }
}
