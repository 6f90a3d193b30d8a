using System.Buffers;
using System.Globalization;
using System.Net;
using System.Threading.Channels;
using Candor.Server.Core;
using Candor.Xml;
using Candor.Xmpp;
using Microsoft.Extensions.Logging;

namespace Candor.Server.Connections;

/// <summary>
/// A client stream over BOSH (XEP-0124 with XEP-0206): the client's HTTP requests carry &lt;body/&gt; wrappers
/// numbered by 'rid'; their payloads are processed in rid order, whatever order the requests arrive in, and what
/// the server sends waits for the next request held open ('hold', at most 'wait' seconds each). The last
/// 'requests' responses are kept, so a request resent with the same rid (its HTTP connection dropped) gets the
/// very same response. No request for 'inactivity' seconds ends the session as a lost connection.
/// </summary>
internal sealed partial class BoshC2sConnection : C2sStream
{
    public const string Namespace = "http://jabber.org/protocol/httpbind";
    public const string XboshNamespace = "urn:xmpp:xbosh";
    public const string Version = "1.11";
    /// <summary>Requests held at once: one is enough for a long-polling client, and each costs an open HTTP connection.</summary>
    public const int MaxHold = 1;
    /// <summary>The shortest interval between two empty requests of a polling session (hold 0, XEP-0124 §12).</summary>
    public const int PollingSeconds = 2;

    private readonly Lock _lock = new();
    private readonly Channel<Element> _input = Channel.CreateUnbounded<Element>(new UnboundedChannelOptions { SingleReader = true });
    /// <summary>Requests waiting for their response, by rid: the lowest is answered first.</summary>
    private readonly SortedDictionary<long, TaskCompletionSource<byte[]>> _held = [];
    /// <summary>Bodies that arrived ahead of a missing rid, processed once the gap is filled.</summary>
    private readonly SortedDictionary<long, Element> _early = [];
    /// <summary>The last responses sent, by rid, for requests resent after a dropped connection.</summary>
    private readonly Dictionary<long, byte[]> _answered = [];
    private readonly Queue<long> _answeredOrder = new();
    private readonly ArrayBufferWriter<byte> _batch = new(4096);
    private readonly ArrayBufferWriter<byte> _pending = new(4096);
    private readonly Timer _inactivity;
    private readonly long _creationRid;
    private readonly bool _secure;
    private readonly TlsSettings _tls;
    private long _nextRid;
    private long _highestAnswered;
    private string? _authId;
    private bool _closeWritten;
    private Element? _streamError;
    /// <summary>Set once the session is over: the condition of its terminal body ("" for a clean end).</summary>
    private string? _terminal;
    private bool _lastPollWasEmpty;
    private DateTimeOffset _lastPoll;

    public BoshC2sConnection(XmppServer server, IPAddress? remote, bool secure, TlsSettings tls, string sid, Element creation, long rid)
        : base(server, remote)
    {
        Sid = sid;
        _secure = secure;
        _tls = tls;
        _creationRid = rid;
        _nextRid = rid;
        _highestAnswered = rid - 1;
        Wait = Math.Clamp(ParseInt(creation.GetAttribute("wait")) ?? server.Options.BoshMaxWaitSeconds, 1, server.Options.BoshMaxWaitSeconds);
        Hold = Math.Clamp(ParseInt(creation.GetAttribute("hold")) ?? MaxHold, 0, MaxHold);
        Requests = Hold + 1;
        _inactivity = new Timer(_ => OnInactive());
    }

    public string Sid { get; }
    public int Wait { get; }
    public int Hold { get; }
    public int Requests { get; }
    public int Inactivity => Server.Options.BoshInactivitySeconds;
    public override string TransportName => "BOSH";
    public override bool IsSecure => _secure;
    public override string? TlsProtocol => _secure ? "TLS" : null;
    protected override byte[]? ChannelBindingData => _secure ? _tls.ChannelBinding : null;
    protected override bool CanStartTls => false;
    protected override bool MustStartTls => false;

