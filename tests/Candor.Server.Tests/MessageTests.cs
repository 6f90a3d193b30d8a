using Candor.Client;
using Candor.Server.Tests.Harness;
using Candor.Xmpp;

namespace Candor.Server.Tests;

/// <summary>RFC 6121 §8.5 message delivery rules, and offline storage (XEP-0160) with XEP-0203 stamps.</summary>
public class MessageTests(ServerFixture server) : IClassFixture<ServerFixture>
{
    private async Task<XmppClient> OnlineAsync(string user, string resource, int priority)
    {
        var client = await server.ClientAsync(user, resource);
        await client.BecomeAvailableAsync(priority);
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
        await using var alice = await server.OnlineClientAsync("alice");

        await alice.SendMessageAsync(ServerFixture.JidOf(bob), "to the best");

        var got = await high1.ExpectMessageAsync("to the best");
        Assert.Equal(alice.Full, got.From);
        await high2.ExpectMessageAsync("to the best");
        await low.ExpectNoStanzaAsync(TimeSpan.FromMilliseconds(200), e => e.IsMessage());
        await negative.ExpectNoStanzaAsync(TimeSpan.FromMilliseconds(100), e => e.IsMessage());
    }

    [Fact]
    public async Task Only_negative_priority_resources_means_the_message_is_stored_offline()
    {
        var bob = await server.CreateUserAsync("bob");
        await using var alice = await server.OnlineClientAsync("alice");
        await using (var negative = await OnlineAsync(bob, "negative", -1))
        {
            await alice.SendMessageAsync(ServerFixture.JidOf(bob), "for later");
            await negative.ExpectNoStanzaAsync(TimeSpan.FromMilliseconds(200), e => e.IsMessage());
        }
        await using var later = await OnlineAsync(bob, "later", 0);
        await later.ExpectMessageAsync("for later");
        await alice.ExpectNoStanzaAsync(TimeSpan.FromMilliseconds(100), e => e.IsMessage());
    }

    [Fact]
    public async Task Full_jid_delivers_to_that_resource_only()
    {
        var bob = await server.CreateUserAsync("bob");
        await using var one = await OnlineAsync(bob, "one", 0);
        await using var two = await OnlineAsync(bob, "two", 0);
        await using var alice = await server.OnlineClientAsync("alice");
        await alice.SendMessageAsync(two.Full, "just two");
        await two.ExpectMessageAsync("just two");
        await one.ExpectNoStanzaAsync(TimeSpan.FromMilliseconds(200), e => e.IsMessage());
    }

    [Fact]
    public async Task Full_jid_of_a_missing_resource_falls_back_to_the_bare_jid_for_chat()
    {
        var bob = await server.CreateUserAsync("bob");
        await using var online = await OnlineAsync(bob, "online", 0);
        await using var alice = await server.OnlineClientAsync("alice");
        await alice.SendMessageAsync(ServerFixture.JidOf(bob).WithResource("gone"), "where are you");
        await online.ExpectMessageAsync("where are you");
    }

    [Fact]
    public async Task Groupchat_to_an_account_is_service_unavailable()
    {
        var bob = await server.CreateUserAsync("bob");
        await using var online = await OnlineAsync(bob, "online", 0);
        await using var alice = await server.OnlineClientAsync("alice");

        var toMissing = await alice.SendMessageAsync(ServerFixture.JidOf(bob).WithResource("gone"), "room?", type: "groupchat");
        (await alice.ExpectAsync<ChatMessage>(m => m.Id == toMissing)).Stanza.AssertError("service-unavailable");
        var toBare = await alice.SendMessageAsync(ServerFixture.JidOf(bob), "room?", type: "groupchat");
        (await alice.ExpectAsync<ChatMessage>(m => m.Id == toBare)).Stanza.AssertError("service-unavailable");
        await online.ExpectNoStanzaAsync(TimeSpan.FromMilliseconds(200), e => e.IsMessage());
    }

    [Fact]
    public async Task Headline_to_an_offline_account_is_dropped_silently()
    {
        var bob = await server.CreateUserAsync("bob");
        await using var alice = await server.OnlineClientAsync("alice");
        await alice.SendMessageAsync(ServerFixture.JidOf(bob), "breaking news", type: "headline");
        await alice.ExpectNoStanzaAsync(TimeSpan.FromMilliseconds(300), e => e.IsMessage());
        await using var later = await OnlineAsync(bob, "later", 0);
        await later.ExpectNoStanzaAsync(TimeSpan.FromMilliseconds(300), e => e.IsMessage());
    }

