using Candor.Server.Hosting;
using Candor.Server.Tests.Harness;
using Candor.Server.Tests.Muc;
using MucXml = Candor.Server.Tests.Muc.Muc;
using Candor.Xml;
using Candor.Xmpp;

namespace Candor.Server.Tests.Federation;

/// <summary>a.test and b.test, each with its chat service (conference.a.test, conference.b.test), routed to each other.</summary>
public sealed class TwoDomainsWithRooms : TwoDomains
{
    protected override void Configure(string domain, ServerOptions options) => options.MucDomain = "conference." + domain;

    public override async Task InitializeAsync()
    {
        await base.InitializeAsync();
        A.Server.Options.S2sRoutes = $"b.test=127.0.0.1:{B.S2sPort},conference.b.test=127.0.0.1:{B.S2sPort}";
        B.Server.Options.S2sRoutes = $"a.test=127.0.0.1:{A.S2sPort},conference.a.test=127.0.0.1:{A.S2sPort}";
    }
}

/// <summary>
/// Occupants from another server (XEP-0045 over federation): a user of b.test enters a room at conference.a.test,
/// gets the history and the others' presence, talks and is heard; the room reaches it over s2s from its own domain.
/// </summary>
public sealed class FederatedMucTests(TwoDomainsWithRooms servers) : IClassFixture<TwoDomainsWithRooms>
{
    private static readonly TimeSpan Slow = TimeSpan.FromSeconds(20);

    private static string NewRoom(string prefix) => $"{prefix}-{Guid.NewGuid():N}"[..16] + "@conference.a.test";

    [Fact]
    public async Task A_user_of_another_server_enters_gets_history_and_presence_and_chats()
    {
        var room = NewRoom("fed");
        await using var alice = await TwoDomains.OnlineAsync(servers.A, "alice");
        await alice.EnterAsync(room, "alice");
        Assert.Contains(201, (await alice.ExpectSelfPresenceAsync(room, "alice")).StatusCodes());
        await alice.ExpectSubjectAsync(room);
        Assert.Equal("result", (await alice.RequestAsync(
            $"<iq type='set' id='{{id}}' to='{room}'><query xmlns='{MucXml.Owner}'><x xmlns='jabber:x:data' type='submit'/></query></iq>")).Type());
        await alice.SendMessageAsync(room, "said before bob came", "groupchat");
        await alice.ExpectMessageAsync("said before bob came");

        await using var bob = await TwoDomains.OnlineAsync(servers.B, "bob");
        await bob.EnterAsync(room, "bob");
        // §7.2.3 over s2s: the others' presence first, then bob's own with 110, the history, the subject.
        var alicePresence = await bob.ExpectStanzaAsync("presence", p => p.GetAttribute("from") == $"{room}/alice", Slow);
        Assert.Equal("owner", alicePresence.Item()!.GetAttribute("affiliation"));
        var self = await bob.ExpectStanzaAsync("presence", p => p.GetAttribute("from") == $"{room}/bob" && p.StatusCodes().Contains(110), Slow);
        Assert.Equal(bob.Full, self.GetAttribute("to"));
        Assert.Equal("participant", self.Item()!.GetAttribute("role"));
        Assert.NotNull(self.GetChild("occupant-id", "urn:xmpp:occupant-id:0"));
        var history = await bob.ExpectMessageAsync("said before bob came", Slow);
        Assert.Equal($"{room}/alice", history.GetAttribute("from"));
        Assert.NotNull(history.GetChild("delay", Ns.Delay));
        await bob.ExpectSubjectAsync(room);
        var entered = await alice.ExpectStanzaAsync("presence", p => p.GetAttribute("from") == $"{room}/bob", Slow);
        Assert.Null(entered.Type());
        // A moderator sees the remote occupant's real JID, as for a local one.
        Assert.Equal(bob.Full, entered.Item()!.GetAttribute("jid"));

        await bob.SendMessageAsync(room, "hello from b.test", "groupchat");
        Assert.Equal($"{room}/bob", (await alice.ExpectMessageAsync("hello from b.test", Slow)).GetAttribute("from"));
        var reflected = await bob.ExpectMessageAsync("hello from b.test", Slow);
        Assert.Equal("groupchat", reflected.Type());
        Assert.Contains(reflected.Elements, e => e.Is("stanza-id", "urn:xmpp:sid:0") && e.GetAttribute("by") == room);
        await alice.SendMessageAsync(room, "hello to b.test", "groupchat");
        Assert.Equal($"{room}/alice", (await bob.ExpectMessageAsync("hello to b.test", Slow)).GetAttribute("from"));

        // A private message between occupants crosses servers too, marked as from the room.
        await alice.SendAsync($"<message to='{room}/bob' type='chat'><body>just for bob</body></message>");
        var whisper = await bob.ExpectMessageAsync("just for bob", Slow);
        Assert.Equal($"{room}/alice", whisper.GetAttribute("from"));
        Assert.NotNull(whisper.GetChild("x", MucXml.User));

        // A presence change and leaving reach the room's occupants.
        await bob.SendAsync($"<presence to='{room}/bob'><show>away</show></presence>");
        await alice.ExpectStanzaAsync("presence", p => p.GetAttribute("from") == $"{room}/bob" && p.GetChildText("show", Ns.Client) == "away", Slow);
        await bob.SendAsync($"<presence to='{room}/bob' type='unavailable'/>");
        await bob.ExpectStanzaAsync("presence", p => p.GetAttribute("from") == $"{room}/bob" && p.Type() == "unavailable" && p.StatusCodes().Contains(110), Slow);
        await alice.ExpectStanzaAsync("presence", p => p.GetAttribute("from") == $"{room}/bob" && p.Type() == "unavailable", Slow);
    }

    [Fact]
    public async Task A_stanza_bounced_from_a_remote_occupant_takes_them_out_of_the_room_with_333()
    {
        var room = NewRoom("gone");
        await using var alice = await TwoDomains.OnlineAsync(servers.A, "alice");
        await alice.EnterAsync(room, "alice");
        await alice.ExpectSelfPresenceAsync(room, "alice");
        await alice.ExpectSubjectAsync(room);
        Assert.Equal("result", (await alice.RequestAsync(
            $"<iq type='set' id='{{id}}' to='{room}'><query xmlns='{MucXml.Owner}'><x xmlns='jabber:x:data' type='submit'/></query></iq>")).Type());
        await using var bob = await TwoDomains.OnlineAsync(servers.B, "bob");
        await bob.EnterAsync(room, "bob");
        await bob.ExpectSelfPresenceAsync(room, "bob").WaitAsync(Slow);
        await alice.ExpectStanzaAsync("presence", p => p.GetAttribute("from") == $"{room}/bob", Slow);

        // What a server answers for a groupchat message to a session that is gone (RFC 6121 §8.5.3.2.1), or its
        // federation for a server that no longer answers: the room's messages no longer reach bob.
        await alice.SendMessageAsync(room, "are you there, bob?", "groupchat");
        await bob.ExpectMessageAsync("are you there, bob?", Slow);
        await bob.SendAsync($"<message to='{room}' type='error'><body>are you there, bob?</body>"
                            + "<error type='cancel'><service-unavailable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></message>");
        var left = await alice.ExpectStanzaAsync("presence", p => p.GetAttribute("from") == $"{room}/bob" && p.Type() == "unavailable", Slow);
        Assert.Contains(333, left.StatusCodes());
    }
}