    /// <summary>
    /// One HTTP request of this session: its body is queued for processing in rid order and the request waits for
    /// its response (the same bytes again for a rid answered before).
    /// </summary>
    public async Task<byte[]> RequestAsync(Element body, long rid)
    {
        Task<byte[]> response;
        lock (_lock)
        {
            if (_answered.TryGetValue(rid, out var again)) return again;
            if (_held.TryGetValue(rid, out var waiting))
            {
                response = waiting.Task;
            }
            else
            {
                // Once the session is over, what it still had to say goes to the next request.
                if (_terminal is not null) return Answer(rid);
                // XEP-0124 §14.3: a rid answered before whose response is gone, or beyond the window, ends the session.
                // The window is 'requests' past the last answered rid (§11: at most that many at once), one more to terminate.
                var window = Requests + (body.GetAttribute("type") == "terminate" ? 1 : 0);
                if (rid < _nextRid || rid > _highestAnswered + window)
                    return EndWith(BoshErrors.ItemNotFound);
                if (Hold == 0 && rid != _creationRid && IsEmptyPoll(body))
                    return EndWith(BoshErrors.PolicyViolation);
                _inactivity.Change(Timeout.Infinite, Timeout.Infinite);
                var source = new TaskCompletionSource<byte[]>(TaskCreationOptions.RunContinuationsAsynchronously);
                _held.Add(rid, source);
                response = source.Task;
                if (rid == _nextRid)
                {
                    Accept(body);
                    while (_early.Remove(_nextRid, out var next)) Accept(next);
                }
                else
                {
                    _early.Add(rid, body);
                }
                Deliver();
            }
        }
        try
        {
            return await response.WaitAsync(TimeSpan.FromSeconds(Wait));
        }
        catch (TimeoutException)
        {
            // 'wait' is over with nothing to send: an empty body, unless something came just now.
            lock (_lock)
            {
                if (_held.ContainsKey(rid)) RespondLowestThrough(rid);
            }
            return await response;
        }
    }

    /// <summary>XEP-0124 §12: two empty requests of a polling session closer than 'polling' seconds, the first answered with nothing.</summary>
    private bool IsEmptyPoll(Element body)
    {
        if (body.FirstElement is not null || body.GetAttribute("{" + XboshNamespace + "}restart") is not null) return false;
        var now = DateTimeOffset.UtcNow;
        var tooSoon = _lastPollWasEmpty && now - _lastPoll < TimeSpan.FromSeconds(PollingSeconds);
        _lastPoll = now;
        return tooSoon;
    }

    private void Accept(Element body)
    {
        _nextRid++;
        _input.Writer.TryWrite(body);
    }

    /// <summary>A binding error (XEP-0124 §17): the session ends at once, and every request gets the condition.</summary>
    private byte[] EndWith(string condition)
    {
        _terminal ??= condition;
        Deliver();
        Log.Refused(Logger, RemoteAddress, Sid, condition);
        Close(null);
        return TerminalBody(condition, null);
    }

    // ---- the stream's side: what the writer loop produces ----

    protected override async Task ReadLoopAsync()
    {
        var reader = _input.Reader;
        var first = true;
        string? version = null;
        while (await reader.WaitToReadAsync(Lifetime.Token))
        {
            while (reader.TryRead(out var body))
            {
                if (first || body.GetAttribute("{" + XboshNamespace + "}restart") is "true" or "1")
                {
                    // XEP-0206 §5: the restart request stands for a new stream header, so it is allowed only where one is.
                    if (!first && HeaderSent)
                        throw new StreamErrorException(StreamErrors.BadFormat, "a stream restart is only allowed after authentication succeeded");
                    // The session's version holds for its restarts, which do not repeat it (XEP-0206 §5).
                    if (first) version = body.GetAttribute("{" + XboshNamespace + "}version");
                    first = false;
                    OnStreamOpen(StreamHeader(body, version), contentNamespace: null, "stream", Ns.Stream);
                }
                var size = 0;
                foreach (var node in body.Nodes)
                {
                    if (node is not Element element) continue;
                    size += element.SourceLength;
                    // XEP-0206 §2: stanzas in a body are jabber:client, whether or not the client says so.
                    await OnElementAsync(element.Namespace == Namespace ? Requalified(element) : element);
                    if (Closing) return;
                }
                if (body.GetAttribute("type") == "terminate")
                {
                    Close(null);
                    return;
                }
                await ThrottleAsync(size);
            }
        }
    }

