using System.Globalization;
using Candor.Server.Core;
using Candor.Server.Modules.StreamManagement;
using Candor.Xml;
using Candor.Xmpp;

namespace Candor.Server.Federation;

/// <summary>
/// XEP-0198 on one server-to-server link, both ways: the stanzas we sent and the peer has not acknowledged
/// (<see cref="SmQueue"/>, as on c2s), how many the peer sent that we handled, and the stream it currently runs on.
/// It outlives a broken connection: the initiating server resumes it on its next stream to the same domain
/// (&lt;resume/&gt;, XEP-0198 §5) and the receiving server keeps it SmResumeTimeoutSeconds for that; what the peer
/// then has not acknowledged is sent again, and if the link is given up it goes back to its senders as an error.
/// </summary>
internal sealed class S2sStreamManagement
{
    private readonly Lock _lock = new();
    private readonly SmQueue _unacked = new();
    private S2sStream? _stream;
    private int _sinceRequest;
    private Timer? _timer;
    private uint _handled;

    private readonly int _limit;

    /// <param name="limit">SmMaxQueue: a peer that leaves more unacknowledged has its stream closed (policy-violation).</param>
    public S2sStreamManagement(string local, string remote, string? id, int limit)
    {
        _limit = limit;
        Local = local;
        Remote = remote;
        Id = id;
    }

    /// <summary>Our domain and the peer's on this link.</summary>
    public string Local { get; }
    public string Remote { get; }
    /// <summary>The resumption id the receiving server gave; null when the link cannot be resumed.</summary>
    public string? Id { get; }

    /// <summary>How many stanzas from the peer we handled (h, mod 2^32).</summary>
    public uint Handled
    {
        get { lock (_lock) return _handled; }
    }

    public int Unacknowledged
    {
        get { lock (_lock) return _unacked.Count; }
    }

    /// <summary>Counts a stanza received on <paramref name="stream"/> once it is handled.</summary>
    public void Received(S2sStream stream)
    {
        lock (_lock)
            if (_stream == stream) _handled++;
    }

    public Element Ack()
    {
        lock (_lock) return new Element("a", StreamManagementModule.Namespace).SetAttribute("h", _handled.ToString(CultureInfo.InvariantCulture));
    }

    /// <summary>
    /// The link runs on <paramref name="stream"/> from now on: what the peer did not acknowledge (up to
    /// <paramref name="h"/> when it said) is written again first. False when h is more than was sent.
    /// </summary>
    public bool Attach(S2sStream stream, uint? h, Func<uint, Element>? announce)
    {
        S2sStream? previous;
        lock (_lock)
        {
            if (h is { } acked && !_unacked.Acknowledge(acked, out _)) return false;
            previous = _stream;
            if (announce is not null) stream.Send(announce(_handled));
            _stream = stream;
            _timer?.Dispose();
            _timer = new Timer(static state => ((S2sStreamManagement)state!).OnTimer(), this, Timeout.Infinite, Timeout.Infinite);
            foreach (var stanza in _unacked) stream.Send(stanza);
            _sinceRequest = 0;
            if (_unacked.Count > 0) RequestAckLocked(stream);
        }
        if (previous is not null && previous != stream) previous.Close(StreamErrors.Conflict, "the stream was resumed on another connection");
        return true;
    }

    /// <summary>The stream ended: stanzas wait here (not sent) until the link is resumed or given up.</summary>
    public void Detach(S2sStream stream)
    {
        lock (_lock)
        {
            if (_stream != stream) return;
            _stream = null;
            Detachments++;
            _timer?.Change(Timeout.Infinite, Timeout.Infinite);
        }
    }

    /// <summary>How often the link lost its stream (a parked link expires only if it was not resumed meanwhile).</summary>
    public int Detachments { get; private set; }

    public bool IsAttached
    {
        get { lock (_lock) return _stream is not null; }
    }

    /// <summary>Numbers and writes a stanza (in jabber:server) on <paramref name="stream"/>; false when the link has moved on.</summary>
    public bool Send(S2sStream stream, Element stanza)
    {
        lock (_lock)
        {
            if (_stream != stream) return false;
            _unacked.Enqueue(stanza);
            if (_unacked.Count > _limit)
            {
                // Kept (sent again on the next stream, or bounced): the peer reads but does not acknowledge.
                stream.Close(StreamErrors.PolicyViolation, "too many unacknowledged stanzas");
                return true;
            }
            if (!stream.Send(stanza)) return true;
            if (++_sinceRequest >= SmSession.AckEvery) RequestAckLocked(stream);
            else if (_sinceRequest == 1) _timer?.Change(SmSession.AckDelay, Timeout.InfiniteTimeSpan);
            return true;
        }
    }

    /// <summary>The peer's &lt;a h/&gt;; false when h counts more than was sent.</summary>
    public bool Acknowledge(uint h)
    {
        lock (_lock) return _unacked.Acknowledge(h, out _);
    }

    /// <summary>Asks the peer on <paramref name="stream"/> for an ack now, if anything is unacknowledged (at shutdown).</summary>
    public void RequestAck(S2sStream stream)
    {
        lock (_lock)
            if (_stream == stream && _unacked.Count > 0) RequestAckLocked(stream);
    }

    private void RequestAckLocked(S2sStream stream)
    {
        _sinceRequest = 0;
        stream.Send(new Element("r", StreamManagementModule.Namespace));
    }

    private void OnTimer()
    {
        lock (_lock)
            if (_stream is { } stream && _sinceRequest > 0) RequestAckLocked(stream);
    }

    /// <summary>The link is given up: everything unacknowledged, oldest first (in jabber:server).</summary>
    public Element[] GiveUp()
    {
        lock (_lock)
        {
            _stream = null;
            _timer?.Dispose();
            _timer = null;
            return _unacked.TakeAll();
        }
    }

    /// <summary>Routes stanzas (in jabber:server) of a link given up again, as if they had never been sent.</summary>
    public static async Task RerouteAsync(XmppServer server, IEnumerable<Element> stanzas)
    {
        foreach (var stanza in stanzas)
        {
            if (!Jid.TryParse(stanza.GetAttribute("from") ?? "", out var from) || !Jid.TryParse(stanza.GetAttribute("to") ?? "", out var to)) continue;
            var copy = stanza.Clone();
            S2sStream.Remap(copy, Ns.Server, Ns.Client);
            await server.Router.DeliverAsync(copy, from, to);
        }
    }

    /// <summary>
    /// Sends the sender of each stanza in <paramref name="stanzas"/> (in jabber:server, never delivered as far as we
    /// know) an error: the stanzas of a link given up (DESIGN promise 1: no silent discard).
    /// </summary>
    public static async Task BounceAsync(XmppServer server, IEnumerable<Element> stanzas, StanzaError error, string text)
    {
        foreach (var stanza in stanzas)
        {
            if (stanza.IsPresence() || (stanza.IsIq() && stanza.Type() is "result")) continue;
            if (!Jid.TryParse(stanza.GetAttribute("from") ?? "", out var from) || !Jid.TryParse(stanza.GetAttribute("to") ?? "", out var to)) continue;
            var copy = stanza.Clone();
            S2sStream.Remap(copy, Ns.Server, Ns.Client);
            await new StanzaEvent(server, null, copy, from, to).ReplyErrorAsync(error, text);
        }
    }
}
