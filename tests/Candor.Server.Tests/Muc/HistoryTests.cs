using Candor.Server.Tests.Harness;
using Candor.Xml;
using Candor.Xmpp;

namespace Candor.Server.Tests.Muc;

/// <summary>
/// The history sent on entering (XEP-0045 §7.2.13): the &lt;history/&gt; attributes and the room's history length,
/// for an archived room (read from its archive) and one that is not (kept in memory); a restart keeps an archived room's.
/// </summary>
public sealed class HistoryTests(MucFixture server) : IClassFixture<MucFixture>
{
    /// <summary>Enters with the given &lt;history/&gt; and returns the bodies of the history messages, up to the subject.</summary>
    private static async Task<List<Element>> EnterForHistoryAsync(XmppTestClient client, string room, string nick, string history)
    {
        await client.EnterAsync(room, nick, history);
        await client.ExpectSelfPresenceAsync(room, nick);
        var messages = new List<Element>();
        while (true)
        {
            var message = await client.ExpectStanzaAsync("message", m => m.GetAttribute("from")!.StartsWith(room, StringComparison.Ordinal));
            if (message.GetChild("subject", Ns.Client) is not null && message.GetChild("body", Ns.Client) is null) return messages;
            Assert.NotNull(message.GetChild("delay", Ns.Delay));
            messages.Add(message);
        }
    }

    private static List<string?> Bodies(IEnumerable<Element> messages) => messages.Select(m => m.GetChildText("body", Ns.Client)).ToList();

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task Entering_gets_the_history_asked_for_within_the_rooms_length_and_without_retracted_messages(bool archived)
    {
        var room = Muc.NewRoom(archived ? "hist-a" : "hist-m");
        await using var owner = await server.CreateRoomAsync(room);
        await owner.ConfigureAsync(room, ("muc#roomconfig_enablearchiving", archived ? "1" : "0"));
        foreach (var body in new[] { "h1", "h2", "h3" }) await owner.SendMessageAsync(room, body, "groupchat");
        foreach (var body in new[] { "h1", "h2", "h3" }) await owner.ExpectMessageAsync(body);
        await Task.Delay(1100); // h4 and h5 are said at least a second later than h1-h3
        foreach (var body in new[] { "h4", "h5" }) await owner.SendMessageAsync(room, body, "groupchat");
        var h5 = await owner.ExpectMessageAsync("h5");

        await using var guest = await server.OnlineUserAsync("guest");
        var all = await EnterForHistoryAsync(guest, room, "all", "");
        Assert.Equal(["h1", "h2", "h3", "h4", "h5"], Bodies(all));
        Assert.All(all, m => Assert.Equal(($"{room}/owner", room), (m.GetAttribute("from"), m.GetChild("delay", Ns.Delay)!.GetAttribute("from"))));
        var stanzaId = h5.Elements.Single(e => e.Is("stanza-id", "urn:xmpp:sid:0") && e.GetAttribute("by") == room).GetAttribute("id");
        Assert.Equal(stanzaId, all[^1].Elements.Single(e => e.Is("stanza-id", "urn:xmpp:sid:0")).GetAttribute("id"));
        await guest.SendAsync($"<presence to='{room}/all' type='unavailable'/>");

        Assert.Equal(["h4", "h5"], Bodies(await EnterForHistoryAsync(guest, room, "two", "<history maxstanzas='2'/>")));
        await guest.SendAsync($"<presence to='{room}/two' type='unavailable'/>");
        Assert.Empty(await EnterForHistoryAsync(guest, room, "none", "<history maxchars='0'/>"));
        await guest.SendAsync($"<presence to='{room}/none' type='unavailable'/>");
        // maxchars counts complete stanzas: room for one and a half gets one.
        var oneStanza = ElementWriter.ToXmlString(all[^1]).Length;
        Assert.Equal(["h5"], Bodies(await EnterForHistoryAsync(guest, room, "chars", $"<history maxchars='{oneStanza * 3 / 2}'/>")));
        await guest.SendAsync($"<presence to='{room}/chars' type='unavailable'/>");
        var since = all[3].GetChild("delay", Ns.Delay)!.GetAttribute("stamp");
        Assert.Equal(["h4", "h5"], Bodies(await EnterForHistoryAsync(guest, room, "since", $"<history since='{since}'/>")));
        await guest.SendAsync($"<presence to='{room}/since' type='unavailable'/>");
        Assert.Equal(["h1", "h2", "h3", "h4", "h5"], Bodies(await EnterForHistoryAsync(guest, room, "hour", "<history seconds='3600'/>")));
        await guest.SendAsync($"<presence to='{room}/hour' type='unavailable'/>");

        // The room's length caps what anyone gets; a retracted message is no longer in it.
        await owner.ConfigureAsync(room, ("muc#maxhistoryfetch", "3"));
        var retracted = await owner.RequestAsync($"<iq type='set' id='{{id}}' to='{room}'><moderate id='{stanzaId}' xmlns='urn:xmpp:message-moderate:1'>"
                                                 + "<retract xmlns='urn:xmpp:message-retract:1'/></moderate></iq>");
        Assert.True(retracted.Type() == "result", retracted.ToString());
        var capped = Bodies(await EnterForHistoryAsync(guest, room, "capped", "<history maxstanzas='10'/>"));
        // Memory keeps the room's last three of which one was retracted; the archive gives the last three said.
        Assert.Equal(archived ? ["h2", "h3", "h4"] : ["h3", "h4"], capped);
    }

    [Fact]
    public async Task An_archived_rooms_history_after_a_restart_honours_the_request()
    {
        await using var fixture = await ServerFixture.StartAsync();
        var room = Muc.NewRoom("restart");
        var owner = await fixture.CreateUserAsync("owner");
        await using (var client = await fixture.LoginAsync(owner))
        {
            await client.JoinAsync(room, "boss");
            await client.ConfigureAsync(room, ("muc#roomconfig_persistentroom", "1"));
            foreach (var body in new[] { "first", "second", "third" }) await client.SendMessageAsync(room, body, "groupchat");
            await client.ExpectMessageAsync("third");
        }
        await fixture.RestartAsync();
        await using var again = await fixture.LoginAsync(owner);
        Assert.Equal(["second", "third"], Bodies(await EnterForHistoryAsync(again, room, "boss", "<history maxstanzas='2'/>")));
        await using var other = await fixture.OnlineUserAsync("other");
        Assert.Equal(["first", "second", "third"], Bodies(await EnterForHistoryAsync(other, room, "other", "")));
    }
}
