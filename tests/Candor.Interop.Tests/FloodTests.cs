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
        var times = await LoginsDuringFloodAsync(stalled: 6000, logins: 10, deadline: TimeSpan.FromSeconds(5));
        Assert.All(times, t => Assert.True(t < TimeSpan.FromSeconds(5), $"a login took {t.TotalSeconds:F2} s"));
    }

    [Fact]
    public async Task With_20000_stalled_half_open_streams_the_server_stays_up_and_honest_logins_succeed()
    {
        await LoginsDuringFloodAsync(stalled: 20_000, logins: 5, deadline: TimeSpan.FromSeconds(30));
    }

    /// <summary>
    /// Starts the server (with 20,000 file descriptors and the default limits), holds <paramref name="stalled"/>
    /// half-open streams, then logs the honest client in <paramref name="logins"/> times, a second apart, each within
    /// <paramref name="deadline"/>; the server must still be running and serving afterwards.
    /// </summary>
    private async Task<List<TimeSpan>> LoginsDuringFloodAsync(int stalled, int logins, TimeSpan deadline)
    {
        HalfOpenFlood.RaiseFileLimit(stalled + 2000);
        await using var server = await CandorServer.StartAsync(output, ["--log-level", "Warning"], fileLimit: 20_000);
        await server.AddUserAsync(Honest.ToString(), Password);
        var times = new List<TimeSpan>();
        long peakRss;
        var cpu = ProcessStats.CpuTime(server.ProcessId);
        var clock = Stopwatch.StartNew();
        await using (var flood = HalfOpenFlood.Start(server.C2sPort, stalled))
        {
            Assert.True(await flood.AllConnectedOnceAsync(TimeSpan.FromSeconds(60)), $"the flood did not get going: {flood}\n{server.Transcript}");
            output.WriteLine($"flood of {stalled} up after {clock.Elapsed.TotalSeconds:F1} s: {flood}");
            for (var i = 0; i < logins; i++)
            {
                await Task.Delay(TimeSpan.FromSeconds(1));
                var took = await LoginAsync(server, deadline, flood);
                times.Add(took);
                output.WriteLine($"login {i + 1}: {took.TotalMilliseconds:F0} ms; flood: {flood}; server RSS {ProcessStats.Rss(server.ProcessId) / 1024 / 1024} MiB");
            }
            peakRss = ProcessStats.PeakRss(server.ProcessId);
            output.WriteLine($"after {clock.Elapsed.TotalSeconds:F1} s: {flood}");
        }
        var sorted = times.Order().ToList();
        output.WriteLine($"FIGURES stalled={stalled} logins={times.Count} median={sorted[sorted.Count / 2].TotalMilliseconds:F0}ms " +
                         $"max={sorted[^1].TotalMilliseconds:F0}ms peak-rss={peakRss / 1024 / 1024}MiB " +
                         $"server-cpu={(ProcessStats.CpuTime(server.ProcessId) - cpu).TotalSeconds:F1}s in {clock.Elapsed.TotalSeconds:F1}s");

        // The flood is over: the server still runs and serves.
        Assert.True(ProcessStats.IsRunning(server.ProcessId), $"the server exited\n{server.Transcript}");
        await LoginAsync(server, TimeSpan.FromSeconds(10), null);
        return times;
    }

    private static async Task<TimeSpan> LoginAsync(CandorServer server, TimeSpan deadline, HalfOpenFlood? flood)
    {
        var clock = Stopwatch.StartNew();
        using (var probe = new System.Net.Sockets.TcpClient())
        {
            await probe.ConnectAsync(CandorServer.Host, server.C2sPort);
        }
        var connect = clock.Elapsed;
        clock.Restart();
        await using var client = new XmppClient(new XmppClientOptions
        {
            Jid = Honest,
            Password = Password,
            Host = CandorServer.Host,
            Port = server.C2sPort,
            CertificateFingerprint = server.CertificateFingerprint,
            ConnectTimeout = deadline,
        });
        try
        {
            await client.ConnectAsync();
        }
        catch (Exception e)
        {
            Assert.Fail($"the honest login failed after {clock.Elapsed.TotalSeconds:F2} s (a TCP connect just before took {connect.TotalMilliseconds:F0} ms): {e.Message}; flood: {flood}\n{server.Transcript}");
        }
        var took = clock.Elapsed;
        Assert.NotNull(client.BoundJid);
        await client.PingAsync();
        return took;
    }
}
