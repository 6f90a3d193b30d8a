using Candor.Server.Tests.Harness;
using Candor.Xml;
using Candor.Xmpp;

namespace Candor.Server.Tests.Muc;

/// <summary>A server with a content policy (rule "no-spam" refuses "buy now"), shared by the MUC test classes.</summary>
public sealed class MucFixture : ServerFixture
{
    public const string Service = "conference.localhost";

    protected override void Configure(Candor.Server.Hosting.ServerOptions options)
    {
        options.PolicyFile = Path.Combine(DataDirectory, "policy.json");
        File.WriteAllText(options.PolicyFile,
            """{"version":"1","rules":[{"id":"no-spam","description":"Unsolicited advertising","phrases":["buy now"],"action":"reject"}]}""");
    }
}

/// <summary>Joining, creating and reading rooms with raw XML, as the XEP-0045 examples are written.</summary>
public static class Muc
{
    public const string Ns = "http://jabber.org/protocol/muc";
    public const string User = Ns + "#user";
    public const string Admin = Ns + "#admin";
    public const string Owner = Ns + "#owner";

    public static string NewRoom(string prefix = "room") => $"{prefix}-{Guid.NewGuid():N}"[..20] + "@" + MucFixture.Service;

    /// <summary>Sends the presence that enters <paramref name="room"/> as <paramref name="nick"/>.</summary>
    public static Task EnterAsync(this XmppTestClient client, string room, string nick, string inner = "") =>
        client.SendAsync($"<presence to='{room}/{nick}'><x xmlns='{Ns}'>{inner}</x></presence>");

    /// <summary>Enters and waits for the own presence (status 110), returned.</summary>
    public static async Task<Element> JoinAsync(this XmppTestClient client, string room, string nick, string inner = "")
    {
        await client.EnterAsync(room, nick, inner);
        var self = await client.ExpectSelfPresenceAsync(room, nick);
        await client.ExpectSubjectAsync(room);
        return self;
    }

    public static Task<Element> ExpectSelfPresenceAsync(this XmppTestClient client, string room, string nick) =>
        client.ExpectStanzaAsync("presence", p => p.GetAttribute("from") == $"{room}/{nick}" && p.StatusCodes().Contains(110));

    public static Task<Element> ExpectSubjectAsync(this XmppTestClient client, string room) =>
        client.ExpectStanzaAsync("message", m => m.GetAttribute("from")!.StartsWith(room, StringComparison.Ordinal)
                                               && m.GetChild("subject", Candor.Xmpp.Ns.Client) is not null && m.GetChild("body", Candor.Xmpp.Ns.Client) is null);

    /// <summary>A new user who creates <paramref name="room"/> as an instant room (XEP-0045 §10.1.2) and is in it.</summary>
    public static async Task<XmppTestClient> CreateRoomAsync(this ServerFixture server, string room, string nick = "owner")
    {
        var owner = await server.OnlineUserAsync("owner");
        await owner.EnterAsync(room, nick);
        var self = await owner.ExpectSelfPresenceAsync(room, nick);
        Assert.Contains(201, self.StatusCodes());
        await owner.ExpectSubjectAsync(room);
        var result = await owner.RequestAsync($"<iq type='set' id='{{id}}' to='{room}'><query xmlns='{Owner}'><x xmlns='jabber:x:data' type='submit'/></query></iq>");
        Assert.Equal("result", result.Type());
        return owner;
    }

    /// <summary>Two sessions of a new account, "phone" and "laptop", both in <paramref name="room"/> under the nick "me" (phone first).</summary>
    public static async Task<(XmppTestClient Phone, XmppTestClient Laptop)> TwoDevicesAsMeAsync(this ServerFixture server, string room)
    {
        var user = await server.CreateUserAsync("devices");
        var phone = await server.LoginAsync(user, "phone");
        var laptop = await server.LoginAsync(user, "laptop");
        await phone.JoinAsync(room, "me");
        await laptop.JoinAsync(room, "me");
        return (phone, laptop);
    }

    /// <summary>Submits the room configuration with the given fields.</summary>
    public static async Task ConfigureAsync(this XmppTestClient owner, string room, params (string Var, string Value)[] fields)
    {
        var xml = string.Concat(fields.Select(f => $"<field var='{f.Var}'><value>{f.Value}</value></field>"));
        var result = await owner.RequestAsync($"<iq type='set' id='{{id}}' to='{room}'><query xmlns='{Owner}'><x xmlns='jabber:x:data' type='submit'>"
                                              + $"<field var='FORM_TYPE'><value>{Ns}#roomconfig</value></field>{xml}</x></query></iq>");
        Assert.True(result.Type() == "result", result.ToString());
    }

    public static Task<Element> AdminAsync(this XmppTestClient client, string room, string item, string type = "set") =>
        client.RequestAsync($"<iq type='{type}' id='{{id}}' to='{room}'><query xmlns='{Admin}'>{item}</query></iq>");

    public static List<int> StatusCodes(this Element stanza) =>
        stanza.GetChild("x", User)?.Elements.Where(e => e.Name == "status").Select(e => int.Parse(e.GetAttribute("code")!)).ToList() ?? [];

    public static Element? Item(this Element presence) => presence.GetChild("x", User)?.GetChild("item", User);
}
