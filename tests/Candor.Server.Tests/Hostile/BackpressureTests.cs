using System.Diagnostics;
using System.Text;
using Candor.Server.Tests.Harness;
using Candor.Xmpp;

namespace Candor.Server.Tests.Hostile;

/// <summary>
/// The bounded outbound queue (DESIGN, "Backpressure"): a client that stops reading is disconnected with a stream
/// error once MaxOutboundQueue stanzas wait for it, so the server holds at most that many for it; the sender, the
/// other users and later messages for the slow client's account are unaffected.
/// </summary>
public sealed class BackpressureTests
{
    [Fact]
    public async Task A_client_that_stops_reading_is_cut_off_with_policy_violation_and_nothing_else_suffers()
    {
        const int queue = 64;
        await using var server = await ServerFixture.StartAsync(o =>
        {
            o.MaxOutboundQueue = queue;
            o.InboundBytesPerSecond = 16 * 1024 * 1024;
            o.InboundBurstBytes = 32 * 1024 * 1024;
        });
        var slowUser = await server.CreateUserAsync("slow");
        // A small receive buffer caps the TCP window, so the server's writes stall after a few kilobytes.
        var slow = await XmppTestClient.ConnectTcpAsync(server.C2sPort, receiveBufferSize: 4096);
        await slow.OpenStreamAsync();
        await slow.StartTlsAsync();
        await slow.AuthenticateAsync(slowUser, ServerFixture.Password(slowUser));
        var slowJid = await slow.BindAsync("slow");
        await slow.SendPresenceAsync();
        await using var flooder = await server.OnlineUserAsync("flooder");
        await using var alice = await server.OnlineUserAsync("alice");
        await using var bob = await server.OnlineUserAsync("bob");

        await slow.PauseReadingAsync();
        var sessions = server.Host.Server.Sessions;
        var body = new string('x', 4000);
        var sent = 0;
        var clock = Stopwatch.StartNew();
        while (sessions.Get(slowJid) is not null && clock.Elapsed < TimeSpan.FromSeconds(60))
        {
            var batch = new StringBuilder();
            for (var i = 0; i < 50; i++, sent++) batch.Append($"<message to='{slowJid}' type='chat' id='f{sent}'><body>{sent} {body}</body></message>");
            await flooder.SendAsync(batch.ToString());
            await flooder.SyncAsync();
        }
        Assert.True(sessions.Get(slowJid) is null, $"the slow client is still bound after {sent} messages ({clock.Elapsed})");

        // Nobody else noticed: the flooder is still served, the honest pair still chats.
        await flooder.SyncAsync();
        await alice.SendMessageAsync(bob.Full, "still here");
        await bob.ExpectMessageAsync("still here");

        // A message for the slow account now is not lost: the resource is gone, so it is kept offline.
        await flooder.SendAsync($"<message to='{slowJid}' type='chat' id='after'><body>after the cut</body></message>");
        await flooder.SyncAsync();

        // Reading again, the slow client finds what was queued for it, then the stream error at the end.
        slow.ResumeReading();
        await slow.ExpectStreamErrorAsync("policy-violation", TimeSpan.FromSeconds(20));
        await slow.DisposeAsync();

        await using var again = await server.LoginAsync(slowUser, "again");
        await again.SendPresenceAsync();
        await again.ExpectMessageAsync("after the cut", TimeSpan.FromSeconds(10));
    }

    [Fact]
    public async Task The_outbound_queue_is_bounded_in_bytes_too()
    {
        // Few stanzas, but large ones: the byte bound cuts the reader off long before the count bound.
        await using var server = await ServerFixture.StartAsync(o =>
        {
            o.MaxOutboundQueue = 100_000;
            o.MaxOutboundQueueBytes = 256 * 1024;
            o.InboundBytesPerSecond = 16 * 1024 * 1024;
            o.InboundBurstBytes = 32 * 1024 * 1024;
        });
        var slowUser = await server.CreateUserAsync("slow");
        var slow = await XmppTestClient.ConnectTcpAsync(server.C2sPort, receiveBufferSize: 4096);
        await slow.OpenStreamAsync();
        await slow.StartTlsAsync();
        await slow.AuthenticateAsync(slowUser, ServerFixture.Password(slowUser));
        var slowJid = await slow.BindAsync("slow");
        await using var flooder = await server.OnlineUserAsync("flooder");
        await slow.PauseReadingAsync();

        var body = new string('x', 60_000);
        var sent = 0;
        var clock = Stopwatch.StartNew();
        while (server.Host.Server.Sessions.Get(slowJid) is not null && clock.Elapsed < TimeSpan.FromSeconds(60))
        {
            await flooder.SendAsync($"<message to='{slowJid}' type='chat' id='b{sent++}'><body>{body}</body></message>");
            await flooder.SyncAsync();
        }
        Assert.True(server.Host.Server.Sessions.Get(slowJid) is null, $"still bound after {sent} large messages");
        slow.ResumeReading();
        var error = await slow.ExpectStreamErrorAsync("policy-violation", TimeSpan.FromSeconds(20));
        Assert.Contains("too much data queued", error.GetChildText("text", Ns.Streams));
        await slow.DisposeAsync();
    }
}
