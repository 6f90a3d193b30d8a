using Candor.Server.Tests.Harness;
using Candor.Xml;
using Candor.Xmpp;

namespace Candor.Server.Tests.Muc;

/// <summary>
/// Room archives (XEP-0313 on the room JID) over real sockets: what occupants are told (status 170/171, disco#info),
/// queries and paging, who may read, moderation reaching the archive, history from it after a restart.
/// </summary>
public sealed class RoomArchiveTests(MucFixture server) : IClassFixture<MucFixture>
{
    private const string Mam = "urn:xmpp:mam:2";
    private const string Rsm = "http://jabber.org/protocol/rsm";

    /// <summary>Queries the room's archive, expecting <paramref name="expected"/> results; returns the forwarded messages (with their result ids) and the &lt;fin/&gt;.</summary>
    private static async Task<(List<(string Id, Element Message)> Items, Element Fin)> QueryAsync(XmppTestClient client, string room, int expected, string rsm = "")
    {
        var queryId = "q" + Guid.NewGuid().ToString("N")[..8];
        var iq = await client.RequestAsync($"<iq type='set' id='{{id}}' to='{room}'><query xmlns='{Mam}' queryid='{queryId}'>"
                                           + (rsm.Length > 0 ? $"<set xmlns='{Rsm}'>{rsm}</set>" : "") + "</query></iq>");
        Assert.True(iq.Type() == "result", iq.ToString());
        var items = new List<(string, Element)>();
        for (var i = 0; i < expected; i++)
        {
            var message = await client.ExpectStanzaAsync("message", m => m.GetChild("result", Mam)?.GetAttribute("queryid") == queryId);
            Assert.Equal(room, message.GetAttribute("from"));
            var result = message.GetChild("result", Mam)!;
            items.Add((result.GetAttribute("id")!, result.GetChild("forwarded", "urn:xmpp:forward:0")!.GetChild("message", Ns.Client)!));
        }
        await client.ExpectNothingAsync(TimeSpan.FromMilliseconds(200), m => m.GetChild("result", Mam)?.GetAttribute("queryid") == queryId);
        return (items, iq.GetChild("fin", Mam)!);
    }

    private static string StanzaIdOf(Element message, string room) =>
        message.Elements.Single(e => e.Is("stanza-id", "urn:xmpp:sid:0") && e.GetAttribute("by") == room).GetAttribute("id")!;

    private static string? InfoField(Element info, string var) =>
        info.GetChild("x", "jabber:x:data")!.Elements.FirstOrDefault(f => f.GetAttribute("var") == var)?.GetChildText("value", "jabber:x:data");

    [Fact]
    public async Task An_archived_room_tells_who_enters_and_pages_its_archive_under_the_stanza_ids_occupants_got()
    {
        var room = Muc.NewRoom("log");
        await using var owner = await server.CreateRoomAsync(room);
        await using var guest = await server.LoginAsync(await server.CreateUserAsync("guest"));
        await guest.EnterAsync(room, "guest");
        Assert.Contains(170, (await guest.ExpectSelfPresenceAsync(room, "guest")).StatusCodes());
        await guest.ExpectSubjectAsync(room);

        var info = (await guest.RequestAsync($"<iq type='get' id='{{id}}' to='{room}'><query xmlns='{Ns.DiscoInfo}'/></iq>")).FirstElement!;
        Assert.Contains(info.Elements, f => f.GetAttribute("var") == Mam);
        Assert.Equal("1", InfoField(info, "candor#roominfo_archived"));
        Assert.Equal("365", InfoField(info, "candor#roominfo_archiveretentiondays"));

        var ids = new List<string>();
        foreach (var body in new[] { "one", "two", "three" })
        {
            await owner.SendAsync($"<message to='{room}' type='groupchat' id='m-{body}'><body>{body}</body></message>");
            ids.Add(StanzaIdOf(await guest.ExpectMessageAsync(body), room));
        }
        var (first, fin) = await QueryAsync(guest, room, 2, "<max>2</max>");
        Assert.Equal(ids[..2], first.Select(i => i.Id));
        Assert.Equal(["one", "two"], first.Select(i => i.Message.GetChildText("body", Ns.Client)));
        Assert.All(first, i => Assert.Equal($"{room}/owner", i.Message.GetAttribute("from")));
        Assert.Equal("groupchat", first[0].Message.Type());
        Assert.NotNull(first[0].Message.GetChild("occupant-id", "urn:xmpp:occupant-id:0"));
        Assert.Null(fin.GetAttribute("complete"));
        Assert.Equal("3", fin.GetChild("set", Rsm)!.GetChildText("count", Rsm));
        var (rest, last) = await QueryAsync(guest, room, 1, $"<max>2</max><after>{ids[1]}</after>");
        Assert.Equal([ids[2]], rest.Select(i => i.Id));
        Assert.Equal("true", last.GetAttribute("complete"));
        var (backwards, _) = await QueryAsync(guest, room, 2, "<max>2</max><before/>");
        Assert.Equal(ids[1..], backwards.Select(i => i.Id));
    }

