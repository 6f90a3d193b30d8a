using System.Net;
using System.Security.Cryptography;
using Candor.Server.Core;
using Candor.Xml;
using Candor.Xmpp;

namespace Candor.Server.Modules.StreamManagement;

/// <summary>What stream management needs of a connection: writing in order, uncounted, and closing.</summary>
public interface ISmConnection : ISessionTransport
{
    /// <summary>Queues an element for writing as is (not counted: resent stanzas and SM elements).</summary>
    void Write(Element element);
    /// <summary>The connection no longer serves the session (it was resumed elsewhere); closing it ends nothing.</summary>
    void Release();
}

/// <summary>
/// A session with stream management enabled (XEP-0198). It is the session's transport from then on: every stanza
/// for the session is numbered and kept until the client acknowledges it, written to the current connection if
/// there is one, and kept (up to SmMaxQueue) while the connection is gone and the session can be resumed. When
/// the session ends, whatever the client did not acknowledge is routed again as if it had never been delivered:
/// messages to the account's other resources or offline storage, IQ requests answered with an error.
/// </summary>
public sealed class SmSession : ISessionTransport
{
    /// <summary>The server asks for an ack after this many unacknowledged stanzas, or <see cref="AckDelay"/> after the first.</summary>
    public const int AckEvery = 5;
    public static readonly TimeSpan AckDelay = TimeSpan.FromSeconds(5);
    private const string Ns = StreamManagementModule.Namespace;

    private readonly Lock _lock = new();
    private readonly SmRegistry _registry;
    private readonly SmQueue _unacked = new();
    private readonly Timer _timer;
    private ISmConnection? _connection;
    private ISessionTransport _last;
    private int _sinceRequest;
    private bool _ended;
    /// <summary>&lt;enabled/&gt; is written: stanzas sent before it wait for it (the client counts from there).</summary>
    private bool _started;

    internal SmSession(SmRegistry registry, Session session, ISmConnection connection, bool resumable)
    {
        _registry = registry;
        Session = session;
        _connection = connection;
        _last = connection;
        Id = resumable ? Convert.ToBase64String(RandomNumberGenerator.GetBytes(18)).Replace('+', '-').Replace('/', '_') : null;
        _timer = new Timer(static state => ((SmSession)state!).OnTimer(), this, Timeout.Infinite, Timeout.Infinite);
    }

    public Session Session { get; }
    /// <summary>The resumption id; null when the client did not ask for resumption.</summary>
    public string? Id { get; }
    /// <summary>How many stanzas from the client the server has handled (h, mod 2^32).</summary>
    public uint Handled { get; set; }
    /// <summary>
    /// Held by a connection while it handles one of the client's stanzas, and by a resumption: 'h' in &lt;resumed/&gt;
    /// then counts the stanza the previous connection was still handling, and nothing that connection reads later.
    /// </summary>
    public SemaphoreSlim Handling { get; } = new(1, 1);
    public bool IsDetached
    {
        get { lock (_lock) return _connection is null && !_ended; }
    }

    public IPAddress RemoteAddress => _last.RemoteAddress;
    public bool IsSecure => _last.IsSecure;
    public string? TlsProtocol => _last.TlsProtocol;
    public string TransportName => _last.TransportName;
    private XmppServer Server => _registry.Server;

    /// <summary>Writes &lt;enabled/&gt; (unless it went inline, XEP-0386), then what was sent to the session meanwhile.</summary>
    public void Start(bool announce = true)
    {
        lock (_lock)
        {
            _started = true;
            if (announce) _connection!.Write(Enabled());
            foreach (var stanza in _unacked) _connection!.Write(stanza);
            _sinceRequest = _unacked.Count;
        }
    }

    public Element Enabled()
    {
        var enabled = new Element("enabled", Ns);
        if (Id is not null)
            enabled.SetAttribute("id", Id).SetAttribute("resume", "true")
                .SetAttribute("max", Server.Options.SmResumeTimeoutSeconds.ToString(System.Globalization.CultureInfo.InvariantCulture));
        return enabled;
    }

    public void Send(Element stanza)
    {
        ISmConnection? overflowing = null;
        lock (_lock)
        {
            if (_ended) return;
            var connection = _connection;
            if (_unacked.Count >= Server.Options.SmMaxQueue)
            {
                if (connection is null)
                {
                    // Detached and full: the sender is told, the stanza is not kept.
                    _ = BounceAsync(stanza, StanzaError.ResourceConstraint, "the recipient's connection is interrupted and too much is waiting for it");
                    return;
                }
                // Connected but not acknowledging: the stream ends; everything kept is routed again at the end.
                overflowing = connection;
            }
            _unacked.Enqueue(stanza);
            if (connection is not null && overflowing is null && _started)
            {
                connection.Write(stanza);
                if (++_sinceRequest >= AckEvery) RequestAck(connection);
                else if (_sinceRequest == 1) _timer.Change(AckDelay, Timeout.InfiniteTimeSpan);
            }
        }
        overflowing?.Close(StreamErrors.PolicyViolation, "too many unacknowledged stanzas");
    }

    private void RequestAck(ISmConnection connection)
    {
        _sinceRequest = 0;
        connection.Write(new Element("r", Ns));
    }

