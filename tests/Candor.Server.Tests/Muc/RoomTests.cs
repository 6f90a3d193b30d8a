using Candor.Server.Tests.Harness;
using Candor.Xmpp;

namespace Candor.Server.Tests.Muc;

/// <summary>XEP-0045 core over real sockets: the service in disco, creating rooms, entering, history, nicks, messages, leaving, destruction.</summary>
public sealed class RoomTests(MucFixture server) : IClassFixture<MucFixture>
{
    [Fact]
    public async Task The_server_lists_the_chat_service_which_says_it_is_a_text_conference()
    {
        await using var client = await server.OnlineUserAsync();
        var items = await client.RequestAsync("<iq type='get' id='{id}' to='localhost'><query xmlns='http://jabber.org/protocol/disco#items'/></iq>");
        Assert.Contains(items.FirstElement!.Elements, i => i.GetAttribute("jid") == MucFixture.Service);
        var info = await client.RequestAsync($"<iq type='get' id='{{id}}' to='{MucFixture.Service}'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>");
        var identity = info.FirstElement!.GetChild("identity", Ns.DiscoInfo)!;
        Assert.Equal(("conference", "text"), (identity.GetAttribute("category"), identity.GetAttribute("type")));
        Assert.Contains(info.FirstElement!.Elements, f => f.GetAttribute("var") == Muc.Ns);
    }

    [Fact]
    public async Task A_new_room_is_locked_until_its_owner_accepts_the_instant_configuration()
    {
        var room = Muc.NewRoom();
        await using var owner = await server.LoginAsync(await server.CreateUserAsync("owner"));
        await owner.EnterAsync(room, "boss");
        var self = await owner.ExpectSelfPresenceAsync(room, "boss");
        Assert.Equal([110, 170, 201], self.StatusCodes().Order()); // 170: rooms are archived by default (MucArchiveByDefault)
        Assert.Equal(("owner", "moderator"), (self.Item()!.GetAttribute("affiliation"), self.Item()!.GetAttribute("role")));

        await using var guest = await server.LoginAsync(await server.CreateUserAsync("guest"));
        await guest.EnterAsync(room, "guest");
        (await guest.ExpectStanzaAsync("presence", p => p.Type() == "error")).AssertError("item-not-found", "cancel");

        await owner.ConfigureAsync(room);
        await guest.EnterAsync(room, "guest");
        var ownerSeen = await guest.ExpectStanzaAsync("presence", p => p.GetAttribute("from") == $"{room}/boss");
        Assert.Null(ownerSeen.Item()!.GetAttribute("jid")); // semi-anonymous by default: only moderators see real JIDs
        await guest.ExpectSelfPresenceAsync(room, "guest");
        var seen = await owner.ExpectStanzaAsync("presence", p => p.GetAttribute("from") == $"{room}/guest");
        Assert.Equal(("none", "participant", guest.Full), (seen.Item()!.GetAttribute("affiliation"), seen.Item()!.GetAttribute("role"), seen.Item()!.GetAttribute("jid")));
    }

    [Fact]
    public async Task A_reserved_room_is_configured_with_the_roomconfig_form_and_says_so_in_disco()
    {
        var room = Muc.NewRoom();
        await using var owner = await server.LoginAsync(await server.CreateUserAsync("owner"));
        await owner.EnterAsync(room, "boss");
        await owner.ExpectSelfPresenceAsync(room, "boss");
        var form = await owner.RequestAsync($"<iq type='get' id='{{id}}' to='{room}'><query xmlns='{Muc.Owner}'/></iq>");
        var x = form.FirstElement!.GetChild("x", Ns.DataForms)!;
        Assert.Equal("form", x.GetAttribute("type"));
        Assert.Contains(x.Elements, f => f.GetAttribute("var") == "muc#roomconfig_membersonly");

        await owner.ConfigureAsync(room, ("muc#roomconfig_roomname", "Coffee"), ("muc#roomconfig_roomdesc", "Beans"),
            ("muc#roomconfig_whois", "anyone"), ("muc#roomconfig_moderatedroom", "1"));
        var info = (await owner.RequestAsync($"<iq type='get' id='{{id}}' to='{room}'><query xmlns='{Ns.DiscoInfo}'/></iq>")).FirstElement!;
        Assert.Equal("Coffee", info.GetChild("identity", Ns.DiscoInfo)!.GetAttribute("name"));
        var features = info.Elements.Where(e => e.Name == "feature").Select(e => e.GetAttribute("var")).ToList();
        Assert.Contains("muc_nonanonymous", features);
        Assert.Contains("muc_moderated", features);
        Assert.Contains("muc_temporary", features);
        var roomInfo = info.GetChild("x", Ns.DataForms)!;
        Assert.Contains(roomInfo.Elements, f => f.GetAttribute("var") == "muc#roominfo_description" && f.GetChildText("value", Ns.DataForms) == "Beans");

        var bad = await owner.RequestAsync($"<iq type='set' id='{{id}}' to='{room}'><query xmlns='{Muc.Owner}'><x xmlns='jabber:x:data' type='submit'>"
                                           + "<field var='muc#roomconfig_whois'><value>everybody</value></field></x></query></iq>");
        bad.AssertError("not-acceptable");

        await using var guest = await server.OnlineUserAsync("guest");
        var notOwner = await guest.RequestAsync($"<iq type='get' id='{{id}}' to='{room}'><query xmlns='{Muc.Owner}'/></iq>");
        notOwner.AssertError("forbidden");
    }

