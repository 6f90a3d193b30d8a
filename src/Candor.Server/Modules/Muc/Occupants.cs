using Candor.Server.Core;
using Candor.Xml;
using Candor.Xmpp;

namespace Candor.Server.Modules.Muc;

/// <summary>
/// Entering and leaving a room, nick changes and presence updates (XEP-0045 §7.1–§7.2, §7.6, §7.14). Several sessions
/// of one bare JID may share a nick (multi-session nicks, as Prosody allows): each is an occupant of its own that gets
/// the room's traffic, the nick's first session stands for it in <see cref="_byNick"/>, and the nick leaves the room
/// when its last session does, or all at once when the room removes it (kick, ban ...).
/// </summary>
public sealed partial class Room
{
    /// <summary>Presence to an occupant JID, room@service/nick.</summary>
    public async ValueTask PresenceAsync(StanzaEvent ev, bool created)
    {
        var occupant = OccupantByJid(ev.From);
        var nick = ev.To.Resource!;
        switch (ev.Type)
        {
            case "error":
                // The occupant's client or server bounced what the room sent: it is no longer there (status 333).
                if (occupant is not null) await LeaveAsync(occupant, 333);
                return;
            case "unavailable":
                if (occupant is not null) await LeaveAsync(occupant);
                return;
            case null:
                break;
            default:
                await ev.ReplyErrorAsync(StanzaError.BadRequest, "a room occupant takes available or unavailable presence only");
                return;
        }
        if (occupant is null) await JoinAsync(ev, nick, created);
        else if (occupant.Nick != nick) await ChangeNickAsync(ev, occupant, nick);
        else
        {
            occupant.PresenceContent = Occupant.ContentOf(ev.Stanza);
            BroadcastPresence(occupant, available: true);
        }
    }

    /// <summary>
    /// A message the room sent came back as an error. From an occupant of another server it means the stanza did not reach
    /// them (their server or session is gone), and they would miss the room from then on: they leave with 333, as for
    /// a bounced presence. A local occupant's session is known to the room; a client's error is not a departure.
    /// </summary>
    public async ValueTask BouncedAsync(StanzaEvent ev)
    {
        if (OccupantByJid(ev.From) is { IsRemote: true } occupant) await LeaveAsync(occupant, 333);
    }

    private async ValueTask JoinAsync(StanzaEvent ev, string nick, bool created)
    {
        var realJid = ev.From;
        var affiliation = AffiliationOf(realJid);
        var muc = ev.Stanza.GetChild("x", MucNs);
        var refusal = affiliation switch
        {
            _ when Locked && affiliation != Affiliation.Owner => (StanzaError.ItemNotFound, "the room is still being set up by its owner"),
            Affiliation.Outcast => (StanzaError.Forbidden, "you are banned from this room"),
            _ when _byNick.TryGetValue(nick, out var holder) && holder.RealJid.Bare != realJid.Bare => (StanzaError.Conflict, "that nick is in use in the room"),
            _ when IsRegisteredToOther(nick, realJid) => (StanzaError.Conflict, "that nick is registered to someone else in this room"),
            < Affiliation.Member when Config.MembersOnly => (StanzaError.RegistrationRequired, "the room is members-only"),
            < Affiliation.Admin when Config.MaxUsers > 0 && _occupants.Length >= Config.MaxUsers =>
                (StanzaError.ServiceUnavailable, "the room is full"),
            < Affiliation.Owner when Config.PasswordProtected && muc?.GetChildText("password", MucNs) != Config.Password =>
                (StanzaError.NotAuthorized, "the room needs a password"),
            _ => default((StanzaError, string)?),
        };
        if (refusal is var (error, text))
        {
            await ev.ReplyErrorAsync(error, text);
            return;
        }

        var occupant = new Occupant(nick, realJid, OccupantIdOf(realJid), isRemote: realJid.Domain != Server.Domain.Domain)
        {
            Affiliation = affiliation,
            Role = Roles.Default(affiliation, Config.Moderated),
            PresenceContent = Occupant.ContentOf(ev.Stanza),
        };
        // §7.2.3: the others' presence first, then the newcomer's to everyone, their own last with its status codes.
        foreach (var other in _occupants)
            if (other.Nick != nick) Send(occupant, PresenceFor(other, occupant, available: true, []));
        AddOccupant(occupant);
        foreach (var other in _occupants)
            if (other != occupant) Send(other, PresenceFor(occupant, other, available: true, []));
        Span<int> codes = stackalloc int[3];
        var count = 0;
        if (Config.NonAnonymous) codes[count++] = 100;
        if (Config.Archived) codes[count++] = 170;
        if (created) codes[count++] = 201;
        Send(occupant, PresenceFor(occupant, occupant, available: true, codes[..count]));

        var history = HistoryRequest.Of(muc?.GetChild("history", MucNs), Config.HistoryLength, DateTimeOffset.UtcNow);
        foreach (var message in await HistoryAsync(history, realJid)) Send(occupant, message);
        Send(occupant, SubjectMessage(occupant));
    }