    [Fact]
    public async Task A_moderator_retracts_an_archived_message_and_the_archive_keeps_the_retraction_not_the_message()
    {
        var room = Muc.NewRoom("mod");
        await using var owner = await server.CreateRoomAsync(room);
        await owner.ConfigureAsync(room, ("muc#maxhistoryfetch", "0")); // the message is in the archive only
        await owner.SendAsync($"<message to='{room}' type='groupchat'><body>regrettable</body></message>");
        var stanzaId = StanzaIdOf(await owner.ExpectMessageAsync("regrettable"), room);
        var done = await owner.RequestAsync($"<iq type='set' id='{{id}}' to='{room}'><moderate id='{stanzaId}' xmlns='urn:xmpp:message-moderate:1'>"
                                            + "<retract xmlns='urn:xmpp:message-retract:1'/><reason>spam</reason></moderate></iq>");
        Assert.True(done.Type() == "result", done.ToString());
        var announced = await owner.ExpectStanzaAsync("message", m => m.GetChild("retract", "urn:xmpp:message-retract:1") is not null);

        var (items, _) = await QueryAsync(owner, room, 1);
        var (id, archived) = Assert.Single(items);
        Assert.Equal(StanzaIdOf(announced, room), id);
        Assert.Equal(stanzaId, archived.GetChild("retract", "urn:xmpp:message-retract:1")!.GetAttribute("id"));
        Assert.Equal("spam", archived.GetChild("retract", "urn:xmpp:message-retract:1")!.GetChildText("reason", "urn:xmpp:message-retract:1"));
        (await owner.RequestAsync($"<iq type='set' id='{{id}}' to='{room}'><moderate id='{stanzaId}' xmlns='urn:xmpp:message-moderate:1'>"
                                  + "<retract xmlns='urn:xmpp:message-retract:1'/></moderate></iq>")).AssertError("item-not-found");
    }

    [Fact]
    public async Task An_owner_turns_archiving_off_occupants_are_told_and_nothing_more_is_kept()
    {
        var room = Muc.NewRoom("off");
        await using var owner = await server.CreateRoomAsync(room);
        await using var guest = await server.LoginAsync(await server.CreateUserAsync("guest"));
        await guest.JoinAsync(room, "guest");
        await owner.ConfigureAsync(room, ("muc#roomconfig_enablearchiving", "0"));
        var notice = await guest.ExpectStanzaAsync("message", m => m.StatusCodes().Contains(104));
        Assert.Contains(171, notice.StatusCodes());

        await using var late = await server.LoginAsync(await server.CreateUserAsync("late"));
        await late.EnterAsync(room, "late");
        Assert.DoesNotContain(170, (await late.ExpectSelfPresenceAsync(room, "late")).StatusCodes());
        var info = (await late.RequestAsync($"<iq type='get' id='{{id}}' to='{room}'><query xmlns='{Ns.DiscoInfo}'/></iq>")).FirstElement!;
        Assert.DoesNotContain(info.Elements, f => f.GetAttribute("var") == Mam);
        Assert.Equal("0", InfoField(info, "candor#roominfo_archived"));

        await owner.SendAsync($"<message to='{room}' type='groupchat'><body>unlogged</body></message>");
        await guest.ExpectMessageAsync("unlogged");
        var (_, fin) = await QueryAsync(guest, room, 0);
        Assert.Equal("0", fin.GetChild("set", Rsm)!.GetChildText("count", Rsm));
    }

    [Fact]
    public async Task A_members_only_rooms_archive_is_closed_to_outsiders()
    {
        var room = Muc.NewRoom("closed");
        await using var owner = await server.CreateRoomAsync(room);
        await owner.ConfigureAsync(room, ("muc#roomconfig_membersonly", "1"));
        await using var outsider = await server.LoginAsync(await server.CreateUserAsync("outsider"));
        (await outsider.RequestAsync($"<iq type='set' id='{{id}}' to='{room}'><query xmlns='{Mam}'/></iq>")).AssertError("forbidden");
    }

    [Fact]
    public async Task A_persistent_rooms_history_and_archive_survive_a_restart_and_a_vanished_temporary_rooms_archive_does_not()
    {
        await using var fixture = await ServerFixture.StartAsync();
        var room = Muc.NewRoom("keep");
        var temporary = Muc.NewRoom("temp");
        var owner = await fixture.CreateUserAsync("owner");
        await using (var client = await fixture.LoginAsync(owner))
        {
            await client.JoinAsync(room, "boss");
            await client.ConfigureAsync(room, ("muc#roomconfig_persistentroom", "1"));
            await client.SendAsync($"<message to='{room}' type='groupchat' id='said'><body>before the restart</body></message>");
            await client.ExpectMessageAsync("before the restart");
            await client.JoinAsync(temporary, "boss");
            await client.SendAsync($"<message to='{temporary}' type='groupchat'><body>fleeting</body></message>");
            await client.ExpectMessageAsync("fleeting");
        }
        await fixture.RestartAsync();
        await using var again = await fixture.LoginAsync(owner);
        await again.EnterAsync(room, "boss");
        await again.ExpectSelfPresenceAsync(room, "boss");
        var history = await again.ExpectMessageAsync("before the restart");
        Assert.Equal(($"{room}/boss", "said"), (history.GetAttribute("from"), history.Id()));
        Assert.NotNull(history.GetChild("delay", Ns.Delay));
        var (items, _) = await QueryAsync(again, room, 1);
        Assert.Equal(StanzaIdOf(history, room), Assert.Single(items).Id);

        await again.JoinAsync(temporary, "boss");
        var (_, fin) = await QueryAsync(again, temporary, 0);
        Assert.Equal("0", fin.GetChild("set", Rsm)!.GetChildText("count", Rsm));
    }
}
