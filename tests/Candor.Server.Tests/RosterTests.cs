using Candor.Server.Tests.Harness;
using Candor.Xmpp;

namespace Candor.Server.Tests;

/// <summary>RFC 6121 §2 roster management with XEP-0237 versioning.</summary>
public sealed class RosterTests(ServerFixture server) : IClassFixture<ServerFixture>
{
    [Fact]
    public async Task Set_is_pushed_to_interested_resources_only_and_returned_by_get()
    {
        var user = await server.CreateUserAsync();
        await using var a = await server.LoginAsync(user, "a");
        await using var b = await server.LoginAsync(user, "b");
        await using var quiet = await server.LoginAsync(user, "quiet");
        var empty = await a.GetRosterAsync();
        Assert.Empty(empty.GetChild("query", Ns.Roster)!.Elements);
        await b.GetRosterAsync();

        var set = await a.RequestAsync("<iq type='set' id='{id}'><query xmlns='jabber:iq:roster'>"
            + "<item jid='romeo@localhost' name='Romeo'><group>Friends</group></item></query></iq>");
        Assert.Equal("result", set.Type());

        foreach (var client in new[] { a, b })
        {
            var pushed = await client.ExpectRosterPushAsync("romeo@localhost");
            Assert.Equal("Romeo", pushed.GetAttribute("name"));
            Assert.Equal("none", pushed.GetAttribute("subscription"));
            Assert.Equal(["Friends"], pushed.Elements.Select(g => g.Text));
        }
        await quiet.ExpectNothingAsync(TimeSpan.FromMilliseconds(200), e => e.IsIq() && e.Type() == "set");

        var item = (await b.GetRosterAsync()).RosterItem("romeo@localhost");
        Assert.NotNull(item);
        Assert.Equal("Romeo", item.GetAttribute("name"));
        Assert.Equal("Friends", item.GetChildText("group", Ns.Roster));
    }

    [Fact]
    public async Task Remove_is_pushed_and_the_item_is_gone()
    {
        var user = await server.CreateUserAsync();
        await using var client = await server.LoginAsync(user);
        await client.GetRosterAsync();
        await client.RequestAsync("<iq type='set' id='{id}'><query xmlns='jabber:iq:roster'><item jid='juliet@localhost'/></query></iq>");
        await client.ExpectRosterPushAsync("juliet@localhost");

        var removed = await client.RequestAsync("<iq type='set' id='{id}'><query xmlns='jabber:iq:roster'><item jid='juliet@localhost' subscription='remove'/></query></iq>");
        Assert.Equal("result", removed.Type());
        var push = await client.ExpectRosterPushAsync("juliet@localhost");
        Assert.Equal("remove", push.GetAttribute("subscription"));
        Assert.Null((await client.GetRosterAsync()).RosterItem("juliet@localhost"));

        var again = await client.RequestAsync("<iq type='set' id='{id}'><query xmlns='jabber:iq:roster'><item jid='juliet@localhost' subscription='remove'/></query></iq>");
        again.AssertError("item-not-found");
    }

    [Fact]
    public async Task Versioning_returns_an_empty_result_for_the_current_version_and_everything_otherwise()
    {
        var user = await server.CreateUserAsync();
        await using var client = await server.LoginAsync(user);
        Assert.NotNull(client.Features!.GetChild("ver", Ns.RosterVersioning));
        await client.RequestAsync("<iq type='set' id='{id}'><query xmlns='jabber:iq:roster'><item jid='a@localhost'/></query></iq>");
        var full = await client.GetRosterAsync(ver: "");
        var ver = full.GetChild("query", Ns.Roster)!.GetAttribute("ver");
        Assert.False(string.IsNullOrEmpty(ver));

        var same = await client.GetRosterAsync(ver);
        Assert.Equal("result", same.Type());
        Assert.Null(same.FirstElement);

        await client.RequestAsync("<iq type='set' id='{id}'><query xmlns='jabber:iq:roster'><item jid='b@localhost'/></query></iq>");
        var push = await client.ExpectAsync(e => e.IsIq() && e.Type() == "set" && e.GetChild("query", Ns.Roster)?.FirstElement?.GetAttribute("jid") == "b@localhost");
        Assert.NotEqual(ver, push.GetChild("query", Ns.Roster)!.GetAttribute("ver"));
        var changed = await client.GetRosterAsync(ver);
        Assert.NotNull(changed.RosterItem("a@localhost"));
        Assert.NotNull(changed.RosterItem("b@localhost"));
    }

    [Fact]
    public async Task Malformed_sets_are_refused()
    {
        var user = await server.CreateUserAsync();
        await using var client = await server.LoginAsync(user);
        var two = await client.RequestAsync("<iq type='set' id='{id}'><query xmlns='jabber:iq:roster'><item jid='a@localhost'/><item jid='b@localhost'/></query></iq>");
        two.AssertError("bad-request");
        var dupGroups = await client.RequestAsync("<iq type='set' id='{id}'><query xmlns='jabber:iq:roster'><item jid='a@localhost'><group>x</group><group>x</group></item></query></iq>");
        dupGroups.AssertError("bad-request");
        var badJid = await client.RequestAsync("<iq type='set' id='{id}'><query xmlns='jabber:iq:roster'><item jid='@@'/></query></iq>");
        badJid.AssertError("jid-malformed");
    }

    [Fact]
    public async Task Another_accounts_roster_is_forbidden()
    {
        var owner = await server.CreateUserAsync();
        await using var snoop = await server.LoginAsync(await server.CreateUserAsync());
        var get = await snoop.RequestAsync($"<iq type='get' id='{{id}}' to='{owner}@localhost'><query xmlns='jabber:iq:roster'/></iq>");
        get.AssertError("forbidden");
        var set = await snoop.RequestAsync($"<iq type='set' id='{{id}}' to='{owner}@localhost'><query xmlns='jabber:iq:roster'><item jid='x@localhost'/></query></iq>");
        set.AssertError("forbidden");
    }
}
