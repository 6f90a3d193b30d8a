using System.Text;
using BenchmarkDotNet.Attributes;
using Candor.Server.Core;

namespace Candor.Benchmarks;

/// <summary>
/// Routing a chat message between two local sessions: parsing, 'from' stamping and checks, router, delivery rules
/// (blocking, policy, carbons, archive with ArchiveDefault=never as bench/compare.sh starts Candor), down to the
/// recipient's outbound queue — a counting sink, or with <c>Write</c> the bytes a c2s stream would write (no socket).
/// The allocation per routed message is the <c>Allocated</c> column (target of issue 24: at most 100 B).
/// </summary>
[MemoryDiagnoser]
public class RoutingBenchmarks
{
    private BenchServer _bench = null!;
    private Session _alice = null!;
    private CountingTransport _bobSink = null!;
    private readonly byte[] _message = Encoding.UTF8.GetBytes("<message xmlns='jabber:client' to='bob@localhost' type='chat' id='m1'><body>Hello Bob, how are you today?</body></message>");

    /// <summary>Also serialize the stanza as the recipient's stream writes it.</summary>
    [Params(false, true)]
    public bool Write { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        _bench = new BenchServer(archiveDefault: "never");
        _bobSink = new CountingTransport(serialize: Write);
        _alice = _bench.AddSession("alice@localhost/phone", new CountingTransport(), available: false);
        _bench.AddSession("bob@localhost/laptop", _bobSink);
    }

    [GlobalCleanup]
    public void Cleanup() => _bench.Dispose();

    [Benchmark]
    public async ValueTask<long> ParseAndRouteChatMessage()
    {
        await SessionInput.HandleAsync(_bench.Server, _alice, _bench.Parse(_message));
        return _bobSink.Delivered;
    }
}
