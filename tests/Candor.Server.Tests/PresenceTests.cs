using Candor.Client;
using Candor.Server.Tests.Harness;
using Candor.Xmpp;

namespace Candor.Server.Tests;

/// <summary>RFC 6121 §3 (subscriptions) and §4 (presence exchange), end to end between two accounts.</summary>
public sealed class PresenceTests(ServerFixture server) : IClassFixture<ServerFixture>
{
    private async Task<XmppClient> ReadyAsync(string user, string resource = "r")
    {
        var client = await server.ClientAsync(user, resource);
        await client.GetRosterAsync();
        await client.BecomeAvailableAsync();
        return client;
    }

    private static string? Subscription(IReadOnlyList<RosterItem> roster, string user) =>
        roster.SingleOrDefault(i => i.Jid == ServerFixture.JidOf(user))?.Subscription;

    [Fact]
    public async Task Subscribe_and_approve_updates_both_rosters_and_starts_presence()
    {
        var (alice, bob) = (await server.CreateUserAsync("alice"), await server.CreateUserAsync("bob"));
        await using var a = await ReadyAsync(alice);
        await using var b = await ReadyAsync(bob);

        // alice asks
        await a.SubscribeAsync(b.Bare);
        var pending = (await a.ExpectRosterPushAsync(b.Bare)).Item;
        Assert.Equal("none", pending.Subscription);
        Assert.True(pending.PendingOut);
        var request = await b.ExpectSubscriptionAsync(a.Bare, SubscriptionKind.Subscribe);
        Assert.Equal(b.Bare.ToString(), request.Stanza.GetAttribute("to"));

        // bob approves
        await b.AcceptSubscriptionAsync(a.Bare);
        var bobsItem = (await b.ExpectRosterPushAsync(a.Bare)).Item;
        Assert.Equal("from", bobsItem.Subscription);
        var alicesItem = (await a.ExpectRosterPushAsync(b.Bare, i => i.Subscription == "to")).Item;
        Assert.False(alicesItem.PendingOut);
        await a.ExpectSubscriptionAsync(b.Bare, SubscriptionKind.Subscribed);
        await a.ExpectPresenceAsync(b.Full);

        // bob's presence now reaches alice; alice's does not reach bob (one-way subscription)
        await b.SendPresenceAsync(show: "away");
        var away = await a.ExpectPresenceAsync(b.Full);
        Assert.Equal("away", away.Show);
        await a.SendPresenceAsync(show: "dnd");
        await b.ExpectNoStanzaAsync(TimeSpan.FromMilliseconds(300), e => e.IsPresence() && e.GetAttribute("from") == a.Full.ToString());

        Assert.Equal("to", Subscription(await a.GetRosterAsync(), bob));
        Assert.Equal("from", Subscription(await b.GetRosterAsync(), alice));
    }

    [Fact]
    public async Task Unsubscribe_ends_the_subscription_on_both_sides()
    {
        var (alice, bob) = (await server.CreateUserAsync("alice"), await server.CreateUserAsync("bob"));
        await server.BefriendAsync(alice, bob);
        await using var a = await ReadyAsync(alice);
        await using var b = await ReadyAsync(bob);
        await a.ExpectPresenceAsync(b.Full);

        await a.UnsubscribeAsync(b.Bare);

        Assert.Equal("from", (await a.ExpectRosterPushAsync(b.Bare)).Item.Subscription);
        await b.ExpectSubscriptionAsync(a.Bare, SubscriptionKind.Unsubscribe);
        Assert.Equal("to", (await b.ExpectRosterPushAsync(a.Bare)).Item.Subscription);
        // alice no longer sees bob: his server tells her he is unavailable (RFC 6121 §3.3.3)
        await a.ExpectPresenceAsync(b.Full, available: false);
    }

    [Fact]
    public async Task Unsubscribed_cancels_the_contacts_subscription()
    {
        var (alice, bob) = (await server.CreateUserAsync("alice"), await server.CreateUserAsync("bob"));
        await server.BefriendAsync(alice, bob);
        await using var a = await ReadyAsync(alice);
        await using var b = await ReadyAsync(bob);
        await b.ExpectPresenceAsync(a.Full);

        await a.DenySubscriptionAsync(b.Bare);

        Assert.Equal("to", (await a.ExpectRosterPushAsync(b.Bare)).Item.Subscription);
        await b.ExpectSubscriptionAsync(a.Bare, SubscriptionKind.Unsubscribed);
        Assert.Equal("from", (await b.ExpectRosterPushAsync(a.Bare)).Item.Subscription);
        await b.ExpectPresenceAsync(a.Full, available: false);
        await a.SendPresenceAsync(status: "still here");
        await b.ExpectNoStanzaAsync(TimeSpan.FromMilliseconds(300), e => e.IsPresence() && e.GetAttribute("from") == a.Full.ToString());
    }

