using Candor.Server.Core;
using Candor.Xml;
using Candor.Xmpp;

namespace Candor.Server.Modules.Muc;

/// <summary>
/// Registering with a room (XEP-0045 §7.10): a reserved nick and membership. In a members-only room only
/// members register (to reserve their nick); everyone else is made a member by an admin or an invitation.
/// </summary>
public sealed partial class Room
{
    public const string RegisterFormType = MucNs + "#register";
    public const string ReservedNickNode = "x-roomuser-item";

    /// <summary>§7.12: the nick the asker registered with the room, as an identity of the x-roomuser-item node (none when none).</summary>
    public Element ReservedNick(Jid asker)
    {
        var query = new Element("query", Ns.DiscoInfo).SetAttribute("node", ReservedNickNode);
        if (_registeredNicks.TryGetValue(asker.Bare, out var nick))
            query.AddChild("identity").SetAttribute("category", "conference").SetAttribute("type", "text").SetAttribute("name", nick);
        return query;
    }

    public async ValueTask<Element> RegisterAsync(IqRequest request)
    {
        var jid = request.From.Bare;
        var affiliation = AffiliationOf(jid);
        if (!request.IsSet)
        {
            var query = new Element("query", Ns.Register);
            if (_registeredNicks.TryGetValue(jid, out var registered))
            {
                query.AddChild("registered");
                query.AddChild("username").AddText(registered);
                return request.Result(query);
            }
            var form = query.AddChild("x", Ns.DataForms).SetAttribute("type", "form");
            form.AddChild("title").AddText("Register with the room");
            FormField(form, "FORM_TYPE", "hidden", RegisterFormType);
            form.AddChild("field").SetAttribute("var", "muc#register_roomnick").SetAttribute("type", "text-single")
                .SetAttribute("label", "Nick").AddChild("required");
            return request.Result(query);
        }
        if (affiliation == Affiliation.Outcast) return request.Error(StanzaError.Forbidden, "you are banned from this room");
        if (request.Payload.GetChild("remove", Ns.Register) is not null)
        {
            _registeredNicks.Remove(jid);
            if (affiliation == Affiliation.Member) _affiliations.Remove(jid);
            if (Config.Persistent) await _service.SaveAsync(this);
            return request.Result();
        }
        if (request.Payload.GetChild("x", Ns.DataForms) is not { } submitted || FormValue(submitted, "FORM_TYPE") != RegisterFormType)
            return request.Error(StanzaError.BadRequest, $"submit the {RegisterFormType} form");
        var nick = FormValue(submitted, "muc#register_roomnick");
        if (string.IsNullOrEmpty(nick) || !Jid.TryParse(Jid.ToString() + "/" + nick, out _))
            return request.Error(StanzaError.NotAcceptable, "muc#register_roomnick must be a valid nick");
        if (IsRegisteredToOther(nick, jid) || _byNick.TryGetValue(nick, out var holder) && holder.RealJid.Bare != jid)
            return request.Error(StanzaError.Conflict, "that nick is taken in this room");
        if (Config.MembersOnly && affiliation < Affiliation.Member)
            return request.Error(StanzaError.NotAllowed, "only members register with a members-only room; ask an admin for membership");
        _registeredNicks[jid] = nick;
        if (affiliation < Affiliation.Member) _affiliations[jid] = Affiliation.Member;
        foreach (var occupant in _occupants)
            if (occupant.RealJid.Bare == jid && occupant.Affiliation < Affiliation.Member)
            {
                occupant.Affiliation = Affiliation.Member;
                if (occupant.Role < Role.Participant) occupant.Role = Role.Participant;
                BroadcastPresence(occupant, available: true);
            }
        if (Config.Persistent) await _service.SaveAsync(this);
        return request.Result();
    }
}
