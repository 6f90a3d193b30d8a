using BenchmarkDotNet.Attributes;
using Candor.Server.Hosting;

namespace Candor.Benchmarks;

/// <summary>
/// The instrumentation a routed message pays: one stanza counted as received (from the sender's stream) and
/// one as sent (into the recipient's queue). "Parallel" runs it on every core at once, as a loaded server does,
/// where counters shared between cores cost a cache-line transfer per increment.
/// </summary>
public class MetricsBenchmarks
{
    private const int Messages = 1 << 20;
    private ServerMetrics _metrics = null!;

    [GlobalSetup]
    public void Setup() => _metrics = new ServerMetrics("bench");

    [GlobalCleanup]
    public void Cleanup() => _metrics.Dispose();

    [Benchmark(OperationsPerInvoke = Messages)]
    public void CountMessageOneCore() => Count(_metrics, Messages);

    [Benchmark(OperationsPerInvoke = Messages)]
    public void CountMessageEveryCore()
    {
        var cores = Environment.ProcessorCount;
        Parallel.For(0, cores, new ParallelOptions { MaxDegreeOfParallelism = cores }, _ => Count(_metrics, Messages / cores));
    }

    private static void Count(ServerMetrics metrics, int messages)
    {
        for (var i = 0; i < messages; i++)
        {
            metrics.Received("message");
            metrics.Sent("message");
        }
    }
}
