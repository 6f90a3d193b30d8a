using Candor.Server.Core;
using Candor.Server.Tests.Harness;
using Candor.Server.Tests.Hostile;
using Candor.Xml;
using Candor.Xmpp;

namespace Candor.Server.Tests;

/// <summary>
/// Stream Management (XEP-0198) over real sockets: enabling, acks both ways, h handling, resumption after a dropped
/// TCP connection (every message exactly once, in order), takeover, and what happens when a session is never resumed.
/// </summary>
public sealed class StreamManagementTests : IAsyncLifetime
{
    private const string Sm = "urn:xmpp:sm:3";
    private ServerFixture _server = null!;

    // Resumptions must come in time on a loaded machine (a new TLS connection and a SCRAM login after the drop):
    // the test of what happens when a session is never resumed starts a server of its own with 2 seconds.
    public async Task InitializeAsync() => _server = await StartAsync(resumeTimeoutSeconds: 30);

    private static Task<ServerFixture> StartAsync(int resumeTimeoutSeconds) => ServerFixture.StartAsync(o =>
    {
        o.SmResumeTimeoutSeconds = resumeTimeoutSeconds;
        o.SmMaxQueue = 16;
        o.LoginNotices = "every-session";
        // No XEP-0092 query to new sessions: the tests count exactly the stanzas they cause.
        o.ClientVersionTimeoutSeconds = 0;
    });

    public Task DisposeAsync() => _server.DisposeAsync();

    private async Task<(XmppTestClient Client, string Id)> EnableAsync(string user, string resource, bool resume = true)
    {
        var client = await _server.LoginAsync(user, resource);
        await client.SendAsync($"<enable xmlns='{Sm}'{(resume ? " resume='true'" : "")}/>");
        var enabled = await client.ExpectAsync(e => e.Namespace == Sm);
        Assert.True(enabled.Name == "enabled", "expected <enabled/>, got " + enabled);
        if (resume)
        {
            Assert.Equal("true", enabled.GetAttribute("resume"));
            Assert.Equal(_server.Host.Server.Options.SmResumeTimeoutSeconds.ToString(), enabled.GetAttribute("max"));
        }
        return (client, enabled.GetAttribute("id") ?? "");
    }

    private async Task<XmppTestClient> AuthenticatedAsync(string user)
    {
        var client = await XmppTestClient.ConnectAsync(_server.C2sPort);
        await client.StartTlsAsync();
        await client.AuthenticateAsync(user, ServerFixture.Password(user));
        return client;
    }

    private static Func<Element, bool> Body(string body) => e => e.IsMessage() && e.GetChildText("body", Ns.Client) == body;

    [Fact]
    public async Task Offered_after_authentication_and_enable_needs_a_bound_resource()
    {
        var user = await _server.CreateUserAsync();
        await using var client = await AuthenticatedAsync(user);
        Assert.NotNull(client.Features!.GetChild("sm", Sm));
        await client.SendAsync($"<enable xmlns='{Sm}'/>");
        var failed = await client.ExpectAsync(e => e.Namespace == Sm);
        Assert.Equal("failed", failed.Name);
        Assert.NotNull(failed.GetChild("unexpected-request", Ns.Stanzas));
    }

    [Fact]
    public async Task Acks_count_handled_stanzas_and_the_server_asks_for_acks()
    {
        var alice = await _server.CreateUserAsync("alice");
        var (client, id) = await EnableAsync(alice, "phone", resume: false);
        await using var _ = client;
        Assert.Equal("", id);
        // Three stanzas handled (one IQ answered, two messages to nobody answered with errors): h is 3.
        await client.SendAsync("<iq type='get' id='p1' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>");
        await client.SendAsync("<message to='nobody1@localhost' type='chat' id='x1'><body>1</body></message>");
        await client.SendAsync("<message to='nobody2@localhost' type='chat' id='x2'><body>2</body></message>");
        await client.SendAsync($"<r xmlns='{Sm}'/>");
        var a = await client.ExpectAsync(e => e.Is("a", Sm));
        Assert.Equal("3", a.GetAttribute("h"));
        // Two more stanzas to us make five unacknowledged: the server asks.
        await client.SendAsync("<iq type='get' id='p2' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>");
        await client.SendAsync("<iq type='get' id='p3' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>");
        await client.ExpectAsync(e => e.Is("r", Sm));
        await client.SendAsync($"<a xmlns='{Sm}' h='5'/>");
        await client.SendAsync($"<enable xmlns='{Sm}'/>");
        Assert.Equal("failed", (await client.ExpectAsync(e => e.Namespace == Sm)).Name);
    }