    [Fact]
    public async Task Entering_gives_the_others_presence_then_history_as_asked_then_the_subject()
    {
        var room = Muc.NewRoom();
        await using var owner = await server.CreateRoomAsync(room);
        await owner.ConfigureAsync(room, ("muc#roomconfig_whois", "anyone"));
        for (var i = 1; i <= 3; i++) await owner.SendMessageAsync(room, "line " + i, "groupchat");
        await owner.SendAsync($"<message to='{room}' type='groupchat'><subject>Today: beans</subject></message>");
        await owner.ExpectSubjectAsync(room);

        await using var two = await server.LoginAsync(await server.CreateUserAsync("two"));
        await two.EnterAsync(room, "two", "<history maxstanzas='2'/>");
        var ownerPresence = await two.ExpectStanzaAsync("presence", p => p.GetAttribute("from") == $"{room}/owner");
        Assert.Equal(owner.Full, ownerPresence.Item()!.GetAttribute("jid")); // non-anonymous
        var self = await two.ExpectSelfPresenceAsync(room, "two");
        Assert.Contains(100, self.StatusCodes());
        var first = await two.ExpectStanzaAsync("message");
        var second = await two.ExpectStanzaAsync("message");
        var subject = await two.ExpectStanzaAsync("message");
        Assert.Equal(["line 2", "line 3"], new[] { first, second }.Select(m => m.GetChildText("body", Ns.Client)));
        Assert.All(new[] { first, second }, m => Assert.Equal(room, m.GetChild("delay", Ns.Delay)!.GetAttribute("from")));
        Assert.Equal($"{room}/owner", first.GetAttribute("from"));
        Assert.Equal("Today: beans", subject.GetChildText("subject", Ns.Client));
        Assert.Equal($"{room}/owner", subject.GetAttribute("from"));

        await using var three = await server.LoginAsync(await server.CreateUserAsync("three"));
        await three.EnterAsync(room, "three", "<history maxchars='0'/>");
        await three.ExpectSelfPresenceAsync(room, "three");
        Assert.NotNull((await three.ExpectStanzaAsync("message")).GetChild("subject", Ns.Client));

        await using var four = await server.LoginAsync(await server.CreateUserAsync("four"));
        await four.EnterAsync(room, "four", $"<history since='{XmppTime.Format(DateTimeOffset.UtcNow.AddMinutes(5))}'/>");
        await four.ExpectSelfPresenceAsync(room, "four");
        Assert.NotNull((await four.ExpectStanzaAsync("message")).GetChild("subject", Ns.Client));

        await using var five = await server.LoginAsync(await server.CreateUserAsync("five"));
        await five.EnterAsync(room, "five", "<history seconds='3600'/>");
        await five.ExpectSelfPresenceAsync(room, "five");
        Assert.Equal("line 1", (await five.ExpectStanzaAsync("message")).GetChildText("body", Ns.Client));
    }

