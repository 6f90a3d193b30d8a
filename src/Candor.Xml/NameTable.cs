using System.Text;

namespace Candor.Xml;

/// <summary>
/// Turns UTF-8 names into strings without allocating for names seen before: a read-only table of the names and
/// namespaces XMPP uses all the time, then one cache for the rest, shared by every parser of the process (a
/// cache per connection cost about 1 KiB per idle connection). The cache is direct-mapped (a colliding name
/// simply replaces the previous one) and bounded, so a peer sending many distinct names costs misses, never
/// unbounded memory or long probe chains. Its entries are immutable and replaced by one reference write, so
/// parsers on any thread read and fill it without locks: a reader sees either the old entry or the new one.
/// </summary>
internal static class NameTable
{
    private const int MaxCachedBytes = 128;
    private const int RecentSize = 4096;

    private static readonly Entry[] WellKnown = BuildWellKnown(
    [
        // Stream and stanza vocabulary.
        "stream", "features", "error", "text", "message", "presence", "iq", "body", "subject", "thread",
        "show", "status", "priority", "query", "item", "x", "c", "to", "from", "id", "type", "version", "lang",
        "xml:lang", "name", "node", "jid", "ver", "hash", "var", "category", "identity", "feature", "subscription",
        "ask", "group", "starttls", "required", "proceed", "failure", "mechanisms", "mechanism", "auth", "challenge",
        "response", "success", "abort", "bind", "resource", "session", "ping", "enable", "enabled", "resume",
        "resumed", "r", "a", "h", "previd", "max", "sm", "received", "sent", "forwarded", "delay", "stamp",
        "private", "no-copy", "store", "active", "composing", "paused", "inactive", "gone", "request", "markable",
        "open", "close", "result", "set", "get", "chat", "normal", "groupchat", "headline", "unavailable",
        "subscribe", "subscribed", "unsubscribe", "unsubscribed", "probe", "away", "dnd", "xa", "en", "true", "false",
        "cancel", "continue", "modify", "wait",
        // Namespaces.
        "jabber:client", "jabber:server", "http://etherx.jabber.org/streams", "http://www.w3.org/XML/1998/namespace",
        "urn:ietf:params:xml:ns:xmpp-tls", "urn:ietf:params:xml:ns:xmpp-sasl", "urn:ietf:params:xml:ns:xmpp-bind",
        "urn:ietf:params:xml:ns:xmpp-session", "urn:ietf:params:xml:ns:xmpp-stanzas",
        "urn:ietf:params:xml:ns:xmpp-streams", "urn:ietf:params:xml:ns:xmpp-framing", "jabber:iq:roster",
        "jabber:iq:private", "jabber:iq:version", "jabber:x:data", "urn:xmpp:ping", "urn:xmpp:sm:3",
        "urn:xmpp:carbons:2", "urn:xmpp:mam:2", "urn:xmpp:delay", "urn:xmpp:forward:0", "urn:xmpp:hints",
        "urn:xmpp:receipts", "urn:xmpp:chat-markers:0", "urn:xmpp:blocking", "urn:xmpp:csi:0",
        "http://jabber.org/protocol/caps", "http://jabber.org/protocol/disco#info",
        "http://jabber.org/protocol/disco#items", "http://jabber.org/protocol/chatstates",
        "http://jabber.org/protocol/muc", "http://jabber.org/protocol/muc#user", "http://jabber.org/protocol/pubsub",
        "http://jabber.org/protocol/pubsub#event", "vcard-temp",
    ]);

    private static readonly Recent?[] Cache = new Recent?[RecentSize];

    public static string Get(ReadOnlySpan<byte> utf8)
    {
        if (utf8.Length > MaxCachedBytes) return Encoding.UTF8.GetString(utf8);
        var hash = Hash(utf8);
        var mask = WellKnown.Length - 1;
        for (var i = (int)hash & mask; WellKnown[i].Value is not null; i = (i + 1) & mask)
        {
            if (utf8.SequenceEqual(WellKnown[i].Utf8)) return WellKnown[i].Value;
        }
        ref var slot = ref Cache[(hash >> 16) % RecentSize];
        var recent = Volatile.Read(ref slot);
        if (recent is not null && utf8.SequenceEqual(recent.Utf8)) return recent.Value;
        var value = Encoding.UTF8.GetString(utf8);
        Volatile.Write(ref slot, new Recent(utf8.ToArray(), value));
        return value;
    }

    private readonly record struct Entry(byte[] Utf8, string Value);

    /// <summary>A class, unlike <see cref="Entry"/>: its two fields must change together, in one write.</summary>
    private sealed record Recent(byte[] Utf8, string Value);

    // FNV-1a: names are short, and a collision only costs a cache miss.
    private static uint Hash(ReadOnlySpan<byte> utf8)
    {
        var hash = 2166136261;
        foreach (var b in utf8) hash = (hash ^ b) * 16777619;
        return hash;
    }

    private static Entry[] BuildWellKnown(string[] names)
    {
        // Open addressing at most a quarter full keeps probe sequences short.
        var size = 1;
        while (size < names.Length * 4) size <<= 1;
        var table = new Entry[size];
        foreach (var name in names)
        {
            var utf8 = Encoding.UTF8.GetBytes(name);
            var i = (int)Hash(utf8) & (size - 1);
            while (table[i].Value is not null) i = (i + 1) & (size - 1);
            table[i] = new Entry(utf8, name);
        }
        return table;
    }
}