    /// <summary>The stream header the body's attributes stand for (XEP-0206 §3: xmpp:version is the stream's version).</summary>
    private static Element StreamHeader(Element body, string? version) =>
        new Element("stream", Ns.Stream)
            .SetAttribute("to", body.GetAttribute("to"))
            .SetAttribute("from", body.GetAttribute("from"))
            .SetAttribute("xml:lang", body.GetAttribute("xml:lang"))
            .SetAttribute("version", version);

    /// <summary>An element written without a namespace inside the body inherited httpbind; it meant jabber:client.</summary>
    private static Element Requalified(Element element)
    {
        var copy = new Element(element.Name, Ns.Client);
        foreach (var (name, value) in element.Attributes) copy.SetAttribute(name, value);
        foreach (var node in element.Nodes) copy.Add(node is Element child && child.Namespace == Namespace ? Requalified(child) : node);
        return copy;
    }

    protected override void WriteHeader(Element header) => _authId = header.GetAttribute("id");

    protected override void WriteElement(Element element) =>
        ElementWriter.Write(element, _batch, Namespace);

    protected override void WriteClose(Element? error, bool headerWritten)
    {
        _streamError = error;
        _closeWritten = true;
    }

    protected override ValueTask FlushAsync()
    {
        lock (_lock)
        {
            _pending.Write(_batch.WrittenSpan);
            _batch.ResetWrittenCount();
            if (_closeWritten) _terminal ??= _streamError is null ? "" : BoshErrors.RemoteStreamError;
            Deliver();
        }
        if (_pending.WrittenCount > Server.Options.MaxOutboundQueueBytes)
            Close(StreamErrors.PolicyViolation, "too much data waiting: the client does not poll");
        return ValueTask.CompletedTask;
    }

    protected override ValueTask CompleteOutputAsync()
    {
        End();
        return ValueTask.CompletedTask;
    }

    protected override void AbortTransport() => End();

    /// <summary>The stream is over (also when it ended between SASL and the restart, with no close written): requests get the terminal body.</summary>
    private void End()
    {
        _input.Writer.TryComplete();
        lock (_lock)
        {
            _terminal ??= "";
            Deliver();
        }
    }

    protected override void DisposeTransport() => _inactivity.Dispose();

    private void OnInactive()
    {
        lock (_lock)
        {
            if (_held.Count > 0 || _terminal is not null) return;
        }
        // As a TCP connection that vanished: a resumable session (XEP-0198) waits for its client, others end.
        Abort();
    }

    // ---- responses ----

    /// <summary>Hands what is pending to the held requests, lowest rid first; called under the lock.</summary>
    private void Deliver()
    {
        while (_held.Count > 0 && (_pending.WrittenCount > 0 || _terminal is not null || _held.Count > Hold))
            RespondLowest();
        if (_held.Count == 0 && _terminal is null)
            _inactivity.Change(TimeSpan.FromSeconds(Inactivity), Timeout.InfiniteTimeSpan);
    }

    /// <summary>Answers held requests, lowest first, up to and including <paramref name="rid"/> (responses go in rid order).</summary>
    private void RespondLowestThrough(long rid)
    {
        while (_held.Count > 0 && _held.First().Key <= rid) RespondLowest();
        if (_held.Count == 0 && _terminal is null)
            _inactivity.Change(TimeSpan.FromSeconds(Inactivity), Timeout.InfiniteTimeSpan);
    }

