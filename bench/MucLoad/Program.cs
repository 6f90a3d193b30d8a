using System.Diagnostics;
using System.Text;
using System.Text.Json;

namespace LoadGen;

/// <summary>
/// One room of N occupants (users u1..uN, password pw): everyone enters, S of them send groupchat messages for D
/// seconds, every occupant counts what it gets. Paced (the default): at a total rate R. Full load (--window K): each
/// sender keeps K messages in flight, sending the next when the room reflects one of its own back to it, so the
/// server delivers as fast as it can. Prints delivered messages, lost, delivered per second and the server's CPU time
/// per delivered message (utime+stime of --server-pid), then one JSON line.
///
///   mucload --port P --users N [--senders S] [--rate R | --window K] [--duration D] [--warmup W] [--server-pid PID]
///           [--register] [--muc-domain conference.localhost] [--enter-timeout 300] [--label NAME] [--json-out FILE]
/// </summary>
public static class Program
{
    public static async Task<int> Main(string[] args)
    {
        var senders = Take(ref args, "--senders", 10);
        var mucDomain = TakeText(ref args, "--muc-domain", "conference.localhost");
        var enterTimeout = Take(ref args, "--enter-timeout", 300);
        var warmup = Take(ref args, "--warmup", 0);
        var window = Take(ref args, "--window", 0);
        var o = Options.Parse(args);
        var run = Convert.ToHexStringLower(BitConverter.GetBytes(Environment.TickCount64 ^ Environment.ProcessId))[..8];
        var room = $"bench-{run}@{mucDomain}";
        var rate = o.Rate > 0 ? o.Rate : 100;
        senders = Math.Min(senders, o.Users);

        if (o.Register)
        {
            await Parallel.ForEachAsync(Enumerable.Range(o.FirstUser, o.Users), new ParallelOptions { MaxDegreeOfParallelism = 16 }, async (i, ct) =>
            {
                var c = new XmppClient(o, i);
                await c.ConnectTcpAsync(null, ct);
                await c.RegisterAsync(ct);
                await c.CloseAsync();
            });
        }

        var sink = new Counter(Encoding.UTF8.GetBytes("mb " + run + " "), Encoding.UTF8.GetBytes("warm " + run + " "));
        var clients = new XmppClient[o.Users];
        using var stop = new CancellationTokenSource();
        var loops = new List<Task>();
        var clock = Stopwatch.StartNew();
        // Log in everyone, then the first creates the room (an instant room: the empty config form) before the rest enter.
        await Parallel.ForEachAsync(Enumerable.Range(0, o.Users), new ParallelOptions { MaxDegreeOfParallelism = 32 }, async (i, ct) =>
        {
            var c = new XmppClient(o, o.FirstUser + i);
            await c.ConnectTcpAsync(null, ct);
            await c.LoginAsync(ct);
            clients[i] = c;
        });
        var loginSeconds = clock.Elapsed.TotalSeconds;
        foreach (var c in clients) loops.Add(c.ReadLoopAsync(sink, stop.Token));
        string Enter(XmppClient c) => $"<presence to='{room}/{c.User}'><x xmlns='http://jabber.org/protocol/muc'><history maxstanzas='0'/></x></presence>";
        await clients[0].SendAsync(Enter(clients[0]));
        await sink.WaitEnteredAsync(1, TimeSpan.FromSeconds(30));
        await clients[0].SendAsync($"<iq type='set' id='cfg' to='{room}'><query xmlns='http://jabber.org/protocol/muc#owner'><x xmlns='jabber:x:data' type='submit'/></query></iq>");
        await Task.Delay(500);
        // Entering is paced: a batch of 50 enters once the previous one is in. Every entry costs the server a presence to
        // and from each occupant (N² presences in all); all at once, a single-threaded server (Prosody) buffers the whole
        // fan-out in memory before writing any of it, and on a busy machine no one gets in within the time allowed.
        var enterUntil = Stopwatch.GetTimestamp() + (long)(enterTimeout * Stopwatch.Frequency);
        var sentEntries = 1;
        foreach (var batch in clients.Skip(1).Chunk(50))
        {
            foreach (var c in batch) await c.SendAsync(Enter(c));
            sentEntries += batch.Length;
            var left = TimeSpan.FromSeconds(Math.Max(0, (double)(enterUntil - Stopwatch.GetTimestamp()) / Stopwatch.Frequency));
            if (!await sink.WaitEnteredAsync(sentEntries, left)) break;
        }
        if (sink.Entered < o.Users) Console.Error.WriteLine($"mucload: only {sink.Entered} of {o.Users} entered the room within {enterTimeout} s");
        var enterSeconds = clock.Elapsed.TotalSeconds - loginSeconds;
        await Task.Delay(TimeSpan.FromSeconds(o.Settle));

        // Paced senders: message k goes out at k / rate seconds, round-robin over the senders.
        async Task<long> SendPacedAsync(string marker, double seconds)
        {
            var sent = 0L;
            var start = Stopwatch.GetTimestamp();
            var end = start + (long)(seconds * Stopwatch.Frequency);
            while (true)
            {
                var due = start + (long)(sent / rate * Stopwatch.Frequency);
                var now = Stopwatch.GetTimestamp();
                if (due >= end) return sent;
                if (due > now) await Task.Delay(TimeSpan.FromSeconds((double)(due - now) / Stopwatch.Frequency));
                var c = clients[sent % senders];
                await c.SendAsync($"<message to='{room}' type='groupchat' id='{marker}{sent}'><body>{marker} {run} {c.UserIndex} {sent}</body></message>");
                sent++;
            }
        }

        // Full load: every sender sends its window, then one more each time one of its own comes back from the room.
        async Task<long> SendWindowedAsync(string marker, double seconds)
        {
            var end = Stopwatch.GetTimestamp() + (long)(seconds * Stopwatch.Frequency);
            var echoes = new SemaphoreSlim[senders];
            for (var s = 0; s < senders; s++)
            {
                echoes[s] = new SemaphoreSlim(0, int.MaxValue);
                sink.ExpectEcho(clients[s].UserIndex, marker, echoes[s]);
            }
            var counts = await Task.WhenAll(Enumerable.Range(0, senders).Select(async s =>
            {
                var c = clients[s];
                var sent = 0L;
                while (true)
                {
                    var now = Stopwatch.GetTimestamp();
                    if (now >= end) return sent;
                    if (sent >= window && !await echoes[s].WaitAsync(TimeSpan.FromSeconds((double)(end - now) / Stopwatch.Frequency))) return sent;
                    await c.SendAsync($"<message to='{room}' type='groupchat' id='{marker}{s}-{sent}'><body>{marker} {run} {c.UserIndex} {sent}</body></message>");
                    sent++;
                }
            }));
            return counts.Sum();
        }
        Task<long> SendAsync(string marker, double seconds) => window > 0 ? SendWindowedAsync(marker, seconds) : SendPacedAsync(marker, seconds);

        // Warm-up at the same load, not measured: a server that compiles its hot paths as it runs (.NET's tiered JIT)
        // is measured in its steady state, as the others are; its messages are delivered before measuring starts.
        if (warmup > 0)
        {
            var warmExpected = await SendAsync("warm", warmup) * sink.Entered;
            var warmUntil = Stopwatch.GetTimestamp() + (long)(o.Drain * Stopwatch.Frequency);
            while (sink.Warm < warmExpected && Stopwatch.GetTimestamp() < warmUntil) await Task.Delay(50);
            await Task.Delay(TimeSpan.FromSeconds(1));
        }

        var cpuBefore = CpuTicks(o.ServerPid);
        var deliveredBefore = sink.Delivered;
        var start = Stopwatch.GetTimestamp();
        var sent = await SendAsync("mb", o.Duration);
        var sendSeconds = (double)(Stopwatch.GetTimestamp() - start) / Stopwatch.Frequency;
        var expected = sent * sink.Entered;
        var drainUntil = Stopwatch.GetTimestamp() + (long)(o.Drain * Stopwatch.Frequency);
        while (sink.Delivered - deliveredBefore < expected && Stopwatch.GetTimestamp() < drainUntil) await Task.Delay(50);
        var busySeconds = (double)(Stopwatch.GetTimestamp() - start) / Stopwatch.Frequency;
        var cpuAfter = CpuTicks(o.ServerPid);
        var delivered = sink.Delivered - deliveredBefore;
        stop.Cancel();
        foreach (var c in clients) await c.CloseAsync();

        var cpuSeconds = (cpuAfter - cpuBefore) / 100.0;
        var result = new
        {
            label = o.Label,
            occupants = o.Users,
            entered = sink.Entered,
            senders,
            rate = window > 0 ? 0 : rate,
            window,
            sent,
            expected,
            delivered,
            lost = expected - delivered,
            errors = sink.Errors,
            delivered_per_second = Math.Round(delivered / busySeconds),
            send_seconds = Math.Round(sendSeconds, 2),
            login_seconds = Math.Round(loginSeconds, 2),
            enter_seconds = Math.Round(enterSeconds, 2),
            server_cpu_seconds = o.ServerPid > 0 ? cpuSeconds : double.NaN,
            server_cpu_us_per_delivered = o.ServerPid > 0 && delivered > 0 ? Math.Round(cpuSeconds * 1e6 / delivered, 2) : double.NaN,
            server_rss_kib = o.ServerPid > 0 ? RssKib(o.ServerPid) : 0,
        };
        var load = window > 0 ? $"window {window}" : $"{rate}/s";
        Console.WriteLine($"{o.Label}: {o.Users} occupants ({sink.Entered} entered), {sent} messages at {load} from {senders} senders: "
                          + $"{delivered} of {expected} delivered ({expected - delivered} lost, {sink.Errors} errors), {result.delivered_per_second}/s, "
                          + $"server CPU {cpuSeconds:F2} s = {result.server_cpu_us_per_delivered} µs per delivered message");
        var json = JsonSerializer.Serialize(result, new JsonSerializerOptions { NumberHandling = System.Text.Json.Serialization.JsonNumberHandling.AllowNamedFloatingPointLiterals });
        Console.WriteLine(json);
        if (o.JsonOut is not null) await File.WriteAllTextAsync(o.JsonOut, json + "\n");
        return expected - delivered == 0 ? 0 : 1;
    }

