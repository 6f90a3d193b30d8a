using System.Text;
using BenchmarkDotNet.Attributes;
using Candor.Server.Core;

namespace Candor.Benchmarks;

/// <summary>
/// Routing a chat message between two local sessions: 'from' stamping and checks, router, delivery rules,
/// down to the recipient's outbound queue (a counting sink here, so no socket is measured).
/// </summary>
[MemoryDiagnoser]
public class RoutingBenchmarks
{
    private BenchServer _bench = null!;
    private Session _alice = null!;
    private readonly CountingTransport _bobSink = new();
    private readonly byte[] _message = Encoding.UTF8.GetBytes("<message xmlns='jabber:client' to='bob@localhost' type='chat' id='m1'><body>Hello Bob, how are you today?</body></message>");

    [GlobalSetup]
    public void Setup()
    {
        _bench = new BenchServer();
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
