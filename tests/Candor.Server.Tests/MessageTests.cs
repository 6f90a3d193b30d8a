using Candor.Server.Tests.Harness;
using Candor.Xmpp;

namespace Candor.Server.Tests;

/// <summary>RFC 6121 §8.5 message delivery rules, and offline storage (XEP-0160) with XEP-0203 stamps.</summary>
public sealed class MessageTests(ServerFixture server) : IClassFixture<ServerFixture>
{
    private async Task<XmppTestClient> OnlineAsync(string user, string resource, int priority)
    {
        var client = await server.LoginAsync(user, resource);
        await client.SendPresenceAsync(priority);
        return client;
    }

    [Fact]
    public async Task Bare_jid_goes_to_all_highest_priority_resources_and_never_to_negative_ones()
    {
        var bob = await server.CreateUserAsync("bob");
        await using var high1 = await OnlineAsync(bob, "high1", 5);
        await using var high2 = await OnlineAsync(bob, "high2", 5);
        await using var low = await OnlineAsync(bob, "low", 1);
        await using var negative = await OnlineAsync(bob, "negative", -1);
        await using var alice = await server.OnlineUserAsync("alice");

        await alice.SendMessageAsync($"{bob}@localhost", "to the best");

        var got = await high1.ExpectMessageAsync("to the best");
        Assert.Equal(alice.Full, got.GetAttribute("from"));
        await high2.ExpectMessageAsync("to the best");
        await low.ExpectNothingAsync(TimeSpan.FromMilliseconds(200), e => e.IsMessage());
        await negative.ExpectNothingAsync(TimeSpan.FromMilliseconds(100), e => e.IsMessage());
    }

    [Fact]
    public async Task Only_negative_priority_resources_means_the_message_is_stored_offline()
    {
        var bob = await server.CreateUserAsync("bob");
        await using var alice = await server.OnlineUserAsync("alice");
        await using (var negative = await OnlineAsync(bob, "negative", -1))
        {
            await alice.SendMessageAsync($"{bob}@localhost", "for later");
            await negative.ExpectNothingAsync(TimeSpan.FromMilliseconds(200), e => e.IsMessage());
        }
        await using var later = await OnlineAsync(bob, "later", 0);
        await later.ExpectMessageAsync("for later");
        await alice.ExpectNothingAsync(TimeSpan.FromMilliseconds(100), e => e.IsMessage());
    }

    [Fact]
    public async Task Full_jid_delivers_to_that_resource_only()
    {
        var bob = await server.CreateUserAsync("bob");
        await using var one = await OnlineAsync(bob, "one", 0);
        await using var two = await OnlineAsync(bob, "two", 0);
        await using var alice = await server.OnlineUserAsync("alice");
        await alice.SendMessageAsync(two.Full, "just two");
        await two.ExpectMessageAsync("just two");
        await one.ExpectNothingAsync(TimeSpan.FromMilliseconds(200), e => e.IsMessage());
    }

    [Fact]
    public async Task Full_jid_of_a_missing_resource_falls_back_to_the_bare_jid_for_chat()
    {
        var bob = await server.CreateUserAsync("bob");
        await using var online = await OnlineAsync(bob, "online", 0);
        await using var alice = await server.OnlineUserAsync("alice");
        await alice.SendMessageAsync($"{bob}@localhost/gone", "where are you");
        await online.ExpectMessageAsync("where are you");
    }

    [Fact]
    public async Task Groupchat_to_an_account_is_service_unavailable()
    {
        var bob = await server.CreateUserAsync("bob");
        await using var online = await OnlineAsync(bob, "online", 0);
        await using var alice = await server.OnlineUserAsync("alice");

        await alice.SendAsync($"<message id='g1' type='groupchat' to='{bob}@localhost/gone'><body>room?</body></message>");
        (await alice.ExpectStanzaAsync("message", m => m.Id() == "g1")).AssertError("service-unavailable");
        await alice.SendAsync($"<message id='g2' type='groupchat' to='{bob}@localhost'><body>room?</body></message>");
        (await alice.ExpectStanzaAsync("message", m => m.Id() == "g2")).AssertError("service-unavailable");
        await online.ExpectNothingAsync(TimeSpan.FromMilliseconds(200), e => e.IsMessage());
    }

    [Fact]
    public async Task Headline_to_an_offline_account_is_dropped_silently()
    {
        var bob = await server.CreateUserAsync("bob");
        await using var alice = await server.OnlineUserAsync("alice");
        await alice.SendMessageAsync($"{bob}@localhost", "breaking news", type: "headline");
        await alice.ExpectNothingAsync(TimeSpan.FromMilliseconds(300), e => e.IsMessage());
        await using var later = await OnlineAsync(bob, "later", 0);
        await later.ExpectNothingAsync(TimeSpan.FromMilliseconds(300), e => e.IsMessage());
    }

