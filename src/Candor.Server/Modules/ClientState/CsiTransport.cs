using System.Net;
using Candor.Server.Core;
using Candor.Xml;
using Candor.Xmpp;

namespace Candor.Server.Modules.ClientState;

/// <summary>
/// Stands between a session and its transport once the client has used XEP-0352: while the client is inactive,
/// stanzas that are not urgent are held (a later presence or chat state from the same sender replaces the earlier
/// one) and written together when an urgent stanza comes, when the client becomes active, or when
/// <see cref="MaxHeld"/> are waiting. Active, it passes everything straight through.
/// </summary>
public sealed class CsiTransport(ISessionTransport inner) : ISessionTransport
{
    public const int MaxHeld = 256;
    private const string ChatStates = "http://jabber.org/protocol/chatstates";

    private readonly Lock _lock = new();
    private readonly List<Element?> _held = [];
    /// <summary>Where the held presence or chat state of each sender is, to replace it.</summary>
    private readonly Dictionary<(string From, bool Presence), int> _latest = [];
    private volatile bool _inactive;

    /// <summary>The transport underneath (the connection, or stream management once enabled).</summary>
    public ISessionTransport Inner { get; set; } = inner;
    public IPAddress RemoteAddress => Inner.RemoteAddress;
    public bool IsSecure => Inner.IsSecure;
    public string? TlsProtocol => Inner.TlsProtocol;
    public string TransportName => Inner.TransportName;

    /// <summary>Counters for measuring what an inactive client is spared.</summary>
    public long Held { get; private set; }
    public long Coalesced { get; private set; }
    public long Flushes { get; private set; }

    public void Send(Element stanza)
    {
        if (!_inactive)
        {
            Inner.Send(stanza);
            return;
        }
        lock (_lock)
        {
            if (_inactive && !IsUrgent(stanza))
            {
                Hold(stanza);
                if (_held.Count < MaxHeld) return;
            }
            else
            {
                _held.Add(stanza);
            }
            FlushLocked();
        }
    }

    public void Close(string? condition, string? text = null) => Inner.Close(condition, text);

    public void SetInactive(bool inactive)
    {
        lock (_lock)
        {
            _inactive = inactive;
            if (!inactive) FlushLocked();
        }
    }

    private void Hold(Element stanza)
    {
        Held++;
        var from = stanza.GetAttribute("from") ?? "";
        var isPresence = stanza.IsPresence();
        var key = (from, isPresence);
        if (isPresence || IsChatStateOnly(stanza))
        {
            if (_latest.TryGetValue(key, out var index))
            {
                _held[index] = null;
                Coalesced++;
            }
            _latest[key] = _held.Count;
        }
        _held.Add(stanza);
    }

    private void FlushLocked()
    {
        if (_held.Count == 0) return;
        Flushes++;
        foreach (var stanza in _held)
            if (stanza is not null) Inner.Send(stanza);
        _held.Clear();
        _latest.Clear();
    }

    /// <summary>What the client needs now: IQs, subscription requests, messages with a body, encrypted messages, call invitations, and carbon copies of those.</summary>
    public static bool IsUrgent(Element stanza)
    {
        if (stanza.IsIq()) return true;
        if (stanza.IsPresence()) return stanza.Type() is "subscribe" or "subscribed" or "unsubscribe" or "unsubscribed" or "error";
        foreach (var child in stanza.Elements)
        {
            switch (child.Name)
            {
                case "body" when child.Namespace == Ns.Client:
                case "encrypted" when child.Namespace is "eu.siacs.conversations.axolotl" or "urn:xmpp:omemo:2":
                case "openpgp" when child.Namespace == "urn:xmpp:openpgp:0":
                case "propose" when child.Namespace == "urn:xmpp:jingle-message:0":
                    return true;
                case "sent" or "received" when child.Namespace == Carbons.CarbonsModule.Namespace:
                    if (child.FirstElement?.GetChild("message", Ns.Client) is { } copied && IsUrgent(copied)) return true;
                    break;
            }
        }
        return false;
    }

    private static bool IsChatStateOnly(Element message)
    {
        var chatState = false;
        foreach (var child in message.Elements)
        {
            if (child.Namespace == ChatStates) chatState = true;
            else if (!(child.Namespace == Ns.Client && child.Name == "thread")) return false;
        }
        return chatState;
    }
}
