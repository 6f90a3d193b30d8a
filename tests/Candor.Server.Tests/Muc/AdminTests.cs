using Candor.Server.Tests.Harness;
using Candor.Xmpp;

namespace Candor.Server.Tests.Muc;

/// <summary>XEP-0045 §7.8–§10: kick, ban, voice, membership and their lists, members-only, passwords, invitations, registration, voice requests.</summary>
public sealed class AdminTests(MucFixture server) : IClassFixture<MucFixture>
{
    private async Task<(XmppTestClient Client, string User)> MemberAsync(string room, string nick, string inner = "")
    {
        var user = await server.CreateUserAsync(nick);
        var client = await server.LoginAsync(user);
        if (room.Length > 0) await client.JoinAsync(room, nick, inner);
        return (client, user);
    }

    [Fact]
    public async Task A_kick_with_a_reason_is_307_to_everyone_and_admins_cannot_be_kicked_by_lesser_moderators()
    {
        var room = Muc.NewRoom();
        await using var owner = await server.CreateRoomAsync(room);
        var (two, _) = await MemberAsync(room, "two");
        await using var _two = two;
        var (three, _) = await MemberAsync(room, "three");
        await using var _three = three;

        var refused = await two.AdminAsync(room, "<item nick='three' role='none'/>");
        refused.AssertError("forbidden");

        Assert.Equal("result", (await owner.AdminAsync(room, "<item nick='two' role='none'><reason>spamming</reason></item>")).Type());
        var kicked = await two.ExpectStanzaAsync("presence", p => p.Type() == "unavailable");
        Assert.Equal([110, 307], kicked.StatusCodes().Order());
        Assert.Equal("spamming", kicked.Item()!.GetChildText("reason", Muc.User));
        Assert.Equal("owner", kicked.Item()!.GetChild("actor", Muc.User)!.GetAttribute("nick"));
        var seen = await three.ExpectStanzaAsync("presence", p => p.GetAttribute("from") == $"{room}/two" && p.Type() == "unavailable");
        Assert.Equal([307], seen.StatusCodes());

        await owner.AdminAsync(room, "<item nick='three' role='moderator'/>");
        await three.ExpectStanzaAsync("presence", p => p.GetAttribute("from") == $"{room}/three" && p.Item()!.GetAttribute("role") == "moderator");
        (await three.AdminAsync(room, "<item nick='owner' role='none'/>")).AssertError("not-allowed");
        (await three.AdminAsync(room, "<item nick='nobody' role='none'/>")).AssertError("item-not-found");
    }

    [Fact]
    public async Task A_ban_removes_with_301_keeps_the_outcast_out_and_is_listed()
    {
        var room = Muc.NewRoom();
        await using var owner = await server.CreateRoomAsync(room);
        var (two, user) = await MemberAsync(room, "two");
        await using var _ = two;
        var bare = ServerFixture.JidOf(user);

        Assert.Equal("result", (await owner.AdminAsync(room, $"<item jid='{bare}' affiliation='outcast'><reason>enough</reason></item>")).Type());
        var banned = await two.ExpectStanzaAsync("presence", p => p.Type() == "unavailable");
        Assert.Contains(301, banned.StatusCodes());
        Assert.Equal(("outcast", "enough"), (banned.Item()!.GetAttribute("affiliation"), banned.Item()!.GetChildText("reason", Muc.User)));

        await two.EnterAsync(room, "two");
        (await two.ExpectStanzaAsync("presence", p => p.Type() == "error")).AssertError("forbidden", "auth");

        var list = await owner.AdminAsync(room, "<item affiliation='outcast'/>", "get");
        Assert.Equal(bare.ToString(), list.FirstElement!.GetChild("item", Muc.Admin)!.GetAttribute("jid"));
        (await owner.AdminAsync(room, $"<item jid='{owner.Bare}' affiliation='none'/>")).AssertError("conflict"); // the last owner
    }

    [Fact]
    public async Task Members_only_refuses_outsiders_with_registration_required_until_they_are_members()
    {
        var room = Muc.NewRoom();
        await using var owner = await server.CreateRoomAsync(room);
        await owner.ConfigureAsync(room, ("muc#roomconfig_membersonly", "1"));
        var (outsider, user) = await MemberAsync("", "outsider");
        await using var _ = outsider;
        await outsider.EnterAsync(room, "outsider");
        (await outsider.ExpectStanzaAsync("presence", p => p.Type() == "error")).AssertError("registration-required", "auth");
        var register = await outsider.RequestAsync($"<iq type='set' id='{{id}}' to='{room}'><query xmlns='jabber:iq:register'><x xmlns='jabber:x:data' type='submit'>"
                                                   + "<field var='FORM_TYPE'><value>http://jabber.org/protocol/muc#register</value></field>"
                                                   + "<field var='muc#register_roomnick'><value>outsider</value></field></x></query></iq>");
        register.AssertError("not-allowed");

        await owner.AdminAsync(room, $"<item jid='{ServerFixture.JidOf(user)}' affiliation='member'/>");
        var self = await outsider.JoinAsync(room, "outsider");
        Assert.Equal("member", self.Item()!.GetAttribute("affiliation"));
        var members = await owner.AdminAsync(room, "<item affiliation='member'/>", "get");
        Assert.Single(members.FirstElement!.Elements);

        await owner.AdminAsync(room, $"<item jid='{ServerFixture.JidOf(user)}' affiliation='none'/>");
        Assert.Contains(321, (await outsider.ExpectStanzaAsync("presence", p => p.Type() == "unavailable")).StatusCodes());
    }

