using System.Globalization;
using Candor.Xml;
using Candor.Xmpp;

namespace Candor.Client;

/// <summary>Namespaces the client uses beyond <see cref="Ns"/>.</summary>
public static class ClientNs
{
    public const string Receipts = "urn:xmpp:receipts";
    public const string ChatStates = "http://jabber.org/protocol/chatstates";
}

/// <summary>The error element of a stanza of type error: condition, type and optional text.</summary>
public sealed record StanzaErrorInfo(string Condition, string Type, string? Text)
{
    public static StanzaErrorInfo? From(Element stanza)
    {
        if (stanza.Type() != "error") return null;
        var error = stanza.GetChild("error", Ns.Client);
        if (error is null) return new StanzaErrorInfo("undefined-condition", "cancel", null);
        string? condition = null;
        foreach (var child in error.Elements)
            if (child.Namespace == Ns.Stanzas && child.Name != "text") { condition = child.Name; break; }
        return new StanzaErrorInfo(condition ?? "undefined-condition", error.GetAttribute("type") ?? "cancel",
            error.GetChildText("text", Ns.Stanzas));
    }

    public override string ToString() => Text is null ? Condition : $"{Condition}: {Text}";
}

/// <summary>XEP-0085 chat states.</summary>
public enum ChatState { Active, Composing, Paused, Inactive, Gone }

/// <summary>Everything the client reports: read them with <see cref="XmppClient.ReadEventsAsync"/> or <see cref="XmppClient.EventReceived"/>.</summary>
public abstract record XmppEvent;

/// <summary>A message stanza. <see cref="Error"/> is set for type='error' (a message the server or peer refused).</summary>
public sealed record ChatMessage(Jid? From, Jid? To, string Type, string? Id, string? Body, string? Thread,
    DateTimeOffset? Stamp, ChatState? State, bool ReceiptRequested, StanzaErrorInfo? Error, Element Stanza) : XmppEvent
{
    internal static ChatMessage Parse(Element stanza)
    {
        var body = stanza.GetChild("body", Ns.Client)?.Text;
        DateTimeOffset? stamp = null;
        if (stanza.GetChild("delay", Ns.Delay)?.GetAttribute("stamp") is { } s
            && DateTimeOffset.TryParse(s, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out var parsed))
            stamp = parsed;
        ChatState? state = null;
        if (stanza.GetChild(ClientNs.ChatStates) is { } cs && ChatStates.TryParse(cs.Name, out var st)) state = st;
        return new ChatMessage(ParseJid(stanza.GetAttribute("from")), ParseJid(stanza.GetAttribute("to")),
            stanza.Type() ?? "normal", stanza.Id(), body, stanza.GetChildText("thread", Ns.Client), stamp, state,
            stanza.GetChild("request", ClientNs.Receipts) is not null, StanzaErrorInfo.From(stanza), stanza);
    }

    internal static Jid? ParseJid(string? text) => text is not null && Jid.TryParse(text, out var jid) ? jid : null;
}

/// <summary>XEP-0184: the peer confirmed it received the message with <see cref="Id"/>.</summary>
public sealed record ReceiptReceived(Jid? From, string Id) : XmppEvent;

/// <summary>A presence of availability (available, unavailable or error) from a contact's resource.</summary>
public sealed record PresenceUpdate(Jid From, bool Available, string? Show, string? Status, int Priority,
    StanzaErrorInfo? Error, Element Stanza) : XmppEvent
{
    /// <summary>"online", "away", "chat", "dnd", "xa" or "offline".</summary>
    public string Label => !Available ? "offline" : Show ?? "online";
}

public enum SubscriptionKind { Subscribe, Subscribed, Unsubscribe, Unsubscribed }

/// <summary>A subscription presence: a request (<see cref="SubscriptionKind.Subscribe"/>) or an answer.</summary>
public sealed record SubscriptionEvent(Jid From, SubscriptionKind Kind, string? Status, Element Stanza) : XmppEvent;

/// <summary>One roster entry (RFC 6121 §2.1.2).</summary>
public sealed record RosterItem(Jid Jid, string? Name, string Subscription, bool PendingOut, IReadOnlyList<string> Groups)
{
    internal static RosterItem? Parse(Element item)
    {
        if (!Jid.TryParse(item.GetAttribute("jid"), out var jid)) return null;
        var groups = item.Elements.Where(e => e.Is("group", Ns.Roster)).Select(e => e.Text).ToArray();
        return new RosterItem(jid, item.GetAttribute("name"), item.GetAttribute("subscription") ?? "none",
            item.GetAttribute("ask") == "subscribe", groups);
    }
}

/// <summary>The server pushed a roster change (RFC 6121 §2.1.6); <see cref="Removed"/> for subscription='remove'.
/// <see cref="Stanza"/> is the push IQ (its query carries the roster version, XEP-0237).</summary>
public sealed record RosterPush(RosterItem Item, bool Removed, Element Stanza) : XmppEvent;

public enum ConnectionState { Connected, Disconnected, Reconnecting, Reconnected }

/// <summary>The connection changed state; <see cref="Error"/> says why it was lost.</summary>
public sealed record ConnectionStateChanged(ConnectionState State, Exception? Error, int Attempt = 0) : XmppEvent;

/// <summary>Any other stanza nobody handled: an IQ answer no request waits for, a presence of another type (probe), a
/// non-XMPP element. An IQ request the client answered with service-unavailable is not reported.</summary>
public sealed record OtherStanza(Element Stanza) : XmppEvent;

internal static class ChatStates
{
    public static string Name(ChatState state) => state switch
    {
        ChatState.Active => "active",
        ChatState.Composing => "composing",
        ChatState.Paused => "paused",
        ChatState.Inactive => "inactive",
        _ => "gone",
    };

    public static bool TryParse(string name, out ChatState state)
    {
        state = name switch
        {
            "active" => ChatState.Active,
            "composing" => ChatState.Composing,
            "paused" => ChatState.Paused,
            "inactive" => ChatState.Inactive,
            "gone" => ChatState.Gone,
            _ => (ChatState)(-1),
        };
        return (int)state >= 0;
    }
}