    [Fact]
    public async Task An_ack_for_more_than_was_sent_is_handled_count_too_high()
    {
        var (client, _) = await EnableAsync(await _server.CreateUserAsync(), "phone");
        await using var _c = client;
        await client.SendAsync($"<a xmlns='{Sm}' h='7'/>");
        var error = await client.ExpectStreamErrorAsync("undefined-condition");
        var tooHigh = error.GetChild("handled-count-too-high", Sm)!;
        Assert.Equal("7", tooHigh.GetAttribute("h"));
        Assert.Equal("0", tooHigh.GetAttribute("send-count"));
    }

    [Fact]
    public async Task A_dropped_connection_resumes_with_every_message_exactly_once_and_in_order()
    {
        var alice = await _server.CreateUserAsync("alice");
        var bob = await _server.CreateUserAsync("bob");
        await _server.BefriendAsync(alice, bob);
        await using var bobClient = await _server.LoginAsync(bob, "desk");
        await bobClient.SendPresenceAsync();
        await using var laptop = await _server.LoginAsync(alice, "laptop");
        laptop.ReceiveLoginNotices = true;
        var (phone, id) = await EnableAsync(alice, "phone");
        // The phone's login is a new session: announced (LoginNotices every-session). Its resumption is not.
        await laptop.ExpectAsync(e => e.IsMessage() && e.GetChild("login", XmppTestClient.LoginNoticeNamespace)?.GetAttribute("resource") == "phone");
        await bobClient.SendMessageAsync($"{alice}@localhost/phone", "m1");
        await phone.ExpectAsync(Body("m1"));
        await phone.SendAsync($"<a xmlns='{Sm}' h='1'/>");
        await phone.SendAsync("<presence/>");
        await bobClient.ExpectStanzaAsync("presence", p => p.GetAttribute("from") == $"{alice}@localhost/phone" && p.Type() is null);

        phone.Abort();
        await Task.Delay(200);
        for (var i = 2; i <= 6; i++) await bobClient.SendMessageAsync($"{alice}@localhost/phone", $"m{i}");
        await bobClient.SyncAsync();
        // Presence stays available while detached; nobody is told the session went.
        await bobClient.ExpectNothingAsync(TimeSpan.FromMilliseconds(300), e => (e.IsPresence() || e.IsMessage()) && e.GetAttribute("from") != bobClient.Full);

        await using var resumed = await AuthenticatedAsync(alice);
        await resumed.SendAsync($"<resume xmlns='{Sm}' previd='{id}' h='1'/>");
        var ok = await resumed.ExpectAsync(e => e.Namespace == Sm);
        Assert.True(ok.Name == "resumed", "expected <resumed/>, got " + ok);
        Assert.Equal(id, ok.GetAttribute("previd"));
        Assert.Equal("1", ok.GetAttribute("h")); // the one stanza it sent: its presence
        var bodies = new List<string>();
        for (var i = 2; i <= 6; i++)
            bodies.Add((await resumed.ExpectAsync(e => e.IsMessage() && e.GetChildText("body", Ns.Client) is not null)).GetChildText("body", Ns.Client)!);
        Assert.Equal(["m2", "m3", "m4", "m5", "m6"], bodies);
        await resumed.ExpectNothingAsync(TimeSpan.FromMilliseconds(400), e => e.IsMessage() && e.GetChildText("body", Ns.Client) is not null);

        // The resumed session is the same session: it still works, bob saw no change, and it was not a new login.
        await bobClient.SendMessageAsync($"{alice}@localhost/phone", "m7");
        await resumed.ExpectAsync(Body("m7"));
        await laptop.ExpectNothingAsync(TimeSpan.FromMilliseconds(300), e => e.IsMessage());
        await bobClient.ExpectNothingAsync(TimeSpan.FromMilliseconds(100), e => e.IsPresence() && e.Type() == "unavailable");
    }