    private void RespondLowest()
    {
        var (rid, source) = _held.First();
        _held.Remove(rid);
        source.TrySetResult(Answer(rid));
    }

    /// <summary>The response to <paramref name="rid"/>, with everything pending, kept for a resend.</summary>
    private byte[] Answer(long rid)
    {
        byte[] response;
        if (_terminal is not null)
        {
            // The stream error goes after what was queued before it, in the first terminal body only.
            if (_streamError is { } error)
            {
                ElementWriter.Write(error, _pending, Namespace);
                _streamError = null;
            }
            response = TerminalBody(_terminal, _pending.WrittenSpan);
        }
        else
        {
            response = Body(rid, _pending.WrittenSpan);
        }
        if (Hold == 0 && rid != _creationRid) _lastPollWasEmpty = _pending.WrittenCount == 0;
        _pending.ResetWrittenCount();
        _answered[rid] = response;
        _answeredOrder.Enqueue(rid);
        while (_answeredOrder.Count > Requests) _answered.Remove(_answeredOrder.Dequeue());
        _highestAnswered = Math.Max(_highestAnswered, rid);
        return response;
    }

    private byte[] Body(long rid, ReadOnlySpan<byte> content)
    {
        var output = new ArrayBufferWriter<byte>(content.Length + 512);
        output.WriteAscii("<body xmlns='" + Namespace + "' xmlns:stream='" + ElementWriter.StreamNamespace + "'");
        if (rid == _creationRid)
        {
            // XEP-0124 §7.1 and XEP-0206 §3: the session creation response.
            output.WriteAscii(string.Create(CultureInfo.InvariantCulture,
                $" xmlns:xmpp='{XboshNamespace}' sid='{Sid}' wait='{Wait}' requests='{Requests}' hold='{Hold}' inactivity='{Inactivity}'"
                + $" polling='{PollingSeconds}' ver='{Version}' xmpp:version='1.0' xmpp:restartlogic='true' authid='{_authId}' from='"));
            ElementWriter.WriteEscaped(output, Server.Domain.ToString(), attribute: true);
            output.WriteByte((byte)'\'');
        }
        return Finish(output, content);
    }

    /// <summary>XEP-0124 §17 and XEP-0206 §6: &lt;body type='terminate'/&gt;, with a condition unless the end was clean.</summary>
    private static byte[] TerminalBody(string condition, ReadOnlySpan<byte> content)
    {
        var output = new ArrayBufferWriter<byte>(content.Length + 256);
        output.WriteAscii("<body xmlns='" + Namespace + "' xmlns:stream='" + ElementWriter.StreamNamespace + "' type='terminate'");
        if (condition.Length > 0) output.WriteAscii(" condition='" + condition + "'");
        return Finish(output, content);
    }

    private static byte[] Finish(ArrayBufferWriter<byte> output, ReadOnlySpan<byte> content)
    {
        if (content.IsEmpty)
        {
            output.WriteAscii("/>");
        }
        else
        {
            output.WriteByte((byte)'>');
            output.Write(content);
            output.WriteAscii("</body>");
        }
        return output.WrittenSpan.ToArray();
    }

    private static partial class Log
    {
        [LoggerMessage(Level = LogLevel.Information, Message = "BOSH request from {Address} in session {Sid} refused with {Condition}")]
        public static partial void Refused(ILogger logger, IPAddress address, string sid, string condition);
    }

    private static int? ParseInt(string? value) =>
        int.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out var number) ? number : null;
}

/// <summary>Terminal binding conditions (XEP-0124 §17, XEP-0206 §6).</summary>
internal static class BoshErrors
{
    public const string BadRequest = "bad-request";
    public const string HostUnknown = "host-unknown";
    public const string ItemNotFound = "item-not-found";
    public const string PolicyViolation = "policy-violation";
    public const string RemoteStreamError = "remote-stream-error";
}
