using Candor.Server.Tests.Harness;
using Candor.Xml;
using Candor.Xmpp;

namespace Candor.Server.Tests.Muc;

/// <summary>
/// IQs to occupant JIDs: passed on to the occupant's real JID from the asker's occupant JID and answered back the same
/// way (neither side sees the other's real JID in a semi-anonymous room); vCards answered by the occupant's account;
/// one session of a shared nick; errors for outsiders, unknown nicks and answers nobody asked for.
/// </summary>
public sealed class OccupantIqTests(MucFixture server) : IClassFixture<MucFixture>
{
    private const string TimeNs = "urn:xmpp:time";

    [Fact]
    public async Task A_time_request_reaches_the_occupant_under_the_askers_nick_and_the_answer_comes_back_from_the_occupants_nick()
    {
        var room = Muc.NewRoom("iq");
        await using var owner = await server.CreateRoomAsync(room);
        await using var guest = await server.OnlineUserAsync("guest");
        await guest.JoinAsync(room, "guest");

        var asked = guest.RequestAsync($"<iq type='get' id='v1' to='{room}/owner'><time xmlns='{TimeNs}'/></iq>");
        var request = await owner.ExpectStanzaAsync("iq", i => i.Type() == "get");
        Assert.Equal(($"{room}/guest", owner.Full), (request.GetAttribute("from"), request.GetAttribute("to")));
        Assert.NotEqual("v1", request.Id());
        Assert.DoesNotContain(guest.Jid!.Bare.ToString(), ElementWriter.ToXmlString(request));
        await owner.SendAsync($"<iq type='result' id='{request.Id()}' to='{room}/guest'><time xmlns='{TimeNs}'><tzo>+01:00</tzo><utc>2026-12-06T14:00:00Z</utc></time></iq>");
        var answer = await asked;
        Assert.Equal(("result", $"{room}/owner"), (answer.Type(), answer.GetAttribute("from")));
        Assert.Equal("+01:00", answer.GetChild("time", TimeNs)!.GetChildText("tzo", TimeNs));
        Assert.DoesNotContain(owner.Jid!.Bare.ToString(), ElementWriter.ToXmlString(answer));

        // An error from the occupant goes back the same way; a second answer to the same request reaches nobody.
        var refused = guest.RequestAsync($"<iq type='get' id='v2' to='{room}/owner'><time xmlns='{TimeNs}'/></iq>");
        request = await owner.ExpectStanzaAsync("iq", i => i.Type() == "get");
        var error = $"<iq type='error' id='{request.Id()}' to='{room}/guest'><error type='cancel'><service-unavailable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>";
        await owner.SendAsync(error);
        (await refused).AssertError("service-unavailable");
        await owner.SendAsync(error);
        await guest.ExpectNothingAsync(TimeSpan.FromMilliseconds(300), i => i.IsIq());

        // A ping to another occupant is theirs to answer; to one's own occupant JID the room answers (XEP-0410).
        var pinged = guest.RequestAsync($"<iq type='get' id='p1' to='{room}/owner'><ping xmlns='urn:xmpp:ping'/></iq>");
        request = await owner.ExpectStanzaAsync("iq", i => i.GetChild("ping", "urn:xmpp:ping") is not null);
        await owner.SendAsync($"<iq type='result' id='{request.Id()}' to='{room}/guest'/>");
        Assert.Equal(("result", $"{room}/owner"), ((await pinged).Type(), (await pinged).GetAttribute("from")));
        Assert.Equal("result", (await guest.RequestAsync($"<iq type='get' id='{{id}}' to='{room}/guest'><ping xmlns='urn:xmpp:ping'/></iq>")).Type());
        await owner.ExpectNothingAsync(TimeSpan.FromMilliseconds(200), i => i.IsIq());
    }