    [Fact]
    public async Task A_resumption_counts_the_stanza_the_previous_connection_is_still_handling_and_it_is_sent_once()
    {
        var alice = await _server.CreateUserAsync("alice");
        var bob = await _server.CreateUserAsync("bob");
        await using var bobClient = await _server.LoginAsync(bob, "desk");
        var (phone, id) = await EnableAsync(alice, "phone");
        await using var _ = phone;
        // The phone's message is held in routing until the resumption has been asked for.
        var handling = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var release = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        _server.Host.Server.Hooks.PreMessage.Add(async ev =>
        {
            if (ev.Stanza.GetChildText("body", Ns.Client) != "held") return false;
            handling.TrySetResult();
            await release.Task;
            return false;
        }, Priority.Filter);
        await phone.SendAsync($"<message to='{bob}@localhost/desk' type='chat'><body>held</body></message>");
        await handling.Task.WaitAsync(TimeSpan.FromSeconds(10));

        await using var takeover = await AuthenticatedAsync(alice);
        await takeover.SendAsync($"<resume xmlns='{Sm}' previd='{id}' h='0'/>");
        await takeover.ExpectNothingAsync(TimeSpan.FromMilliseconds(300), e => e.Namespace == Sm);
        release.SetResult();
        var resumed = await takeover.ExpectAsync(e => e.Namespace == Sm);
        Assert.True(resumed.Name == "resumed", "expected <resumed/>, got " + resumed);
        // It counts the held message, so the client does not send it again.
        Assert.Equal("1", resumed.GetAttribute("h"));
        await bobClient.ExpectAsync(Body("held"));
        await phone.ExpectStreamErrorAsync("conflict");
        await bobClient.ExpectNothingAsync(TimeSpan.FromMilliseconds(300), Body("held"));
    }

    [Fact]
    public async Task A_second_resumption_takes_over_and_the_old_connection_gets_conflict()
    {
        var alice = await _server.CreateUserAsync("alice");
        var (phone, id) = await EnableAsync(alice, "phone");
        await using var _ = phone;
        await using var takeover = await AuthenticatedAsync(alice);
        await takeover.SendAsync($"<resume xmlns='{Sm}' previd='{id}' h='0'/>");
        Assert.Equal("resumed", (await takeover.ExpectAsync(e => e.Namespace == Sm)).Name);
        await phone.ExpectStreamErrorAsync("conflict");
        await takeover.SendAsync("<iq type='get' id='p1' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>");
        await takeover.ExpectAsync(e => e.IsIq() && e.Id() == "p1" && e.Type() == "result");
    }

    [Fact]
    public async Task An_unknown_or_foreign_session_cannot_be_resumed()
    {
        var alice = await _server.CreateUserAsync("alice");
        var mallory = await _server.CreateUserAsync("mallory");
        var (phone, id) = await EnableAsync(alice, "phone");
        await using var _ = phone;
        await using var other = await AuthenticatedAsync(mallory);
        await other.SendAsync($"<resume xmlns='{Sm}' previd='{id}' h='0'/>");
        var failed = await other.ExpectAsync(e => e.Namespace == Sm);
        Assert.Equal("failed", failed.Name);
        Assert.NotNull(failed.GetChild("item-not-found", Ns.Stanzas));
        await phone.SendAsync("<iq type='get' id='p1' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>");
        await phone.ExpectAsync(e => e.IsIq() && e.Id() == "p1" && e.Type() == "result");
    }