    private bool IsRegisteredToOther(string nick, Jid realJid)
    {
        foreach (var (owner, registered) in _registeredNicks)
            if (registered == nick && owner != realJid.Bare) return true;
        return false;
    }

    /// <summary>
    /// §7.6: unavailable from the old nick with 303 and the new one, then available from the new nick. A nick shared by
    /// several sessions changes for all of them at once: the others see one nick change, every session of it its own (110).
    /// </summary>
    private async ValueTask ChangeNickAsync(StanzaEvent ev, Occupant occupant, string nick)
    {
        if (_byNick.ContainsKey(nick) || IsRegisteredToOther(nick, occupant.RealJid))
        {
            await ev.ReplyErrorAsync(StanzaError.Conflict, "that nick is in use or registered to someone else in this room");
            return;
        }
        BroadcastPresence(occupant, available: false, [303], item => item.SetAttribute("nick", nick).SetAttribute("role", Roles.Name(occupant.Role)));
        var old = occupant.Nick;
        var primary = _byNick[old];
        _byNick.Remove(old);
        foreach (var session in _occupants)
            if (session.Nick == old) session.Nick = nick;
        _byNick[nick] = primary;
        occupant.PresenceContent = Occupant.ContentOf(ev.Stanza);
        BroadcastPresence(occupant, available: true);
    }

    /// <summary>The occupant leaves (or is removed, with <paramref name="code"/>); an empty temporary room goes away.</summary>
    public async ValueTask LeaveAsync(Occupant occupant, int code = 0, Action<Element>? decorateItem = null)
    {
        if (_byJid.GetValueOrDefault(occupant.RealJid) != occupant) return; // already gone with another session under its nick
        RemoveOccupant(occupant);
        var byRoom = code is not (0 or 333);
        if (!byRoom && _byNick.ContainsKey(occupant.Nick))
        {
            // Another session keeps the nick in the room: only this one is told it left.
            Send(occupant, PresenceFor(occupant, occupant, available: false, code == 0 ? [] : [code]));
            return;
        }
        while (byRoom && _byNick.GetValueOrDefault(occupant.Nick) is { } sibling)
        {
            RemoveOccupant(sibling);
            Send(sibling, PresenceFor(sibling, sibling, available: false, [code], decorateItem));
        }
        BroadcastPresence(occupant, available: false, code == 0 ? [] : [code], decorateItem);
        if (_occupants.Length == 0 && !Config.Persistent) await _service.DisposeRoomAsync(this);
    }

    private void AddOccupant(Occupant occupant)
    {
        _byNick.TryAdd(occupant.Nick, occupant);
        _byJid[occupant.RealJid] = occupant;
        _occupants = [.. _occupants, occupant];
        _service.Track(occupant.RealJid, this, joined: true);
    }

    private void RemoveOccupant(Occupant occupant)
    {
        _byJid.Remove(occupant.RealJid);
        _occupants = Array.FindAll(_occupants, o => o != occupant);
        if (_byNick.GetValueOrDefault(occupant.Nick) == occupant)
        {
            _byNick.Remove(occupant.Nick);
            if (Sibling(occupant) is { } next) _byNick[next.Nick] = next;
        }
        _service.Track(occupant.RealJid, this, joined: false);
    }

    /// <summary>Another session in the room under the occupant's nick, if any.</summary>
    private Occupant? Sibling(Occupant occupant)
    {
        foreach (var other in _occupants)
            if (other != occupant && other.Nick == occupant.Nick) return other;
        return null;
    }
}
