using System.Buffers;
using System.Globalization;
using Candor.Server.Storage;
using Candor.Xml;
using Candor.Xmpp;

namespace Candor.Server.Modules.Muc;

/// <summary>A message kept for the history of a room: who said it, when, the room's stanza-id, and its content serialized once.</summary>
public sealed record HistoryEntry(DateTimeOffset When, string Nick, string OccupantId, string? Id, string StanzaId, SerializedContent Content);

/// <summary>
/// The last messages of a room, sent to an occupant on entering (XEP-0045 §7.2.13), limited by what the
/// occupant asked for in &lt;history/&gt; (maxchars, maxstanzas, seconds, since) and by the room's length.
/// Kept in memory; an archived room refills it from its archive when loaded (<see cref="Room.LoadHistoryAsync"/>).
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

    /// <summary>
    /// The entries to send for a &lt;history/&gt; request (null: the room's default, everything kept), oldest first.
    /// maxchars counts each message's serialized content, which is what the stanza mostly consists of.
    /// </summary>
    public List<HistoryEntry> Select(Element? request, DateTimeOffset now)
    {
        var maxStanzas = int.MaxValue;
        var maxChars = int.MaxValue;
        var since = DateTimeOffset.MinValue;
        if (request is not null)
        {
            if (int.TryParse(request.GetAttribute("maxstanzas"), out var stanzas)) maxStanzas = Math.Max(0, stanzas);
            if (int.TryParse(request.GetAttribute("maxchars"), out var chars)) maxChars = Math.Max(0, chars);
            if (int.TryParse(request.GetAttribute("seconds"), out var seconds)) since = now.AddSeconds(-Math.Max(0, seconds));
            if (DateTimeOffset.TryParse(request.GetAttribute("since"), CultureInfo.InvariantCulture,
                    DateTimeStyles.AssumeUniversal, out var sinceStamp) && sinceStamp > since)
                since = sinceStamp;
        }
        var chosen = new List<HistoryEntry>();
        var total = 0;
        foreach (var entry in _entries.Reverse())
        {
            if (chosen.Count >= maxStanzas || entry.When < since) break;
            total += entry.Content.Utf8.Length;
            if (total > maxChars) break;
            chosen.Add(entry);
        }
        chosen.Reverse();
        return chosen;
    }

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
