using System.Diagnostics;
using BenchmarkDotNet.Running;
using Candor.Benchmarks;

// dotnet run -c Release --project bench/Candor.Benchmarks -- --filter '*Policy*' --job short
// "pep [N]": PEP fan-out among N mutual contacts (PepFanOut).
if (args is ["pep", ..])
{
    await PepFanOut.RunAsync(args.Length > 1 ? int.Parse(args[1]) : 200);
    return;
}
// "alloc": bytes allocated per routed message, counted (deterministic), and by type.
if (args is ["alloc"])
{
    await AllocationProbe.RunAsync();
    return;
}
// "archive [entries] [producers] [accounts]": the archive's write path (ArchiveWrite).
if (args is ["archive", ..])
{
    await ArchiveWrite.RunAsync(args.Length > 1 ? int.Parse(args[1]) : 100_000, args.Length > 2 ? int.Parse(args[2]) : 4,
        args.Length > 3 ? int.Parse(args[3]) : 8);
    return;
}
// "quick": a stopwatch estimate of the policy benchmarks, for trying changes fast.
if (args is ["quick"])
{
    var bench = new PolicyMatchBenchmark();
    bench.Setup();
    foreach (var (name, run) in new (string, Func<int>)[] { ("Latin", bench.Latin), ("Mixed", bench.Mixed), ("Normalize Latin", bench.NormalizeLatin), ("Normalize Mixed", bench.NormalizeMixed) })
    {
        for (var i = 0; i < 200; i++) run();
        var watch = Stopwatch.StartNew();
        var rounds = 0;
        while (watch.ElapsedMilliseconds < 3000)
        {
            run();
            rounds++;
        }
        var ns = watch.Elapsed.TotalNanoseconds / (rounds * 1000.0);
        Console.WriteLine($"{name}: {ns:0} ns/message, {1e9 / ns:#,0} messages/s");
    }
    return;
}
BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args);
