using System.Collections.Frozen;
using System.Net;
using Candor.Xml;
using Candor.Xmpp;

namespace Candor.Server.Core;

/// <summary>What a session needs of its connection, whatever the transport (TCP, WebSocket, BOSH).</summary>
public interface ISessionTransport
{
    /// <summary>Queues a stanza for writing. When the bounded queue is full the transport closes the stream itself.</summary>
    void Send(Element stanza);
    /// <summary>Ends the stream with a stream error (RFC 6120 §4.9), or cleanly when <paramref name="condition"/> is null.</summary>
    void Close(string? condition, string? text = null);
    IPAddress RemoteAddress { get; }
    /// <summary>What carries the stream: "TCP", "WebSocket" or "BOSH".</summary>
    string TransportName { get; }
    bool IsSecure { get; }
    /// <summary>The negotiated TLS version ("TLSv1.3"), or null on a plain-text stream.</summary>
    string? TlsProtocol { get; }
}

/// <summary>
/// What a client said of itself when it authenticated with SASL2 (XEP-0388 &lt;user-agent/&gt;): a stable id
/// (normally a UUID) and the names of its software and device, each optional and client-chosen.
/// </summary>
public sealed record UserAgent(string? Id, string? Software, string? Device);

/// <summary>
/// What a client's XEP-0115 capabilities say of it, after the hash was verified against its disco#info:
/// its features and the name of its client identity (e.g. "Gajim").
/// </summary>
public sealed record ClientCaps(string Ver, FrozenSet<string> Features, string? Name);

/// <summary>A bound resource of a local account (RFC 6120 §7) and its presence state (RFC 6121 §4).</summary>
public sealed class Session(ISessionTransport transport, Jid jid, string mechanism, UserAgent? userAgent = null)
{
    private readonly Lock _lock = new();
    private HashSet<Jid>? _directedPresence;

    /// <summary>The connection, or what stands for it once stream management (XEP-0198) is enabled.</summary>
    public ISessionTransport Transport { get; private set; } = transport;
    /// <summary>The full JID.</summary>
    public Jid Jid { get; } = jid;
    public Jid BareJid { get; } = jid.Bare;
    public string User => Jid.Local!;
    public DateTimeOffset Started { get; } = DateTimeOffset.UtcNow;
    /// <summary>The SASL mechanism the session authenticated with.</summary>
    public string Mechanism { get; } = mechanism;
    /// <summary>The XEP-0388 user agent the client authenticated with; null with RFC 6120 SASL or when it sent none.</summary>
    public UserAgent? UserAgent { get; } = userAgent;

    /// <summary>Has sent initial presence and not yet unavailable presence.</summary>
    public bool IsAvailable { get; set { field = value; StateChanged?.Invoke(this); } }
    public int Priority { get; set { field = value; StateChanged?.Invoke(this); } }
    /// <summary>The last broadcast presence, as sent (with 'from' stamped).</summary>
    public Element? Presence { get; set { field = value; StateChanged?.Invoke(this); } }
    /// <summary>Has requested the roster, so receives roster pushes (RFC 6121 §2.1.6).</summary>
    public bool IsInterested { get; set { field = value; StateChanged?.Invoke(this); } }
    /// <summary>The verified entity capabilities (XEP-0115) of the client, once known.</summary>
    public ClientCaps? Caps { get; set { field = value; StateChanged?.Invoke(this); } }
    /// <summary>Has enabled Message Carbons (XEP-0280).</summary>
    public bool Carbons { get; set { field = value; StateChanged?.Invoke(this); } }
    /// <summary>Has requested the blocklist, so receives block and unblock pushes (XEP-0191).</summary>
    public bool BlocklistRequested { get; set { field = value; StateChanged?.Invoke(this); } }
    /// <summary>
    /// Told of every change of the state above, before what the change causes is sent: a cluster node publishes
    /// it to the other nodes, so that they route by the new state once they see its effects. Null on a single node.
    /// </summary>
    public Action<Session>? StateChanged { get; set; }
    public bool IsClosed { get; private set; }
    /// <summary>The 'to' of the last stanza the session sent, parsed (read and written by its own input only).</summary>
    internal Jid? LastTo { get; set; }
    /// <summary>The cluster node holding the connection; null for a session of this process (always, without a cluster).</summary>
    public string? Node { get; init; }

    public void Send(Element stanza)
    {
        if (!IsClosed) Transport.Send(stanza);
    }

    public void Close(string? condition, string? text = null) => Transport.Close(condition, text);

    internal void MarkClosed() => IsClosed = true;

    /// <summary>From now on stanzas for the session go through <paramref name="transport"/> (stream management).</summary>
    internal void UseTransport(ISessionTransport transport) => Transport = transport;

    public void AddDirectedPresence(Jid to)
    {
        lock (_lock) (_directedPresence ??= []).Add(to);
    }

    public void RemoveDirectedPresence(Jid to)
    {
        lock (_lock) _directedPresence?.Remove(to);
    }

    public Jid[] TakeDirectedPresence()
    {
        lock (_lock)
        {
            if (_directedPresence is null) return [];
            var all = _directedPresence.ToArray();
            _directedPresence.Clear();
            return all;
        }
    }

    public Jid[] DirectedPresence
    {
        get { lock (_lock) return _directedPresence?.ToArray() ?? []; }
    }

    public override string ToString() => Jid.ToString();
}
