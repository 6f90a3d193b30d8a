using Candor.Server.Core;
using Candor.Server.Modules.Archive;
using Candor.Server.Storage;
using Candor.Xml;
using Candor.Xmpp;

namespace Candor.Server.Modules.Muc;

/// <summary>
/// The room's archive (XEP-0313 on the room JID): the account archive's store, writer and queries, under the
/// room's JID as owner key. Each archived message is stored as occupants got it, without the room's stanza-id
/// (the archive's key, which results carry). The history sent on entering comes from it.
/// </summary>
public sealed partial class Room
{
    private string ArchiveKey => Jid.ToString();

    private Task ArchiveAppend(string stanzaId, string from, string xml) =>
        _service.ArchiveWriter.Append(new ArchiveEntry(ArchiveKey, stanzaId, DateTimeOffset.UtcNow, from, xml));

    private string ArchivedCopy(Element stanza, string from, string? id, Occupant sender)
    {
        var message = new Element("message", Ns.Client).SetAttribute("from", from).SetAttribute("type", "groupchat").SetAttribute("id", id);
        var room = Jid.ToString();
        foreach (var child in stanza.Elements)
            if (Passed(child, room)) message.Add(child.Clone());
        message.AddChild("occupant-id", OccupantIdNs).SetAttribute("id", sender.OccupantId);
        return ElementWriter.ToXmlString(message);
    }

    /// <summary>
    /// The history sent on entering: an archived room reads it from its archive (so it survives a restart, and what
    /// retention or a moderator removed is gone from it too), any other room from the messages it keeps in memory.
    /// </summary>
    private async ValueTask<List<Element>> HistoryAsync(HistoryRequest request, Jid to)
    {
        if (!Config.Archived) return request.Take(History.Newest, Jid, to);
        if (request.MaxStanzas == 0) return [];
        await _service.ArchiveWriter.WhenWritten().ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        var entries = new List<HistoryEntry>();
        var query = new ArchiveQuery { Newest = true, Start = request.Since == DateTimeOffset.MinValue ? null : request.Since };
        while (entries.Count < request.MaxStanzas)
        {
            var limit = request.MaxStanzas - entries.Count;
            var items = await _service.Archive.QueryAsync(ArchiveKey, query with { Limit = limit });
            // Retractions are archived from the room itself, not from a nick: no history to replay, so read on past them.
            foreach (var item in items)
                if (History.FromArchive(item, Jid) is { } entry) entries.Add(entry);
            if (items.Count < limit) break;
            query = query with { BeforeId = items[^1].Id };
        }
        return request.Take(entries, Jid, to);
    }

    /// <summary>
    /// XEP-0313 requests to the room: the form, queries and metadata. Anyone not banned reads an open room's
    /// archive; a members-only room's is for its members and occupants (XEP-0313 §4.1.2 leaves this to the room).
    /// </summary>
    public async ValueTask<Element> ArchiveRequestAsync(IqRequest request)
    {
        var affiliation = AffiliationOf(request.From);
        if (affiliation == Affiliation.Outcast) return request.Error(StanzaError.Forbidden, "you are banned from this room");
        if (Config.MembersOnly && affiliation < Affiliation.Member && OccupantByJid(request.From) is null)
            return request.Error(StanzaError.Forbidden, "the archive of a members-only room is for its members");
        var writer = _service.ArchiveWriter;
        switch (request.Payload.Name, request.IsSet)
        {
            case ("query", false):
                return request.Result(MamQuery.Form());
            case ("query", true):
                if (Server.Sessions.Get(request.From) is not { } session)
                    return request.Error(StanzaError.ServiceUnavailable, "archive results go to a session of this server");
                await writer.WhenWritten().ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
                return await MamQuery.RunAsync(request, _service.Archive, ArchiveKey, Jid, session);
            case ("metadata", false):
                await writer.WhenWritten().ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
                return await MamQuery.MetadataAsync(request, _service.Archive, ArchiveKey);
            default:
                return request.Error(StanzaError.ServiceUnavailable);
        }
    }

    /// <summary>
    /// Takes a retracted message out of the archive; true when it was there. XEP-0425 asks that a retracted message
    /// be no longer served: the original content goes, and the retraction (archived in its place) tells clients why.
    /// </summary>
    private async ValueTask<bool> TakeFromArchiveAsync(string stanzaId)
    {
        await _service.ArchiveWriter.WhenWritten().ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        // Stores take by row range only: find the message's row by its key first.
        if (await _service.Archive.QueryAsync(ArchiveKey, new ArchiveQuery { Keys = [stanzaId], Limit = 1 }) is not [var item]) return false;
        return (await _service.Archive.TakeAsync(ArchiveKey, new ArchiveQuery { AfterId = item.Id - 1, BeforeId = item.Id + 1 })).Count > 0;
    }
}
