using System.Security.Cryptography;
using Candor.Server.Core;
using Candor.Xml;
using Candor.Xmpp;

namespace Candor.Server.Modules.Muc;

/// <summary>A stanza to route once the room's gate is released (it may come back to the same room).</summary>
public readonly record struct Onward(Element Stanza, Jid From, Jid To);

/// <summary>
/// IQs between occupants (XEP-0045 lets the room pass IQs to occupant JIDs on; done here as Prosody does it): a get or set to an occupant
/// JID goes to the occupant's real JID from the sender's occupant JID, under an id of the room's, and the answer goes
/// back the same way, so neither learns the other's real JID. A vCard request goes to the occupant's bare JID (the
/// account answers for its vCard), anything else to one session of the nick (its first). XEP-0410: a ping to one's own
/// occupant JID is answered by the room.
/// </summary>
public sealed partial class Room
{
    /// <summary>Requests passed on and not yet answered; more at once are refused with resource-constraint.</summary>
    public const int MaxPendingIqs = 256;
    private static readonly TimeSpan PendingIqLifetime = TimeSpan.FromMinutes(1);

    private sealed record PendingIq(Jid Requester, string? Id, Jid Responder, string ResponderNick, DateTimeOffset Expires);

    /// <summary>By the id the room gave the request it passed on.</summary>
    private readonly Dictionary<string, PendingIq> _pendingIqs = new(StringComparer.Ordinal);

    /// <summary>An IQ to an occupant JID; returns what to route once the gate is released, or null when answered here.</summary>
    public async ValueTask<Onward?> OccupantIqAsync(StanzaEvent ev)
    {
        if (ev.Type is "result" or "error") return ReturnIq(ev);
        if (ev.Type is not ("get" or "set"))
        {
            await ev.ReplyErrorAsync(StanzaError.BadRequest, "an IQ is a get, set, result or error");
            return null;
        }
        var payload = ev.Stanza.FirstElement;
        if (payload is null || ev.Stanza.Elements.Skip(1).Any())
        {
            await ev.ReplyErrorAsync(StanzaError.BadRequest, "An IQ get or set carries exactly one child element.");
            return null;
        }
        var nick = ev.To.Resource!;
        if (OccupantByJid(ev.From) is not { } sender)
        {
            await ev.ReplyErrorAsync(StanzaError.NotAcceptable, "only occupants send IQs to occupants; you are not in the room");
            return null;
        }
        if (payload.Is("ping", Ns.Ping) && ev.Type == "get" && sender.Nick == nick)
        {
            await ev.Server.Router.DeliverAsync(new IqRequest(ev, payload).Result(), ev.To, ev.From);
            return null;
        }
        if (!_byNick.TryGetValue(nick, out var target))
        {
            await ev.ReplyErrorAsync(StanzaError.ItemNotFound, "nobody in the room has that nick");
            return null;
        }
        var now = DateTimeOffset.UtcNow;
        if (_pendingIqs.Count >= MaxPendingIqs)
        {
            foreach (var (key, pending) in _pendingIqs)
                if (pending.Expires < now) _pendingIqs.Remove(key);
            if (_pendingIqs.Count >= MaxPendingIqs)
            {
                await ev.ReplyErrorAsync(StanzaError.ResourceConstraint, "too many requests to occupants of this room are unanswered; try again later");
                return null;
            }
        }
        var responder = payload.Is("vCard", Ns.VCard) ? target.RealJid.Bare : target.RealJid;
        var id = "muc-iq-" + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(9));
        _pendingIqs[id] = new PendingIq(ev.From, ev.Stanza.Id(), responder, target.Nick, now + PendingIqLifetime);
        var from = Jid.WithResource(sender.Nick);
        var forwarded = ev.Stanza.Clone().SetAttribute("from", from.ToString()).SetAttribute("to", responder.ToString()).SetAttribute("id", id);
        return new Onward(forwarded, from, responder);
    }

    /// <summary>The answer to a request the room passed on goes back to whoever asked, from the answerer's occupant JID.</summary>
    private Onward? ReturnIq(StanzaEvent ev)
    {
        // Not the room's request, or not from whom it went to: nothing waits for it, and results and errors are not answered.
        if (ev.Stanza.Id() is not { } id || !_pendingIqs.TryGetValue(id, out var pending) || pending.Responder != ev.From) return null;
        _pendingIqs.Remove(id);
        if (pending.Expires < DateTimeOffset.UtcNow) return null;
        var from = Jid.WithResource(pending.ResponderNick);
        var answer = ev.Stanza.Clone().SetAttribute("from", from.ToString()).SetAttribute("to", pending.Requester.ToString()).SetAttribute("id", pending.Id);
        return new Onward(answer, from, pending.Requester);
    }
}
