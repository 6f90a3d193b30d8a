using System.Collections.Concurrent;
using System.Runtime.CompilerServices;
using System.Security.Cryptography;
using System.Threading.Channels;
using Candor.Xml;
using Candor.Xmpp;

namespace Candor.Client;

/// <summary>
/// An XMPP client connection (RFC 6120/6121): connect, then exchange stanzas. Incoming traffic is reported as
/// <see cref="XmppEvent"/>s through <see cref="EventReceived"/> (called on the reading task: keep handlers short)
/// and <see cref="ReadEventsAsync"/> (one independent queue per reader).
/// </summary>
/// <remarks>
/// Failures are typed: <see cref="XmppConnectionException"/> (unreachable, timeout, closed mid-stream),
/// <see cref="XmppTlsException"/> (STARTTLS missing or refused, certificate invalid or not the pinned one),
/// <see cref="XmppAuthenticationException"/>, <see cref="XmppStreamErrorException"/>, <see cref="XmppProtocolException"/>
/// (malformed XML), <see cref="XmppStanzaException"/> and <see cref="XmppTimeoutException"/> for IQ requests.
/// Every network wait is bounded by <see cref="XmppClientOptions.ConnectTimeout"/> or <see cref="XmppClientOptions.RequestTimeout"/>.
/// </remarks>
public sealed class XmppClient : IAsyncDisposable
{
    private readonly XmppClientOptions _options;
    private readonly ConcurrentDictionary<string, TaskCompletionSource<Element>> _pending = new();
    private readonly List<Channel<XmppEvent>> _readers = [];
    private readonly Lock _lock = new();
    private readonly Dictionary<Jid, RosterItem> _roster = [];
    private readonly Dictionary<Jid, Dictionary<string, PresenceUpdate>> _presence = [];
    private Connection? _connection;
    private CancellationTokenSource _lifetime = new();
    private Element? _presenceToRestore;
    private bool _rosterRequested;
    private bool _closing;
    private TaskCompletionSource<Exception?> _ended = new(TaskCreationOptions.RunContinuationsAsynchronously);

    private sealed record Connection(Negotiated Session, CancellationTokenSource Stop, Task ReadLoop);

    public XmppClient(XmppClientOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        if (options.Jid.Local is null) throw new ArgumentException("the JID needs a localpart (user@domain)", nameof(options));
        XmppTransport.NormalizeFingerprint(options.CertificateFingerprint);
        _options = options;
    }

    public XmppClientOptions Options => _options;

    /// <summary>The full JID the server bound; null before the first connection.</summary>
    public Jid? BoundJid { get; private set; }
    public bool IsConnected => _connection is not null;
    /// <summary>The SASL mechanism of the current session, e.g. SCRAM-SHA-256-PLUS.</summary>
    public string? Mechanism => _connection?.Session.Mechanism;
    /// <summary>The current session authenticated with SASL2 (XEP-0388) rather than RFC 6120 SASL.</summary>
    public bool UsedSasl2 => _connection?.Session.Sasl2 ?? false;
    /// <summary>host:port of the current session.</summary>
    public string? EndPoint => _connection?.Session.EndPoint;
    /// <summary>The TLS protocol of the current session, e.g. Tls13.</summary>
    public string? TlsProtocol => _connection?.Session.Transport.Tls?.SslProtocol.ToString();
    /// <summary>The stream features the server offered after authentication in the current session (bind, roster
    /// versioning, subscription pre-approval, ...).</summary>
    public Element? StreamFeatures => _connection?.Session.Features;
    /// <summary>SHA-256 fingerprint (hex) of the server certificate of the current session.</summary>
    public string? ServerCertificateFingerprint =>
        _connection?.Session.Transport.ServerCertificate?.GetCertHashString(HashAlgorithmName.SHA256);

    /// <summary>Completes when the client is finally disconnected (no reconnection follows): with null after
    /// <see cref="DisconnectAsync"/>, else with the error that ended the connection.</summary>
    public Task<Exception?> Ended => _ended.Task;

    public event Action<XmppEvent>? EventReceived;
    /// <summary>Things a user must be told, e.g. that certificate checks are off (<see cref="XmppClientOptions.Insecure"/>).</summary>
    public event Action<string>? Warning;

