using System.Net;
using System.Security.Authentication;
using System.Security.Cryptography;
using Candor.Server.Core;
using Candor.Server.Modules.ClientState;
using Candor.Server.Modules.StreamManagement;
using Candor.Xml;
using Candor.Xmpp;
using Candor.Xmpp.Sasl;
using Microsoft.AspNetCore.Connections;
using Microsoft.Extensions.Logging;

namespace Candor.Server.Connections;

/// <summary>
/// A client-to-server stream, whatever carries it (RFC 6120 over TCP, RFC 7395 over WebSocket, XEP-0206 over BOSH): stream
/// header checks, features, SASL, resource binding, then stanzas handed to <see cref="SessionInput"/>.
/// The transport reads and calls <see cref="OnStreamOpen"/>, <see cref="OnElementAsync"/> and
/// <see cref="Close"/>; everything written goes through one bounded queue. Whoever queues into an idle queue
/// schedules a write pass on the thread pool (the stream itself is the work item: no writer task waits per
/// connection); the pass writes what is queued by then, flushes it once, and ends when the queue is empty.
/// </summary>
internal abstract partial class C2sStream : ISmConnection, IThreadPoolWorkItem
{
    protected readonly XmppServer Server;
    protected readonly ILogger Logger;
    /// <summary>The outbound queue; its lock also guards <see cref="_writing"/>, <see cref="_completed"/> and <see cref="_writerDone"/>.</summary>
    private readonly Queue<Node> _outbound = new();
    /// <summary>A write pass is scheduled or running: it takes whatever is queued meanwhile.</summary>
    private bool _writing;
    /// <summary>Nothing more is queued: the pass that finds the queue empty ends the stream's output.</summary>
    private bool _completed;
    /// <summary>Set once the output is ended (or abandoned); created when the queue is completed.</summary>
    private TaskCompletionSource? _writerDone;
    private string _streamId = "";
    protected readonly CancellationTokenSource Lifetime = new();

    /// <summary>The stream's SASL negotiation, until a session is bound or resumed.</summary>
    private SaslNegotiator? _sasl;
    /// <summary>The authenticated localpart.</summary>
    private string? _user;
    /// <summary>A SASL2 exchange is under way: until it ends, nothing but its elements may come (XEP-0388 §2.5).</summary>
    private bool _inSasl2Exchange;
    /// <summary>The XEP-0386 &lt;bind/&gt; of the SASL2 &lt;authenticate/&gt; in progress, if it had one.</summary>
    private Element? _bind2;
    /// <summary>The XEP-0198 &lt;resume/&gt; of that &lt;authenticate/&gt;, if it had one.</summary>
    private Element? _inlineResume;
    /// <summary>The 'from' of the peer's current stream header.</summary>
    private string? _streamFrom;
    private Session? _session;
    /// <summary>Stream management (XEP-0198), once the client enabled it; null costs the stream nothing.</summary>
    private SmSession? _sm;
    /// <summary>Close was called (a stream error or a clean end), as opposed to the connection vanishing.</summary>
    private bool _closeRequested;
    /// <summary>An application-specific condition for the closing stream error.</summary>
    private Element? _closingCondition;
    private Element? _closingError;
    private int _closing;

    protected C2sStream(XmppServer server, IPAddress? remoteAddress)
    {
        Server = server;
        Logger = server.LoggerFactory.CreateLogger(GetType());
        RemoteAddress = remoteAddress is null ? IPAddress.None : remoteAddress.IsIPv4MappedToIPv6 ? remoteAddress.MapToIPv4() : remoteAddress;
    }

    public IPAddress RemoteAddress { get; }
    public abstract string TransportName { get; }
    public abstract bool IsSecure { get; }
    public abstract string? TlsProtocol { get; }
    protected bool Authenticated => _user is not null;
    /// <summary>A resource is bound on this stream (for the metrics' session count).</summary>
    internal bool IsBound => _session is not null;
    /// <summary>Items waiting in the outbound queue (for the metrics' queue gauges).</summary>
    internal int QueueLength => Volatile.Read(ref _queuedCount);
    protected bool Closing => _closing != 0;
    /// <summary>Our header for the current stream has been queued (reset on every stream restart).</summary>
    protected bool HeaderSent { get; set; }

    // ---- what a transport provides ----