    [Fact]
    public async Task Message_to_a_missing_account_is_service_unavailable()
    {
        await using var alice = await server.OnlineUserAsync("alice");
        await alice.SendAsync("<message id='nx' type='chat' to='nobody-here@localhost'><body>hello?</body></message>");
        var error = await alice.ExpectStanzaAsync("message", m => m.Id() == "nx");
        error.AssertError("service-unavailable", "cancel");
        Assert.Equal("nobody-here@localhost", error.GetAttribute("from"));
        Assert.Equal("hello?", error.GetChildText("body", Ns.Client));
    }

    [Fact]
    public async Task Offline_messages_are_delivered_in_order_with_delay_on_initial_presence_exactly_once()
    {
        var bob = await server.CreateUserAsync("bob");
        await using var alice = await server.OnlineUserAsync("alice");
        for (var i = 1; i <= 3; i++) await alice.SendMessageAsync($"{bob}@localhost", "offline " + i);
        await alice.SyncAsync();

        await using (var first = await server.LoginAsync(bob, "first"))
        {
            // nothing before initial presence
            await first.ExpectNothingAsync(TimeSpan.FromMilliseconds(200), e => e.IsMessage());
            await first.SendAsync("<presence/>");
            for (var i = 1; i <= 3; i++)
            {
                var message = await first.ExpectStanzaAsync("message");
                Assert.Equal("offline " + i, message.GetChildText("body", Ns.Client));
                Assert.Equal(alice.Full, message.GetAttribute("from"));
                var delay = message.GetChild("delay", Ns.Delay);
                Assert.NotNull(delay);
                Assert.Equal("localhost", delay.GetAttribute("from"));
                Assert.True(DateTimeOffset.TryParse(delay.GetAttribute("stamp"), out var stamp));
                Assert.InRange(stamp, DateTimeOffset.UtcNow.AddMinutes(-1), DateTimeOffset.UtcNow.AddSeconds(5));
            }
        }
        await using var second = await OnlineAsync(bob, "second", 0);
        await second.ExpectNothingAsync(TimeSpan.FromMilliseconds(300), e => e.IsMessage());
    }

    [Fact]
    public async Task Offline_messages_go_to_one_of_two_resources_coming_online_at_once_never_both()
    {
        var bob = await server.CreateUserAsync("bob");
        await using var alice = await server.OnlineUserAsync("alice");
        for (var i = 0; i < 10; i++) await alice.SendMessageAsync($"{bob}@localhost", "queued " + i);
        await alice.SyncAsync();
        await using var one = await server.LoginAsync(bob, "one");
        await using var two = await server.LoginAsync(bob, "two");

        await Task.WhenAll(one.SendAsync("<presence/>"), two.SendAsync("<presence/>"));
        await Task.WhenAll(one.SyncAsync(), two.SyncAsync());
        await Task.Delay(200);

        var received = new List<string>();
        foreach (var client in new[] { one, two })
        {
            try
            {
                while (true) received.Add((await client.ExpectStanzaAsync("message", timeout: TimeSpan.FromMilliseconds(100))).GetChildText("body", Ns.Client)!);
            }
            catch (Xunit.Sdk.FailException)
            {
            }
        }
        Assert.Equal(Enumerable.Range(0, 10).Select(i => "queued " + i).Order(), received.Order());
    }

    [Fact]
    public async Task Offline_limit_is_resource_constraint_to_the_sender()
    {
        var own = await ServerFixture.StartAsync(o => o.MaxOfflineMessages = 2);
        try
        {
            var bob = await own.CreateUserAsync("bob");
            await using var alice = await own.OnlineUserAsync("alice");
            await alice.SendAsync($"<message id='o1' type='chat' to='{bob}@localhost'><body>1</body></message>");
            await alice.SendAsync($"<message id='o2' type='chat' to='{bob}@localhost'><body>2</body></message>");
            await alice.SendAsync($"<message id='o3' type='chat' to='{bob}@localhost'><body>3</body></message>");
            var error = await alice.ExpectStanzaAsync("message", m => m.Type() == "error");
            Assert.Equal("o3", error.Id());
            error.AssertError("resource-constraint", "wait");
            await alice.ExpectNothingAsync(TimeSpan.FromMilliseconds(200), m => m.IsMessage() && m.Type() == "error");
        }
        finally
        {
            await own.DisposeAsync();
        }
    }

    [Fact]
    public async Task Message_without_to_goes_to_the_senders_own_account()
    {
        var user = await server.CreateUserAsync();
        await using var one = await OnlineAsync(user, "one", 1);
        await using var two = await OnlineAsync(user, "two", 1);
        await one.SendAsync("<message type='chat'><body>note to self</body></message>");
        await two.ExpectMessageAsync("note to self");
    }
}