    [Fact]
    public async Task A_vcard_request_is_answered_by_the_occupants_account()
    {
        var room = Muc.NewRoom("vcard");
        await using var owner = await server.CreateRoomAsync(room);
        var published = await owner.RequestAsync($"<iq type='set' id='{{id}}'><vCard xmlns='{Ns.VCard}'><FN>Room Owner</FN></vCard></iq>");
        Assert.Equal("result", published.Type());
        await using var guest = await server.OnlineUserAsync("guest");
        await guest.JoinAsync(room, "guest");

        var card = await guest.RequestAsync($"<iq type='get' id='{{id}}' to='{room}/owner'><vCard xmlns='{Ns.VCard}'/></iq>");
        Assert.Equal(("result", $"{room}/owner"), (card.Type(), card.GetAttribute("from")));
        Assert.Equal("Room Owner", card.GetChild("vCard", Ns.VCard)!.GetChildText("FN", Ns.VCard));
        await owner.ExpectNothingAsync(TimeSpan.FromMilliseconds(200), i => i.IsIq() && i.Type() == "get");
    }

    [Fact]
    public async Task Outsiders_unknown_nicks_and_answers_nobody_asked_for_are_refused_or_dropped()
    {
        var room = Muc.NewRoom("iqerr");
        await using var owner = await server.CreateRoomAsync(room);
        await using var outsider = await server.OnlineUserAsync("outsider");
        (await outsider.RequestAsync($"<iq type='get' id='{{id}}' to='{room}/owner'><time xmlns='{TimeNs}'/></iq>")).AssertError("not-acceptable");
        (await outsider.RequestAsync($"<iq type='get' id='{{id}}' to='{room}/owner'><ping xmlns='urn:xmpp:ping'/></iq>")).AssertError("not-acceptable");
        (await owner.RequestAsync($"<iq type='get' id='{{id}}' to='{room}/ghost'><time xmlns='{TimeNs}'/></iq>")).AssertError("item-not-found");
        (await owner.RequestAsync($"<iq type='get' id='{{id}}' to='{room}/owner'><time xmlns='{TimeNs}'/><ping xmlns='urn:xmpp:ping'/></iq>")).AssertError("bad-request");
        await owner.ExpectNothingAsync(TimeSpan.FromMilliseconds(200), i => i.IsIq() && i.Type() == "get");

        // A result the room never asked for (a guessed id) is passed to nobody.
        await using var guest = await server.OnlineUserAsync("guest");
        await guest.JoinAsync(room, "guest");
        await guest.SendAsync($"<iq type='result' id='muc-iq-000000000000000000' to='{room}/owner'/>");
        await owner.ExpectNothingAsync(TimeSpan.FromMilliseconds(300), i => i.IsIq());
    }

    [Fact]
    public async Task A_request_to_a_shared_nick_goes_to_one_of_its_sessions()
    {
        var room = Muc.NewRoom("iqmulti");
        await using var owner = await server.CreateRoomAsync(room);
        var devices = await server.TwoDevicesAsMeAsync(room);
        await using var phone = devices.Phone;
        await using var laptop = devices.Laptop;

        var asked = owner.RequestAsync($"<iq type='get' id='{{id}}' to='{room}/me'><time xmlns='{TimeNs}'/></iq>");
        var request = await phone.ExpectStanzaAsync("iq", i => i.Type() == "get");
        Assert.Equal(phone.Full, request.GetAttribute("to"));
        await laptop.ExpectNothingAsync(TimeSpan.FromMilliseconds(300), i => i.IsIq() && i.Type() == "get");
        // Only the session asked may answer.
        await laptop.SendAsync($"<iq type='result' id='{request.Id()}' to='{room}/owner'/>");
        await owner.ExpectNothingAsync(TimeSpan.FromMilliseconds(300), i => i.IsIq() && i.Type() == "result");
        await phone.SendAsync($"<iq type='result' id='{request.Id()}' to='{room}/owner'/>");
        Assert.Equal(("result", $"{room}/me"), ((await asked).Type(), (await asked).GetAttribute("from")));
    }
}
