using Candor.Client;
using Candor.Server.Tests.Harness;
using Candor.Xml;
using Candor.Xmpp;

namespace Candor.Server.Tests;

/// <summary>RFC 6121 §2 roster management with XEP-0237 versioning.</summary>
public class RosterTests(ServerFixture server) : IClassFixture<ServerFixture>
{
    private static readonly Jid Romeo = Jid.Parse("romeo@localhost");
    private static readonly Jid Juliet = Jid.Parse("juliet@localhost");

    private static Task<Element> GetVersionedRosterAsync(XmppClient client, string ver) =>
        client.IqAsync($"<iq type='get'><query xmlns='jabber:iq:roster' ver='{ver}'/></iq>");

    [Fact]
    public async Task Set_is_pushed_to_interested_resources_only_and_returned_by_get()
    {
        var user = await server.CreateUserAsync();
        await using var a = await server.ClientAsync(user, "a");
        await using var b = await server.ClientAsync(user, "b");
        await using var quiet = await server.ClientAsync(user, "quiet");
        Assert.Empty(await a.GetRosterAsync());
        await b.GetRosterAsync();

        await a.SetRosterItemAsync(Romeo, "Romeo", ["Friends"]);

        foreach (var client in new[] { a, b })
        {
            var pushed = (await client.ExpectRosterPushAsync(Romeo)).Item;
            Assert.Equal("Romeo", pushed.Name);
            Assert.Equal("none", pushed.Subscription);
            Assert.Equal(["Friends"], pushed.Groups);
        }
        await quiet.ExpectNoStanzaAsync(TimeSpan.FromMilliseconds(200), e => e.IsIq() && e.Type() == "set");

        var item = (await b.GetRosterAsync()).SingleOrDefault(i => i.Jid == Romeo);
        Assert.NotNull(item);
        Assert.Equal("Romeo", item.Name);
        Assert.Equal(["Friends"], item.Groups);
    }

    [Fact]
    public async Task Remove_is_pushed_and_the_item_is_gone()
    {
        var user = await server.CreateUserAsync();
        await using var client = await server.ClientAsync(user);
        await client.GetRosterAsync();
        await client.SetRosterItemAsync(Juliet);
        await client.ExpectRosterPushAsync(Juliet);

        await client.RemoveRosterItemAsync(Juliet);
        var push = await client.ExpectRosterPushAsync(Juliet);
        Assert.True(push.Removed);
        Assert.Equal("remove", push.Item.Subscription);
        Assert.DoesNotContain(await client.GetRosterAsync(), i => i.Jid == Juliet);

        var again = await Assert.ThrowsAsync<XmppStanzaException>(() => client.RemoveRosterItemAsync(Juliet));
        again.Stanza.AssertError("item-not-found");
    }

    [Fact]
    public async Task Versioning_returns_an_empty_result_for_the_current_version_and_everything_otherwise()
    {
        var user = await server.CreateUserAsync();
        await using var client = await server.ClientAsync(user);
        Assert.NotNull(client.StreamFeatures!.GetChild("ver", Ns.RosterVersioning));
        await client.SetRosterItemAsync(Jid.Parse("a@localhost"));
        var full = await GetVersionedRosterAsync(client, "");
        var ver = full.GetChild("query", Ns.Roster)!.GetAttribute("ver");
        Assert.False(string.IsNullOrEmpty(ver));

        var same = await GetVersionedRosterAsync(client, ver);
        Assert.Equal("result", same.Type());
        Assert.Null(same.FirstElement);

        await client.SetRosterItemAsync(Jid.Parse("b@localhost"));
        var push = await client.ExpectRosterPushAsync(Jid.Parse("b@localhost"));
        Assert.NotEqual(ver, push.Stanza.GetChild("query", Ns.Roster)!.GetAttribute("ver"));
        var changed = await GetVersionedRosterAsync(client, ver);
        Assert.NotNull(changed.RosterItem("a@localhost"));
        Assert.NotNull(changed.RosterItem("b@localhost"));
    }

    [Fact]
    public async Task Malformed_sets_are_refused()
    {
        var user = await server.CreateUserAsync();
        await using var client = await server.ClientAsync(user);
        (await client.IqErrorAsync("<iq type='set'><query xmlns='jabber:iq:roster'><item jid='a@localhost'/><item jid='b@localhost'/></query></iq>"))
            .AssertError("bad-request");
        (await client.IqErrorAsync("<iq type='set'><query xmlns='jabber:iq:roster'><item jid='a@localhost'><group>x</group><group>x</group></item></query></iq>"))
            .AssertError("bad-request");
        (await client.IqErrorAsync("<iq type='set'><query xmlns='jabber:iq:roster'><item jid='@@'/></query></iq>"))
            .AssertError("jid-malformed");
    }

    [Fact]
    public async Task Another_accounts_roster_is_forbidden()
    {
        var owner = await server.CreateUserAsync();
        await using var snoop = await server.ClientAsync(await server.CreateUserAsync());
        (await snoop.IqErrorAsync($"<iq type='get' to='{owner}@localhost'><query xmlns='jabber:iq:roster'/></iq>"))
            .AssertError("forbidden");
        (await snoop.IqErrorAsync($"<iq type='set' to='{owner}@localhost'><query xmlns='jabber:iq:roster'><item jid='x@localhost'/></query></iq>"))
            .AssertError("forbidden");
    }
}