    /// <summary>Connects, negotiates TLS and SASL, and binds a resource.</summary>
    public async Task ConnectAsync(CancellationToken cancellation = default)
    {
        if (_connection is not null) throw new InvalidOperationException("already connected");
        _closing = false;
        if (_ended.Task.IsCompleted) _ended = new(TaskCreationOptions.RunContinuationsAsynchronously);
        if (_lifetime.IsCancellationRequested) _lifetime = new CancellationTokenSource();
        Negotiated session;
        try
        {
            session = await new Negotiator(_options, Warn).RunAsync(cancellation);
        }
        catch (Exception e)
        {
            Finish(e);
            throw;
        }
        Start(session);
        Publish(new ConnectionStateChanged(ConnectionState.Connected, null));
    }

    private void Start(Negotiated session)
    {
        BoundJid = session.BoundJid;
        var stop = CancellationTokenSource.CreateLinkedTokenSource(_lifetime.Token);
        var ready = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var loop = Task.Run(async () =>
        {
            await ready.Task;
            await ReadLoopAsync(session.Transport, stop.Token);
        });
        _connection = new Connection(session, stop, loop);
        ready.SetResult();
    }

    private async Task ReadLoopAsync(XmppTransport transport, CancellationToken cancellation)
    {
        Exception? error = null;
        try
        {
            while (true)
            {
                var (ev, element) = await transport.ReadAsync(cancellation);
                if (ev == XmlEvent.StreamClose)
                {
                    if (!_closing) error = new XmppConnectionException(ConnectionFailure.ClosedByServer, "the server closed the stream");
                    break;
                }
                if (ev != XmlEvent.Element) continue;
                if (element!.Is("error", Ns.Stream)) throw Negotiator.StreamError(element);
                Dispatch(element);
            }
        }
        catch (OperationCanceledException) when (cancellation.IsCancellationRequested)
        {
        }
        catch (XmppConnectionException) when (_closing)
        {
        }
        catch (XmppException e)
        {
            error = e;
        }
        catch (Exception e)
        {
            error = new XmppConnectionException(ConnectionFailure.ClosedByServer, $"the connection failed: {e.Message}", e);
        }
        await ConnectionLostAsync(transport, error);
    }

    private async Task ConnectionLostAsync(XmppTransport transport, Exception? error)
    {
        if (error is not null && _closing) error = null;
        lock (_lock)
        {
            if (_connection?.Session.Transport == transport) _connection = null;
            _presence.Clear();
        }
        await transport.DisposeAsync();
        var failure = error ?? new XmppConnectionException(ConnectionFailure.ClosedByServer, "disconnected");
        foreach (var (id, pending) in _pending)
            if (_pending.TryRemove(id, out _)) pending.TrySetException(failure);
        Publish(new ConnectionStateChanged(ConnectionState.Disconnected, error));
        if (error is not null && _options.Reconnect.Enabled && !_closing && error is not XmppAuthenticationException)
        {
            _ = ReconnectAsync(error);
            return;
        }
        Finish(error);
    }

    private void Finish(Exception? error)
    {
        lock (_lock)
        {
            foreach (var reader in _readers)
            {
                if (error is null) reader.Writer.TryComplete();
                else reader.Writer.TryComplete(error);
            }
        }
        _ended.TrySetResult(error);
    }

    private async Task ReconnectAsync(Exception error)
    {
        var cancellation = _lifetime.Token;
        for (var attempt = 1; _options.Reconnect.MaxAttempts == 0 || attempt <= _options.Reconnect.MaxAttempts; attempt++)
        {
            Publish(new ConnectionStateChanged(ConnectionState.Reconnecting, error, attempt));
            try
            {
                await Task.Delay(_options.Reconnect.DelayFor(attempt), cancellation);
                var session = await new Negotiator(_options, Warn).RunAsync(cancellation);
                if (_closing)
                {
                    await session.Transport.DisposeAsync();
                    break;
                }
                Start(session);
                if (_rosterRequested) await GetRosterAsync(cancellation);
                if (_presenceToRestore is { } presence) await SendAsync(presence.Clone(), cancellation);
                Publish(new ConnectionStateChanged(ConnectionState.Reconnected, null, attempt));
                return;
            }
            catch (OperationCanceledException) when (cancellation.IsCancellationRequested)
            {
                Finish(null);
                return;
            }
            catch (XmppAuthenticationException e)
            {
                Finish(e);
                return;
            }
            catch (XmppException e)
            {
                error = e;
            }
        }
        Finish(_closing ? null : error);
    }

