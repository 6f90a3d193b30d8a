using System.Diagnostics;
using System.Text;
using Candor.Server.Hosting;
using Candor.Server.Modules.Archive;
using Candor.Server.Storage;
using Microsoft.Extensions.Logging.Abstractions;

namespace Candor.Benchmarks;

/// <summary>
/// The archive's write path (issue 13, docs/PERFORMANCE.md "Message archive"): archived entries of a 300-byte chat
/// stanza, as the routing threads hand them to <see cref="ArchiveWriter"/>, into a fresh sealed SQLite database.
/// Producers append as fast as the writer lets them (each waits for its entry's batch when the queue is long,
/// as the archive module does); reports entries per second and the process's CPU per entry (all threads:
/// routing-side sealing and the writer together).
/// Each message is archived for both ends (one shared body, two entries); the entries go to <c>accounts</c> accounts in pairs (the harness's throughput scenario has 200): each account's
/// entries are one more place in the per-account index where a batch's inserts land.
/// <c>dotnet run -c Release --project bench/Candor.Benchmarks -- archive [entries] [producers] [accounts]</c>
/// </summary>
public static class ArchiveWrite
{
    private static long s_bodies;

    public static async Task RunAsync(int entries, int producers, int accounts)
    {
        var directory = Path.Combine(Path.GetTempPath(), "candor-archive-bench-" + Guid.NewGuid().ToString("n"));
        Directory.CreateDirectory(directory);
        try
        {
            var options = new ServerOptions { DataDirectory = directory };
            await using var storage = await SealedStorage.OpenAsync(options);
            var store = storage.OpenArchive("archive");
            var writer = new ArchiveWriter(store, NullLogger.Instance);
            const string stanza = "<message xmlns='jabber:client' from='u1@localhost/loadgen' to='u2@localhost' type='chat' id='a1b2c3d4e5f6'>"
                + "<body>xb 0123456789 u1 4711 98765432101234 Are we still on for dinner tonight? I booked the table for eight.</body>"
                + "<stanza-id xmlns='urn:xmpp:sid:0' id='0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b' by='u2@localhost'/></message>";
            // A first round unmeasured, so that the figures are of compiled code (the server runs for days).
            await AppendAsync(writer, stanza, entries / 4, producers, accounts);
            var cpu = Process.GetCurrentProcess().TotalProcessorTime;
            var watch = Stopwatch.StartNew();
            var total = await AppendAsync(writer, stanza, entries, producers, accounts);
            watch.Stop();
            var used = Process.GetCurrentProcess().TotalProcessorTime - cpu;
            Console.WriteLine($"{total} entries, {producers} producers, {accounts} accounts: {total / watch.Elapsed.TotalSeconds:#,0} entries/s, "
                + $"{used.TotalMicroseconds / total:0.0} µs CPU per entry, {await store.CountAsync("u1")} for u1, "
                + $"{new FileInfo(Path.Combine(directory, SqliteStorage.FileName)).Length / (double)total:0} bytes per entry (before checkpoint)");
            await writer.StopAsync();
        }
        finally
        {
            Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
            Directory.Delete(directory, recursive: true);
        }
    }

    // The archive module's form: a UUID's text (instance prefix and counter).
    private static string BodyKey() => new Guid(0x01a25109, 0, 0, BitConverter.GetBytes(Interlocked.Increment(ref s_bodies))).ToString();

    private static async Task<int> AppendAsync(ArchiveWriter writer, string stanza, int entries, int producers, int accounts)
    {
            var perProducer = entries / producers;
            await Task.WhenAll(Enumerable.Range(0, producers).Select(p => Task.Run(async () =>
            {
                for (var i = 0; i < perProducer; i += 2)
                {
                    // Pair k is u(2k+1) and u(2k+2); producer p writes pairs p, p + producers, ... Each message is archived
                    // for both ends, as the archive module does: one shared body and an entry per end.
                    var pair = (p + i / 2 % Math.Max(1, accounts / 2 / producers) * producers) % Math.Max(1, accounts / 2);
                    var (sender, recipient) = ("u" + (pair * 2 + 1), "u" + (pair * 2 + 2));
                    var now = DateTimeOffset.UtcNow;
                    // As the archive module gives them: the stanza's UTF-8, entries without a value of their own.
                    var body = new ArchiveBody(BodyKey(), Encoding.UTF8.GetBytes(stanza), refs: 2);
                    _ = writer.Append(
                        new ArchiveEntry(sender, Guid.CreateVersion7().ToString(), now, recipient + "@localhost", "") { WithFull = recipient + "@localhost/loadgen", Body = body },
                        new ArchiveEntry(recipient, Guid.CreateVersion7().ToString(), now, sender + "@localhost", "") { WithFull = sender + "@localhost/loadgen", Body = body });
                    await writer.Throttle();
                }
            })));
            await writer.WhenWritten();
            return (perProducer + perProducer % 2) * producers;
    }
}
