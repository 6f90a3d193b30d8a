using Candor.Server.Tests.Harness;
using Candor.Xmpp;

namespace Candor.Server.Tests;

/// <summary>RFC 6121 §3 (subscriptions) and §4 (presence exchange), end to end between two accounts.</summary>
public sealed class PresenceTests(ServerFixture server) : IClassFixture<ServerFixture>
{
    private async Task<XmppTestClient> ReadyAsync(string user, string resource = "r")
    {
        var client = await server.LoginAsync(user, resource);
        await client.GetRosterAsync();
        await client.SendPresenceAsync();
        return client;
    }

    [Fact]
    public async Task Subscribe_and_approve_updates_both_rosters_and_starts_presence()
    {
        var (alice, bob) = (await server.CreateUserAsync("alice"), await server.CreateUserAsync("bob"));
        await using var a = await ReadyAsync(alice);
        await using var b = await ReadyAsync(bob);

        // alice asks
        await a.SendAsync($"<presence to='{bob}@localhost' type='subscribe'/>");
        var pending = await a.ExpectRosterPushAsync($"{bob}@localhost");
        Assert.Equal("none", pending.GetAttribute("subscription"));
        Assert.Equal("subscribe", pending.GetAttribute("ask"));
        var request = await b.ExpectPresenceAsync($"{alice}@localhost", "subscribe");
        Assert.Equal($"{bob}@localhost", request.GetAttribute("to"));

        // bob approves
        await b.SendAsync($"<presence to='{alice}@localhost' type='subscribed'/>");
        var bobsItem = await b.ExpectRosterPushAsync($"{alice}@localhost");
        Assert.Equal("from", bobsItem.GetAttribute("subscription"));
        var alicesItem = await a.ExpectRosterPushAsync($"{bob}@localhost", i => i.GetAttribute("subscription") == "to");
        Assert.Null(alicesItem.GetAttribute("ask"));
        await a.ExpectPresenceAsync($"{bob}@localhost", "subscribed");
        await a.ExpectPresenceAsync(b.Full);

        // bob's presence now reaches alice; alice's does not reach bob (one-way subscription)
        await b.SendAsync("<presence><show>away</show></presence>");
        var away = await a.ExpectPresenceAsync(b.Full);
        Assert.Equal("away", away.GetChildText("show", Ns.Client));
        await a.SendAsync("<presence><show>dnd</show></presence>");
        await b.ExpectNothingAsync(TimeSpan.FromMilliseconds(300), e => e.IsPresence() && e.GetAttribute("from") == a.Full);

        Assert.Equal("to", (await a.GetRosterAsync()).RosterItem($"{bob}@localhost")!.GetAttribute("subscription"));
        Assert.Equal("from", (await b.GetRosterAsync()).RosterItem($"{alice}@localhost")!.GetAttribute("subscription"));
    }

    [Fact]
    public async Task Unsubscribe_ends_the_subscription_on_both_sides()
    {
        var (alice, bob) = (await server.CreateUserAsync("alice"), await server.CreateUserAsync("bob"));
        await server.BefriendAsync(alice, bob);
        await using var a = await ReadyAsync(alice);
        await using var b = await ReadyAsync(bob);
        await a.ExpectPresenceAsync(b.Full);

        await a.SendAsync($"<presence to='{bob}@localhost' type='unsubscribe'/>");

        Assert.Equal("from", (await a.ExpectRosterPushAsync($"{bob}@localhost")).GetAttribute("subscription"));
        await b.ExpectPresenceAsync($"{alice}@localhost", "unsubscribe");
        Assert.Equal("to", (await b.ExpectRosterPushAsync($"{alice}@localhost")).GetAttribute("subscription"));
        // alice no longer sees bob: his server tells her he is unavailable (RFC 6121 §3.3.3)
        await a.ExpectPresenceAsync(b.Full, "unavailable");
    }

    [Fact]
    public async Task Unsubscribed_cancels_the_contacts_subscription()
    {
        var (alice, bob) = (await server.CreateUserAsync("alice"), await server.CreateUserAsync("bob"));
        await server.BefriendAsync(alice, bob);
        await using var a = await ReadyAsync(alice);
        await using var b = await ReadyAsync(bob);
        await b.ExpectPresenceAsync(a.Full);

        await a.SendAsync($"<presence to='{bob}@localhost' type='unsubscribed'/>");

        Assert.Equal("to", (await a.ExpectRosterPushAsync($"{bob}@localhost")).GetAttribute("subscription"));
        await b.ExpectPresenceAsync($"{alice}@localhost", "unsubscribed");
        Assert.Equal("from", (await b.ExpectRosterPushAsync($"{alice}@localhost")).GetAttribute("subscription"));
        await b.ExpectPresenceAsync(a.Full, "unavailable");
        await a.SendAsync("<presence><status>still here</status></presence>");
        await b.ExpectNothingAsync(TimeSpan.FromMilliseconds(300), e => e.IsPresence() && e.GetAttribute("from") == a.Full);
    }