    [Fact]
    public async Task A_nick_in_use_is_a_conflict_and_a_nick_change_is_announced_with_303()
    {
        var room = Muc.NewRoom();
        await using var owner = await server.CreateRoomAsync(room);
        await using var other = await server.LoginAsync(await server.CreateUserAsync("other"));
        await other.EnterAsync(room, "owner");
        var error = await other.ExpectStanzaAsync("presence", p => p.Type() == "error");
        error.AssertError("conflict", "cancel");
        Assert.Equal($"{room}/owner", error.GetAttribute("from"));

        await other.JoinAsync(room, "other");
        await other.SendAsync($"<presence to='{room}/renamed'/>");
        var gone = await owner.ExpectStanzaAsync("presence", p => p.GetAttribute("from") == $"{room}/other" && p.Type() == "unavailable");
        Assert.Contains(303, gone.StatusCodes());
        Assert.Equal("renamed", gone.Item()!.GetAttribute("nick"));
        await owner.ExpectStanzaAsync("presence", p => p.GetAttribute("from") == $"{room}/renamed" && p.Type() is null);
        var own = await other.ExpectStanzaAsync("presence", p => p.GetAttribute("from") == $"{room}/other" && p.Type() == "unavailable");
        Assert.Equal([110, 303], own.StatusCodes().Order());

        await other.SendAsync($"<presence to='{room}/owner'/>");
        (await other.ExpectStanzaAsync("presence", p => p.Type() == "error")).AssertError("conflict");
    }

    [Fact]
    public async Task Groupchat_reaches_every_occupant_and_others_are_refused()
    {
        var room = Muc.NewRoom();
        await using var owner = await server.CreateRoomAsync(room);
        await using var two = await server.LoginAsync(await server.CreateUserAsync("two"));
        await two.JoinAsync(room, "two");

        await two.SendAsync($"<message to='{room}' type='groupchat' id='g1'><body>hello all</body><occupant-id xmlns='urn:xmpp:occupant-id:0' id='forged'/></message>");
        var atOwner = await owner.ExpectMessageAsync("hello all");
        var echo = await two.ExpectMessageAsync("hello all");
        foreach (var m in new[] { atOwner, echo })
        {
            Assert.Equal(($"{room}/two", "groupchat", "g1"), (m.GetAttribute("from"), m.Type(), m.Id()));
            Assert.NotEqual("forged", m.GetChild("occupant-id", "urn:xmpp:occupant-id:0")!.GetAttribute("id"));
        }
        Assert.Equal(owner.Full, atOwner.GetAttribute("to"));

        await using var outsider = await server.OnlineUserAsync("outsider");
        await outsider.SendMessageAsync(room, "let me in", "groupchat");
        (await outsider.ExpectStanzaAsync("message", m => m.Type() == "error")).AssertError("not-acceptable");
        await outsider.SendMessageAsync("nosuchroom@" + MucFixture.Service, "anyone?", "groupchat");
        (await outsider.ExpectStanzaAsync("message", m => m.Type() == "error")).AssertError("item-not-found");
        await owner.ExpectNothingAsync(TimeSpan.FromMilliseconds(200), m => m.GetChildText("body", Ns.Client) is "let me in");
    }

    [Fact]
    public async Task The_subject_is_for_moderators_unless_the_room_lets_occupants_change_it()
    {
        var room = Muc.NewRoom();
        await using var owner = await server.CreateRoomAsync(room);
        await using var two = await server.LoginAsync(await server.CreateUserAsync("two"));
        await two.JoinAsync(room, "two");
        await two.SendAsync($"<message to='{room}' type='groupchat'><subject>mine</subject></message>");
        (await two.ExpectStanzaAsync("message", m => m.Type() == "error")).AssertError("forbidden");

        await owner.ConfigureAsync(room, ("muc#roomconfig_changesubject", "1"));
        Assert.Contains(104, (await two.ExpectStanzaAsync("message", m => m.StatusCodes().Count > 0)).StatusCodes());
        await two.SendAsync($"<message to='{room}' type='groupchat'><subject>mine</subject></message>");
        var change = await owner.ExpectSubjectAsync(room);
        Assert.Equal(("mine", $"{room}/two"), (change.GetChildText("subject", Ns.Client), change.GetAttribute("from")));
    }

    [Fact]
    public async Task Private_messages_carry_the_muc_user_marker_and_cannot_be_groupchat()
    {
        var room = Muc.NewRoom();
        await using var owner = await server.CreateRoomAsync(room);
        await using var two = await server.LoginAsync(await server.CreateUserAsync("two"));
        await two.JoinAsync(room, "two");

        await two.SendMessageAsync($"{room}/owner", "psst");
        var pm = await owner.ExpectMessageAsync("psst");
        Assert.Equal(($"{room}/two", "chat"), (pm.GetAttribute("from"), pm.Type()));
        Assert.NotNull(pm.GetChild("x", Muc.User));

        await two.SendMessageAsync($"{room}/owner", "wrong", "groupchat");
        (await two.ExpectStanzaAsync("message", m => m.Type() == "error")).AssertError("bad-request");
        await two.SendMessageAsync($"{room}/nobody", "hello?");
        (await two.ExpectStanzaAsync("message", m => m.Type() == "error")).AssertError("item-not-found");
    }

