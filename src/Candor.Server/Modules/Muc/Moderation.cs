using Candor.Server.Core;
using Candor.Server.Modules.Archive;
using Candor.Xml;
using Candor.Xmpp;

namespace Candor.Server.Modules.Muc;

/// <summary>
/// Message moderation (XEP-0425): a moderator retracts a message for everyone by the stanza-id the room gave it.
/// Both the current form (urn:xmpp:message-moderate:1) and the earlier one clients still send (0.2.x:
/// urn:xmpp:message-moderate:0 inside a XEP-0422 apply-to) are taken, and the retraction is announced in both.
/// The message leaves the room's history and archive, so nobody entering or querying later gets it; in an archived
/// room the retraction is archived in its place.
/// </summary>
public sealed partial class Room
{
    public const string ModerateNs = "urn:xmpp:message-moderate:1";
    public const string RetractNs = "urn:xmpp:message-retract:1";
    public const string LegacyModerateNs = "urn:xmpp:message-moderate:0";
    public const string LegacyRetractNs = "urn:xmpp:message-retract:0";
    public const string FastenNs = "urn:xmpp:fasten:0";

    public async ValueTask<Element> ModerateAsync(IqRequest request)
    {
        var payload = request.Payload;
        var moderate = payload.Is("apply-to", FastenNs) ? payload.GetChild("moderate", LegacyModerateNs) : payload;
        var stanzaId = payload.GetAttribute("id");
        if (!request.IsSet || moderate is null || stanzaId is null
            || moderate.GetChild("retract", RetractNs) is null && moderate.GetChild("retract", LegacyRetractNs) is null)
            return request.Error(StanzaError.BadRequest, "a moderation request names the message's stanza-id and asks to retract it");
        if (OccupantByJid(request.From) is not { IsModerator: true } moderator)
            return request.Error(StanzaError.Forbidden, "only moderators retract messages");
        var inHistory = History.Remove(stanzaId) is not null;
        if (!await TakeFromArchiveAsync(stanzaId) && !inHistory)
            return request.Error(StanzaError.ItemNotFound, "no message with that stanza-id in the room's history or archive");
        var reason = moderate.GetChildText("reason", moderate.Namespace);
        var by = Jid.WithResource(moderator.Nick).ToString();
        string? retractionId = null;
        if (Config.Archived)
        {
            retractionId = RandomIds.Uuid7(DateTimeOffset.UtcNow);
            var archived = Retraction(null, stanzaId, by, moderator.OccupantId, reason, null);
            await ArchiveAppend(retractionId, Jid.ToString(), ElementWriter.ToXmlString(archived)).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        }
        foreach (var occupant in _occupants)
            Send(occupant, Retraction(occupant, stanzaId, by, moderator.OccupantId, reason, retractionId));
        return request.Result();
    }

    /// <summary>The retraction announced to <paramref name="to"/>, or (null) as archived; with the room's stanza-id for it when archived.</summary>
    private Element Retraction(Occupant? to, string stanzaId, string by, string moderatorId, string? reason, string? retractionId)
    {
        var message = (to is null ? new Element("message", Ns.Client).SetAttribute("from", Jid.ToString()) : ToOccupant("message", to))
            .SetAttribute("type", "groupchat");
        var retract = message.AddChild("retract", RetractNs).SetAttribute("id", stanzaId);
        retract.AddChild("moderated", ModerateNs).SetAttribute("by", by)
            .AddChild("occupant-id", OccupantIdNs).SetAttribute("id", moderatorId);
        if (reason is not null) retract.AddChild("reason", RetractNs).AddText(reason);
        var legacy = message.AddChild("apply-to", FastenNs).SetAttribute("id", stanzaId)
            .AddChild("moderated", LegacyModerateNs).SetAttribute("by", by);
        legacy.AddChild("retract", LegacyRetractNs);
        if (reason is not null) legacy.AddChild("reason", LegacyModerateNs).AddText(reason);
        message.AddChild("body", Ns.Client).AddText("This message was retracted by a moderator" + (reason is null ? "." : ": " + reason));
        if (to is not null && retractionId is not null) message.Add(MamQuery.StanzaId(retractionId, Jid));
        return message;
    }
}
