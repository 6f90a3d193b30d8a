using Candor.Server.Core;
using Candor.Xml;
using Candor.Xmpp;

namespace Candor.Server.Modules.Muc;

/// <summary>
/// The moderator, admin and owner use cases (XEP-0045 §8–§10): roles by nick (kick, voice, moderator),
/// affiliations by JID (ban, membership, admin, owner), their lists, configuration and destruction.
/// </summary>
public sealed partial class Room
{
    /// <summary>An IQ in muc#admin: get a list (§8.5, §9.1.1 ...) or set roles and affiliations.</summary>
    public async ValueTask<Element> AdminAsync(IqRequest request)
    {
        var actorAffiliation = AffiliationOf(request.From);
        var actor = OccupantByJid(request.From);
        var items = request.Payload.Elements.Where(e => e.Is("item", AdminNs)).ToList();
        if (items.Count == 0) return request.Error(StanzaError.BadRequest, "an admin request carries items");
        if (!request.IsSet)
        {
            var item = items[0];
            var list = new Element("query", AdminNs);
            if (Roles.TryParseAffiliation(item.GetAttribute("affiliation"), out var affiliation) && affiliation != Affiliation.None)
            {
                // Members of a members-only, non-anonymous room see the lists too (as in Prosody): OMEMO clients must
                // encrypt for absent members (XEP-0384 §6.1), and who may read the room is no secret among them.
                if (actorAffiliation < Affiliation.Admin && !(Config.MembersOnly && Config.NonAnonymous && actorAffiliation >= Affiliation.Member))
                    return request.Error(StanzaError.Forbidden, "only admins and owners see affiliation lists (members too in members-only, non-anonymous rooms)");
                foreach (var (jid, held) in _affiliations)
                {
                    if (held != affiliation) continue;
                    var entry = list.AddChild("item").SetAttribute("affiliation", Roles.Name(held)).SetAttribute("jid", jid.ToString());
                    if (_registeredNicks.TryGetValue(jid, out var nick)) entry.SetAttribute("nick", nick);
                }
                return request.Result(list);
            }
            if (Roles.TryParseRole(item.GetAttribute("role"), out var role) && role is Role.Moderator or Role.Participant or Role.Visitor)
            {
                if (actor is not { IsModerator: true }) return request.Error(StanzaError.Forbidden, "only moderators see role lists");
                foreach (var occupant in _occupants)
                    if (occupant.Role == role)
                        list.AddChild("item").SetAttribute("nick", occupant.Nick).SetAttribute("role", Roles.Name(role))
                            .SetAttribute("affiliation", Roles.Name(occupant.Affiliation)).SetAttribute("jid", occupant.RealJidText);
                return request.Result(list);
            }
            return request.Error(StanzaError.BadRequest, "ask for an affiliation (outcast, member, admin, owner) or a role (visitor, participant, moderator)");
        }

        var changed = false;
        foreach (var item in items)
        {
            var reason = item.GetChildText("reason", AdminNs);
            string? refusal;
            if (item.GetAttribute("role") is { } roleText)
            {
                if (!Roles.TryParseRole(roleText, out var role) || item.GetAttribute("nick") is not { } nick)
                    return request.Error(StanzaError.BadRequest, "a role change names a valid role and the occupant's nick");
                refusal = await ChangeRoleAsync(actor, nick, role, reason);
            }
            else if (item.GetAttribute("affiliation") is { } affiliationText)
            {
                // Some clients name an occupant by nick rather than JID (XEP-0045 §9.3 gives both).
                var jid = Jid.TryParse(item.GetAttribute("jid"), out var named) ? named
                    : item.GetAttribute("nick") is { } byNick && _byNick.TryGetValue(byNick, out var occupant) ? occupant.RealJid : null;
                if (!Roles.TryParseAffiliation(affiliationText, out var affiliation) || jid is null)
                    return request.Error(StanzaError.BadRequest, "an affiliation change names a valid affiliation and a JID (or an occupant's nick)");
                refusal = await ChangeAffiliationAsync(actor, actorAffiliation, jid.Bare, affiliation, reason);
                changed |= refusal is null;
            }
            else return request.Error(StanzaError.BadRequest, "each item sets a role or an affiliation");
            if (refusal is not null)
            {
                var (error, text) = Refusals[refusal];
                return request.Error(error, text);
            }
        }
        if (changed && Config.Persistent) await _service.SaveAsync(this);
        return request.Result();
    }

