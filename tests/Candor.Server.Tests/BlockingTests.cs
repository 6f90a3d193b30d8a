using Candor.Server.Tests.Harness;
using Candor.Xml;
using Candor.Xmpp;

namespace Candor.Server.Tests;

/// <summary>Blocking Command (XEP-0191) over real sockets: the list, pushes, what each side is told, presence at block and unblock.</summary>
public sealed class BlockingTests(ServerFixture server) : IClassFixture<ServerFixture>
{
    private const string Blocking = "urn:xmpp:blocking";

    private static Task<Element> BlockAsync(XmppTestClient client, string op, params string[] jids) =>
        client.RequestAsync($"<iq type='set' id='{{id}}'><{op} xmlns='{Blocking}'>{string.Concat(jids.Select(j => $"<item jid='{j}'/>"))}</{op}></iq>");

    private async Task<(string Alice, string Bob, XmppTestClient A, XmppTestClient B)> FriendsAsync()
    {
        var alice = await server.CreateUserAsync("alice");
        var bob = await server.CreateUserAsync("bob");
        await server.BefriendAsync(alice, bob);
        var a = await server.LoginAsync(alice, "phone");
        var b = await server.LoginAsync(bob, "desk");
        await a.SendPresenceAsync();
        await b.SendPresenceAsync();
        await a.ExpectStanzaAsync("presence", p => p.GetAttribute("from") == b.Full && p.Type() is null);
        await b.ExpectStanzaAsync("presence", p => p.GetAttribute("from") == a.Full && p.Type() is null);
        return (alice, bob, a, b);
    }

    [Fact]
    public async Task The_list_starts_empty_and_block_needs_valid_items()
    {
        await using var client = await server.LoginAsync(await server.CreateUserAsync());
        var info = await client.RequestAsync("<iq type='get' id='{id}' to='localhost'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>");
        Assert.Contains(info.GetChild("query", Ns.DiscoInfo)!.Elements, f => f.GetAttribute("var") == Blocking);
        var list = await client.RequestAsync($"<iq type='get' id='{{id}}'><blocklist xmlns='{Blocking}'/></iq>");
        Assert.Empty(list.GetChild("blocklist", Blocking)!.Elements);
        (await BlockAsync(client, "block")).AssertError("bad-request");
        (await BlockAsync(client, "block", "a@b@c")).AssertError("jid-malformed");
    }

    [Fact]
    public async Task Blocking_hides_the_account_tells_each_side_and_unblocking_restores_it()
    {
        var (alice, bob, a, b) = await FriendsAsync();
        await using var _ = a;
        await using var __ = b;
        await using var laptop = await server.LoginAsync(alice, "laptop");
        await laptop.RequestAsync($"<iq type='get' id='{{id}}'><blocklist xmlns='{Blocking}'/></iq>");

        Assert.Equal("result", (await BlockAsync(a, "block", $"{bob}@localhost")).Type());
        // §3.3: the contact sees the account go offline; the other resource that asked for the list gets a push.
        await b.ExpectStanzaAsync("presence", p => p.GetAttribute("from") == a.Full && p.Type() == "unavailable");
        var push = await laptop.ExpectStanzaAsync("iq", iq => iq.Type() == "set" && iq.GetChild("block", Blocking) is not null);
        Assert.Equal($"{bob}@localhost", push.GetChild("block", Blocking)!.FirstElement!.GetAttribute("jid"));
        var list = await a.RequestAsync($"<iq type='get' id='{{id}}'><blocklist xmlns='{Blocking}'/></iq>");
        Assert.Equal($"{bob}@localhost", list.GetChild("blocklist", Blocking)!.FirstElement!.GetAttribute("jid"));

        // The blocked sender: service-unavailable for messages and IQ requests, presence dropped.
        await b.SendAsync($"<message to='{a.Full}' type='chat' id='b1'><body>hello?</body></message>");
        (await b.ExpectStanzaAsync("message", m => m.Id() == "b1")).AssertError("service-unavailable");
        (await b.RequestAsync($"<iq type='get' id='{{id}}' to='{a.Full}'><ping xmlns='urn:xmpp:ping'/></iq>")).AssertError("service-unavailable");
        await b.SendAsync($"<presence to='{alice}@localhost' type='subscribe'/>");
        await b.SendAsync("<presence><show>away</show></presence>");
        await a.ExpectNothingAsync(TimeSpan.FromMilliseconds(400), e => e.GetAttribute("from") != a.Full && (e.IsMessage() || e.IsPresence() || (e.IsIq() && e.Type() == "get")));

        // The blocker writing to the blocked contact: not-acceptable with <blocked/>.
        await a.SendAsync($"<message to='{bob}@localhost' type='chat' id='a1'><body>never mind</body></message>");
        var refused = await a.ExpectStanzaAsync("message", m => m.Id() == "a1");
        refused.AssertError("not-acceptable", "cancel");
        Assert.NotNull(refused.GetChild("error", Ns.Client)!.GetChild("blocked", "urn:xmpp:blocking:errors"));
        await b.ExpectNothingAsync(TimeSpan.FromMilliseconds(300), e => e.IsMessage());

        Assert.Equal("result", (await BlockAsync(a, "unblock")).Type());
        // §3.4: the contact gets the current presence again, and messages flow.
        await b.ExpectStanzaAsync("presence", p => p.GetAttribute("from") == a.Full && p.Type() is null);
        await laptop.ExpectStanzaAsync("iq", iq => iq.Type() == "set" && iq.GetChild("unblock", Blocking) is not null);
        await b.SendMessageAsync(a.Full, "back again");
        await a.ExpectMessageAsync("back again");
    }

