using System.Text;
using Candor.Server.Core;
using Candor.Xml;
using Candor.Xmpp;

namespace Candor.Server.Modules.Policy;

/// <summary>
/// How the other side treats your messages (issue 21.3): when an account asks to add a contact on another server,
/// the server asks that server for its disco#info over federation and tells the asking client, in a chat message from
/// the server's JID, what its XEP-0504 data policy form says, or that it publishes none, or that it did not answer.
/// The subscription request itself goes on at once; the notice follows when the answer comes.
/// </summary>
internal static class RemotePolicy
{
    public static ValueTask<bool> OnPresenceAsync(XmppServer server, StanzaEvent ev)
    {
        if (ev.Type != "subscribe" || ev.Origin is not { } session || server.S2s is not { } s2s || s2s.Serves(ev.To.Domain))
            return ValueTask.FromResult(false);
        _ = TellAsync(server, session, ev.To.Bare);
        return ValueTask.FromResult(false);
    }

    private static async Task TellAsync(XmppServer server, Session session, Jid contact)
    {
        var domain = Jid.Parse(contact.Domain);
        var timeout = TimeSpan.FromSeconds(server.Options.S2sConnectTimeoutSeconds + 5);
        var answer = await server.OutboundIq.GetAsync(server.Router, domain, new Element("query", Ns.DiscoInfo), timeout);
        var message = new Element("message", Ns.Client).SetAttribute("type", "chat")
            .SetAttribute("from", server.Domain.ToString()).SetAttribute("to", session.Jid.ToString())
            .SetAttribute("id", "policy-" + Guid.NewGuid().ToString("N")[..12]);
        message.AddChild("body").AddText(Describe(contact, answer));
        session.Send(message);
    }

    /// <summary>The notice's text: the remote server's data policy fields, one per line, as it states them.</summary>
    public static string Describe(Jid contact, Element? answer)
    {
        var domain = contact.Domain;
        var intro = $"You asked to add {contact}. ";
        if (answer is null) return intro + $"Its server, {domain}, did not answer within the time allowed: how it treats your messages is unknown.";
        if (answer.Type() != "result")
            return intro + $"Its server, {domain}, did not tell its data policy ({answer.GetChild("error", Ns.Client)?.FirstElement?.Name ?? "error"}): how it treats your messages is unknown.";
        var forms = answer.GetChild("query", Ns.DiscoInfo)?.Elements.Where(e => e.Is("x", Ns.DataForms)).ToList() ?? [];
        var policy = forms.FirstOrDefault(f => FormType(f) == PolicyModule.DataPolicyFormType);
        if (policy is null)
            return intro + $"Its server, {domain}, publishes no data policy (XEP-0504): how it treats your messages is not stated.";
        var text = new StringBuilder(intro).Append($"Its server, {domain}, publishes this data policy (XEP-0504):");
        foreach (var field in policy.Elements.Where(e => e.Is("field", Ns.DataForms)))
        {
            var name = field.GetAttribute("var");
            if (name is null or "FORM_TYPE") continue;
            var values = field.Elements.Where(v => v.Is("value", Ns.DataForms)).Select(v => v.Text).ToList();
            if (values.Count == 1 && name != "extra_info") text.Append($"\n{name}: {values[0]}");
            else foreach (var value in values) text.Append($"\n- {value}");
        }
        if (forms.FirstOrDefault(f => FormType(f) == PublishedPolicy.FormatUri) is { } candor && Value(candor, "url") is { } url)
            text.Append($"\nIts full published policy: {url}");
        return text.ToString();

        static string? FormType(Element form) => Value(form, "FORM_TYPE");
        static string? Value(Element form, string var) => form.Elements
            .FirstOrDefault(f => f.Is("field", Ns.DataForms) && f.GetAttribute("var") == var)?.GetChildText("value", Ns.DataForms);
    }
}