    private static readonly Dictionary<string, (StanzaError, string)> Refusals = new()
    {
        ["moderator"] = (StanzaError.Forbidden, "only moderators change roles"),
        ["admin"] = (StanzaError.Forbidden, "only admins and owners change this"),
        ["owner"] = (StanzaError.Forbidden, "only owners grant or revoke admin and owner"),
        ["nick"] = (StanzaError.ItemNotFound, "nobody in the room has that nick"),
        ["higher"] = (StanzaError.NotAllowed, "an admin or owner cannot be demoted or removed by someone of equal or lower affiliation"),
        ["last-owner"] = (StanzaError.Conflict, "the room needs at least one owner"),
    };

    /// <summary>Kick (role none, §8.2), voice (§8.3, §8.4) and moderator (§9.6, §9.7) by nick; null when done, else a key of <see cref="Refusals"/>.</summary>
    private async ValueTask<string?> ChangeRoleAsync(Occupant? actor, string nick, Role role, string? reason)
    {
        if (actor is not { IsModerator: true }) return "moderator";
        if (!_byNick.TryGetValue(nick, out var target)) return "nick";
        // §8.2, §9.7: admins and owners keep their role against anyone not above them.
        if (target.Affiliation >= Affiliation.Admin && role < Role.Moderator && target.Affiliation >= actor.Affiliation && target != actor)
            return "higher";
        if ((role == Role.Moderator || target.IsModerator && target != actor) && actor.Affiliation < Affiliation.Admin) return "admin";
        if (role == Role.None)
        {
            await LeaveAsync(target, 307, Decorate(actor, reason));
            return null;
        }
        target.Role = role;
        BroadcastPresence(target, available: true, [], Decorate(actor, reason));
        return null;
    }

    /// <summary>Ban (§9.1), membership (§9.3, §9.4), admin (§10.6, §10.7) and owner (§10.3, §10.4) by JID.</summary>
    private async ValueTask<string?> ChangeAffiliationAsync(Occupant? actor, Affiliation actorAffiliation, Jid jid, Affiliation affiliation, string? reason)
    {
        var current = AffiliationOf(jid);
        if (actorAffiliation < Affiliation.Admin) return "admin";
        if ((affiliation >= Affiliation.Admin || current >= Affiliation.Admin) && actorAffiliation < Affiliation.Owner)
            return current >= Affiliation.Admin ? "higher" : "owner";
        if (current == Affiliation.Owner && affiliation != Affiliation.Owner && _affiliations.Count(a => a.Value == Affiliation.Owner) == 1)
            return "last-owner";
        if (affiliation == Affiliation.None) _affiliations.Remove(jid);
        else _affiliations[jid] = affiliation;

        var decorate = Decorate(actor, reason);
        var present = _occupants.Where(o => o.RealJid.Bare == jid).ToList();
        if (present.Count == 0) AnnounceAbsentAffiliation(jid, affiliation, reason);
        foreach (var occupant in present)
        {
            occupant.Affiliation = affiliation;
            if (affiliation == Affiliation.Outcast) await LeaveAsync(occupant, 301, decorate);
            else if (Config.MembersOnly && affiliation < Affiliation.Member) await LeaveAsync(occupant, 321, decorate);
            else
            {
                occupant.Role = Roles.Default(affiliation, Config.Moderated);
                BroadcastPresence(occupant, available: true, [], decorate);
            }
        }
        return null;
    }

