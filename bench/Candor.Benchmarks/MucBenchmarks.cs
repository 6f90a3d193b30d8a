using System.Text;
using BenchmarkDotNet.Attributes;
using Candor.Server.Core;
using Candor.Xml;
using Candor.Xmpp;

namespace Candor.Benchmarks;

/// <summary>
/// One groupchat message into a room of 100 or 1,000 occupants: parse, policy, the room's fan-out, and every
/// copy serialized as the transport would (into a reused buffer here, so no socket is measured). One
/// operation delivers to every occupant.
/// </summary>
[MemoryDiagnoser]
public class MucBenchmarks
{
    private BenchServer _bench = null!;
    private Session _speaker = null!;
    private readonly CountingTransport _transport = new(serialize: true);
    private readonly byte[] _message = Encoding.UTF8.GetBytes("<message xmlns='jabber:client' to='bench@conference.localhost' type='groupchat' id='m1'>"
                                                              + "<body>Hello everyone, how are you today?</body></message>");

    [Params(100, 1000)]
    public int Occupants { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        _bench = new BenchServer();
        for (var i = 0; i < Occupants; i++)
        {
            var session = _bench.AddSession($"u{i}@localhost/bench", _transport);
            // No <x xmlns='http://jabber.org/protocol/muc'/>: the first one makes an instant room.
            var join = new Element("presence", Ns.Client).SetAttribute("to", $"bench@conference.localhost/u{i}");
            SessionInput.HandleAsync(_bench.Server, session, join).AsTask().Wait();
            if (i == 0) _speaker = session;
        }
    }

    [GlobalCleanup]
    public void Cleanup() => _bench.Dispose();

    [Benchmark]
    public async ValueTask<long> GroupchatToEveryOccupant()
    {
        await SessionInput.HandleAsync(_bench.Server, _speaker, _bench.Parse(_message));
        return _transport.Delivered;
    }
}
