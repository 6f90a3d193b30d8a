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
        var result = await client.RequestAsync("<iq type='get' id='{id}' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>");
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

    public static Element? Query(this Element iq, string ns) => iq.GetChild(ns);
}

public static class RosterExtensions
{
    /// <summary>Requests the roster (which makes this resource interested in pushes) and returns the result.</summary>
    public static Task<Element> GetRosterAsync(this XmppTestClient client, string? ver = null) =>
        client.RequestAsync("<iq type='get' id='{id}'><query xmlns='jabber:iq:roster'" + (ver is null ? "" : $" ver='{ver}'") + "/></iq>");

    /// <summary>Waits for a roster push about <paramref name="jid"/> and acknowledges it (RFC 6121 §2.1.6).</summary>
    public static async Task<Element> ExpectRosterPushAsync(this XmppTestClient client, string jid, Func<Element, bool>? match = null)
    {
        var push = await client.ExpectAsync(e => e.IsIq() && e.Type() == "set" && e.GetChild("query", Ns.Roster)?.GetChild("item", Ns.Roster) is { } item
            && item.GetAttribute("jid") == jid && (match?.Invoke(item) ?? true));
        Assert.True(push.GetAttribute("from") is null || push.GetAttribute("from") == client.Bare, "a push comes from the account itself: " + push);
        await client.SendAsync($"<iq type='result' id='{push.Id()}'/>");
        return push.GetChild("query", Ns.Roster)!.GetChild("item", Ns.Roster)!;
    }

    public static Element? RosterItem(this Element rosterResult, string jid) =>
        rosterResult.GetChild("query", Ns.Roster)?.Elements.FirstOrDefault(i => i.GetAttribute("jid") == jid);

    /// <summary>A presence stanza from <paramref name="from"/> (full or bare) of the given type (null: available).</summary>
    public static Task<Element> ExpectPresenceAsync(this XmppTestClient client, string from, string? type = null, TimeSpan? timeout = null) =>
        client.ExpectStanzaAsync("presence", p => p.GetAttribute("from") == from && p.Type() == type, timeout);
}