    [Fact]
    public async Task Leaving_is_announced_and_an_empty_temporary_room_vanishes()
    {
        var room = Muc.NewRoom();
        await using var owner = await server.CreateRoomAsync(room);
        await using (var two = await server.LoginAsync(await server.CreateUserAsync("two")))
        {
            await two.JoinAsync(room, "two");
            await two.SendAsync($"<presence to='{room}/two' type='unavailable'/>");
            var own = await two.ExpectStanzaAsync("presence", p => p.Type() == "unavailable");
            Assert.Contains(110, own.StatusCodes());
            await owner.ExpectStanzaAsync("presence", p => p.GetAttribute("from") == $"{room}/two" && p.Type() == "unavailable");
            await two.JoinAsync(room, "two");
        }
        // the session ended without leaving: the room says so all the same
        await owner.ExpectStanzaAsync("presence", p => p.GetAttribute("from") == $"{room}/two" && p.Type() == "unavailable");

        await owner.SendAsync($"<presence to='{room}/owner' type='unavailable'/>");
        await owner.ExpectStanzaAsync("presence", p => p.Type() == "unavailable");
        var info = await owner.RequestAsync($"<iq type='get' id='{{id}}' to='{room}'><query xmlns='{Ns.DiscoInfo}'/></iq>");
        info.AssertError("item-not-found");
    }

    [Fact]
    public async Task Destroying_a_room_sends_everyone_the_alternate_venue()
    {
        var room = Muc.NewRoom();
        await using var owner = await server.CreateRoomAsync(room);
        await using var two = await server.LoginAsync(await server.CreateUserAsync("two"));
        await two.JoinAsync(room, "two");
        var result = await owner.RequestAsync($"<iq type='set' id='{{id}}' to='{room}'><query xmlns='{Muc.Owner}'>"
                                              + $"<destroy jid='elsewhere@{MucFixture.Service}'><reason>moved</reason></destroy></query></iq>");
        Assert.Equal("result", result.Type());
        var gone = await two.ExpectStanzaAsync("presence", p => p.Type() == "unavailable");
        var destroy = gone.GetChild("x", Muc.User)!.GetChild("destroy", Muc.User)!;
        Assert.Equal(($"elsewhere@{MucFixture.Service}", "moved"), (destroy.GetAttribute("jid"), destroy.GetChildText("reason", Muc.User)));
        await two.SendMessageAsync(room, "still here?", "groupchat");
        (await two.ExpectStanzaAsync("message", m => m.Type() == "error")).AssertError("item-not-found");
    }

    [Fact]
    public async Task Presence_to_the_room_without_a_nick_is_jid_malformed_and_a_self_ping_answers()
    {
        var room = Muc.NewRoom();
        await using var owner = await server.CreateRoomAsync(room);
        await owner.SendAsync($"<presence to='{room}'/>");
        (await owner.ExpectStanzaAsync("presence", p => p.Type() == "error")).AssertError("jid-malformed");
        await owner.SendAsync($"<presence to='{MucFixture.Service}/owner'/>");
        (await owner.ExpectStanzaAsync("presence", p => p.Type() == "error")).AssertError("jid-malformed");
        var ping = await owner.RequestAsync($"<iq type='get' id='{{id}}' to='{room}/owner'><ping xmlns='urn:xmpp:ping'/></iq>");
        Assert.Equal("result", ping.Type());
        // XEP-0410: a nick nobody holds is item-not-found (the asker knows it is not joined under it).
        var notMe = await owner.RequestAsync($"<iq type='get' id='{{id}}' to='{room}/ghost'><ping xmlns='urn:xmpp:ping'/></iq>");
        notMe.AssertError("item-not-found");
    }

    [Fact]
    public async Task A_message_refused_by_the_policy_gets_the_rule_back_and_reaches_nobody()
    {
        var room = Muc.NewRoom();
        await using var owner = await server.CreateRoomAsync(room);
        await using var two = await server.LoginAsync(await server.CreateUserAsync("two"));
        await two.JoinAsync(room, "two");
        await two.SendMessageAsync(room, "BUY NOW cheap", "groupchat");
        var error = await two.ExpectStanzaAsync("message", m => m.Type() == "error");
        error.AssertError("policy-violation");
        Assert.Contains("no-spam", error.GetChild("error", Ns.Client)!.GetChildText("text", Ns.Stanzas));
        await two.SendMessageAsync($"{room}/owner", "buy now, friend");
        (await two.ExpectStanzaAsync("message", m => m.Type() == "error")).AssertError("policy-violation");
        await owner.ExpectNothingAsync(TimeSpan.FromMilliseconds(300), m => m.IsMessage() && m.GetChild("body", Ns.Client) is not null);
    }