    [Fact]
    public async Task A_blocked_domain_covers_its_users_and_the_block_outlives_the_session()
    {
        var alice = await server.CreateUserAsync("alice");
        await using (var a = await server.LoginAsync(alice))
            Assert.Equal("result", (await BlockAsync(a, "block", "localhost")).Type());
        await using var b = await server.OnlineUserAsync("carol");
        await using var again = await server.LoginAsync(alice);
        await again.SendPresenceAsync();
        await b.SendMessageAsync($"{alice}@localhost", "domain blocked");
        (await b.ExpectStanzaAsync("message", m => m.Type() == "error")).AssertError("service-unavailable");
        await again.ExpectNothingAsync(TimeSpan.FromMilliseconds(300), e => e.IsMessage());
    }
    /// <summary>
    /// Messages to an account without a session are checked against its list, which is then kept in memory: a block
    /// or unblock made at its next login must count for the messages after it, not the list as it was kept.
    /// </summary>
    [Fact]
    public async Task The_list_of_an_account_without_a_session_is_checked_and_follows_its_changes()
    {
        var alice = await server.CreateUserAsync("alice");
        await using var b = await server.OnlineUserAsync("bob");
        await b.SendAsync($"<message to='{alice}@localhost' type='chat' id='m1'><body>first</body></message>");
        await b.SendAsync($"<message to='{alice}@localhost' type='chat' id='m2'><body>second</body></message>");
        await b.ExpectNothingAsync(TimeSpan.FromMilliseconds(300), e => e.IsMessage());

        await using (var a = await server.LoginAsync(alice))
            Assert.Equal("result", (await BlockAsync(a, "block", b.Full.Split('/')[0])).Type());
        for (var i = 0; i < 2; i++)
        {
            await b.SendAsync($"<message to='{alice}@localhost' type='chat' id='blocked{i}'><body>blocked?</body></message>");
            (await b.ExpectStanzaAsync("message", m => m.Id() == $"blocked{i}")).AssertError("service-unavailable");
        }

        await using (var a = await server.LoginAsync(alice))
            Assert.Equal("result", (await BlockAsync(a, "unblock", b.Full.Split('/')[0])).Type());
        await b.SendAsync($"<message to='{alice}@localhost' type='chat' id='m3'><body>third</body></message>");
        await b.ExpectNothingAsync(TimeSpan.FromMilliseconds(300), e => e.IsMessage());

        // What was let through was stored offline, what was refused was not.
        await using var again = await server.LoginAsync(alice);
        await again.SendPresenceAsync();
        foreach (var body in (string[])["first", "second", "third"])
            Assert.Equal(body, (await again.ExpectStanzaAsync("message", m => m.GetChildText("body", Ns.Client) is not null)).GetChildText("body", Ns.Client));
        await again.ExpectNothingAsync(TimeSpan.FromMilliseconds(300), e => e.IsMessage());
    }
}
