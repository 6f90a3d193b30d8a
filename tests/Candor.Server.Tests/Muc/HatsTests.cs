using Candor.Server.Tests.Harness;
using Candor.Xml;
using Candor.Xmpp;

namespace Candor.Server.Tests.Muc;

/// <summary>XEP-0317 Hats: assigned and removed with the room's ad-hoc commands, shown in the occupants' presence.</summary>
public sealed class HatsTests(MucFixture server) : IClassFixture<MucFixture>
{
    private const string Hats = "urn:xmpp:hats:0";
    private const string Commands = "http://jabber.org/protocol/commands";
    private const string Assistant = "http://tech.example.edu/hats#TeacherAssistant";

    private static Task<Element> CommandAsync(XmppTestClient client, string room, string node, string inner = "", string? sessionId = null) =>
        client.RequestAsync($"<iq type='set' id='{{id}}' to='{room}'><command xmlns='{Commands}' action='execute' node='urn:xmpp:hats:commands:{node}'"
                            + (sessionId is null ? "" : $" sessionid='{sessionId}'") + $">{inner}</command></iq>");

    private static string Form(string account, string hat, string? title = null) =>
        "<x xmlns='jabber:x:data' type='submit'><field type='hidden' var='FORM_TYPE'><value>urn:xmpp:hats:commands</value></field>"
        + $"<field var='accountjid'><value>{account}</value></field><field var='hat'><value>{hat}</value></field>"
        + (title is null ? "" : $"<field var='title'><value>{title}</value></field>") + "</x>";

    private static List<(string? Uri, string? Title)> HatsIn(Element presence) =>
        presence.GetChild("hats", Hats)?.Elements.Where(e => e.Is("hat", Hats)).Select(e => (e.GetAttribute("uri"), e.GetAttribute("title"))).ToList() ?? [];

    [Fact]
    public async Task An_owner_puts_a_hat_on_a_member_everyone_sees_it_and_it_comes_off_again()
    {
        var room = Muc.NewRoom("hats");
        await using var owner = await server.CreateRoomAsync(room);
        var terryUser = await server.CreateUserAsync("terry");
        await using var terry = await server.LoginAsync(terryUser);
        await terry.JoinAsync(room, "terry");
        await owner.ExpectStanzaAsync("presence", p => p.GetAttribute("from") == $"{room}/terry");

        var info = await owner.RequestAsync($"<iq type='get' id='{{id}}' to='{room}'><query xmlns='{Ns.DiscoInfo}'/></iq>");
        var features = info.GetChild("query", Ns.DiscoInfo)!.Elements.Where(e => e.Name == "feature").Select(e => e.GetAttribute("var")).ToList();
        Assert.Contains(Hats, features);
        Assert.Contains(Commands, features);
        var items = await owner.RequestAsync($"<iq type='get' id='{{id}}' to='{room}'><query xmlns='{Ns.DiscoItems}' node='{Commands}'/></iq>");
        Assert.Equal(["urn:xmpp:hats:commands:don", "urn:xmpp:hats:commands:doff"],
            items.GetChild("query", Ns.DiscoItems)!.Elements.Select(e => e.GetAttribute("node")));

        // Executed without a form: the form to fill, with a session id, as XEP-0317 §3.2 shows.
        var first = await CommandAsync(owner, room, "don");
        var command = first.GetChild("command", Commands)!;
        Assert.Equal("executing", command.GetAttribute("status"));
        var form = command.GetChild("x", Ns.DataForms)!;
        Assert.Equal(["FORM_TYPE", "accountjid", "hat", "title"], form.Elements.Where(e => e.Name == "field").Select(e => e.GetAttribute("var")));
        var sessionId = command.GetAttribute("sessionid")!;

        var terryJid = ServerFixture.JidOf(terryUser).ToString();
        var done = await CommandAsync(owner, room, "don", Form(terryJid, Assistant, "Teacher's Assistant"), sessionId);
        Assert.Equal(("completed", sessionId), (done.GetChild("command", Commands)!.GetAttribute("status"), done.GetChild("command", Commands)!.GetAttribute("sessionid")));
        var seen = await owner.ExpectStanzaAsync("presence", p => p.GetAttribute("from") == $"{room}/terry" && p.GetChild("hats", Hats) is not null);
        Assert.Equal([(Assistant, "Teacher's Assistant")], HatsIn(seen));
        var own = await terry.ExpectStanzaAsync("presence", p => p.GetAttribute("from") == $"{room}/terry" && p.GetChild("hats", Hats) is not null);
        Assert.Contains(110, own.StatusCodes());

        // Someone entering later sees the hat in the presence the room sends on entering.
        await using var late = await server.OnlineUserAsync("late");
        await late.EnterAsync(room, "late");
        var terryOnEntering = await late.ExpectStanzaAsync("presence", p => p.GetAttribute("from") == $"{room}/terry");
        Assert.Equal([(Assistant, "Teacher's Assistant")], HatsIn(terryOnEntering));
        await late.ExpectSelfPresenceAsync(room, "late");

        // A second hat, then the first comes off in one step (the form sent with execute, as §3.3 does).
        Assert.Equal("result", (await CommandAsync(owner, room, "don", Form(terryJid, "urn:example:hats#scribe", "Scribe"))).Type());
        var two = await late.ExpectStanzaAsync("presence", p => p.GetAttribute("from") == $"{room}/terry" && HatsIn(p).Count == 2);
        Assert.Equal(["Teacher's Assistant", "Scribe"], HatsIn(two).Select(h => h.Title));
        Assert.Equal("result", (await CommandAsync(owner, room, "doff", Form(terryJid, Assistant))).Type());
        var one = await late.ExpectStanzaAsync("presence", p => p.GetAttribute("from") == $"{room}/terry" && HatsIn(p).Count == 1);
        Assert.Equal("urn:example:hats#scribe", HatsIn(one)[0].Uri);
        (await CommandAsync(owner, room, "doff", Form(terryJid, Assistant))).AssertError("item-not-found");
    }