    /// <summary>Reads until the peer closes, <see cref="Lifetime"/> is cancelled or the transport is dropped.</summary>
    protected abstract Task ReadLoopAsync();
    /// <summary>
    /// Reads wait with <see cref="Lifetime"/>'s token. A transport that spares its idle connections that registration
    /// (TCP) says false: its reads end when the transport is dropped, which closing does after its grace period.
    /// </summary>
    protected virtual bool ReadsObserveLifetime => true;
    /// <summary>STARTTLS is possible now (TCP before TLS, with a certificate).</summary>
    protected abstract bool CanStartTls { get; }
    /// <summary>STARTTLS is the only way on (TLS required and not yet negotiated).</summary>
    protected abstract bool MustStartTls { get; }
    protected abstract void WriteHeader(Element header);
    protected abstract void WriteElement(Element element);
    /// <summary>
    /// Writes the stream error (if any) and the end of the stream. Without <paramref name="headerWritten"/>
    /// the current stream has no header of ours yet, and an error still needs one (RFC 6120 §4.9.1.1).
    /// </summary>
    protected abstract void WriteClose(Element? error, bool headerWritten);
    protected abstract ValueTask FlushAsync();
    /// <summary>Ends the sending side gracefully once everything is written.</summary>
    protected abstract ValueTask CompleteOutputAsync();
    /// <summary>Drops the connection at once.</summary>
    protected abstract void AbortTransport();
    /// <summary>Called once the writer has flushed &lt;proceed/&gt;: the transport wraps itself in TLS.</summary>
    protected virtual Task StartTlsAsync() => throw new NotSupportedException();

    /// <summary>Runs the stream to its end; the returned task is the connection's lifetime.</summary>
    public async Task RunAsync()
    {
        Server.Streams.TryAdd(this, 0);
        // Counted, with a deadline per login phase, until a resource is bound; idle sessions then carry no timer at all.
        _login = Server.ConnectionLimits.TryEnter(RemoteAddress, EndLogin, out var refusal);
        try
        {
            if (_login is null) throw new StreamErrorException(StreamErrors.PolicyViolation, refusal);
            await ReadLoopAsync();
        }
        catch (XmlStreamException e)
        {
            Close(StreamErrors.FromXml(e.Condition), e.Message);
        }
        catch (StreamErrorException e)
        {
            Close(e.Condition, e.Message);
        }
        catch (Exception e) when (e is IOException or AuthenticationException or ConnectionResetException or OperationCanceledException
                                       or ObjectDisposedException or System.Net.WebSockets.WebSocketException)
        {
            Log.ConnectionLost(Logger, RemoteAddress, e.Message);
            Abort();
        }
        catch (Exception e)
        {
            Log.Crashed(Logger, e);
            Close(StreamErrors.InternalServerError, null);
        }
        finally
        {
            Server.Streams.TryRemove(this, out _);
            LeaveUnauthenticated();
            CompleteOutbound();
            await EndSessionAsync();
            await AwaitWriterAsync();
            DisposeTransport();
        }
    }

    /// <summary>Releases what the transport holds once the stream is over.</summary>
    protected virtual void DisposeTransport()
    {
    }

    // ---- reading: what the transport hands over ----

    /// <summary>The peer opened (or restarted) its stream. <paramref name="contentNamespace"/> is the default namespace its stanzas use.</summary>
    protected void OnStreamOpen(Element header, string? contentNamespace, string expectedName, string expectedNamespace)
    {
        // Answer with our own header first, so that any stream error below is sent inside a stream (RFC 6120 §4.9.1.1).
        _streamFrom = header.GetAttribute("from");
        SendHeader(_streamFrom);
        if (!header.Is(expectedName, expectedNamespace))
            throw new StreamErrorException(StreamErrors.InvalidNamespace, $"the stream element must be <{expectedName}> in {expectedNamespace}");
        if (contentNamespace is not null && contentNamespace != Ns.Client)
            throw new StreamErrorException(StreamErrors.InvalidNamespace, "the content namespace of a client stream is jabber:client");
        var to = header.GetAttribute("to");
        if (to is not null && (!Jid.TryParse(to, out var toJid) || toJid != Server.Domain))
            throw new StreamErrorException(StreamErrors.HostUnknown, $"this server serves {Server.Domain}");
        if (!IsVersionOneOrLater(header.GetAttribute("version")))
            throw new StreamErrorException(StreamErrors.UnsupportedVersion, "XMPP 1.0 streams only");
        Send(StreamFeatures());
        if (!Authenticated) Progress(MustStartTls ? LoginPhase.Opened : LoginPhase.Negotiating);
    }

    private static bool IsVersionOneOrLater(string? version)
    {
        if (version is null) return false;
        var dot = version.IndexOf('.');
        return int.TryParse(dot < 0 ? version : version[..dot], out var major) && major >= 1;
    }