    [Fact]
    public async Task Never_resumed_unacknowledged_messages_go_to_the_other_resource_or_offline_storage()
    {
        await _server.DisposeAsync();
        _server = await StartAsync(resumeTimeoutSeconds: 2);
        var alice = await _server.CreateUserAsync("alice");
        var bob = await _server.CreateUserAsync("bob");
        await using var bobClient = await _server.OnlineUserAsync("carol");
        var (phone, _) = await EnableAsync(alice, "phone");
        await bobClient.SendMessageAsync($"{alice}@localhost/phone", "unacked-1");
        await phone.ExpectAsync(Body("unacked-1"));
        phone.Abort();
        await Task.Delay(200);
        await bobClient.SendMessageAsync($"{alice}@localhost/phone", "unacked-2");
        await bobClient.SyncAsync();

        // No other resource: after the resume timeout both messages are stored offline, and delivered at the next login.
        await Task.Delay(TimeSpan.FromSeconds(3));
        await using var later = await _server.LoginAsync(alice, "later");
        await later.SendPresenceAsync();
        var first = await later.ExpectAsync(Body("unacked-1"));
        Assert.NotNull(first.GetChild("delay", Ns.Delay));
        await later.ExpectAsync(Body("unacked-2"));
        await bobClient.ExpectNothingAsync(TimeSpan.FromMilliseconds(200), e => e.IsMessage() && e.Type() == "error");

        // With another resource online, they go there instead.
        var (phone2, _) = await EnableAsync(alice, "phone2");
        await bobClient.SendMessageAsync($"{alice}@localhost/phone2", "unacked-3");
        await phone2.ExpectAsync(Body("unacked-3"));
        phone2.Abort();
        await Task.Delay(TimeSpan.FromSeconds(3));
        await later.ExpectAsync(Body("unacked-3"));
        _ = bob;
    }

    [Fact]
    public async Task A_full_queue_while_detached_is_answered_with_an_error()
    {
        var alice = await _server.CreateUserAsync("alice");
        await using var bobClient = await _server.OnlineUserAsync("bob");
        var (phone, id) = await EnableAsync(alice, "phone");
        phone.Abort();
        await Task.Delay(300);
        for (var i = 0; i < 20; i++) await bobClient.SendMessageAsync($"{alice}@localhost/phone", $"q{i}");
        for (var i = 0; i < 4; i++)
            (await bobClient.ExpectStanzaAsync("message", m => m.Type() == "error")).AssertError("resource-constraint");
        await using var resumed = await AuthenticatedAsync(alice);
        await resumed.SendAsync($"<resume xmlns='{Sm}' previd='{id}' h='0'/>");
        Assert.Equal("resumed", (await resumed.ExpectAsync(e => e.Namespace == Sm)).Name);
        for (var i = 0; i < 16; i++) await resumed.ExpectAsync(Body($"q{i}"));
    }

    [Fact]
    public async Task A_session_enabled_inline_over_websocket_resumes_over_tcp_after_the_websocket_drops()
    {
        await using var own = await ServerFixture.StartAsync(o =>
        {
            o.HttpPort = 0;
            o.ClientVersionTimeoutSeconds = 0;
        });
        var alice = await own.CreateUserAsync("alice");
        await using var bob = await own.OnlineUserAsync("bob");
        var ws = await WebSocketAttacker.ConnectAsync(own.Host.HttpPort);
        await ws.SendAsync(WebSocketAttacker.Open);
        await ws.ExpectAsync(e => e.Is("features", Ns.Stream));
        var success = await new Sasl2Exchange(ws.SendAsync, ws.ExpectAsync).AuthenticateAsync(alice, ServerFixture.Password(alice),
            "SCRAM-SHA-1", $"<bind xmlns='urn:xmpp:bind:0'><tag>web</tag><enable xmlns='{Sm}' resume='true'/></bind>");
        var full = success.GetChildText("authorization-identifier", Ns.Sasl2)!;
        var id = success.GetChild("bound", "urn:xmpp:bind:0")!.GetChild("enabled", Sm)!.GetAttribute("id");
        await bob.SendMessageAsync(full, "over websocket");
        await ws.ExpectAsync(Body("over websocket"));
        await ws.DisposeAsync();
        await Task.Delay(300);
        await bob.SendMessageAsync(full, "while away");
        await bob.SyncAsync();

        var tcp = await XmppTestClient.ConnectAsync(own.C2sPort);
        await using var _ = tcp;
        await tcp.StartTlsAsync();
        await tcp.AuthenticateAsync(alice, ServerFixture.Password(alice));
        await tcp.SendAsync($"<resume xmlns='{Sm}' previd='{id}' h='1'/>");
        Assert.Equal("resumed", (await tcp.ExpectAsync(e => e.Namespace == Sm)).Name);
        await tcp.ExpectAsync(Body("while away"));
        await tcp.ExpectNothingAsync(TimeSpan.FromMilliseconds(300), Body("over websocket"));
    }
}