    [Fact]
    public async Task Members_of_a_members_only_non_anonymous_room_read_the_member_list_and_hear_of_absent_members()
    {
        var room = Muc.NewRoom();
        await using var owner = await server.CreateRoomAsync(room);
        await owner.ConfigureAsync(room, ("muc#roomconfig_membersonly", "1"));
        var (member, user) = await MemberAsync("", "member");
        await using var _m = member;
        var absent = ServerFixture.JidOf(await server.CreateUserAsync("absent"));
        await owner.AdminAsync(room, $"<item jid='{ServerFixture.JidOf(user)}' affiliation='member'/>");
        await member.JoinAsync(room, "member");
        // Semi-anonymous: the lists stay with admins and owners, and occupants hear nothing of absent members.
        (await member.AdminAsync(room, "<item affiliation='member'/>", "get")).AssertError("forbidden");
        await owner.AdminAsync(room, $"<item jid='{absent}' affiliation='member'/>");
        await member.ExpectNothingAsync(match: m => m.Name == "message");

        await owner.ConfigureAsync(room, ("muc#roomconfig_whois", "anyone"));
        var members = await member.AdminAsync(room, "<item affiliation='member'/>", "get");
        Assert.Equal([absent.ToString(), ServerFixture.JidOf(user).ToString()],
            members.FirstElement!.Elements.Select(i => i.GetAttribute("jid")).Order());
        Assert.Equal(owner.Bare, (await member.AdminAsync(room, "<item affiliation='owner'/>", "get")).FirstElement!.GetChild("item", Muc.Admin)!.GetAttribute("jid"));
        (await member.AdminAsync(room, $"<item jid='{absent}' affiliation='none'/>")).AssertError("forbidden");

        await owner.AdminAsync(room, $"<item jid='{absent}' affiliation='none'><reason>gone</reason></item>");
        var notice = await member.ExpectStanzaAsync("message", m => m.GetAttribute("from") == room && m.Item() is not null);
        Assert.Equal(("none", absent.ToString(), "gone"), (notice.Item()!.GetAttribute("affiliation"), notice.Item()!.GetAttribute("jid"), notice.Item()!.GetChildText("reason", Muc.User)));
    }

    [Fact]
    public async Task A_password_protected_room_wants_the_password()
    {
        var room = Muc.NewRoom();
        await using var owner = await server.CreateRoomAsync(room);
        await owner.ConfigureAsync(room, ("muc#roomconfig_passwordprotectedroom", "1"), ("muc#roomconfig_roomsecret", "sesame"));
        var (guest, _) = await MemberAsync("", "guest");
        await using var _g = guest;
        await guest.EnterAsync(room, "guest", "<password>wrong</password>");
        (await guest.ExpectStanzaAsync("presence", p => p.Type() == "error")).AssertError("not-authorized", "auth");
        await guest.JoinAsync(room, "guest", "<password>sesame</password>");
        var info = (await guest.RequestAsync($"<iq type='get' id='{{id}}' to='{room}'><query xmlns='{Ns.DiscoInfo}'/></iq>")).FirstElement!;
        Assert.Contains(info.Elements, f => f.GetAttribute("var") == "muc_passwordprotected");
    }

    [Fact]
    public async Task In_a_moderated_room_visitors_ask_for_voice_and_a_moderator_grants_it()
    {
        var room = Muc.NewRoom();
        await using var owner = await server.CreateRoomAsync(room);
        await owner.ConfigureAsync(room, ("muc#roomconfig_moderatedroom", "1"));
        var (visitor, _) = await MemberAsync(room, "visitor");
        await using var _v = visitor;
        await visitor.SendMessageAsync(room, "may I?", "groupchat");
        (await visitor.ExpectStanzaAsync("message", m => m.Type() == "error")).AssertError("forbidden");

        await visitor.SendAsync($"<message to='{room}'><x xmlns='jabber:x:data' type='submit'>"
                                + "<field var='FORM_TYPE'><value>http://jabber.org/protocol/muc#request</value></field>"
                                + "<field var='muc#role'><value>participant</value></field></x></message>");
        var request = await owner.ExpectStanzaAsync("message", m => m.GetChild("x", Ns.DataForms) is not null);
        Assert.Contains(request.GetChild("x", Ns.DataForms)!.Elements, f => f.GetAttribute("var") == "muc#roomnick" && f.GetChildText("value", Ns.DataForms) == "visitor");

        await owner.SendAsync($"<message to='{room}'><x xmlns='jabber:x:data' type='submit'>"
                              + "<field var='FORM_TYPE'><value>http://jabber.org/protocol/muc#request</value></field>"
                              + "<field var='muc#roomnick'><value>visitor</value></field><field var='muc#request_allow'><value>true</value></field></x></message>");
        await visitor.ExpectStanzaAsync("presence", p => p.GetAttribute("from") == $"{room}/visitor" && p.Item()!.GetAttribute("role") == "participant");
        await visitor.SendMessageAsync(room, "thanks", "groupchat");
        await owner.ExpectMessageAsync("thanks");

        Assert.Equal("result", (await owner.AdminAsync(room, "<item nick='visitor' role='visitor'/>")).Type());
        var participants = await owner.AdminAsync(room, "<item role='visitor'/>", "get");
        Assert.Equal("visitor", participants.FirstElement!.GetChild("item", Muc.Admin)!.GetAttribute("nick"));
    }

