using System.Diagnostics;
using System.Runtime.InteropServices;
using Candor.Fuzz;
using SharpFuzz;

// Candor.Fuzz TARGET                       run TARGET under afl-fuzz (SharpFuzz fork server); outside afl-fuzz, once on stdin
// Candor.Fuzz instrument DIR               instrument Candor.Xml.dll, Candor.Xmpp.dll and Candor.Server.dll in DIR, in place
// Candor.Fuzz replay TARGET FILE|DIR...    run TARGET on each file; exit 1 on the first unexpected exception
// Candor.Fuzz generate SECONDS [SEED]      generated documents through both parsers (the differential check) for SECONDS; exit 1 on a disagreement
// Candor.Fuzz list                         the targets' names

if (args.Length == 0)
{
    Console.Error.WriteLine("usage: Candor.Fuzz TARGET | instrument DIR | replay TARGET PATH... | generate SECONDS [SEED] | list");
    return 2;
}

// Instrumented code writes its coverage to Trace.SharedMem, which Fuzzer.Run points at afl-fuzz's shared memory.
// Everything else (replay, differential) runs before or without it: give it a scratch map of AFL's size first.
if (args[0] != "instrument" && !TargetNames.All.Contains(args[0]))
    unsafe { SharpFuzz.Common.Trace.SharedMem = (byte*)NativeMemory.AllocZeroed(1 << 16); }

switch (args[0])
{
    case "list":
        foreach (var name in TargetNames.All) Console.WriteLine(name);
        return 0;

    case "instrument":
        foreach (var assembly in new[] { "Candor.Xml.dll", "Candor.Xmpp.dll", "Candor.Server.dll" })
        {
            var path = Path.Combine(args[1], assembly);
            // Instrument every type of our own assemblies; the framework's stay as they are.
            Fuzzer.Instrument(path, type => true, Options.Value);
            Console.WriteLine($"instrumented {path}");
        }
        return 0;

    case "replay":
    {
        var target = Targets.All[args[1]];
        var files = args[2..].SelectMany(p => Directory.Exists(p) ? Directory.EnumerateFiles(p, "*", SearchOption.AllDirectories) : [p]).ToList();
        foreach (var file in files)
        {
            try
            {
                target(File.ReadAllBytes(file));
            }
            catch (Exception e)
            {
                Console.Error.WriteLine($"{args[1]}: {file}: {e}");
                return 1;
            }
        }
        Console.WriteLine($"{args[1]}: {files.Count} inputs replayed, no unexpected exception");
        return 0;
    }

    case "generate":
    {
        var seconds = int.Parse(args[1]);
        var seed = args.Length > 2 ? int.Parse(args[2]) : Environment.TickCount;
        var clock = Stopwatch.StartNew();
        long documents = 0, accepted = 0;
        for (var s = seed; clock.Elapsed.TotalSeconds < seconds; s++)
        {
            var generator = new XmlishGenerator(s);
            for (var i = 0; i < 100; i++, documents++)
            {
                var data = generator.Document();
                try
                {
                    Differential.Check(data);
                }
                catch (FuzzFinding e)
                {
                    Console.Error.WriteLine($"differential: seed {s}, document {i}: {e.Message}");
                    return 1;
                }
                if (Differential.Candor(data).Accepted) accepted++;
            }
        }
        Console.WriteLine($"differential: {documents} documents from seed {seed} in {clock.Elapsed.TotalSeconds:F0} s ({accepted} accepted by both), no disagreement");
        return 0;
    }

    default:
    {
        // Nothing instrumented may run before Fuzzer.Run has set up the shared memory: the target is looked up by
        // name (Targets.Run), and only inside the action are the target's statics initialized.
        var name = args[0];
        if (!TargetNames.All.Contains(name))
        {
            Console.Error.WriteLine($"unknown command or target {name}; targets: {string.Join(", ", TargetNames.All)}");
            return 2;
        }
        Fuzzer.Run(stream =>
        {
            using var memory = new MemoryStream();
            stream.CopyTo(memory);
            Targets.All[name](memory.ToArray());
        });
        return 0;
    }
}