    /// <summary>
    /// A user not in the room changed affiliation: a message from the room tells the occupants who see real JIDs
    /// (XEP-0045 1.34.7 "Notifications of Changes": MAY; Prosody does it), so their member lists stay current.
    /// </summary>
    private void AnnounceAbsentAffiliation(Jid jid, Affiliation affiliation, string? reason)
    {
        foreach (var viewer in _occupants)
        {
            if (!SeesJids(viewer)) continue;
            var message = ToOccupant("message", viewer);
            var item = message.AddChild("x", UserNs).AddChild("item")
                .SetAttribute("affiliation", Roles.Name(affiliation)).SetAttribute("jid", jid.ToString());
            if (reason is not null) item.AddChild("reason", UserNs).AddText(reason);
            Send(viewer, message);
        }
    }

    private static Action<Element>? Decorate(Occupant? actor, string? reason) =>
        actor is null && reason is null ? null : item =>
        {
            if (actor is not null) item.AddChild("actor", UserNs).SetAttribute("nick", actor.Nick);
            if (reason is not null) item.AddChild("reason", UserNs).AddText(reason);
        };

    /// <summary>An IQ in muc#owner (§10): the configuration form, a submitted or cancelled form, or destruction.</summary>
    public async ValueTask<Element> OwnerAsync(IqRequest request)
    {
        if (AffiliationOf(request.From) != Affiliation.Owner) return request.Error(StanzaError.Forbidden, "only owners configure the room");
        if (!request.IsSet) return request.Result(new Element("query", OwnerNs).Add(Config.Form()));
        if (request.Payload.GetChild("destroy", OwnerNs) is { } destroy)
        {
            await DestroyAsync(destroy.GetAttribute("jid"), destroy.GetChildText("reason", OwnerNs), destroy.GetChildText("password", OwnerNs));
            return request.Result();
        }
        if (request.Payload.GetChild("x", Ns.DataForms) is not { } form) return request.Error(StanzaError.BadRequest, "send a data form or <destroy/>");
        switch (form.GetAttribute("type"))
        {
            case "cancel":
                // §10.1.3: cancelling the configuration of a new room destroys it.
                if (Locked) await DestroyAsync(null, null, null);
                return request.Result();
            case "submit":
                var wasMembersOnly = Config.MembersOnly;
                var wasNonAnonymous = Config.NonAnonymous;
                var wasArchived = Config.Archived;
                if (Config.With(form, out var problem) is not { } next) return request.Error(StanzaError.NotAcceptable, problem);
                Config = next;
                History.Trim(Config.Archived ? 0 : Config.HistoryLength); // an archived room's history is its archive
                var wasLocked = Locked;
                Locked = false;
                if (Config.Persistent) await _service.SaveAsync(this);
                else await _service.ForgetAsync(this);
                if (!wasLocked)
                {
                    var codes = new List<int> { 104 };
                    if (Config.NonAnonymous != wasNonAnonymous) codes.Add(Config.NonAnonymous ? 172 : 173);
                    if (Config.Archived != wasArchived) codes.Add(Config.Archived ? 170 : 171);
                    BroadcastStatus([.. codes]);
                }
                if (Config.MembersOnly && !wasMembersOnly)
                    foreach (var occupant in _occupants.Where(o => o.Affiliation < Affiliation.Member).ToList())
                        await LeaveAsync(occupant, 322);
                return request.Result();
            default:
                return request.Error(StanzaError.BadRequest, "the form is submitted or cancelled");
        }
    }

    /// <summary>§10.9: everyone leaves with the reason and the alternate venue, and the room is gone.</summary>
    public async ValueTask DestroyAsync(string? alternate, string? reason, string? password)
    {
        foreach (var occupant in _occupants)
        {
            var presence = ToOccupant("presence", occupant, Jid.WithResource(occupant.Nick).ToString()).SetAttribute("type", "unavailable");
            var x = presence.AddChild("x", UserNs);
            x.AddChild("item").SetAttribute("affiliation", "none").SetAttribute("role", "none");
            var destroy = x.AddChild("destroy").SetAttribute("jid", alternate);
            if (reason is not null) destroy.AddChild("reason").AddText(reason);
            if (password is not null) destroy.AddChild("password").AddText(password);
            x.AddChild("status").SetAttribute("code", "110");
            Send(occupant, presence);
        }
        foreach (var occupant in _occupants) RemoveOccupant(occupant);
        await _service.DisposeRoomAsync(this);
        await _service.ForgetAsync(this);
    }
}