    [Fact]
    public async Task Only_admins_and_owners_assign_hats_and_nobody_puts_one_on_in_their_own_presence()
    {
        var room = Muc.NewRoom("hats");
        await using var owner = await server.CreateRoomAsync(room);
        var user = await server.CreateUserAsync("bold");
        await using var bold = await server.LoginAsync(user);
        // A hat in the client's own presence is not the room's: it is dropped.
        await bold.EnterAsync(room, "bold", "");
        await bold.SendAsync($"<presence to='{room}/bold'><hats xmlns='{Hats}'><hat uri='urn:example:hats#boss' title='Boss'/></hats></presence>");
        var shown = await owner.ExpectStanzaAsync("presence", p => p.GetAttribute("from") == $"{room}/bold");
        Assert.Null(shown.GetChild("hats", Hats));

        (await CommandAsync(bold, room, "don")).AssertError("forbidden");
        (await CommandAsync(bold, room, "don", Form(ServerFixture.JidOf(user).ToString(), "urn:example:hats#boss", "Boss"))).AssertError("forbidden");
        var items = await bold.RequestAsync($"<iq type='get' id='{{id}}' to='{room}'><query xmlns='{Ns.DiscoItems}' node='{Commands}'/></iq>");
        Assert.Empty(items.GetChild("query", Ns.DiscoItems)!.Elements);

        (await CommandAsync(owner, room, "don", Form(ServerFixture.JidOf(user).ToString(), "not a uri", "Boss"))).AssertError("bad-request");
        (await CommandAsync(owner, room, "unknown")).AssertError("item-not-found");
        var cancelled = await owner.RequestAsync($"<iq type='set' id='{{id}}' to='{room}'><command xmlns='{Commands}' action='cancel' node='urn:xmpp:hats:commands:don' sessionid='s1'/></iq>");
        Assert.Equal("canceled", cancelled.GetChild("command", Commands)!.GetAttribute("status"));
    }
}