    [Fact]
    public async Task A_moderator_retracts_a_message_for_everyone_and_later_arrivals_do_not_get_it()
    {
        var room = Muc.NewRoom();
        await using var owner = await server.CreateRoomAsync(room);
        await using var two = await server.LoginAsync(await server.CreateUserAsync("two"));
        await two.JoinAsync(room, "two");
        await two.SendAsync($"<message to='{room}' type='groupchat'><body>regrettable</body><stanza-id xmlns='urn:xmpp:sid:0' by='{room}' id='forged'/></message>");
        var said = await owner.ExpectMessageAsync("regrettable");
        var stanzaIds = said.Elements.Where(e => e.Is("stanza-id", "urn:xmpp:sid:0")).ToList();
        var stanzaId = Assert.Single(stanzaIds).GetAttribute("id")!;
        Assert.NotEqual("forged", stanzaId);

        var refused = await two.RequestAsync($"<iq type='set' id='{{id}}' to='{room}'><moderate id='{stanzaId}' xmlns='urn:xmpp:message-moderate:1'>"
                                             + "<retract xmlns='urn:xmpp:message-retract:1'/></moderate></iq>");
        refused.AssertError("forbidden");
        var done = await owner.RequestAsync($"<iq type='set' id='{{id}}' to='{room}'><moderate id='{stanzaId}' xmlns='urn:xmpp:message-moderate:1'>"
                                            + "<retract xmlns='urn:xmpp:message-retract:1'/><reason>off topic</reason></moderate></iq>");
        Assert.Equal("result", done.Type());
        var retraction = await two.ExpectStanzaAsync("message", m => m.GetChild("retract", "urn:xmpp:message-retract:1") is not null);
        var retract = retraction.GetChild("retract", "urn:xmpp:message-retract:1")!;
        Assert.Equal((stanzaId, "off topic"), (retract.GetAttribute("id"), retract.GetChildText("reason", "urn:xmpp:message-retract:1")));
        Assert.Equal($"{room}/owner", retract.GetChild("moderated", "urn:xmpp:message-moderate:1")!.GetAttribute("by"));
        Assert.Equal(room, retraction.GetAttribute("from"));

        var again = await owner.RequestAsync($"<iq type='set' id='{{id}}' to='{room}'><moderate id='{stanzaId}' xmlns='urn:xmpp:message-moderate:1'>"
                                             + "<retract xmlns='urn:xmpp:message-retract:1'/></moderate></iq>");
        again.AssertError("item-not-found");
        await using var later = await server.LoginAsync(await server.CreateUserAsync("later"));
        await later.EnterAsync(room, "later");
        await later.ExpectSelfPresenceAsync(room, "later");
        Assert.NotNull((await later.ExpectStanzaAsync("message")).GetChild("subject", Ns.Client)); // no history: the subject comes first
    }

    [Fact]
    public async Task A_rooms_own_word_list_is_public_and_refuses_to_the_sender_only()
    {
        var room = Muc.NewRoom();
        await using var owner = await server.CreateRoomAsync(room);
        await owner.ConfigureAsync(room, ("candor#roomconfig_blockedwords", "spoiler"));
        await using var two = await server.LoginAsync(await server.CreateUserAsync("two"));
        await two.JoinAsync(room, "two");
        var info = (await two.RequestAsync($"<iq type='get' id='{{id}}' to='{room}'><query xmlns='{Ns.DiscoInfo}'/></iq>")).FirstElement!;
        var listed = info.GetChild("x", Ns.DataForms)!.Elements.Single(f => f.GetAttribute("var") == "candor#roominfo_blockedwords");
        Assert.Equal("spoiler", listed.GetChildText("value", Ns.DataForms));

        await two.SendMessageAsync(room, "big SPOILER ahead", "groupchat");
        var error = await two.ExpectStanzaAsync("message", m => m.Type() == "error");
        error.AssertError("policy-violation");
        Assert.Contains("'spoiler'", error.GetChild("error", Ns.Client)!.GetChildText("text", Ns.Stanzas));
        await two.SendMessageAsync(room, "nothing to hide", "groupchat");
        await owner.ExpectMessageAsync("nothing to hide");
        await owner.ExpectNothingAsync(TimeSpan.FromMilliseconds(200), m => m.GetChildText("body", Ns.Client) == "big SPOILER ahead");
    }
}
