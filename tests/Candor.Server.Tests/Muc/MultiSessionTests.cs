using Candor.Server.Tests.Harness;
using Candor.Xmpp;

namespace Candor.Server.Tests.Muc;

/// <summary>
/// Several devices of one account under one nick (XEP-0045 §7.2.2 leaves it to the service; Prosody allows it):
/// no conflict, every session gets the room's messages, one device leaving does not take the nick out of the room,
/// and a nick change renames every session under the nick.
/// </summary>
public sealed class MultiSessionTests(MucFixture server) : IClassFixture<MucFixture>
{
    [Fact]
    public async Task Two_devices_share_a_nick_both_get_the_rooms_messages_and_one_leaving_keeps_the_other_in()
    {
        var room = Muc.NewRoom("multi");
        await using var owner = await server.CreateRoomAsync(room);
        var user = await server.CreateUserAsync("devices");
        await using var phone = await server.LoginAsync(user, "phone");
        await using var laptop = await server.LoginAsync(user, "laptop");
        await phone.JoinAsync(room, "me");
        await owner.ExpectStanzaAsync("presence", p => p.GetAttribute("from") == $"{room}/me");
        await laptop.EnterAsync(room, "me");
        var self = await laptop.ExpectSelfPresenceAsync(room, "me");
        Assert.Equal("participant", self.Item()!.GetAttribute("role"));
        await laptop.ExpectSubjectAsync(room);

        await using var stranger = await server.LoginAsync(await server.CreateUserAsync("stranger"));
        await stranger.EnterAsync(room, "me");
        (await stranger.ExpectStanzaAsync("presence", p => p.Type() == "error")).AssertError("conflict");

        await owner.SendAsync($"<message to='{room}' type='groupchat'><body>to every device</body></message>");
        await phone.ExpectMessageAsync("to every device");
        await laptop.ExpectMessageAsync("to every device");
        await owner.SendAsync($"<message to='{room}/me' type='chat'><body>private to me</body></message>");
        await phone.ExpectMessageAsync("private to me");
        await laptop.ExpectMessageAsync("private to me");

        await phone.SendAsync($"<presence to='{room}/me' type='unavailable'/>");
        var gone = await phone.ExpectStanzaAsync("presence", p => p.GetAttribute("from") == $"{room}/me" && p.Type() == "unavailable");
        Assert.Contains(110, gone.StatusCodes());
        await owner.ExpectNothingAsync(TimeSpan.FromMilliseconds(300), p => p.IsPresence() && p.Type() == "unavailable");
        await owner.SendAsync($"<message to='{room}' type='groupchat'><body>still there</body></message>");
        await laptop.ExpectMessageAsync("still there");

        await laptop.SendAsync($"<presence to='{room}/me' type='unavailable'/>");
        await owner.ExpectStanzaAsync("presence", p => p.GetAttribute("from") == $"{room}/me" && p.Type() == "unavailable");
    }

    [Fact]
    public async Task A_kick_removes_every_session_under_the_nick()
    {
        var room = Muc.NewRoom("kick");
        await using var owner = await server.CreateRoomAsync(room);
        var devices = await server.TwoDevicesAsMeAsync(room);
        await using var phone = devices.Phone;
        await using var laptop = devices.Laptop;
        var kicked = await owner.AdminAsync(room, "<item nick='me' role='none'><reason>out</reason></item>");
        Assert.Equal("result", kicked.Type());
        Assert.Contains(307, (await phone.ExpectStanzaAsync("presence", p => p.Type() == "unavailable")).StatusCodes());
        Assert.Contains(307, (await laptop.ExpectStanzaAsync("presence", p => p.Type() == "unavailable")).StatusCodes());
        await owner.SendAsync($"<message to='{room}' type='groupchat'><body>after the kick</body></message>");
        await owner.ExpectMessageAsync("after the kick");
        await laptop.ExpectNothingAsync(TimeSpan.FromMilliseconds(300), m => m.IsMessage() && m.GetChildText("body", Ns.Client) == "after the kick");
    }

    [Fact]
    public async Task A_nick_change_from_one_device_renames_every_session_under_the_nick()
    {
        var room = Muc.NewRoom("rename");
        await using var owner = await server.CreateRoomAsync(room);
        var devices = await server.TwoDevicesAsMeAsync(room);
        await using var phone = devices.Phone;
        await using var laptop = devices.Laptop;
        await owner.ExpectStanzaAsync("presence", p => p.GetAttribute("from") == $"{room}/me");
        await using var stranger = await server.OnlineUserAsync("stranger");
        await stranger.JoinAsync(room, "taken");
        foreach (var device in new[] { phone, laptop }) await device.ExpectStanzaAsync("presence", p => p.GetAttribute("from") == $"{room}/taken");

        // Taking a nick in use is refused to the one who asked; nobody else hears of it.
        await phone.SendAsync($"<presence to='{room}/taken'/>");
        (await phone.ExpectStanzaAsync("presence", p => p.Type() == "error")).AssertError("conflict");
        await laptop.ExpectNothingAsync(TimeSpan.FromMilliseconds(300), p => p.IsPresence() && p.GetAttribute("from") == $"{room}/taken");

        await phone.SendAsync($"<presence to='{room}/you'><status>renamed</status></presence>");
        foreach (var device in new[] { phone, laptop })
        {
            var gone = await device.ExpectStanzaAsync("presence", p => p.GetAttribute("from") == $"{room}/me" && p.Type() == "unavailable");
            Assert.Equal([303, 110], gone.StatusCodes());
            Assert.Equal("you", gone.Item()!.GetAttribute("nick"));
            var back = await device.ExpectStanzaAsync("presence", p => p.GetAttribute("from") == $"{room}/you" && p.Type() is null);
            Assert.Contains(110, back.StatusCodes());
            Assert.Equal("renamed", back.GetChildText("status", Ns.Client));
        }
        foreach (var other in new[] { owner, stranger })
        {
            var gone = await other.ExpectStanzaAsync("presence", p => p.GetAttribute("from") == $"{room}/me" && p.Type() == "unavailable");
            Assert.Equal([303], gone.StatusCodes());
            Assert.Equal(("you", "participant"), (gone.Item()!.GetAttribute("nick"), gone.Item()!.GetAttribute("role")));
            await other.ExpectStanzaAsync("presence", p => p.GetAttribute("from") == $"{room}/you" && p.Type() is null);
            // One nick change, not one per session.
            await other.ExpectNothingAsync(TimeSpan.FromMilliseconds(200), p => p.IsPresence() && (p.Type() == "unavailable" || p.GetAttribute("from") == $"{room}/you"));
        }

        // Both sessions speak and are spoken to under the new nick; the old one is free.
        await laptop.SendAsync($"<message to='{room}' type='groupchat'><body>from the laptop</body></message>");
        Assert.Equal($"{room}/you", (await owner.ExpectMessageAsync("from the laptop")).GetAttribute("from"));
        await owner.SendAsync($"<message to='{room}/you' type='chat'><body>private to you</body></message>");
        await phone.ExpectMessageAsync("private to you");
        await laptop.ExpectMessageAsync("private to you");
        await stranger.SendAsync($"<presence to='{room}/me'/>");
        await stranger.ExpectSelfPresenceAsync(room, "me");
    }
}
