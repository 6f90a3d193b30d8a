using Candor.Server.Core;
using Candor.Server.Modules.AdHoc;
using Candor.Xml;
using Candor.Xmpp;

namespace Candor.Server.Modules.Muc;

/// <summary>A hat (XEP-0317): a room-specific role named by its URI, with a title to show.</summary>
public sealed record Hat(string Uri, string Title);

/// <summary>
/// Hats (XEP-0317 0.2): admins and owners put hats on a member by bare JID with the ad-hoc command
/// urn:xmpp:hats:commands:don and take them off with urn:xmpp:hats:commands:doff (XEP-0050, on the room's JID);
/// every occupant of that JID then shows them in its presence (&lt;hats xmlns='urn:xmpp:hats:0'/&gt;), sent to everyone
/// at once. A client cannot put hats on itself: what it puts in its own presence is dropped.
/// </summary>
public sealed partial class Room
{
    public const string HatsNs = "urn:xmpp:hats:0";
    public const string HatsFormType = "urn:xmpp:hats:commands";
    public const string DonNode = "urn:xmpp:hats:commands:don";
    public const string DoffNode = "urn:xmpp:hats:commands:doff";
    /// <summary>Hats one JID may wear in a room: enough for any role scheme, and a bound on what a room keeps.</summary>
    public const int MaxHatsPerJid = 32;

    /// <summary>Hats by bare JID; a JID with none has no entry.</summary>
    private readonly Dictionary<Jid, List<Hat>> _hats = [];

    /// <summary>The &lt;hats/&gt; element of an occupant's presence, or null when it wears none.</summary>
    private Element? HatsOf(Occupant occupant)
    {
        if (!_hats.TryGetValue(occupant.RealJid.Bare, out var hats)) return null;
        var element = new Element("hats", HatsNs);
        foreach (var hat in hats) element.AddChild("hat").SetAttribute("uri", hat.Uri).SetAttribute("title", hat.Title);
        return element;
    }

    /// <summary>The room's commands (XEP-0050 §2.2), as disco#items of the commands node: the hat commands, for admins and owners.</summary>
    public Element CommandItems(Jid requester)
    {
        var query = new Element("query", Ns.DiscoItems).SetAttribute("node", AdHocModule.Namespace);
        if (AffiliationOf(requester) < Affiliation.Admin) return query;
        query.AddChild("item").SetAttribute("jid", Jid.ToString()).SetAttribute("node", DonNode).SetAttribute("name", "Assign a hat");
        query.AddChild("item").SetAttribute("jid", Jid.ToString()).SetAttribute("node", DoffNode).SetAttribute("name", "Remove a hat");
        return query;
    }

    /// <summary>
    /// The don and doff commands. Executed without a form, they answer with the form to fill (status executing);
    /// with a submitted form, they act and complete in one step (the XEP's doff example sends the form at once).
    /// </summary>
    public async ValueTask<Element> HatCommandAsync(IqRequest request)
    {
        var command = request.Payload;
        var node = command.GetAttribute("node");
        if (node is not (DonNode or DoffNode)) return request.Error(StanzaError.ItemNotFound, "no such command in this room");
        var sessionId = command.GetAttribute("sessionid") ?? Convert.ToHexStringLower(System.Security.Cryptography.RandomNumberGenerator.GetBytes(9));
        var action = command.GetAttribute("action") ?? "execute";
        if (action == "cancel") return request.Result(CommandElement(node, sessionId, "canceled"));
        if (action is not ("execute" or "complete"))
            return request.Error(StanzaError.BadRequest, "the hat commands take execute or complete, never next or prev");
        if (AffiliationOf(request.From) < Affiliation.Admin) return request.Error(StanzaError.Forbidden, "only admins and owners assign and remove hats");
        if (command.GetChild("x", Ns.DataForms) is not { } form || form.GetAttribute("type") != "submit")
            return request.Result(HatForm(node, sessionId));

        if (FormValue(form, "FORM_TYPE") is { } formType && formType != HatsFormType)
            return request.Error(StanzaError.BadRequest, $"the form's FORM_TYPE is {HatsFormType}");
        if (!Jid.TryParse(FormValue(form, "accountjid"), out var account))
            return request.Error(StanzaError.BadRequest, "accountjid names the user's address");
        var uri = FormValue(form, "hat")?.Trim();
        if (string.IsNullOrEmpty(uri) || !Uri.TryCreate(uri, UriKind.Absolute, out _))
            return request.Error(StanzaError.BadRequest, "hat is the hat's URI (an absolute URI)");
        var bare = account.Bare;
        var hats = _hats.GetValueOrDefault(bare) ?? [];
        var worn = hats.FindIndex(h => h.Uri == uri);
        if (node == DonNode)
        {
            var title = FormValue(form, "title")?.Trim();
            if (string.IsNullOrEmpty(title)) title = worn >= 0 ? hats[worn].Title : uri;
            if (worn >= 0) hats[worn] = new Hat(uri, title);
            else if (hats.Count >= MaxHatsPerJid)
                return request.Error(StanzaError.NotAllowed, $"{bare} wears {MaxHatsPerJid} hats in this room, the most it may");
            else hats.Add(new Hat(uri, title));
            _hats[bare] = hats;
        }
        else
        {
            if (worn < 0) return request.Error(StanzaError.ItemNotFound, $"{bare} does not wear that hat in this room");
            hats.RemoveAt(worn);
            if (hats.Count == 0) _hats.Remove(bare);
        }
        if (Config.Persistent) await _service.SaveAsync(this);
        // Everyone sees the change at once: the presence of every session of that JID in the room, with its hats now.
        foreach (var occupant in _occupants)
            if (occupant.RealJid.Bare == bare) BroadcastPresence(occupant, available: true);
        return request.Result(CommandElement(node, sessionId, "completed"));
    }

    private static Element CommandElement(string node, string sessionId, string status) =>
        new Element("command", AdHocModule.Namespace).SetAttribute("node", node).SetAttribute("sessionid", sessionId).SetAttribute("status", status);

    private Element HatForm(string node, string sessionId)
    {
        var command = CommandElement(node, sessionId, "executing");
        command.AddChild("actions").SetAttribute("execute", "complete").AddChild("complete");
        var form = command.AddChild("x", Ns.DataForms).SetAttribute("type", "form");
        var don = node == DonNode;
        form.AddChild("title").AddText(don ? "Assigning a Hat" : "Removing a Hat");
        form.AddChild("instructions").AddText(don
            ? "Fill out this form to assign a hat: the user's address, the hat's URI and its title."
            : "Fill out this form to remove a hat: the user's address and the hat's URI.");
        FormField(form, "FORM_TYPE", "hidden", HatsFormType);
        form.AddChild("field").SetAttribute("var", "accountjid").SetAttribute("type", "jid-single").SetAttribute("label", "User Address").AddChild("required");
        // A new hat is named by its URI (a list-single field could not take one); removing offers the hats worn in the room.
        var hat = form.AddChild("field").SetAttribute("var", "hat").SetAttribute("type", don ? "text-single" : "list-single")
            .SetAttribute("label", "The hat's URI");
        hat.AddChild("required");
        if (!don)
            foreach (var known in _hats.Values.SelectMany(h => h).DistinctBy(h => h.Uri))
                hat.AddChild("option").SetAttribute("label", known.Title).AddChild("value").AddText(known.Uri);
        if (don) form.AddChild("field").SetAttribute("var", "title").SetAttribute("type", "text-single").SetAttribute("label", "The hat's title");
        return command;
    }
}
