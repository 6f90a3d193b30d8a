using System.Diagnostics;
using Candor.Client;
using Candor.Interop.Tests.Infrastructure;
using Candor.Xmpp;
using Xunit.Abstractions;

namespace Candor.Interop.Tests;

/// <summary>
/// Floods of half-open connections from many addresses (issue 12 item 3) against a real <c>candor serve</c>
/// process: the server sheds the attacker, not the honest user, and survives running out of file descriptors.
/// The figures printed here are recorded in docs/SECURITY.md.
/// </summary>
[Trait("Category", "Load")]
public sealed class FloodTests(ITestOutputHelper output)
{
    private const string Password = "honest-secret";
    private static readonly Jid Honest = Jid.Parse("honest@localhost");

    [Fact]
    public async Task With_6000_stalled_half_open_streams_from_6000_addresses_an_honest_client_logs_in_within_5_seconds_every_time()
    {
        var times = await LoginsDuringFloodAsync(stalled: 6000, logins: 10, deadline: TimeSpan.FromSeconds(5), attempts: 1);
        Assert.All(times, t => Assert.True(t < TimeSpan.FromSeconds(5), $"a login took {t.TotalSeconds:F2} s"));
    }

    [Fact]
    public async Task With_20000_stalled_half_open_streams_the_server_stays_up_and_honest_logins_succeed()
    {
        // The server is saturated here (and shares two cores with the flood): the client retries, as clients do.
        await LoginsDuringFloodAsync(stalled: 20_000, logins: 3, deadline: TimeSpan.FromSeconds(30), attempts: 3);
    }

    /// <summary>
    /// Starts the server (with 20,000 file descriptors and the default limits), holds <paramref name="stalled"/>
    /// half-open streams (as many as this process's own file limit allows: 20,000 here, less what the test host holds), then logs the honest client in <paramref name="logins"/> times, a second apart, each within
    /// <paramref name="deadline"/> in at most <paramref name="attempts"/> attempts; the server must still be running
    /// and serving afterwards.
    /// </summary>
    private async Task<List<TimeSpan>> LoginsDuringFloodAsync(int stalled, int logins, TimeSpan deadline, int attempts)
    {
        await using var server = await CandorServer.StartAsync(output, ["--log-level", "Warning"], fileLimit: 20_000);
        await server.AddUserAsync(Honest.ToString(), Password);
        var times = new List<TimeSpan>();
        long peakRss;
        int mostOpen;
        var cpu = ProcessStats.CpuTime(server.ProcessId);
        var clock = Stopwatch.StartNew();
        await using (var flood = HalfOpenFlood.Start(server.C2sPort, stalled, seconds: 120))
        {
            Assert.True(await flood.AllConnectedOnceAsync(TimeSpan.FromSeconds(60)), $"the flood did not get going: {flood}\n{server.Transcript}");
            output.WriteLine($"flood of {stalled} up after {clock.Elapsed.TotalSeconds:F1} s: {flood}");
            for (var i = 0; i < logins; i++)
            {
                await Task.Delay(TimeSpan.FromSeconds(1));
                var took = await LoginAsync(server, deadline, flood, attempts);
                times.Add(took);
                output.WriteLine($"login {i + 1}: {took.TotalMilliseconds:F0} ms; flood: {flood}; server RSS {ProcessStats.Rss(server.ProcessId) / 1024 / 1024} MiB");
            }
            peakRss = ProcessStats.PeakRss(server.ProcessId);
            mostOpen = flood.MostOpen;
            output.WriteLine($"after {clock.Elapsed.TotalSeconds:F1} s: {flood}");
            // Closed connections are reopened a second later, so not all are open at every moment.
            Assert.True(flood.MostOpen >= stalled * 3 / 4, $"the flood held only {flood.MostOpen} connections at once");
        }
        var sorted = times.Order().ToList();
        output.WriteLine($"FIGURES stalled={stalled} most-open={mostOpen} logins={times.Count} median={sorted[sorted.Count / 2].TotalMilliseconds:F0}ms " +
                         $"max={sorted[^1].TotalMilliseconds:F0}ms peak-rss={peakRss / 1024 / 1024}MiB " +
                         $"server-cpu={(ProcessStats.CpuTime(server.ProcessId) - cpu).TotalSeconds:F1}s in {clock.Elapsed.TotalSeconds:F1}s");

        // The flood is over: the server still runs and serves.
        Assert.True(ProcessStats.IsRunning(server.ProcessId), $"the server exited\n{server.Transcript}");
        await LoginAsync(server, TimeSpan.FromSeconds(10), null);
        return times;
    }

