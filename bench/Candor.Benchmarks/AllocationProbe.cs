using System.Diagnostics;
using System.Diagnostics.Tracing;
using System.Text;
using Candor.Server.Core;

namespace Candor.Benchmarks;

/// <summary>
/// The bytes allocated per routed message, counted over 100,000 messages (the same path as
/// <see cref="RoutingBenchmarks"/> with <c>Write</c>): deterministic, so it can be read on a busy machine, and
/// fast. Then which types those bytes are, from the runtime's allocation ticks (one per ~100 KB allocated).
/// </summary>
public static class AllocationProbe
{
    private const int Messages = 100_000;

    public static async Task RunAsync()
    {
        using var bench = new BenchServer(archiveDefault: "never");
        var alice = bench.AddSession("alice@localhost/phone", new CountingTransport(), available: false);
        var bob = new CountingTransport(serialize: true);
        bench.AddSession("bob@localhost/laptop", bob);
        var message = Encoding.UTF8.GetBytes("<message xmlns='jabber:client' to='bob@localhost' type='chat' id='m1'><body>Hello Bob, how are you today?</body></message>");
        for (var i = 0; i < 20_000; i++) await SessionInput.HandleAsync(bench.Server, alice, bench.Parse(message));

        var start = GC.GetTotalAllocatedBytes(precise: true);
        for (var i = 0; i < Messages; i++) bench.Parse(message);
        var parsed = GC.GetTotalAllocatedBytes(precise: true);
        for (var i = 0; i < Messages; i++) await SessionInput.HandleAsync(bench.Server, alice, bench.Parse(message));
        var routed = GC.GetTotalAllocatedBytes(precise: true);
        Console.WriteLine($"parse: {(parsed - start) / (double)Messages:0} B per message; parse, route and write: {(routed - parsed) / (double)Messages:0} B per message");

        // CPU of the whole process (GC included) per message, best of three rounds: a busy machine inflates it less
        // than wall-clock time, but it is still a timing.
        double bestParse = double.MaxValue, best = double.MaxValue;
        for (var round = 0; round < 3; round++)
        {
            var cpu = Process.GetCurrentProcess().TotalProcessorTime;
            for (var i = 0; i < Messages; i++) bench.Parse(message);
            var middle = Process.GetCurrentProcess().TotalProcessorTime;
            for (var i = 0; i < Messages; i++) await SessionInput.HandleAsync(bench.Server, alice, bench.Parse(message));
            bestParse = Math.Min(bestParse, (middle - cpu).TotalNanoseconds / Messages);
            best = Math.Min(best, (Process.GetCurrentProcess().TotalProcessorTime - middle).TotalNanoseconds / Messages);
        }
        Console.WriteLine($"CPU per message, best of 3 x {Messages:#,0}: parse {bestParse:0} ns; parse, route and write {best:0} ns");

        using var ticks = new AllocationTicks();
        for (var i = 0; i < Messages; i++) await SessionInput.HandleAsync(bench.Server, alice, bench.Parse(message));
        ticks.Stop();
        Console.WriteLine("allocated types (≈ B per message, sampled):");
        foreach (var (type, count) in ticks.ByType.OrderByDescending(t => t.Value))
            Console.WriteLine($"{count * 100_000 / Messages,6}  {type}");
    }

    private sealed class AllocationTicks : EventListener
    {
        private bool _stopped;
        public Dictionary<string, long> ByType { get; } = [];

        public void Stop() => _stopped = true;

        protected override void OnEventSourceCreated(EventSource source)
        {
            if (source.Name == "Microsoft-Windows-DotNETRuntime") EnableEvents(source, EventLevel.Verbose, (EventKeywords)1 /* GC */);
        }

        protected override void OnEventWritten(EventWrittenEventArgs e)
        {
            if (_stopped || e.EventName is not { } name || !name.StartsWith("GCAllocationTick", StringComparison.Ordinal)) return;
            var type = (string)e.Payload![e.PayloadNames!.IndexOf("TypeName")]!;
            lock (ByType) ByType[type] = ByType.GetValueOrDefault(type) + 1;
        }
    }
}