    /// <summary>Closes the stream (waiting up to <see cref="XmppClientOptions.CloseTimeout"/> for the server) and the connection.</summary>
    public async Task DisconnectAsync(CancellationToken cancellation = default)
    {
        _closing = true;
        var connection = _connection;
        if (connection is null)
        {
            await _lifetime.CancelAsync();
            Finish(null);
            return;
        }
        try
        {
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellation);
            timeout.CancelAfter(_options.CloseTimeout);
            await connection.Session.Transport.WriteRawAsync("</stream:stream>", timeout.Token);
            await connection.ReadLoop.WaitAsync(timeout.Token);
        }
        catch (Exception e) when (e is XmppException or OperationCanceledException or TimeoutException)
        {
        }
        await _lifetime.CancelAsync();
        try
        {
            await connection.ReadLoop.WaitAsync(TimeSpan.FromSeconds(5), CancellationToken.None);
        }
        catch (TimeoutException)
        {
        }
        await connection.Session.Transport.DisposeAsync();
        Finish(null);
    }

    public async ValueTask DisposeAsync()
    {
        await DisconnectAsync();
        _lifetime.Dispose();
    }

    // ------------------------------------------------------------------ sending

    /// <summary>Sends one stanza as is (it is written in the jabber:client namespace).
    /// A server that stops reading cannot block it for longer than <see cref="XmppClientOptions.RequestTimeout"/>.</summary>
    public async Task SendAsync(Element stanza, CancellationToken cancellation = default)
    {
        var connection = _connection ?? throw new XmppConnectionException(ConnectionFailure.ClosedByServer, "not connected");
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellation);
        timeout.CancelAfter(_options.RequestTimeout);
        try
        {
            await connection.Session.Transport.WriteAsync(stanza, timeout.Token);
        }
        catch (OperationCanceledException) when (!cancellation.IsCancellationRequested)
        {
            throw new XmppTimeoutException($"the server did not take a stanza within {_options.RequestTimeout.TotalSeconds:0.#} s");
        }
    }

    /// <summary>
    /// Sends an IQ get/set and waits for its result. A type='error' answer throws <see cref="XmppStanzaException"/>,
    /// no answer within the timeout (default <see cref="XmppClientOptions.RequestTimeout"/>) <see cref="XmppTimeoutException"/>.
    /// </summary>
    public async Task<Element> IqAsync(Element iq, TimeSpan? timeout = null, CancellationToken cancellation = default)
    {
        var id = iq.Id() ?? NewId();
        iq.SetAttribute("id", id);
        var answer = new TaskCompletionSource<Element>(TaskCreationOptions.RunContinuationsAsynchronously);
        if (!_pending.TryAdd(id, answer)) throw new InvalidOperationException($"an IQ with id {id} is already pending");
        var limit = timeout ?? _options.RequestTimeout;
        try
        {
            await SendAsync(iq, cancellation);
            var result = await answer.Task.WaitAsync(limit, cancellation);
            if (StanzaErrorInfo.From(result) is { } error) throw new XmppStanzaException(error, result);
            return result;
        }
        catch (TimeoutException)
        {
            var what = iq.FirstElement is { } payload ? $"{payload.Name} ({payload.Namespace})" : "IQ";
            throw new XmppTimeoutException($"no answer to the {what} request within {limit.TotalSeconds:0.#} s");
        }
        finally
        {
            _pending.TryRemove(id, out _);
        }
    }

    /// <summary>XEP-0199 ping (of the server when <paramref name="to"/> is null); returns the round-trip time.
    /// The server processes a session's stanzas in order, so an answer also means everything sent before it was handled.</summary>
    public async Task<TimeSpan> PingAsync(Jid? to = null, TimeSpan? timeout = null, CancellationToken cancellation = default)
    {
        var iq = Stanza.CreateIq("get", NewId(), null, to ?? Jid.Parse(_options.Jid.Domain));
        iq.AddChild("ping", Ns.Ping);
        var started = System.Diagnostics.Stopwatch.GetTimestamp();
        await IqAsync(iq, timeout, cancellation);
        return System.Diagnostics.Stopwatch.GetElapsedTime(started);
    }

    /// <summary>Sends a message with a body; asks for a XEP-0184 receipt and marks the chat state 'active'
    /// (XEP-0085) unless told otherwise. Returns the message id.</summary>
    public async Task<string> SendMessageAsync(Jid to, string body, string type = "chat", bool requestReceipt = true,
        ChatState? state = ChatState.Active, CancellationToken cancellation = default)
    {
        var id = NewId();
        var message = new Element("message", Ns.Client).SetAttribute("to", to.ToString()).SetAttribute("type", type).SetAttribute("id", id);
        message.AddChild("body").AddText(body);
        if (requestReceipt) message.AddChild("request", ClientNs.Receipts);
        if (state is { } s) message.AddChild(ChatStates.Name(s), ClientNs.ChatStates);
        await SendAsync(message, cancellation);
        return id;
    }

    /// <summary>A standalone XEP-0085 chat state notification.</summary>
    public Task SendChatStateAsync(Jid to, ChatState state, CancellationToken cancellation = default)
    {
        var message = new Element("message", Ns.Client).SetAttribute("to", to.ToString()).SetAttribute("type", "chat");
        message.AddChild(ChatStates.Name(state), ClientNs.ChatStates);
        message.AddChild("no-store", "urn:xmpp:hints");
        return SendAsync(message, cancellation);
    }

    /// <summary>Broadcast availability (restored after a reconnection). <paramref name="show"/>: away, chat, dnd, xa or null.</summary>
    public Task SendPresenceAsync(string? show = null, string? status = null, int? priority = null, CancellationToken cancellation = default)
    {
        var presence = new Element("presence", Ns.Client);
        if (show is not null) presence.AddChild("show").AddText(show);
        if (status is not null) presence.AddChild("status").AddText(status);
        if (priority is not null) presence.AddChild("priority").AddText(priority.Value.ToString(System.Globalization.CultureInfo.InvariantCulture));
        _presenceToRestore = presence.Clone();
        return SendAsync(presence, cancellation);
    }

    /// <summary>Asks <paramref name="contact"/> to share their presence (RFC 6121 §3.1).</summary>
    public Task SubscribeAsync(Jid contact, CancellationToken cancellation = default) => SendSubscription(contact, "subscribe", cancellation);
    /// <summary>Approves a subscription request from <paramref name="contact"/>.</summary>
    public Task AcceptSubscriptionAsync(Jid contact, CancellationToken cancellation = default) => SendSubscription(contact, "subscribed", cancellation);
    /// <summary>Refuses (or cancels) <paramref name="contact"/>'s subscription to our presence.</summary>
    public Task DenySubscriptionAsync(Jid contact, CancellationToken cancellation = default) => SendSubscription(contact, "unsubscribed", cancellation);
    /// <summary>Stops receiving <paramref name="contact"/>'s presence.</summary>
    public Task UnsubscribeAsync(Jid contact, CancellationToken cancellation = default) => SendSubscription(contact, "unsubscribe", cancellation);

    private Task SendSubscription(Jid contact, string type, CancellationToken cancellation) =>
        SendAsync(new Element("presence", Ns.Client).SetAttribute("to", contact.Bare.ToString()).SetAttribute("type", type), cancellation);

    // ------------------------------------------------------------------ roster and presence state

    /// <summary>The roster as last fetched and pushed.</summary>
    public IReadOnlyList<RosterItem> Roster
    {
        get { lock (_lock) return [.. _roster.Values]; }
    }

    /// <summary>The available resources of a contact, most recent presence per resource.</summary>
    public IReadOnlyList<PresenceUpdate> PresenceOf(Jid contact)
    {
        lock (_lock)
            return _presence.TryGetValue(contact.Bare, out var resources) ? [.. resources.Values] : [];
    }

    /// <summary>Fetches the roster (RFC 6121 §2.2); later changes arrive as <see cref="RosterPush"/> events.</summary>
    public async Task<IReadOnlyList<RosterItem>> GetRosterAsync(CancellationToken cancellation = default)
    {
        var iq = Stanza.CreateIq("get", NewId(), null, null);
        iq.AddChild("query", Ns.Roster);
        var result = await IqAsync(iq, null, cancellation);
        _rosterRequested = true;
        lock (_lock)
        {
            _roster.Clear();
            foreach (var element in result.GetChild("query", Ns.Roster)?.Elements ?? [])
                if (element.Is("item", Ns.Roster) && RosterItem.Parse(element) is { } item) _roster[item.Jid] = item;
            return [.. _roster.Values];
        }
    }

    /// <summary>Adds or updates a roster item (RFC 6121 §2.3).</summary>
    public Task SetRosterItemAsync(Jid contact, string? name = null, IEnumerable<string>? groups = null, CancellationToken cancellation = default)
    {
        var iq = Stanza.CreateIq("set", NewId(), null, null);
        var item = iq.AddChild("query", Ns.Roster).AddChild("item").SetAttribute("jid", contact.Bare.ToString()).SetAttribute("name", name);
        foreach (var group in groups ?? []) item.AddChild("group").AddText(group);
        return IqAsync(iq, null, cancellation);
    }

    /// <summary>Removes a roster item, which also cancels subscriptions both ways (RFC 6121 §2.5).</summary>
    public Task RemoveRosterItemAsync(Jid contact, CancellationToken cancellation = default)
    {
        var iq = Stanza.CreateIq("set", NewId(), null, null);
        iq.AddChild("query", Ns.Roster).AddChild("item").SetAttribute("jid", contact.Bare.ToString()).SetAttribute("subscription", "remove");
        return IqAsync(iq, null, cancellation);
    }

    // ------------------------------------------------------------------ events

    /// <summary>
    /// The events from this call on (the queue is registered at once, so call it before <see cref="ConnectAsync"/> to
    /// miss nothing), until the client is finally disconnected: the enumeration ends after <see cref="DisconnectAsync"/>,
    /// and throws the error that ended the connection otherwise. Enumerate what you ask for: an unread queue grows.
    /// </summary>
    public IAsyncEnumerable<XmppEvent> ReadEventsAsync(CancellationToken cancellation = default)
    {
        var channel = Channel.CreateUnbounded<XmppEvent>(new UnboundedChannelOptions { SingleReader = true });
        lock (_lock)
        {
            if (_ended.Task.IsCompleted && _connection is null)
            {
                if (_ended.Task.Result is { } error) channel.Writer.TryComplete(error);
                else channel.Writer.TryComplete();
            }
            _readers.Add(channel);
        }
        return Enumerate(channel, cancellation);
    }

    private async IAsyncEnumerable<XmppEvent> Enumerate(Channel<XmppEvent> channel, [EnumeratorCancellation] CancellationToken cancellation)
    {
        try
        {
            await foreach (var item in channel.Reader.ReadAllAsync(cancellation)) yield return item;
        }
        finally
        {
            lock (_lock) _readers.Remove(channel);
        }
    }

    private void Publish(XmppEvent e)
    {
        try
        {
            EventReceived?.Invoke(e);
        }
        catch (Exception ex)
        {
            Warn($"an EventReceived handler failed: {ex.Message}");
        }
        lock (_lock)
            foreach (var reader in _readers) reader.Writer.TryWrite(e);
    }

    private void Warn(string message) => Warning?.Invoke(message);

    /// <summary>A random stanza id.</summary>
    public static string NewId() => Convert.ToHexString(RandomNumberGenerator.GetBytes(8)).ToLowerInvariant();

    // ------------------------------------------------------------------ incoming stanzas

    private void Dispatch(Element stanza)
    {
        switch (stanza.Name)
        {
            case "iq" when stanza.Namespace == Ns.Client:
                HandleIq(stanza);
                break;
            case "message" when stanza.Namespace == Ns.Client:
                HandleMessage(stanza);
                break;
            case "presence" when stanza.Namespace == Ns.Client:
                HandlePresence(stanza);
                break;
            default:
                Publish(new OtherStanza(stanza));
                break;
        }
    }

    private void HandleIq(Element iq)
    {
        var type = iq.Type();
        if (type is "result" or "error")
        {
            if (iq.Id() is { } id && _pending.TryRemove(id, out var waiter)) waiter.TrySetResult(iq);
            else Publish(new OtherStanza(iq));
            return;
        }
        if (type is not ("get" or "set"))
        {
            Publish(new OtherStanza(iq));
            return;
        }
        var payload = iq.FirstElement;
        Element reply;
        if (type == "set" && payload?.Is("query", Ns.Roster) == true)
        {
            // RFC 6121 §2.1.6: a push comes from the account itself (no 'from', or our bare JID); others are spoofed.
            var from = iq.GetAttribute("from");
            if (from is not null && from != BoundJid?.Bare.ToString())
            {
                Reply(Stanza.ErrorFor(iq, StanzaError.ServiceUnavailable));
                return;
            }
            foreach (var element in payload.Elements)
            {
                if (!element.Is("item", Ns.Roster) || RosterItem.Parse(element) is not { } item) continue;
                var removed = item.Subscription == "remove";
                lock (_lock)
                {
                    if (removed) _roster.Remove(item.Jid);
                    else _roster[item.Jid] = item;
                }
                Publish(new RosterPush(item, removed, iq));
            }
            reply = Stanza.ResultFor(iq);
        }
        else if (type == "get" && payload?.Is("ping", Ns.Ping) == true)
        {
            reply = Stanza.ResultFor(iq);
        }
        else if (type == "get" && payload?.Is("query", Ns.DiscoInfo) == true)
        {
            var query = new Element("query", Ns.DiscoInfo);
            if (payload.GetAttribute("node") is { } node) query.SetAttribute("node", node);
            query.AddChild("identity").SetAttribute("category", "client").SetAttribute("type", "pc").SetAttribute("name", "Candor");
            foreach (var feature in new[] { Ns.DiscoInfo, Ns.Ping, ClientNs.Receipts, ClientNs.ChatStates })
                query.AddChild("feature").SetAttribute("var", feature);
            reply = Stanza.ResultFor(iq, query);
        }
        else
        {
            reply = Stanza.ErrorFor(iq, StanzaError.ServiceUnavailable);
        }
        reply.SetAttribute("from", null);
        Reply(reply);
    }

    private void Reply(Element stanza) => _ = SendQuietlyAsync(stanza);

    private async Task SendQuietlyAsync(Element stanza)
    {
        try
        {
            await SendAsync(stanza, _lifetime.Token);
        }
        catch (Exception e) when (e is XmppException or OperationCanceledException)
        {
            // The connection is going away; its loss is reported by the read loop.
        }
    }

    private void HandleMessage(Element stanza)
    {
        var message = ChatMessage.Parse(stanza);
        if (stanza.GetChild("received", ClientNs.Receipts)?.GetAttribute("id") is { } receiptId)
        {
            Publish(new ReceiptReceived(message.From, receiptId));
            if (message.Body is null) return;
        }
        // XEP-0184 §5.4: no receipts for errors or for messages without an id.
        if (_options.AutoReceipts && message.ReceiptRequested && message.Body is not null && message.Type != "error"
            && message.Id is { } id && message.From is { } from)
        {
            var receipt = new Element("message", Ns.Client).SetAttribute("to", from.ToString()).SetAttribute("id", NewId());
            if (message.Type is "chat" or "normal") receipt.SetAttribute("type", message.Type);
            receipt.AddChild("received", ClientNs.Receipts).SetAttribute("id", id);
            Reply(receipt);
        }
        Publish(message);
    }

    private void HandlePresence(Element stanza)
    {
        if (!Jid.TryParse(stanza.GetAttribute("from"), out var from)) return;
        var type = stanza.Type();
        var status = stanza.GetChildText("status", Ns.Client);
        switch (type)
        {
            case null or "unavailable" or "error":
            {
                var available = type is null;
                _ = int.TryParse(stanza.GetChildText("priority", Ns.Client), out var priority);
                var update = new PresenceUpdate(from, available, stanza.GetChildText("show", Ns.Client), status, priority,
                    StanzaErrorInfo.From(stanza), stanza);
                lock (_lock)
                {
                    var resource = from.Resource ?? "";
                    if (available)
                    {
                        if (!_presence.TryGetValue(from.Bare, out var resources)) _presence[from.Bare] = resources = [];
                        resources[resource] = update;
                    }
                    else if (_presence.TryGetValue(from.Bare, out var resources))
                    {
                        if (from.IsBare) resources.Clear();
                        else resources.Remove(resource);
                        if (resources.Count == 0) _presence.Remove(from.Bare);
                    }
                }
                Publish(update);
                break;
            }
            case "subscribe":
                Publish(new SubscriptionEvent(from.Bare, SubscriptionKind.Subscribe, status, stanza));
                break;
            case "subscribed":
                Publish(new SubscriptionEvent(from.Bare, SubscriptionKind.Subscribed, status, stanza));
                break;
            case "unsubscribe":
                Publish(new SubscriptionEvent(from.Bare, SubscriptionKind.Unsubscribe, status, stanza));
                break;
            case "unsubscribed":
                Publish(new SubscriptionEvent(from.Bare, SubscriptionKind.Unsubscribed, status, stanza));
                break;
            default:
                Publish(new OtherStanza(stanza));
                break;
        }
    }
}