    [Fact]
    public async Task Mediated_invitations_reach_the_invitee_make_them_a_member_and_declines_return()
    {
        var room = Muc.NewRoom();
        await using var owner = await server.CreateRoomAsync(room);
        await owner.ConfigureAsync(room, ("muc#roomconfig_membersonly", "1"));
        var invitee = await server.OnlineUserAsync("invitee");
        await using var _i = invitee;
        await owner.SendAsync($"<message to='{room}'><x xmlns='{Muc.User}'><invite to='{invitee.Bare}'><reason>join us</reason></invite></x></message>");
        var invitation = await invitee.ExpectStanzaAsync("message", m => m.GetChild("x", Muc.User) is not null);
        Assert.Equal(room, invitation.GetAttribute("from"));
        var invite = invitation.GetChild("x", Muc.User)!.GetChild("invite", Muc.User)!;
        Assert.Equal((owner.Bare, "join us"), (invite.GetAttribute("from"), invite.GetChildText("reason", Muc.User)));

        var self = await invitee.JoinAsync(room, "invitee");
        Assert.Equal("member", self.Item()!.GetAttribute("affiliation"));

        await invitee.SendAsync($"<message to='{room}'><x xmlns='{Muc.User}'><decline to='{owner.Bare}'><reason>busy</reason></decline></x></message>");
        var decline = await owner.ExpectStanzaAsync("message", m => m.GetChild("x", Muc.User)?.GetChild("decline", Muc.User) is not null);
        Assert.Equal(invitee.Bare, decline.GetChild("x", Muc.User)!.GetChild("decline", Muc.User)!.GetAttribute("from"));

        await invitee.SendAsync($"<message to='{room}'><x xmlns='{Muc.User}'><invite to='someone@localhost'/></x></message>");
        (await invitee.ExpectStanzaAsync("message", m => m.Type() == "error")).AssertError("forbidden");
    }

    [Fact]
    public async Task Registering_reserves_a_nick_and_grants_membership()
    {
        var room = Muc.NewRoom();
        await using var owner = await server.CreateRoomAsync(room);
        var (two, user) = await MemberAsync(room, "two");
        await using var _t = two;
        var form = await two.RequestAsync($"<iq type='get' id='{{id}}' to='{room}'><query xmlns='jabber:iq:register'/></iq>");
        Assert.Contains(form.FirstElement!.GetChild("x", Ns.DataForms)!.Elements, f => f.GetAttribute("var") == "muc#register_roomnick");
        var done = await two.RequestAsync($"<iq type='set' id='{{id}}' to='{room}'><query xmlns='jabber:iq:register'><x xmlns='jabber:x:data' type='submit'>"
                                          + "<field var='FORM_TYPE'><value>http://jabber.org/protocol/muc#register</value></field>"
                                          + "<field var='muc#register_roomnick'><value>twosy</value></field></x></query></iq>");
        Assert.Equal("result", done.Type());
        await owner.ExpectStanzaAsync("presence", p => p.GetAttribute("from") == $"{room}/two" && p.Item()!.GetAttribute("affiliation") == "member");
        var registered = await two.RequestAsync($"<iq type='get' id='{{id}}' to='{room}'><query xmlns='jabber:iq:register'/></iq>");
        Assert.Equal("twosy", registered.FirstElement!.GetChildText("username", Ns.Register));
        var reserved = await two.RequestAsync($"<iq type='get' id='{{id}}' to='{room}'><query xmlns='{Ns.DiscoInfo}' node='x-roomuser-item'/></iq>");
        Assert.Equal("twosy", reserved.FirstElement!.GetChild("identity", Ns.DiscoInfo)!.GetAttribute("name"));

        var (three, _) = await MemberAsync(room, "three");
        await using var _th = three;
        await three.SendAsync($"<presence to='{room}/twosy'/>");
        (await three.ExpectStanzaAsync("presence", p => p.Type() == "error")).AssertError("conflict");
        var members = await owner.AdminAsync(room, "<item affiliation='member'/>", "get");
        Assert.Equal("twosy", members.FirstElement!.GetChild("item", Muc.Admin)!.GetAttribute("nick"));
        Assert.Equal(ServerFixture.JidOf(user).ToString(), members.FirstElement!.GetChild("item", Muc.Admin)!.GetAttribute("jid"));
    }
}