    /// <summary>utime + stime of the process, all threads, in clock ticks (1/100 s).</summary>
    private static long CpuTicks(int pid)
    {
        if (pid <= 0) return 0;
        var stat = File.ReadAllText($"/proc/{pid}/stat");
        var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
        return long.Parse(fields[11]) + long.Parse(fields[12]);
    }

    private static long RssKib(int pid) =>
        File.ReadLines($"/proc/{pid}/status").Where(l => l.StartsWith("VmRSS:")).Select(l => long.Parse(l.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1])).FirstOrDefault();

    private static int Take(ref string[] args, string name, int fallback) => int.Parse(TakeText(ref args, name, fallback.ToString()));

    private static string TakeText(ref string[] args, string name, string fallback)
    {
        var i = Array.IndexOf(args, name);
        if (i < 0 || i + 1 >= args.Length) return fallback;
        var value = args[i + 1];
        args = [.. args[..i], .. args[(i + 2)..]];
        return value;
    }

    /// <summary>Counts the run's groupchat messages every occupant gets, and who has entered (the subject comes last on entering).</summary>
    private sealed class Counter(byte[] marker, byte[] warmMarker) : IStanzaSink
    {
        private readonly string textMarker = Encoding.UTF8.GetString(marker);
        private long _delivered;
        private long _warm;
        private int _entered;
        private readonly HashSet<int> _in = [];
        private Dictionary<int, (byte[] Echo, SemaphoreSlim Returned)> _echoes = [];

        /// <summary>From now on, releases <paramref name="returned"/> whenever the sender's own message with <paramref name="marker"/> comes back to it.</summary>
        public void ExpectEcho(int sender, string marker, SemaphoreSlim returned)
        {
            var echoes = new Dictionary<int, (byte[], SemaphoreSlim)>(Volatile.Read(ref _echoes)) { [sender] = (Encoding.UTF8.GetBytes($"{marker} {textMarker[3..]}{sender} "), returned) };
            Volatile.Write(ref _echoes, echoes);
        }

        public long Delivered => Interlocked.Read(ref _delivered);
        /// <summary>Warm-up messages delivered.</summary>
        public long Warm => Interlocked.Read(ref _warm);
        public int Entered => Volatile.Read(ref _entered);

        public async Task<bool> WaitEnteredAsync(int count, TimeSpan timeout)
        {
            var until = Stopwatch.GetTimestamp() + (long)(timeout.TotalSeconds * Stopwatch.Frequency);
            while (Entered < count)
            {
                if (Stopwatch.GetTimestamp() > until) return false;
                await Task.Delay(20);
            }
            return true;
        }

        public long Errors => Interlocked.Read(ref _errors);
        private long _errors;

        public bool OnRawMessage(XmppClient c, ReadOnlySpan<byte> stanza, long recvTicks)
        {
            if (stanza.IndexOf("type='error'"u8) >= 0 || stanza.IndexOf("type=\"error\""u8) >= 0)
            {
                // A message the server refused: reported, never counted as delivered.
                if (Interlocked.Increment(ref _errors) == 1) Console.Error.WriteLine("mucload: first error: " + Encoding.UTF8.GetString(stanza));
            }
            else if (stanza.IndexOf(marker) >= 0) Counted(c, stanza, ref _delivered);
            else if (stanza.IndexOf(warmMarker) >= 0) Counted(c, stanza, ref _warm);
            else if (stanza.IndexOf("<subject"u8) >= 0)
                lock (_in)
                    if (_in.Add(c.UserIndex)) Interlocked.Increment(ref _entered);
            return true;
        }

        private void Counted(XmppClient c, ReadOnlySpan<byte> stanza, ref long count)
        {
            Interlocked.Increment(ref count);
            if (Volatile.Read(ref _echoes).TryGetValue(c.UserIndex, out var echo) && stanza.IndexOf(echo.Echo) >= 0) echo.Returned.Release();
        }

        /// <summary>What the framer's fast path did not take, parsed.</summary>
        public void OnMessage(XmppClient c, XElem msg, long recvTicks)
        {
            var body = msg.Child("body")?.Text;
            if (body?.Contains(textMarker, StringComparison.Ordinal) == true) Interlocked.Increment(ref _delivered);
            else if (body?.StartsWith("warm ", StringComparison.Ordinal) == true) Interlocked.Increment(ref _warm);
            else if (msg.Child("subject") is not null)
                lock (_in)
                    if (_in.Add(c.UserIndex)) Interlocked.Increment(ref _entered);
        }

        public void OnClosed(XmppClient c, string why) => Console.Error.WriteLine($"mucload: {c.User} closed: {why}");
    }
}
