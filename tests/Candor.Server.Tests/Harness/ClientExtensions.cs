using Candor.Xml;
using Candor.Xmpp;

namespace Candor.Server.Tests.Harness;

public static class ClientExtensions
{
    /// <summary>Sends available presence and waits until the server has processed it (its reflection to us).</summary>
    public static async Task SendPresenceAsync(this XmppTestClient client, int? priority = null)
    {
        var inner = priority is null ? "" : $"<priority>{priority}</priority>";
        await client.SendAsync($"<presence>{inner}</presence>");
        await client.SyncAsync();
    }

    /// <summary>A ping round trip to the server: everything sent before it has been processed.</summary>
    public static async Task SyncAsync(this XmppTestClient client)
    {
        var result = await client.RequestAsync($"<iq type='get' id='{{id}}' to='{client.Domain}'><ping xmlns='urn:xmpp:ping'/></iq>");
        Assert.Equal("result", result.Type());
    }

    public static Task SendMessageAsync(this XmppTestClient client, string to, string body, string type = "chat") =>
        client.SendAsync($"<message to='{to}' type='{type}' id='m{Guid.NewGuid():N}'><body>{body}</body></message>");

    /// <summary>The defined condition of a stanza error, e.g. "service-unavailable".</summary>
    public static string? ErrorCondition(this Element stanza) =>
        stanza.GetChild("error", Ns.Client)?.Elements.FirstOrDefault(e => e.Namespace == Ns.Stanzas && e.Name != "text")?.Name;

    public static void AssertError(this Element stanza, string condition, string? type = null)
    {
        Assert.Equal("error", stanza.Type());
        Assert.True(stanza.ErrorCondition() == condition, $"expected <{condition}/>, got {stanza}");
        if (type is not null) Assert.Equal(type, stanza.GetChild("error", Ns.Client)!.GetAttribute("type"));
    }
}

public static class RosterExtensions
{
    /// <summary>Requests the roster (which makes this resource interested in pushes) and returns the result.</summary>
    public static Task<Element> GetRosterAsync(this XmppTestClient client) =>
        client.RequestAsync("<iq type='get' id='{id}'><query xmlns='jabber:iq:roster'/></iq>");

    public static Element? RosterItem(this Element rosterResult, string jid) =>
        rosterResult.GetChild("query", Ns.Roster)?.Elements.FirstOrDefault(i => i.GetAttribute("jid") == jid);
}
