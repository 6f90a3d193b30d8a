using Candor.Client;
using Candor.Server.Tests.Harness;
using Candor.Xml;
using Candor.Xmpp;

namespace Candor.Server.Tests;

/// <summary>XEP-0012 Last Activity (issue 23.3): the server's uptime, and an account's last logout only for its contacts.</summary>
public sealed class LastActivityTests(ServerFixture server) : IClassFixture<ServerFixture>
{
    private const string LastNs = "jabber:iq:last";

    private static long Seconds(Element result) => long.Parse(result.GetChild("query", LastNs)!.GetAttribute("seconds")!);

    private async Task<XmppClient> ReadyAsync(string user, string resource = "r")
    {
        var client = await server.ClientAsync(user, resource);
        await client.GetRosterAsync();
        await client.BecomeAvailableAsync();
        return client;
    }

    /// <summary><paramref name="contact"/> subscribes to <paramref name="user"/>'s presence and is approved: user's item has subscription 'from'.</summary>
    private static async Task SubscribeAsync(XmppClient contact, XmppClient user)
    {
        await contact.SubscribeAsync(user.Bare);
        await user.ExpectSubscriptionAsync(contact.Bare, SubscriptionKind.Subscribe);
        await user.AcceptSubscriptionAsync(contact.Bare);
        Assert.Equal("from", (await user.ExpectRosterPushAsync(contact.Bare, i => i.Subscription == "from")).Item.Subscription);
        await contact.ExpectSubscriptionAsync(user.Bare, SubscriptionKind.Subscribed);
    }

    [Fact]
    public async Task The_server_answers_with_its_uptime_and_advertises_the_feature()
    {
        await using var client = await server.OnlineClientAsync();
        var first = Seconds(await client.IqAsync("<iq type='get' to='localhost'><query xmlns='jabber:iq:last'/></iq>"));
        Assert.InRange(first, 0, 3600);
        await Task.Delay(1100);
        Assert.True(Seconds(await client.IqAsync("<iq type='get' to='localhost'><query xmlns='jabber:iq:last'/></iq>")) >= first + 1);
        var info = await client.IqAsync("<iq type='get' to='localhost'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>");
        Assert.Contains(info.GetChild("query", Ns.DiscoInfo)!.Elements, f => f.Name == "feature" && f.GetAttribute("var") == LastNs);
    }

    [Fact]
    public async Task A_contact_learns_zero_while_online_and_the_time_since_logout_after()
    {
        var (alice, bob) = (await server.CreateUserAsync("alice"), await server.CreateUserAsync("bob"));
        var a = await ReadyAsync(alice);
        await using var b = await ReadyAsync(bob);
        await SubscribeAsync(b, a);
        var query = $"<iq type='get' to='{alice}@localhost'><query xmlns='jabber:iq:last'/></iq>";
        Assert.Equal(0, Seconds(await b.IqAsync(query)));

        await a.DisposeAsync();
        await b.ExpectPresenceAsync(ServerFixture.JidOf(alice).WithResource("r"), available: false);
        await Task.Delay(1200);
        var result = await b.IqAsync(query);
        Assert.Equal($"{alice}@localhost", result.GetAttribute("from"));
        Assert.InRange(Seconds(result), 1, 30);
    }

    [Fact]
    public async Task Anyone_not_subscribed_to_the_accounts_presence_is_forbidden_also_at_a_full_jid()
    {
        var (alice, mallory) = (await server.CreateUserAsync("alice"), await server.CreateUserAsync("mallory"));
        await using var a = await ReadyAsync(alice);
        await using var m = await ReadyAsync(mallory);
        // alice subscribes to mallory's presence: that gives mallory nothing of alice's.
        await SubscribeAsync(a, m);

        (await m.IqErrorAsync($"<iq type='get' to='{alice}@localhost'><query xmlns='jabber:iq:last'/></iq>")).AssertError("forbidden", "auth");
        var atFull = await m.IqErrorAsync($"<iq type='get' to='{alice}@localhost/r'><query xmlns='jabber:iq:last'/></iq>");
        atFull.AssertError("forbidden", "auth");
        await a.ExpectNoStanzaAsync(TimeSpan.FromMilliseconds(300), e => e.IsIq() && e.GetChild("query", LastNs) is not null);
    }

    [Fact]
    public async Task A_contacts_query_to_a_full_jid_goes_to_the_client()
    {
        var (alice, bob) = (await server.CreateUserAsync("alice"), await server.CreateUserAsync("bob"));
        await using var a = await ReadyAsync(alice);
        await using var b = await ReadyAsync(bob);
        await SubscribeAsync(b, a);
        // Candor.Client does not implement XEP-0012, so it is alice's client, not the server, that answers.
        var error = await b.IqErrorAsync($"<iq type='get' to='{alice}@localhost/r'><query xmlns='jabber:iq:last'/></iq>");
        error.AssertError("service-unavailable");
        Assert.Equal($"{alice}@localhost/r", error.GetAttribute("from"));
    }

    [Fact]
    public async Task The_account_itself_may_ask_and_without_a_logout_there_is_nothing_to_tell()
    {
        var alice = await server.CreateUserAsync("alice");
        // Bound but not available: the account counts as offline, and it never logged out.
        await using var quiet = await server.ClientAsync(alice, "quiet");
        (await quiet.IqErrorAsync("<iq type='get'><query xmlns='jabber:iq:last'/></iq>")).AssertError("item-not-found");
        await using var a = await ReadyAsync(alice);
        Assert.Equal(0, Seconds(await quiet.IqAsync($"<iq type='get' to='{alice}@localhost'><query xmlns='jabber:iq:last'/></iq>")));
    }
}
