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
}