    [Fact]
    public async Task Out_of_file_descriptors_the_server_keeps_serving_its_sessions_logs_it_once_and_does_not_spin()
    {
        // 400 descriptors; idle connections to the HTTP port (not half-open logins, so nothing can be shed) take the rest.
        await using var server = await CandorServer.StartAsync(output, ["--log-level", "Warning"], fileLimit: 400);
        await server.AddUserAsync(Honest.ToString(), Password);
        await using var session = await ConnectAsync(server, TimeSpan.FromSeconds(30));
        await using (var flood = HalfOpenFlood.Start(server.HttpPort, 600, xmpp: false, seconds: 60))
        {
            Assert.True(await server.WaitForOutputAsync(OutOfDescriptors, TimeSpan.FromSeconds(30)),
                $"no report of the failed accepts; {ProcessStats.OpenFiles(server.ProcessId)} files open; flood: {flood}\n{server.Transcript}");
            var cpu = ProcessStats.CpuTime(server.ProcessId);
            await Task.Delay(TimeSpan.FromSeconds(4));
            var used = ProcessStats.CpuTime(server.ProcessId) - cpu;
            output.WriteLine($"out of descriptors ({ProcessStats.OpenFiles(server.ProcessId)} open): {used.TotalSeconds:F2} s CPU in 4 s; flood: {flood}");
            Assert.True(used < TimeSpan.FromSeconds(1), $"the server used {used.TotalSeconds:F2} s of CPU in 4 s while out of descriptors: it spins");

            // The session logged in before is served throughout.
            await session.PingAsync(timeout: TimeSpan.FromSeconds(5));
            Assert.Equal(1, Occurrences(server.Output, OutOfDescriptors));
        }

        // Once the connections are gone the server accepts again, and says so.
        await LoginAsync(server, TimeSpan.FromSeconds(30), null);
        Assert.True(await server.WaitForOutputAsync("Accepting connections again", TimeSpan.FromSeconds(10)), server.Transcript);
        Assert.Equal(1, Occurrences(server.Output, OutOfDescriptors));
        Assert.True(ProcessStats.IsRunning(server.ProcessId), server.Transcript);
    }

    [Fact]
    public async Task With_a_small_file_limit_a_half_open_flood_meets_the_lowered_cap_and_an_honest_client_gets_in()
    {
        // 400 descriptors: 140 connections, so at most 70 half-open logins, whatever MaxUnauthenticatedStreams says.
        await using var server = await CandorServer.StartAsync(output, ["--log-level", "Warning"], fileLimit: 400);
        Assert.Contains("MaxUnauthenticatedStreams 5000 lowered to 70", server.Output);
        await server.AddUserAsync(Honest.ToString(), Password);
        await using var session = await ConnectAsync(server, TimeSpan.FromSeconds(30));
        await using var flood = HalfOpenFlood.Start(server.C2sPort, 1000, seconds: 60);
        Assert.True(await flood.AllConnectedOnceAsync(TimeSpan.FromSeconds(30)), $"the flood did not get going: {flood}\n{server.Transcript}");
        var took = await LoginAsync(server, TimeSpan.FromSeconds(15), flood);
        output.WriteLine($"login with 1000 half-open streams and 400 descriptors: {took.TotalMilliseconds:F0} ms; {ProcessStats.OpenFiles(server.ProcessId)} files open; flood: {flood}");
        await session.PingAsync(timeout: TimeSpan.FromSeconds(5));
        // Shed connections take a moment to close, so the file-limit guard may have to pause once.
        Assert.InRange(Occurrences(server.Output, OutOfDescriptors), 0, 1);
    }

    private const string OutOfDescriptors = "Cannot accept connections";

    private static int Occurrences(string text, string what) => (text.Length - text.Replace(what, "").Length) / what.Length;

    private static async Task<XmppClient> ConnectAsync(CandorServer server, TimeSpan timeout)
    {
        var client = new XmppClient(new XmppClientOptions
        {
            Jid = Honest,
            Password = Password,
            Host = CandorServer.Host,
            Port = server.C2sPort,
            CertificateFingerprint = server.CertificateFingerprint,
            ConnectTimeout = timeout,
        });
        await client.ConnectAsync();
        return client;
    }

    /// <summary>Logs the honest client in and pings; the time is from the first attempt to the bound session.</summary>
    private async Task<TimeSpan> LoginAsync(CandorServer server, TimeSpan deadline, HalfOpenFlood? flood, int attempts = 1)
    {
        var total = Stopwatch.StartNew();
        for (var attempt = 1; attempt < attempts; attempt++)
        {
            try
            {
                await using var retried = await ConnectAsync(server, deadline);
                await retried.PingAsync();
                return total.Elapsed;
            }
            catch (Exception e)
            {
                output.WriteLine($"attempt {attempt} failed after {total.Elapsed.TotalSeconds:F2} s: {e.Message}");
            }
        }
        var clock = Stopwatch.StartNew();
        using (var probe = new System.Net.Sockets.TcpClient())
        {
            await probe.ConnectAsync(CandorServer.Host, server.C2sPort);
        }
        var connect = clock.Elapsed;
        clock.Restart();
        XmppClient? client = null;
        try
        {
            client = await ConnectAsync(server, deadline);
        }
        catch (Exception e)
        {
            Assert.Fail($"the honest login failed after {clock.Elapsed.TotalSeconds:F2} s (a TCP connect just before took {connect.TotalMilliseconds:F0} ms): {e.Message}; flood: {flood}\n{server.Transcript}");
        }
        var took = total.Elapsed;
        await using (client)
        {
            Assert.NotNull(client!.BoundJid);
            await client.PingAsync();
        }
        return took;
    }
}