    [Fact]
    public async Task Pre_approval_answers_the_later_request_without_asking()
    {
        var (alice, bob) = (await server.CreateUserAsync("alice"), await server.CreateUserAsync("bob"));
        await using var a = await ReadyAsync(alice);
        await using var b = await ReadyAsync(bob);
        Assert.NotNull(b.Features!.GetChild("sub", Ns.PreApproval));

        await b.SendAsync($"<presence to='{alice}@localhost' type='subscribed'/>");
        var approved = await b.ExpectRosterPushAsync($"{alice}@localhost");
        Assert.Equal("true", approved.GetAttribute("approved"));
        Assert.Equal("none", approved.GetAttribute("subscription"));
        await a.ExpectNothingAsync(TimeSpan.FromMilliseconds(200), e => e.IsPresence() && e.Type() == "subscribed");

        await a.SendAsync($"<presence to='{bob}@localhost' type='subscribe'/>");
        await a.ExpectPresenceAsync($"{bob}@localhost", "subscribed");
        await a.ExpectPresenceAsync(b.Full);
        Assert.Equal("from", (await b.ExpectRosterPushAsync($"{alice}@localhost", i => i.GetAttribute("subscription") == "from")).GetAttribute("subscription"));
        await b.ExpectNothingAsync(TimeSpan.FromMilliseconds(200), e => e.IsPresence() && e.Type() == "subscribe");
    }

    [Fact]
    public async Task Subscription_request_to_a_missing_account_is_answered_unsubscribed()
    {
        await using var a = await ReadyAsync(await server.CreateUserAsync("alice"));
        await a.SendAsync("<presence to='ghost-nobody@localhost' type='subscribe'/>");
        await a.ExpectPresenceAsync("ghost-nobody@localhost", "unsubscribed");
    }

    [Fact]
    public async Task Subscription_request_to_an_offline_account_waits_for_its_initial_presence()
    {
        var (alice, bob) = (await server.CreateUserAsync("alice"), await server.CreateUserAsync("bob"));
        await using var a = await ReadyAsync(alice);
        await a.SendAsync($"<presence to='{bob}@localhost' type='subscribe'/>");
        await a.ExpectRosterPushAsync($"{bob}@localhost");

        await using var b = await ReadyAsync(bob);
        await b.ExpectPresenceAsync($"{alice}@localhost", "subscribe");
    }

    [Fact]
    public async Task Initial_presence_probes_contacts_and_own_resources_and_updates_reach_both()
    {
        var (alice, bob) = (await server.CreateUserAsync("alice"), await server.CreateUserAsync("bob"));
        await server.BefriendAsync(alice, bob);
        await using var b = await ReadyAsync(bob);
        await using var a1 = await ReadyAsync(alice, "one");
        await a1.ExpectPresenceAsync(b.Full);
        await b.ExpectPresenceAsync(a1.Full);

        await using var a2 = await ReadyAsync(alice, "two");
        // the probe: a2 learns of bob and of its sibling; both learn of a2
        await a2.ExpectPresenceAsync(b.Full);
        await a2.ExpectPresenceAsync(a1.Full);
        await a1.ExpectPresenceAsync(a2.Full);
        await b.ExpectPresenceAsync(a2.Full);

        await a1.SendAsync("<presence><show>xa</show></presence>");
        Assert.Equal("xa", (await a2.ExpectPresenceAsync(a1.Full)).GetChildText("show", Ns.Client));
        Assert.Equal("xa", (await b.ExpectPresenceAsync(a1.Full)).GetChildText("show", Ns.Client));

        await a1.SendAsync("<presence type='unavailable'/>");
        await a2.ExpectPresenceAsync(a1.Full, "unavailable");
        await b.ExpectPresenceAsync(a1.Full, "unavailable");
    }

    [Fact]
    public async Task Directed_presence_target_hears_of_logoff()
    {
        var (alice, carol) = (await server.CreateUserAsync("alice"), await server.CreateUserAsync("carol"));
        await using var c = await ReadyAsync(carol);
        var a = await ReadyAsync(alice);

        await a.SendAsync($"<presence to='{c.Full}'><status>just for you</status></presence>");
        Assert.Equal("just for you", (await c.ExpectPresenceAsync(a.Full)).GetChildText("status", Ns.Client));

        await a.CloseAsync();
        await a.DisposeAsync();
        await c.ExpectPresenceAsync(a.Full, "unavailable");
    }

    [Fact]
    public async Task Abrupt_disconnect_broadcasts_unavailable()
    {
        var (alice, bob) = (await server.CreateUserAsync("alice"), await server.CreateUserAsync("bob"));
        await server.BefriendAsync(alice, bob);
        await using var b = await ReadyAsync(bob);
        var a = await ReadyAsync(alice);
        await b.ExpectPresenceAsync(a.Full);

        a.Abort();
        await a.DisposeAsync();

        await b.ExpectPresenceAsync(a.Full, "unavailable");
    }

    [Fact]
    public async Task Presence_from_an_unsubscribed_stranger_is_not_broadcast_to_him()
    {
        var (alice, eve) = (await server.CreateUserAsync("alice"), await server.CreateUserAsync("eve"));
        await using var e = await ReadyAsync(eve);
        await using var a = await ReadyAsync(alice);
        await a.SendAsync("<presence><show>chat</show></presence>");
        await e.ExpectNothingAsync(TimeSpan.FromMilliseconds(300), p => p.IsPresence() && p.GetAttribute("from") == a.Full);
        // and a probe from her gets nothing
        await e.SendAsync($"<presence to='{alice}@localhost' type='probe'/>");
        await e.ExpectNothingAsync(TimeSpan.FromMilliseconds(300), p => p.IsPresence() && p.GetAttribute("from") == a.Full);
    }
}