    /// <summary>The client acknowledged up to <paramref name="h"/>; false when that is more than was sent (handled-count-too-high).</summary>
    public bool Acknowledge(uint h, out uint sent)
    {
        lock (_lock) return AcknowledgeLocked(h, out sent);
    }

    private bool AcknowledgeLocked(uint h, out uint sent) => _unacked.Acknowledge(h, out sent);

    /// <summary>An ack for the client's &lt;r/&gt;.</summary>
    public Element Ack() => new Element("a", Ns).SetAttribute("h", Handled.ToString(System.Globalization.CultureInfo.InvariantCulture));

    public void Close(string? condition, string? text = null)
    {
        ISmConnection? connection;
        lock (_lock) connection = _connection;
        if (connection is not null) connection.Close(condition, text);
        else _ = EndAsync();
    }

    /// <summary>The connection vanished: the session waits SmResumeTimeoutSeconds to be resumed, its presence unchanged.</summary>
    public void Detach(ISmConnection connection)
    {
        lock (_lock)
        {
            if (_connection != connection || _ended) return;
            _connection = null;
            _timer.Change(TimeSpan.FromSeconds(Server.Options.SmResumeTimeoutSeconds), Timeout.InfiniteTimeSpan);
        }
    }

    public enum ResumeOutcome { Resumed, Gone, HandledCountTooHigh }

    /// <summary>
    /// Moves the session to <paramref name="connection"/>: writes &lt;resumed/&gt; (or what <paramref name="announce"/>
    /// makes of it: a SASL2 success carrying it), then every stanza the client has not acknowledged, in order. A
    /// connection still attached is released and ends with &lt;conflict/&gt;.
    /// </summary>
    public ResumeOutcome Resume(ISmConnection connection, uint h, out uint sent, Func<Element, Element[]>? announce = null)
    {
        ISmConnection? previous;
        lock (_lock)
        {
            sent = 0;
            if (_ended) return ResumeOutcome.Gone;
            if (!AcknowledgeLocked(h, out sent)) return ResumeOutcome.HandledCountTooHigh;
            previous = _connection;
            _connection = connection;
            _last = connection;
            _timer.Change(Timeout.Infinite, Timeout.Infinite);
            var resumed = new Element("resumed", Ns).SetAttribute("h", Handled.ToString(System.Globalization.CultureInfo.InvariantCulture)).SetAttribute("previd", Id);
            if (announce is null) connection.Write(resumed);
            else foreach (var element in announce(resumed)) connection.Write(element);
            foreach (var stanza in _unacked) connection.Write(stanza);
            if (_unacked.Count > 0) RequestAck(connection);
        }
        if (previous is not null)
        {
            previous.Release();
            previous.Close(StreamErrors.Conflict, "the session was resumed on another connection");
        }
        return ResumeOutcome.Resumed;
    }

    private void OnTimer()
    {
        lock (_lock)
        {
            if (_ended) return;
            if (_connection is { } connection)
            {
                if (_sinceRequest > 0) RequestAck(connection);
                return;
            }
        }
        _ = EndAsync();
    }

    /// <summary>Ends the session for good: unbound, unavailable, and what the client did not acknowledge routed again.</summary>
    public async Task EndAsync()
    {
        Element[] unacked;
        lock (_lock)
        {
            if (_ended) return;
            _ended = true;
            _connection = null;
            unacked = _unacked.TakeAll();
        }
        await _timer.DisposeAsync();
        _registry.Forget(this);
        var session = Session;
        session.MarkClosed();
        Server.Sessions.Remove(session);
        await Server.Hooks.SessionEnded.FireAsync(session);
        foreach (var stanza in unacked) await RerouteAsync(stanza);
    }

    /// <summary>A stanza the client never acknowledged, handled as if it had never been delivered.</summary>
    private async Task RerouteAsync(Element stanza)
    {
        var type = stanza.Type();
        if (stanza.IsIq())
        {
            if (type is "get" or "set") await BounceAsync(stanza, StanzaError.ServiceUnavailable, "the recipient's session ended before it answered");
            return;
        }
        // Presence is state, not content: the contacts' next presence replaces it. Errors are never answered.
        // Carbon copies are copies: the original went its own way.
        if (!stanza.IsMessage() || type is "error" || stanza.GetChild(Carbons.CarbonsModule.Namespace) is not null) return;
        if (!Jid.TryParse(stanza.GetAttribute("from") ?? "", out var from)) return;
        // Addressed to this (now unbound) resource, RFC 6121 §8.5.3.2.1 takes it to the other resources or offline storage.
        await Server.Router.DeliverAsync(stanza, from, Session.Jid);
    }

    private ValueTask BounceAsync(Element stanza, StanzaError error, string text)
    {
        if (stanza.Type() == "error" || stanza.IsPresence() || (stanza.IsIq() && stanza.Type() is "result")) return ValueTask.CompletedTask;
        if (!Jid.TryParse(stanza.GetAttribute("from") ?? "", out var from)) return ValueTask.CompletedTask;
        var reply = Stanza.ErrorFor(stanza, error, text);
        reply.SetAttribute("from", Session.Jid.ToString()).SetAttribute("to", from.ToString());
        return Server.Router.DeliverAsync(reply, Session.Jid, from);
    }
}
