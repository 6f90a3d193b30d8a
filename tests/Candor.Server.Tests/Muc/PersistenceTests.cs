using Candor.Server.Tests.Harness;
using Candor.Xmpp;

namespace Candor.Server.Tests.Muc;

/// <summary>Persistent rooms keep their configuration, affiliations and subject across a restart; temporary ones do not.</summary>
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
        await memberClient.ExpectSelfPresenceAsync(room, "member");
        Assert.Equal("still here", (await memberClient.ExpectSubjectAsync(room)).GetChildText("subject", Ns.Client));

        (await again.RequestAsync($"<iq type='get' id='{{id}}' to='{temporary}'><query xmlns='{Ns.DiscoInfo}'/></iq>")).AssertError("item-not-found");
    }
}