    private void SendHeader(string? clientFrom)
    {
        if (HeaderSent) return;
        // Each restart (after STARTTLS and SASL) is a new stream with a new id, as Prosody and ejabberd do:
        // nothing learnt before the restart carries over (RFC 6120 §4.3.3, §5.4.3.3).
        _streamId = Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(8));
        Enqueue(new HeaderItem(ResponseHeader(clientFrom)));
        HeaderSent = true;
    }

    /// <summary>Our header's attributes; the transport decides how to write it.</summary>
    protected Element ResponseHeader(string? clientFrom)
    {
        if (_streamId.Length == 0) _streamId = Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(8));
        var header = new Element("stream", Ns.Stream)
            .SetAttribute("from", Server.Domain.ToString())
            .SetAttribute("id", _streamId)
            .SetAttribute("version", "1.0")
            .SetAttribute("xml:lang", "en");
        if (clientFrom is not null && Jid.TryParse(clientFrom, out var from)) header.SetAttribute("to", from.ToString());
        return header;
    }

    private Element StreamFeatures() => StreamFeatures(bound: _session is not null);

    private Element StreamFeatures(bool bound)
    {
        var features = new Element("features", Ns.Stream);
        if (CanStartTls && !Authenticated)
        {
            var starttls = features.AddChild("starttls", Ns.Tls);
            if (MustStartTls)
            {
                starttls.AddChild("required");
                return features;
            }
        }
        if (!Authenticated)
        {
            _sasl ??= new SaslNegotiator(Server, Server.AuthThrottle, RemoteAddress, IsSecure, IsSecure ? ChannelBindingData : null);
            foreach (var feature in SaslProfiles.Features(_sasl)) features.Add(feature);
            foreach (var contribute in Server.StreamFeatures.BeforeAuthentication)
                if (contribute() is { } feature) features.Add(feature);
            return features;
        }
        if (!bound)
        {
            features.AddChild("bind", Ns.Bind);
            features.AddChild("session", Ns.Session).AddChild("optional");
        }
        foreach (var contribute in Server.StreamFeatures.AfterAuthentication) features.Add(contribute());
        return features;
    }

    /// <summary>tls-server-end-point data when the transport's TLS uses the server's certificate.</summary>
    protected abstract byte[]? ChannelBindingData { get; }

    /// <summary>Handles one top-level element; true when the transport must now be wrapped in TLS.</summary>
    protected async ValueTask<bool> OnElementAsync(Element element)
    {
        if (!HeaderSent) throw new StreamErrorException(StreamErrors.NotWellFormed, "stream header expected");
        if (_inSasl2Exchange && element.Namespace != Ns.Sasl2)
            throw new StreamErrorException(StreamErrors.PolicyViolation, "only SASL2 elements may be sent during a SASL2 exchange");
        if (element.Namespace == Ns.Tls)
        {
            if (element.Name != "starttls" || !CanStartTls || Authenticated)
                throw new StreamErrorException(StreamErrors.PolicyViolation, "STARTTLS is not allowed now");
            Send(new Element("proceed", Ns.Tls));
            await FlushOutboundAsync();
            return true;
        }
        if (MustStartTls)
            throw new StreamErrorException(StreamErrors.PolicyViolation, "STARTTLS is required first");
        if (element.Namespace is Ns.Sasl or Ns.Sasl2)
        {
            await OnSaslAsync(element);
            return false;
        }
        if (element.Namespace != Ns.Client || element.Name is not ("message" or "presence" or "iq"))
        {
            if (element.Namespace == StreamManagementModule.Namespace)
            {
                // An <a/> says the counted messages are safe: those archived must be durable first (a kill -9
                // after the ack loses none of them). Waits only while a batch is being written.
                if (element.Name == "r" && _sm is not null && Server.Archive?.WhenWritten() is { IsCompleted: false } writing)
                    await writing.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
                await OnStreamManagementAsync(element);
                return false;
            }
            if (element.Namespace == ClientStateModule.Namespace && element.Name is "active" or "inactive")
            {
                OnClientState(element.Name == "inactive");
                return false;
            }
            throw new StreamErrorException(StreamErrors.UnsupportedStanzaType, $"<{element.Name}/> in {element.Namespace} is not a stanza");
        }
        if (!Authenticated)
        {
            if (element.IsIq() && element.FirstElement is { } payload
                && Server.UnauthenticatedIq.TryGetValue(payload.Namespace, out var handler))
            {
                Send(await handler(element, this));
                return false;
            }
            throw new StreamErrorException(StreamErrors.NotAuthorized, "authenticate first");
        }
        if (_session is null)
        {
            await OnBindAsync(element);
            return false;
        }
        Server.Metrics.Received(element.Name);
        if (_sm is not { } sm)
        {
            await SessionInput.HandleAsync(Server, _session, element);
            return false;
        }
        // A resumption on another connection waits for the stanza this one is handling (its 'h' counts it) and takes
        // the session from the next one on: read here after that, it was not acknowledged, and the client resends it.
        await sm.Handling.WaitAsync();
        try
        {
            if (_sm != sm) return false;
            await SessionInput.HandleAsync(Server, _session, element);
            sm.Handled++;
        }
        finally
        {
            sm.Handling.Release();
        }
        return false;
    }

    // ---- stream management (XEP-0198) ----

    private ValueTask OnStreamManagementAsync(Element element)
    {
        if (!Authenticated) throw new StreamErrorException(StreamErrors.NotAuthorized, "authenticate first");
        switch (element.Name)
        {
            case "enable" when _session is not null && _sm is null:
                var sm = Server.StreamManagement.Enable(_session, this, element.GetAttribute("resume") is "true" or "1");
                _sm = sm;
                if (_session.Transport is CsiTransport csi) csi.Inner = sm;
                else _session.UseTransport(sm);
                sm.Start();
                return ValueTask.CompletedTask;
            case "resume" when _session is null && _sm is null:
                return OnResumeAsync(element);
            case "enable" or "resume":
                Enqueue(SmFailed(StanzaError.UnexpectedRequest));
                return ValueTask.CompletedTask;
            case "r" when _sm is not null:
                Enqueue(_sm.Ack());
                return ValueTask.CompletedTask;
            case "a" when _sm is not null:
                var h = ParseH(element);
                if (!_sm.Acknowledge(h, out var sent))
                {
                    _closingCondition = HandledCountTooHigh(h, sent);
                    throw new StreamErrorException(StreamErrors.UndefinedCondition, $"acknowledged {h} stanzas, {sent} were sent");
                }
                return ValueTask.CompletedTask;
            default:
                throw new StreamErrorException(StreamErrors.UnsupportedStanzaType,
                    _sm is null ? $"<{element.Name}/>: stream management is not enabled" : $"<{element.Name}/> is not a stream management element");
        }
    }

    /// <summary>XEP-0352: from the first &lt;inactive/&gt; on, the session's stanzas pass through a <see cref="CsiTransport"/>.</summary>
    private void OnClientState(bool inactive)
    {
        if (_session is null) throw new StreamErrorException(StreamErrors.UnsupportedStanzaType, "client state indication needs a bound resource");
        if (_session.Transport is not CsiTransport csi)
        {
            if (!inactive) return;
            csi = new CsiTransport(_session.Transport);
            _session.UseTransport(csi);
        }
        csi.SetInactive(inactive);
    }

    private async ValueTask OnResumeAsync(Element element)
    {
        if (await ResumeAsync(element, null) is { } failed) Enqueue(failed);
    }

    /// <summary>Resumes the session <paramref name="element"/> names (see <see cref="SmSession.Resume"/>); the &lt;failed/&gt; to answer when it cannot.</summary>
    private async ValueTask<Element?> ResumeAsync(Element element, Func<SmSession, Element, Element[]>? announce)
    {
        var h = ParseH(element);
        var sm = element.GetAttribute("previd") is { } previd ? Server.StreamManagement.Find(previd, _user!) : null;
        var sent = 0u;
        var outcome = SmSession.ResumeOutcome.Gone;
        if (sm is not null)
        {
            await sm.Handling.WaitAsync();
            try
            {
                outcome = sm.Resume(this, h, out sent, announce is null ? null : resumed => announce(sm, resumed));
            }
            finally
            {
                sm.Handling.Release();
            }
        }
        if (outcome == SmSession.ResumeOutcome.HandledCountTooHigh) return SmFailed(StanzaError.UndefinedCondition).Add(HandledCountTooHigh(h, sent));
        if (outcome == SmSession.ResumeOutcome.Gone) return SmFailed(StanzaError.ItemNotFound);
        _sm = sm;
        _session = sm!.Session;
        _sasl = null;
        // XEP-0352 §4: a new stream starts active.
        (_session.Transport as CsiTransport)?.SetInactive(false);
        LeaveUnauthenticated();
        Log.Resumed(Logger, _session.Jid, RemoteAddress);
        return null;
    }

    /// <summary>The SASL2 success of an inline resumption: it names the resumed session's full JID and carries &lt;resumed/&gt;.</summary>
    private static Element ResumedSuccess(Element success, SmSession sm, Element resumed)
    {
        var identifier = success.GetChild("authorization-identifier", Ns.Sasl2)!;
        identifier.ClearChildren();
        identifier.AddText(sm.Session.Jid.ToString());
        return success.Add(resumed);
    }

    private static uint ParseH(Element element) =>
        uint.TryParse(element.GetAttribute("h"), System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var h)
            ? h : throw new StreamErrorException(StreamErrors.BadFormat, $"<{element.Name}/> needs an 'h' attribute: an unsigned 32-bit count");

    private static Element SmFailed(StanzaError condition) =>
        new Element("failed", StreamManagementModule.Namespace).Add(new Element(condition.Condition, Ns.Stanzas));

    private static Element HandledCountTooHigh(uint h, uint sent) =>
        new Element("handled-count-too-high", StreamManagementModule.Namespace)
            .SetAttribute("h", h.ToString(System.Globalization.CultureInfo.InvariantCulture))
            .SetAttribute("send-count", sent.ToString(System.Globalization.CultureInfo.InvariantCulture));

    void ISmConnection.Write(Element element) => Enqueue(element);

    void ISmConnection.Release()
    {
        _sm = null;
        _session = null;
    }

    /// <summary>Called by the transport when the stream restarts on its own (after TLS).</summary>
    protected virtual void OnStreamRestart() => HeaderSent = false;

    private async ValueTask OnSaslAsync(Element element)
    {
        // XEP-0388 §3.8: once authenticated, a further <authenticate/> (or <auth/>) is a stream error.
        if (Authenticated || _sasl is not { } sasl)
            throw new StreamErrorException(StreamErrors.PolicyViolation, "SASL is not available now");
        var sasl2 = element.Namespace == Ns.Sasl2;
        if (sasl.InProgress && sasl2 != _inSasl2Exchange)
            throw new StreamErrorException(StreamErrors.PolicyViolation, "an exchange in the other SASL profile is in progress");
        var (step, reply) = sasl2
            ? await SaslProfiles.HandleSasl2Async(sasl, element, Server.Domain, _streamFrom)
            : await SaslProfiles.HandleRfc6120Async(sasl, element);
        var outcome = step.Outcome;
        if (outcome == SaslOutcome.Success) _user = sasl.User;
        _inSasl2Exchange = sasl2 && outcome == SaslOutcome.Continue;
        if (sasl2 && element.Name == "authenticate")
        {
            _bind2 = element.GetChild("bind", Bind2.Namespace);
            _inlineResume = element.GetChild("resume", StreamManagementModule.Namespace);
        }
        var inline = outcome == SaslOutcome.Success && sasl2;
        // XEP-0198 1.6.1 "SASL2 and Bind 2": an inline resumption is tried first; once it succeeds, the success carries <resumed/>
        // and the features, the unacknowledged stanzas follow, and any Bind 2 request is ignored. When it fails,
        // the success carries <failed/> and binding goes on as if no resumption had been asked for.
        var resumed = false;
        if (inline && _inlineResume is { } resume)
        {
            if (await ResumeAsync(resume, (sm, r) => [ResumedSuccess(reply, sm, r), StreamFeatures(bound: true)]) is { } failed) reply.Add(failed);
            else resumed = true;
        }
        var bound = inline && !resumed && _bind2 is { } request ? BindInline(request, reply) : null;
        // Enqueued as they are: with stream management enabled inline, Send would count them as stanzas.
        if (bound is not null) EnqueueAddingSession(bound, reply);
        else if (!resumed) Enqueue(reply);
        if (outcome == SaslOutcome.Success)
        {
            Log.Authenticated(Logger, _user!, RemoteAddress, sasl.Mechanism!, sasl2 ? "XEP-0388" : "RFC 6120");
            Server.Metrics.Login(sasl.Mechanism!);
            Progress(LoginPhase.Authenticated);
            if (bound is not null) await StartInlineSessionAsync(bound);
            // RFC 6120 restarts the stream; XEP-0388 does not: the new features follow the success at once (§2.6.1).
            if (!sasl2) OnStreamRestart();
            else if (!resumed) Enqueue(StreamFeatures());
        }
        else if (outcome == SaslOutcome.Failure)
        {
            Server.Metrics.LoginFailed(sasl.AttemptedMechanism, step.Failure.ToElementName());
            if (step.WrongCredentials) Log.AuthenticationFailed(Logger, RemoteAddress, step.Failure.ToElementName(), step.Text ?? "");
            else Log.NegotiationFailed(Logger, RemoteAddress, step.Failure.ToElementName(), step.Text ?? "");
        }
        // RFC 6120 §6.4.5: a configurable number of retries, then policy-violation.
        if (outcome == SaslOutcome.Failure && sasl.Failures >= Server.Options.MaxSaslFailuresPerStream)
            throw new StreamErrorException(StreamErrors.PolicyViolation, "too many failed authentication attempts");
    }

    private async ValueTask OnBindAsync(Element iq)
    {
        var bind = iq.IsIq() && iq.Type() == "set" ? iq.GetChild("bind", Ns.Bind) : null;
        if (bind is null) throw new StreamErrorException(StreamErrors.NotAuthorized, "bind a resource first");
        var requested = bind.GetChildText("resource", Ns.Bind)?.Trim();
        Jid full;
        try
        {
            full = Jid.Create(_user, Server.Domain.Domain, string.IsNullOrEmpty(requested) ? NewResource() : requested);
        }
        catch (JidFormatException)
        {
            Send(Stanza.ErrorFor(iq, StanzaError.BadRequest, "invalid resource"));
            return;
        }
        var session = new Session(this, full, _sasl!.Mechanism!, _sasl.UserAgent);
        if (!Server.Sessions.TryAdd(session, Server.Options.MaxSessionsPerAccount, out var replaced))
        {
            // RFC 6120 §7.6.2.1: the account has as many resources bound as it may have.
            Send(Stanza.ErrorFor(iq, StanzaError.ResourceConstraint, $"this account has {Server.Options.MaxSessionsPerAccount} sessions already"));
            return;
        }
        var result = Stanza.ResultFor(iq, new Element("bind", Ns.Bind).Add(new Element("jid", Ns.Bind).AddText(full.ToString())));
        result.SetAttribute("from", null).SetAttribute("to", null);
        await StartSessionAsync(session, replaced, result);
    }

    private async ValueTask StartSessionAsync(Session session, Session? replaced, Element? result)
    {
        // RFC 6120 §7.7.2.2: the new session wins; the old one is told why it ends.
        replaced?.Close(StreamErrors.Conflict, "replaced by a new session with the same resource");
        _session = session;
        // What SASL kept (its exchange state, the claimed identity) is not needed any more.
        _sasl = null;
        LeaveUnauthenticated();
        if (result is not null) Send(result);
        Log.Bound(Logger, session.Jid, RemoteAddress);
        await Server.Hooks.SessionStarted.FireEachAsync(session, e => Log.StorageBusy(Logger, session.Jid, "start", e.Message));
    }

    /// <summary>
    /// XEP-0386: the session the SASL2 success announces (its full JID, and &lt;bound/&gt; with the inline results);
    /// null, and the success says nothing of it, when the account has no room for another session (the client can
    /// still try RFC 6120 binding). It is added to the sessions with the success (<see cref="EnqueueAddingSession"/>).
    /// </summary>
    private Session? BindInline(Element request, Element success)
    {
        if (Server.Sessions.Get(_user!).Count >= Server.Options.MaxSessionsPerAccount) return null;
        Jid full;
        try
        {
            full = Jid.Create(_user, Server.Domain.Domain, Bind2.Resource(request));
        }
        catch (JidFormatException)
        {
            full = Jid.Create(_user, Server.Domain.Domain, NewResource());
        }
        var session = new Session(this, full, _sasl!.Mechanism!, _sasl.UserAgent);
        var identifier = success.GetChild("authorization-identifier", Ns.Sasl2)!;
        identifier.ClearChildren();
        identifier.AddText(full.ToString());
        var bound = success.AddChild("bound", Bind2.Namespace);
        var (carbons, sm, inactive) = Bind2.Requests(request);
        session.Carbons = carbons;
        if (sm is { } resumable)
        {
            _sm = Server.StreamManagement.Enable(session, this, resumable);
            session.UseTransport(_sm);
            bound.Add(_sm.Enabled());
        }
        if (inactive)
        {
            var csi = new CsiTransport(session.Transport);
            session.UseTransport(csi);
            csi.SetInactive(true);
        }
        return session;
    }

    /// <summary>
    /// Queues the SASL2 success that announces an inline-bound session as the session becomes routable, under the
    /// outbound queue's lock: a stanza routed to the session once the client can know its JID waits for the lock and
    /// is queued after the success, never before it, and never finds the session missing (and goes offline).
    /// </summary>
    private void EnqueueAddingSession(Session session, Element success)
    {
        lock (_outbound)
        {
            if (!Server.Sessions.TryAdd(session, Server.Options.MaxSessionsPerAccount, out _))
                throw new StreamErrorException(StreamErrors.ResourceConstraint, $"this account has {Server.Options.MaxSessionsPerAccount} sessions already");
            Enqueue(success);
        }
    }

    private async ValueTask StartInlineSessionAsync(Session session)
    {
        _sm?.Start(announce: false);
        await StartSessionAsync(session, null, null);
    }

    private PendingLogin? _login;
    private InboundRate? _inboundRate;

    /// <summary>Accounts for bytes read; waits when the stream is over its inbound rate.</summary>
    protected ValueTask ThrottleAsync(long bytes)
    {
        _inboundRate ??= new InboundRate(Server.Options.InboundBytesPerSecond, Server.Options.InboundBurstBytes);
        var wait = _inboundRate.Take(bytes);
        return wait > TimeSpan.Zero ? new ValueTask(Task.Delay(wait, Lifetime.Token)) : ValueTask.CompletedTask;
    }

    protected void Progress(LoginPhase phase) => _login?.Advance(phase);

    /// <summary>A login deadline passed, or the stream was shed for a newcomer.</summary>
    private void EndLogin(string condition, string text)
    {
        if (_session is not null) return;
        // In the middle of a TLS handshake nothing can be said in clear: drop the connection.
        if (_login?.Phase == LoginPhase.Handshaking) Abort();
        else Close(condition, text);
    }

    private void LeaveUnauthenticated() => Interlocked.Exchange(ref _login, null)?.Dispose();

    private static string NewResource() => "candor-" + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(6));

    // ---- writing ----

    private sealed class HeaderItem(Element header) : Node
    {
        public Element Header { get; } = header;
    }

    /// <summary>A point in the queue whose flush someone awaits (STARTTLS flushes &lt;proceed/&gt; before the handshake).</summary>
    private sealed class FlushItem : Node
    {
        public TaskCompletionSource Flushed { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
    }

    public void Send(Element stanza)
    {
        Server.Metrics.Sent(stanza.Name);
        // Someone who took the session's transport before stream management replaced it: count it all the same.
        if (_sm is { } sm) sm.Send(stanza);
        else Enqueue(stanza);
    }

    private void Enqueue(Node item)
    {
        if (_closing != 0) return;
        var weight = Weight(item);
        if (Interlocked.Add(ref _queuedBytes, weight) > Server.Options.MaxOutboundQueueBytes)
        {
            Interlocked.Add(ref _queuedBytes, -weight);
            Close(StreamErrors.PolicyViolation, "too much data queued: the client is not reading");
            return;
        }
        bool queued, completed, schedule = false;
        lock (_outbound)
        {
            completed = _completed;
            queued = !completed && _outbound.Count < Server.Options.MaxOutboundQueue;
            if (queued)
            {
                _outbound.Enqueue(item);
                _queuedCount = _outbound.Count;
                schedule = !_writing;
                _writing = true;
            }
        }
        if (schedule) ThreadPool.UnsafeQueueUserWorkItem(this, preferLocal: false);
        else if (!queued)
        {
            Interlocked.Add(ref _queuedBytes, -weight);
            // A stream whose output has ended takes nothing more (stream management keeps what it did not ack).
            if (!completed) Close(StreamErrors.PolicyViolation, "too many stanzas queued: the client is not reading");
        }
    }

    private long _queuedBytes;
    private int _queuedCount;

    /// <summary>Nothing more will be queued: the write pass ends the stream's output after what is queued.</summary>
    private void CompleteOutbound()
    {
        lock (_outbound)
        {
            if (_completed) return;
            _completed = true;
            _writerDone = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            if (_writing) return;
            _writing = true;
        }
        ThreadPool.UnsafeQueueUserWorkItem(this, preferLocal: false);
    }

    /// <summary>What a queued item weighs: its size as received, or a small estimate for what the server built itself.</summary>
    private static int Weight(Node item) => item is Element element ? Math.Max(element.SourceLength, 256) : 0;

    private Task FlushOutboundAsync()
    {
        var marker = new FlushItem();
        Enqueue(marker);
        return marker.Flushed.Task;
    }

    void IThreadPoolWorkItem.Execute() => _ = WritePassAsync();

    /// <summary>
    /// Writes what is queued, one flush per batch, until the queue is empty after a flush; the pass that finds it
    /// empty and completed ends the output. Only one pass runs at a time (<see cref="_writing"/>).
    /// </summary>
    private async Task WritePassAsync()
    {
        try
        {
            while (true)
            {
                var written = false;
                FlushItem? flushed = null;
                while (TryDequeue(out var item))
                {
                    if (item is FlushItem marker)
                    {
                        flushed = marker;
                        break;
                    }
                    if (item is HeaderItem header) WriteHeader(header.Header);
                    else WriteElement((Element)item);
                    Interlocked.Add(ref _queuedBytes, -Weight(item));
                    written = true;
                }
                if (written || flushed is not null) await FlushAsync();
                flushed?.Flushed.TrySetResult();
                if (!PassOver(out var end)) continue;
                if (!end) return;
                if (_closingError is not null || HeaderSent)
                {
                    WriteClose(_closingError, HeaderSent);
                    await FlushAsync();
                }
                await CompleteOutputAsync();
                _writerDone!.TrySetResult();
                return;
            }
        }
        catch (Exception e)
        {
            if (e is not (IOException or ObjectDisposedException or InvalidOperationException or OperationCanceledException
                          or ConnectionResetException or System.Net.WebSockets.WebSocketException))
                Log.Crashed(Logger, e);
            // The pass stays marked as running: nothing more is written to a transport that failed.
            Abort();
            _writerDone!.TrySetResult();
        }
    }

    private bool TryDequeue(out Node item)
    {
        lock (_outbound)
        {
            if (!_outbound.TryDequeue(out item!)) return false;
            _queuedCount = _outbound.Count;
            return true;
        }
    }

    /// <summary>
    /// Whether the pass is over: nothing is queued since its flush. Then either the queue is completed
    /// (<paramref name="end"/>: the pass ends the output) or the next item queued schedules a new pass.
    /// </summary>
    private bool PassOver(out bool end)
    {
        lock (_outbound)
        {
            end = _completed;
            if (_outbound.Count > 0) return false;
            if (!end) _writing = false;
            return true;
        }
    }

    /// <summary>
    /// Ends the stream: the stream error (if any) and the end of the stream are written after what is
    /// already queued, then the connection closes. A peer that does not read is cut off after a grace period.
    /// </summary>
    public void Close(string? condition, string? text = null)
    {
        if (Interlocked.Exchange(ref _closing, 1) != 0) return;
        _closeRequested = true;
        if (condition is not null)
        {
            _closingError = StreamErrors.Create(condition, text);
            if (_closingCondition is not null) _closingError.Add(_closingCondition);
            Log.StreamError(Logger, RemoteAddress, condition, text ?? "");
            Server.Metrics.StreamError(condition);
        }
        _session?.MarkClosed();
        // Unbound at once, not when the read loop ends: until then stanzas for this resource would be routed to a
        // session that no longer queues anything and vanish; unbound, they take the offline route (RFC 6121 §8.5.3).
        if (_session is { } closing) Server.Sessions.Remove(closing);
        CompleteOutbound();
        // The writer sends what is queued, the error and the end of the stream; the peer then has a
        // moment to close its side before reading stops.
        if (!ReadsObserveLifetime) Lifetime.Token.UnsafeRegister(static stream => ((C2sStream)stream!).AbortTransport(), this);
        Lifetime.CancelAfter(TimeSpan.FromSeconds(5));
    }

    protected void Abort()
    {
        Interlocked.Exchange(ref _closing, 1);
        // A resumable session outlives its connection (XEP-0198); EndSessionAsync decides.
        if (_sm?.Id is null) _session?.MarkClosed();
        CompleteOutbound();
        Lifetime.Cancel();
        AbortTransport();
    }

    private async Task AwaitWriterAsync()
    {
        try
        {
            await _writerDone!.Task.WaitAsync(TimeSpan.FromSeconds(5));
        }
        catch (TimeoutException)
        {
            AbortTransport();
        }
    }

    private async Task EndSessionAsync()
    {
        var session = _session;
        if (session is null) return;
        if (_sm is { } sm)
        {
            if (sm.Id is not null && !_closeRequested)
            {
                sm.Detach(this);
                Log.Detached(Logger, session.Jid, Server.Options.SmResumeTimeoutSeconds);
                return;
            }
            await sm.EndAsync();
            Log.Unbound(Logger, session.Jid);
            return;
        }
        session.MarkClosed();
        Server.Sessions.Remove(session);
        await Server.Hooks.SessionEnded.FireEachAsync(session, e => Log.StorageBusy(Logger, session.Jid, "end", e.Message));
        Log.Unbound(Logger, session.Jid);
    }

    private static partial class Log
    {
        [LoggerMessage(Level = LogLevel.Debug, Message = "Connection from {Address} lost: {Reason}")]
        public static partial void ConnectionLost(ILogger logger, IPAddress address, string reason);

        [LoggerMessage(Level = LogLevel.Error, Message = "Connection handler failed")]
        public static partial void Crashed(ILogger logger, Exception exception);

        [LoggerMessage(Level = LogLevel.Warning, Message = "Session {Jid}: a {Phase} action failed, the database did not answer in time: {Reason}")]
        public static partial void StorageBusy(ILogger logger, Jid jid, string phase, string reason);

        [LoggerMessage(Level = LogLevel.Information, Message = "{User} authenticated from {Address} with {Mechanism} ({Profile})")]
        public static partial void Authenticated(ILogger logger, string user, IPAddress address, string mechanism, string profile);

        [LoggerMessage(Level = LogLevel.Information, Message = "Authentication from {Address} failed: {Condition} {Text}")]
        public static partial void AuthenticationFailed(ILogger logger, IPAddress address, string condition, string text);

        /// <summary>A mechanism or channel-binding negotiation that did not work out; clients retry with another.</summary>
        [LoggerMessage(Level = LogLevel.Debug, Message = "SASL negotiation from {Address} failed (not a wrong password): {Condition} {Text}")]
        public static partial void NegotiationFailed(ILogger logger, IPAddress address, string condition, string text);

        [LoggerMessage(Level = LogLevel.Information, Message = "Session {Jid} bound from {Address}")]
        public static partial void Bound(ILogger logger, Jid jid, IPAddress address);

        [LoggerMessage(Level = LogLevel.Information, Message = "Session {Jid} resumed from {Address}")]
        public static partial void Resumed(ILogger logger, Jid jid, IPAddress address);

        [LoggerMessage(Level = LogLevel.Information, Message = "Session {Jid} lost its connection; resumable for {Seconds} s")]
        public static partial void Detached(ILogger logger, Jid jid, int seconds);

        [LoggerMessage(Level = LogLevel.Information, Message = "Session {Jid} ended")]
        public static partial void Unbound(ILogger logger, Jid jid);

        [LoggerMessage(Level = LogLevel.Information, Message = "Stream error to {Address}: {Condition} {Text}")]
        public static partial void StreamError(ILogger logger, IPAddress address, string condition, string text);
    }
}

/// <summary>Ends the stream with the given RFC 6120 stream error condition.</summary>
public sealed class StreamErrorException(string condition, string message) : Exception(message)
{
    public string Condition { get; } = condition;
}
