using Candor.Server.Tests.Harness;
using Candor.Xmpp;

namespace Candor.Server.Tests.Muc;

/// <summary>Persistent rooms keep their configuration, affiliations, hats and subject across a restart; temporary ones do not.</summary>
public sealed class PersistenceTests
{
    [Fact]
    public async Task A_persistent_room_survives_a_restart_and_a_temporary_one_does_not()
    {
        await using var server = await ServerFixture.StartAsync();
        var room = Muc.NewRoom("keep");
        var temporary = Muc.NewRoom("temp");
        var owner = await server.CreateUserAsync("owner");
        var member = await server.CreateUserAsync("member");
        await using (var client = await server.LoginAsync(owner))
        {
            await client.JoinAsync(room, "boss");
            await client.ConfigureAsync(room, ("muc#roomconfig_persistentroom", "1"), ("muc#roomconfig_roomname", "Kept"),
                ("muc#roomconfig_membersonly", "1"));
            await client.AdminAsync(room, $"<item jid='{ServerFixture.JidOf(member)}' affiliation='member'/>");
            var hat = await client.RequestAsync($"<iq type='set' id='{{id}}' to='{room}'><command xmlns='http://jabber.org/protocol/commands' "
                + "action='execute' node='urn:xmpp:hats:commands:don'><x xmlns='jabber:x:data' type='submit'>"
                + $"<field var='accountjid'><value>{ServerFixture.JidOf(member)}</value></field>"
                + "<field var='hat'><value>urn:example:hats#scribe</value></field><field var='title'><value>Scribe</value></field></x></command></iq>");
            Assert.Equal("result", hat.Type());
            await client.SendAsync($"<message to='{room}' type='groupchat'><subject>still here</subject></message>");
            await client.ExpectSubjectAsync(room);
            await client.JoinAsync(temporary, "boss");
        }
        await server.RestartAsync();
        await using var again = await server.LoginAsync(owner);
        var info = (await again.RequestAsync($"<iq type='get' id='{{id}}' to='{room}'><query xmlns='{Ns.DiscoInfo}'/></iq>")).FirstElement!;
        Assert.Equal("Kept", info.GetChild("identity", Ns.DiscoInfo)!.GetAttribute("name"));
        Assert.Contains(info.Elements, f => f.GetAttribute("var") == "muc_membersonly");
        var members = await again.AdminAsync(room, "<item affiliation='member'/>", "get");
        Assert.Equal(ServerFixture.JidOf(member).ToString(), members.FirstElement!.GetChild("item", Muc.Admin)!.GetAttribute("jid"));

        await using var memberClient = await server.LoginAsync(member);
        await memberClient.EnterAsync(room, "member");
        var self = await memberClient.ExpectSelfPresenceAsync(room, "member");
        Assert.Equal("Scribe", self.GetChild("hats", "urn:xmpp:hats:0")?.GetChild("hat", "urn:xmpp:hats:0")?.GetAttribute("title"));
        Assert.Equal("still here", (await memberClient.ExpectSubjectAsync(room)).GetChildText("subject", Ns.Client));

        (await again.RequestAsync($"<iq type='get' id='{{id}}' to='{temporary}'><query xmlns='{Ns.DiscoInfo}'/></iq>")).AssertError("item-not-found");
    }
}
