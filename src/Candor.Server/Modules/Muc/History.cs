using System.Buffers;
using Candor.Server.Storage;
using Candor.Xml;
using Candor.Xmpp;

namespace Candor.Server.Modules.Muc;

/// <summary>A message kept for the history of a room: who said it, when, the room's stanza-id, and its content serialized once.</summary>
public sealed record HistoryEntry(DateTimeOffset When, string Nick, string OccupantId, string? Id, string StanzaId, SerializedContent Content);

/// <summary>
/// What an occupant asked for in &lt;history/&gt; on entering (XEP-0045 §7.2.13), capped by the room's history
/// length (muc#maxhistoryfetch): at most so many stanzas, so many characters of complete stanzas, none older than Since.
/// </summary>
public readonly record struct HistoryRequest(int MaxStanzas, int MaxChars, DateTimeOffset Since)
{
    public static HistoryRequest Of(Element? request, int roomLength, DateTimeOffset now)
    {
        var maxStanzas = roomLength;
        var maxChars = int.MaxValue;
        var since = DateTimeOffset.MinValue;
        if (request is not null)
        {
            if (int.TryParse(request.GetAttribute("maxstanzas"), out var stanzas)) maxStanzas = Math.Clamp(stanzas, 0, roomLength);
            if (int.TryParse(request.GetAttribute("maxchars"), out var chars)) maxChars = Math.Max(0, chars);
            if (int.TryParse(request.GetAttribute("seconds"), out var seconds)) since = now.AddSeconds(-Math.Max(0, seconds));
            // Both given: the narrower wins (§7.2.13 lets a client combine them).
            if (XmppTime.TryParse(request.GetAttribute("since"), out var sinceStamp) && sinceStamp > since) since = sinceStamp;
        }
        return new HistoryRequest(maxChars == 0 ? 0 : maxStanzas, maxChars, since);
    }

    /// <summary>
    /// The newest-first <paramref name="entries"/> that fit, as sent to <paramref name="to"/> and oldest first.
    /// maxchars counts the characters of each complete stanza, as §7.2.13 says.
    /// </summary>
    public List<Element> Take(IEnumerable<HistoryEntry> entries, Jid room, Jid to)
    {
        var chosen = new List<Element>();
        var chars = 0L;
        foreach (var entry in entries)
        {
            if (chosen.Count >= MaxStanzas || entry.When < Since) break;
            var message = History.Message(entry, room, to);
            if (MaxChars < int.MaxValue && (chars += ElementWriter.ToXmlString(message).Length) > MaxChars) break;
            chosen.Add(message);
        }
        chosen.Reverse();
        return chosen;
    }
}

/// <summary>
/// The last messages of a room that is not archived, kept in memory for the history sent on entering. An archived
/// room keeps none here: its history comes from its (sealed) archive, so it survives a restart and follows retention.
/// </summary>
public sealed class History
{
    private readonly Queue<HistoryEntry> _entries = new();

    public void Add(HistoryEntry entry, int length)
    {
        _entries.Enqueue(entry);
        while (_entries.Count > length) _entries.Dequeue();
    }

    /// <summary>Takes the message with that stanza-id out of the history (a moderator retracted it); null when it is not there.</summary>
    public HistoryEntry? Remove(string stanzaId)
    {
        var entry = _entries.FirstOrDefault(e => e.StanzaId == stanzaId);
        if (entry is null) return null;
        var kept = _entries.Where(e => e != entry).ToList();
        _entries.Clear();
        foreach (var e in kept) _entries.Enqueue(e);
        return entry;
    }

    public void Trim(int length)
    {
        while (_entries.Count > length) _entries.Dequeue();
    }

    /// <summary>The entries kept, newest first.</summary>
    public IEnumerable<HistoryEntry> Newest => _entries.Reverse();

    /// <summary>A message from the room's archive as a history entry; null when it is not one an occupant said.</summary>
    public static HistoryEntry? FromArchive(ArchiveItem item, Jid room)
    {
        var stored = StoredStanza.Parse(item.Value);
        if (!Jid.TryParse(stored.GetAttribute("from"), out var from) || from.Resource is null || item.Key is null) return null;
        var buffer = new ArrayBufferWriter<byte>(256);
        foreach (var child in stored.Elements) ElementWriter.Write(child, buffer, Ns.Client);
        ElementWriter.Write(new Element("stanza-id", Room.StanzaIdNs).SetAttribute("id", item.Key).SetAttribute("by", room.ToString()), buffer, Ns.Client);
        var occupantId = stored.GetChild("occupant-id", Room.OccupantIdNs)?.GetAttribute("id") ?? "";
        return new HistoryEntry(item.When, from.Resource, occupantId, stored.GetAttribute("id"), item.Key, new SerializedContent(buffer.WrittenSpan.ToArray()));
    }

    /// <summary>The message as sent on entering: from the nick it was said under, with its original time (XEP-0203).</summary>
    public static Element Message(HistoryEntry entry, Jid room, Jid to)
    {
        var message = new Element("message", Ns.Client)
            .SetAttribute("from", room.WithResource(entry.Nick).ToString())
            .SetAttribute("to", to.ToString())
            .SetAttribute("type", "groupchat")
            .SetAttribute("id", entry.Id);
        message.Add(entry.Content);
        message.AddChild("delay", Ns.Delay).SetAttribute("from", room.ToString()).SetAttribute("stamp", XmppTime.Format(entry.When));
        return message;
    }
}
