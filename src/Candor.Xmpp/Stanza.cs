using Candor.Xml;

namespace Candor.Xmpp;

/// <summary>Helpers for the three stanza kinds of RFC 6120 §8.</summary>
public static class Stanza
{
    public static bool IsMessage(this Element e) => e.Name == "message";
    public static bool IsPresence(this Element e) => e.Name == "presence";
    public static bool IsIq(this Element e) => e.Name == "iq";
    public static string? Type(this Element e) => e.GetAttribute("type");
    public static string? Id(this Element e) => e.GetAttribute("id");

    public static Element CreateIq(string type, string? id, Jid? from, Jid? to)
    {
        var iq = new Element("iq", Ns.Client);
        iq.SetAttribute("type", type).SetAttribute("id", id);
        if (from is not null) iq.SetAttribute("from", from.ToString());
        if (to is not null) iq.SetAttribute("to", to.ToString());
        return iq;
    }

    /// <summary>The result for an IQ get/set: addresses swapped, same id, optional payload.</summary>
    public static Element ResultFor(Element request, Element? payload = null)
    {
        var result = new Element("iq", Ns.Client)
            .SetAttribute("type", "result")
            .SetAttribute("id", request.Id())
            .SetAttribute("from", request.GetAttribute("to"))
            .SetAttribute("to", request.GetAttribute("from"));
        if (payload is not null) result.Add(payload);
        return result;
    }

    /// <summary>
    /// The error reply to a stanza (RFC 6120 §8.3.1): addresses swapped, same id, the original payload kept,
    /// type='error', and the error element with the condition, its type and an optional human-readable text.
    /// </summary>
    public static Element ErrorFor(Element stanza, StanzaError error, string? text = null, Element? appCondition = null)
    {
        var reply = new Element(stanza.Name, Ns.Client);
        reply.SetAttribute("type", "error")
            .SetAttribute("id", stanza.Id())
            .SetAttribute("from", stanza.GetAttribute("to"))
            .SetAttribute("to", stanza.GetAttribute("from"));
        foreach (var node in stanza.Nodes)
            if (node is Element child && !child.Is("error", Ns.Client)) reply.Add(child);
        var errorElement = reply.AddChild("error", Ns.Client).SetAttribute("type", error.Type);
        errorElement.AddChild(error.Condition, Ns.Stanzas);
        if (text is not null) errorElement.AddChild("text", Ns.Stanzas).SetAttribute("xml:lang", "en").AddText(text);
        if (appCondition is not null) errorElement.Add(appCondition);
        return reply;
    }
}
