using System.Diagnostics;
using Candor.Server.Tests.Harness;
using Candor.Xmpp;

namespace Candor.Server.Tests;

/// <summary>Limits that keep one client from crowding out the others (DESIGN: bad input gets a clear answer).</summary>
public sealed class LimitTests
{
    [Fact]
    public async Task Unauthenticated_streams_per_address_are_capped_and_freed_by_binding()
    {
        await using var server = await ServerFixture.StartAsync(o => o.MaxUnauthenticatedStreamsLoopback = 2);
        var user = await server.CreateUserAsync();
        await using var first = await XmppTestClient.ConnectAsync(server.C2sPort);
        await using var second = await XmppTestClient.ConnectAsync(server.C2sPort);

        await using var third = await XmppTestClient.ConnectTcpAsync(server.C2sPort);
        await third.SendAsync(XmppTestClient.Header());
        var error = await third.ExpectStreamErrorAsync("policy-violation");
        Assert.Contains("unauthenticated", error.GetChildText("text", Ns.Streams));

        // Binding a resource frees the place: a new login fits again.
        await first.StartTlsAsync();
        await first.AuthenticateAsync(user, ServerFixture.Password(user));
        await first.BindAsync("bound");
        await using var fourth = await XmppTestClient.ConnectAsync(server.C2sPort);
        Assert.NotNull(fourth.Features);
    }

    [Fact]
    public async Task A_fast_sender_is_slowed_down_not_disconnected()
    {
        await using var server = await ServerFixture.StartAsync(o =>
        {
            o.MaxStanzaBytes = 10_000;
            o.InboundBurstBytes = 10_000;
            o.InboundBytesPerSecond = 40_000;
        });
        await using var client = await server.LoginAsync(await server.CreateUserAsync());
        var clock = Stopwatch.StartNew();
        // 60 kB of whitespace keepalives, then a ping: at 40 kB/s after a 10 kB burst the answer needs at least ~1 s.
        await client.SendAsync(new string(' ', 60_000));
        var pong = await client.RequestAsync("<iq type='get' id='after-flood' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>", TimeSpan.FromSeconds(10));
        Assert.Equal("result", pong.GetAttribute("type"));
        Assert.True(clock.Elapsed > TimeSpan.FromMilliseconds(900), $"answered after {clock.Elapsed.TotalMilliseconds:F0} ms: not slowed");
    }

    [Fact]
    public async Task A_stream_that_does_not_authenticate_in_time_is_closed_with_connection_timeout()
    {
        await using var server = await ServerFixture.StartAsync(o => o.AuthenticationTimeoutSeconds = 1);
        await using var idle = await XmppTestClient.ConnectAsync(server.C2sPort);
        await idle.ExpectStreamErrorAsync("connection-timeout", TimeSpan.FromSeconds(10));

        // A session bound in time is not affected by the timer.
        var user = await server.CreateUserAsync();
        await using var bound = await server.LoginAsync(user);
        await Task.Delay(TimeSpan.FromSeconds(1.5));
        var pong = await bound.RequestAsync("<iq type='get' id='still-here' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>");
        Assert.Equal("result", pong.GetAttribute("type"));
    }

    [Fact]
    public async Task One_resource_beyond_the_sessions_per_account_limit_gets_resource_constraint_and_the_others_stay()
    {
        await using var server = await ServerFixture.StartAsync(o => o.MaxSessionsPerAccount = 2);
        var user = await server.CreateUserAsync();
        await using var one = await server.LoginAsync(user, "one");
        await using var two = await server.LoginAsync(user, "two");

        await using var three = await XmppTestClient.ConnectAsync(server.C2sPort);
        await three.StartTlsAsync();
        await three.AuthenticateAsync(user, ServerFixture.Password(user));
        var refused = await three.RequestAsync("<iq type='set' id='{id}'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>three</resource></bind></iq>");
        Assert.Equal("error", refused.GetAttribute("type"));
        var error = refused.GetChild("error", Ns.Client)!;
        Assert.Equal("wait", error.GetAttribute("type"));
        Assert.NotNull(error.GetChild("resource-constraint", Ns.Stanzas));

        // Rebinding a resource in use replaces that session (RFC 6120 §7.7.2.2) and is not refused.
        await using var twoAgain = await server.LoginAsync(user, "two");
        await two.ExpectStreamErrorAsync("conflict");
        var pong = await one.RequestAsync("<iq type='get' id='{id}' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>");
        Assert.Equal("result", pong.GetAttribute("type"));

        // Once a session ends, the waiting stream may bind.
        await one.DisposeAsync();
        var bound = await RetryBindAsync(three, "three");
        Assert.Equal("result", bound.GetAttribute("type"));
    }

    private static async Task<Candor.Xml.Element> RetryBindAsync(XmppTestClient client, string resource)
    {
        for (var attempt = 0; ; attempt++)
        {
            var answer = await client.RequestAsync($"<iq type='set' id='{{id}}'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>{resource}</resource></bind></iq>");
            if (answer.GetAttribute("type") == "result" || attempt == 50) return answer;
            await Task.Delay(100);
        }
    }

    [Fact]
    public async Task Client_connections_are_probed_by_tcp_keepalive_after_the_configured_idle_time()
    {
        await using var server = await ServerFixture.StartAsync(o => o.TcpKeepAliveSeconds = 120);
        await using var client = await server.LoginAsync(await server.CreateUserAsync());
        var (timer, seconds) = await IdleTimerAsync(server.C2sPort, client.LocalEndPoint.Port);
        Assert.Equal(KeepAliveTimer, timer);
        Assert.InRange(seconds, 100, 120);

        await using var off = await ServerFixture.StartAsync(o => o.TcpKeepAliveSeconds = 0);
        await using var unprobed = await off.LoginAsync(await off.CreateUserAsync());
        Assert.Equal(NoTimer, (await IdleTimerAsync(off.C2sPort, unprobed.LocalEndPoint.Port)).Timer);
    }

    private const int NoTimer = 0, KeepAliveTimer = 2;

    /// <summary>
    /// The kernel's timer on the server's end of a loopback connection once it is idle, from /proc/net/tcp
    /// ("tr": 0 none, 1 retransmit, 2 keepalive; "tm->when" in hundredths of a second).
    /// </summary>
    private static async Task<(int Timer, double Seconds)> IdleTimerAsync(int serverPort, int clientPort)
    {
        var local = $":{serverPort:X4}";
        var remote = $":{clientPort:X4}";
        for (var attempt = 0; ; attempt++)
        {
            await Task.Delay(200);
            foreach (var line in await File.ReadAllLinesAsync("/proc/net/tcp"))
            {
                var fields = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
                if (fields.Length < 6 || !fields[1].EndsWith(local, StringComparison.Ordinal) || !fields[2].EndsWith(remote, StringComparison.Ordinal)) continue;
                var timer = fields[5].Split(':');
                var kind = Convert.ToInt32(timer[0], 16);
                // Right after traffic the retransmit timer may still run for unacknowledged data: wait for idle.
                if (kind == 1 && attempt < 25) break;
                return (kind, Convert.ToInt64(timer[1], 16) / 100.0);
            }
            if (attempt >= 25) throw new InvalidOperationException($"no connection 127.0.0.1{local} <- {remote} in /proc/net/tcp");
        }
    }
}