    [Fact]
    public async Task Pre_approval_answers_the_later_request_without_asking()
    {
        var (alice, bob) = (await server.CreateUserAsync("alice"), await server.CreateUserAsync("bob"));
        await using var a = await ReadyAsync(alice);
        await using var b = await ReadyAsync(bob);
        Assert.NotNull(b.StreamFeatures!.GetChild("sub", Ns.PreApproval));

        await b.AcceptSubscriptionAsync(a.Bare);
        var approved = await b.ExpectRosterPushAsync(a.Bare);
        Assert.Equal("true", approved.Stanza.GetChild("query", Ns.Roster)!.GetChild("item", Ns.Roster)!.GetAttribute("approved"));
        Assert.Equal("none", approved.Item.Subscription);
        await a.ExpectNoStanzaAsync(TimeSpan.FromMilliseconds(200), e => e.IsPresence() && e.Type() == "subscribed");

        await a.SubscribeAsync(b.Bare);
        await a.ExpectSubscriptionAsync(b.Bare, SubscriptionKind.Subscribed);
        await a.ExpectPresenceAsync(b.Full);
        await b.ExpectRosterPushAsync(a.Bare, i => i.Subscription == "from");
        await b.ExpectNoStanzaAsync(TimeSpan.FromMilliseconds(200), e => e.IsPresence() && e.Type() == "subscribe");
    }

    [Fact]
    public async Task Subscription_request_to_a_missing_account_is_answered_unsubscribed()
    {
        await using var a = await ReadyAsync(await server.CreateUserAsync("alice"));
        var ghost = Jid.Parse("ghost-nobody@localhost");
        await a.SubscribeAsync(ghost);
        await a.ExpectSubscriptionAsync(ghost, SubscriptionKind.Unsubscribed);
    }

    [Fact]
    public async Task Subscription_request_to_an_offline_account_waits_for_its_initial_presence()
    {
        var (alice, bob) = (await server.CreateUserAsync("alice"), await server.CreateUserAsync("bob"));
        await using var a = await ReadyAsync(alice);
        await a.SubscribeAsync(ServerFixture.JidOf(bob));
        await a.ExpectRosterPushAsync(ServerFixture.JidOf(bob));

        await using var b = await ReadyAsync(bob);
        await b.ExpectSubscriptionAsync(a.Bare, SubscriptionKind.Subscribe);
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

        await a1.SendPresenceAsync(show: "xa");
        Assert.Equal("xa", (await a2.ExpectPresenceAsync(a1.Full)).Show);
        Assert.Equal("xa", (await b.ExpectPresenceAsync(a1.Full)).Show);

        await a1.SendAsync("<presence type='unavailable'/>");
        await a2.ExpectPresenceAsync(a1.Full, available: false);
        await b.ExpectPresenceAsync(a1.Full, available: false);
    }

    [Fact]
    public async Task Directed_presence_target_hears_of_logoff()
    {
        var (alice, carol) = (await server.CreateUserAsync("alice"), await server.CreateUserAsync("carol"));
        await using var c = await ReadyAsync(carol);
        var a = await ReadyAsync(alice);

        await a.SendAsync($"<presence to='{c.Full}'><status>just for you</status></presence>");
        Assert.Equal("just for you", (await c.ExpectPresenceAsync(a.Full)).Status);

        await a.DisposeAsync();
        await c.ExpectPresenceAsync(a.Full, available: false);
    }

    [Fact]
    public async Task Abrupt_disconnect_broadcasts_unavailable()
    {
        var (alice, bob) = (await server.CreateUserAsync("alice"), await server.CreateUserAsync("bob"));
        await server.BefriendAsync(alice, bob);
        await using var b = await ReadyAsync(bob);
        // A library client always closes its stream: the raw client drops the connection instead.
        var a = await server.LoginAsync(alice, "r");
        await a.GetRosterAsync();
        await a.SendPresenceAsync();
        await b.ExpectPresenceAsync(Jid.Parse(a.Full));

        a.Abort();
        await a.DisposeAsync();

        await b.ExpectPresenceAsync(Jid.Parse(a.Full), available: false);
    }

    [Fact]
    public async Task Presence_from_an_unsubscribed_stranger_is_not_broadcast_to_him()
    {
        var (alice, eve) = (await server.CreateUserAsync("alice"), await server.CreateUserAsync("eve"));
        await using var e = await ReadyAsync(eve);
        await using var a = await ReadyAsync(alice);
        await a.SendPresenceAsync(show: "chat");
        await e.ExpectNoStanzaAsync(TimeSpan.FromMilliseconds(300), p => p.IsPresence() && p.GetAttribute("from") == a.Full.ToString());
        // and a probe from her gets nothing
        await e.SendAsync($"<presence to='{a.Bare}' type='probe'/>");
        await e.ExpectNoStanzaAsync(TimeSpan.FromMilliseconds(300), p => p.IsPresence() && p.GetAttribute("from") == a.Full.ToString());
    }
}