    [Fact]
    public async Task Message_to_a_missing_account_is_service_unavailable()
    {
        await using var alice = await server.OnlineClientAsync("alice");
        var id = await alice.SendMessageAsync(Jid.Parse("nobody-here@localhost"), "hello?");
        var error = await alice.ExpectAsync<ChatMessage>(m => m.Id == id);
        error.Stanza.AssertError("service-unavailable", "cancel");
        Assert.Equal("nobody-here@localhost", error.From?.ToString());
        Assert.Equal("hello?", error.Body);
    }

    [Fact]
    public async Task Offline_messages_are_delivered_in_order_with_delay_on_initial_presence_exactly_once()
    {
        var bob = await server.CreateUserAsync("bob");
        await using var alice = await server.OnlineClientAsync("alice");
        for (var i = 1; i <= 3; i++) await alice.SendMessageAsync(ServerFixture.JidOf(bob), "offline " + i);
        await alice.PingAsync();

        await using (var first = await server.ClientAsync(bob, "first"))
        {
            // nothing before initial presence
            await first.ExpectNoStanzaAsync(TimeSpan.FromMilliseconds(200), e => e.IsMessage());
            await first.SendPresenceAsync();
            for (var i = 1; i <= 3; i++)
            {
                var message = await first.ExpectAsync<ChatMessage>();
                Assert.Equal("offline " + i, message.Body);
                Assert.Equal(alice.Full, message.From);
                var delay = message.Stanza.GetChild("delay", Ns.Delay);
                Assert.NotNull(delay);
                Assert.Equal("localhost", delay.GetAttribute("from"));
                Assert.NotNull(message.Stamp);
                Assert.InRange(message.Stamp.Value, DateTimeOffset.UtcNow.AddMinutes(-1), DateTimeOffset.UtcNow.AddSeconds(5));
            }
        }
        await using var second = await OnlineAsync(bob, "second", 0);
        await second.ExpectNoStanzaAsync(TimeSpan.FromMilliseconds(300), e => e.IsMessage());
    }

    /// <summary>
    /// A message routed while the recipient is not yet available is stored offline; if its initial presence took the
    /// offline queue meanwhile, the message must still reach it now, not at its next login. Repeated to meet the race.
    /// </summary>
    [Fact]
    public async Task A_message_stored_offline_while_the_recipient_comes_online_is_delivered_at_once()
    {
        var bob = await server.CreateUserAsync("bob");
        await using var alice = await server.OnlineUserAsync("alice");
        for (var i = 0; i < 100; i++)
        {
            var body = $"race {i}";
            await using (var phone = await server.LoginAsync(bob, "phone"))
            {
                await Task.WhenAll(
                    alice.SendAsync($"<message to='{bob}@localhost' type='chat'><body>{body}</body></message>"),
                    phone.SendAsync("<presence/>"));
                await phone.ExpectMessageAsync(body, TimeSpan.FromSeconds(3));
            }
            // The next message must find bob gone, not a closing session.
            for (var wait = 0; server.Host.Server.Sessions.Get(bob).Count > 0; wait++)
            {
                Assert.True(wait < 100, "the session did not end");
                await Task.Delay(20);
            }
        }
    }

    [Fact]
    public async Task Offline_messages_go_to_one_of_two_resources_coming_online_at_once_never_both()
    {
        var bob = await server.CreateUserAsync("bob");
        await using var alice = await server.OnlineClientAsync("alice");
        for (var i = 0; i < 10; i++) await alice.SendMessageAsync(ServerFixture.JidOf(bob), "queued " + i);
        await alice.PingAsync();
        await using var one = await server.ClientAsync(bob, "one");
        await using var two = await server.ClientAsync(bob, "two");

        await Task.WhenAll(one.SendPresenceAsync(), two.SendPresenceAsync());
        await Task.WhenAll(one.PingAsync(), two.PingAsync());
        await Task.Delay(200);

        var received = new List<string>();
        foreach (var client in new[] { one, two })
        {
            try
            {
                while (true) received.Add((await client.ExpectAsync<ChatMessage>(timeout: TimeSpan.FromMilliseconds(100))).Body!);
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
            var bob = ServerFixture.JidOf(await own.CreateUserAsync("bob"));
            await using var alice = await own.OnlineClientAsync("alice");
            await alice.SendMessageAsync(bob, "1");
            await alice.SendMessageAsync(bob, "2");
            var third = await alice.SendMessageAsync(bob, "3");
            var error = await alice.ExpectAsync<ChatMessage>(m => m.Type == "error");
            Assert.Equal(third, error.Id);
            error.Stanza.AssertError("resource-constraint", "wait");
            await alice.ExpectNoStanzaAsync(TimeSpan.FromMilliseconds(200), m => m.IsMessage() && m.Type() == "error");
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
