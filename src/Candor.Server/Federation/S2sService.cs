using System.Collections.Concurrent;
using System.Net.Security;
using System.Security.Cryptography;
using System.Text;
using Candor.Server.Connections;
using Candor.Server.Core;
using Candor.Xml;
using Candor.Xmpp;
using Microsoft.Extensions.Logging;

namespace Candor.Server.Federation;

/// <summary>
/// Federation (RFC 6120 server-to-server): the router hands stanzas for other domains to <see cref="SendAsync"/>,
/// which queues them while a stream to that domain is set up (for at most S2sConnectTimeoutSeconds) and then
/// sends them, or answers each with remote-server-not-found / remote-server-timeout. Dialback keys (XEP-0185)
/// come from a secret made at start.
/// </summary>
public sealed partial class S2sService(XmppServer server, TlsSettings tls, S2sTrust trust)
{
    private readonly byte[] _dialbackKey = Encoding.UTF8.GetBytes(Convert.ToHexStringLower(SHA256.HashData(RandomNumberGenerator.GetBytes(32))));
    private readonly ConcurrentDictionary<(string Local, string Remote), Route> _routes = new();
    private readonly ILogger _logger = server.LoggerFactory.CreateLogger<S2sService>();

    internal XmppServer Server { get; } = server;
    /// <summary>Our certificate (shown to peers, also as a TLS client) and the server-side TLS options.</summary>
    internal TlsSettings Tls { get; } = tls;
    internal S2sTrust Trust { get; } = trust;
    /// <summary>DNS servers for SRV lookups; null means the system's (tests point it at a resolver of their own).</summary>
    internal IReadOnlyList<System.Net.IPEndPoint>? DnsServers { get; set; }

    /// <summary>
    /// TLS as the receiving server: the peer is asked for its certificate (SASL EXTERNAL, XEP-0178) but may send
    /// none or one we do not trust: it is judged after the handshake, against the domain it claims.
    /// </summary>
    internal SslServerAuthenticationOptions ServerTlsOptions(bool directTls) => new()
    {
        ServerCertificateContext = Tls.StartTlsOptions.ServerCertificateContext,
        EnabledSslProtocols = Tls.StartTlsOptions.EnabledSslProtocols,
        ClientCertificateRequired = true,
        RemoteCertificateValidationCallback = (_, _, _, _) => true,
        // XEP-0368: direct TLS for s2s is identified by the ALPN protocol "xmpp-server".
        ApplicationProtocols = directTls ? [new SslApplicationProtocol("xmpp-server")] : null,
    };

    private sealed class Route
    {
        /// <summary>Our outgoing stream, or with XEP-0288 the peer's incoming one.</summary>
        public S2sStream? Stream;
        public List<StanzaEvent> Pending = [];
        public bool Connecting;
        public bool Dead;
        /// <summary>The XEP-0198 link of a stream that broke with stanzas unacknowledged: resumed on the new one.</summary>
        public S2sStreamManagement? Resume;
    }

    /// <summary>Links (XEP-0198) peers enabled on incoming streams, resumable by id.</summary>
    private readonly ConcurrentDictionary<string, S2sStreamManagement> _resumable = new(StringComparer.Ordinal);

    /// <summary>Every stream running, both directions (for shutdown).</summary>
    private readonly ConcurrentDictionary<S2sStream, byte> _streams = new();

    /// <summary>The server is shutting down: no stream is opened or resumed any more, new stanzas are answered with an error.</summary>
    private volatile bool _stopping;

    internal void Started(S2sStream stream) => _streams.TryAdd(stream, 0);

    internal void Ended(S2sStream stream) => _streams.TryRemove(stream, out _);

    /// <summary>A domain of this server: its own, or a component's (MUC).</summary>
    internal bool Serves(string domain) => domain == Server.Domain.Domain || Server.Components.ContainsKey(domain);

    internal static string NewStreamId() => Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(12));

    /// <summary>XEP-0185: HMAC-SHA256 over "receiving originating stream-id", keyed with the hex SHA-256 of the secret.</summary>
    internal string Key(string receiving, string originating, string streamId) =>
        Convert.ToHexStringLower(HMACSHA256.HashData(_dialbackKey, Encoding.UTF8.GetBytes($"{receiving} {originating} {streamId}")));

    internal bool IsOurKey(string receiving, string originating, string streamId, string key) =>
        CryptographicOperations.FixedTimeEquals(Encoding.UTF8.GetBytes(Key(receiving, originating, streamId)), Encoding.UTF8.GetBytes(key.Trim()));

    /// <summary>Sends a stanza to a remote domain, or queues it while the stream is being set up.</summary>
    public async ValueTask SendAsync(StanzaEvent ev)
    {
        if (_stopping)
        {
            await ev.ReplyErrorAsync(StanzaError.RemoteServerTimeout, ShuttingDown);
            return;
        }
        var local = Serves(ev.From.Domain) ? ev.From.Domain : Server.Domain.Domain;
        var key = (local, ev.To.Domain);
        while (true)
        {
            var route = _routes.GetOrAdd(key, _ => new Route());
            var start = false;
            S2sStream? broken = null;
            lock (route)
            {
                if (route.Dead) continue;
                if (route.Stream is { } stream)
                {
                    if (stream.SendStanza(ev.Stanza)) return;
                    broken = stream;
                }
                else if (route.Pending.Count < Server.Options.MaxOutboundQueue)
                {
                    route.Pending.Add(ev);
                    start = !route.Connecting;
                    route.Connecting = true;
                    if (!start) return;
                }
            }
            if (broken is not null)
            {
                Forget(broken);
                continue;
            }
            if (start)
            {
                _ = ConnectAsync(key, route);
                return;
            }
            await ev.ReplyErrorAsync(StanzaError.ResourceConstraint, $"too many stanzas are waiting for {ev.To.Domain}");
            return;
        }
    }

    private async Task ConnectAsync((string Local, string Remote) key, Route route)
    {
        using var deadline = new CancellationTokenSource(TimeSpan.FromSeconds(Server.Options.S2sConnectTimeoutSeconds));
        S2sOutgoing? stream = null;
        StanzaError error;
        string reason;
        string? condition;
        while (true)
        {
            try
            {
                stream = await S2sOutgoing.ConnectAsync(this, key.Local, key.Remote, deadline.Token);
                var again = await stream.AuthenticateAsync(route.Resume, deadline.Token);
                List<StanzaEvent> pending;
                lock (route)
                {
                    route.Stream = stream;
                    route.Resume = null;
                    pending = route.Pending;
                    route.Pending = [];
                }
                Log.Connected(_logger, key.Local, key.Remote);
                List<Element>? unsentAgain = null;
                List<StanzaEvent>? unsent = null;
                foreach (var stanza in again)
                    if (!stream.SendServerStanza(stanza)) (unsentAgain ??= []).Add(stanza);
                foreach (var ev in pending)
                    if (!stream.SendStanza(ev.Stanza)) (unsent ??= []).Add(ev);
                // The stream may have ended before it became the route's: its end found no route to forget, and
                // nothing would ever send on it or reconnect. Forgotten now (resumed again when it has stanzas
                // unacknowledged), and what it did not take is routed again.
                if (stream.IsClosing) Forget(stream);
                if (unsentAgain is not null) await S2sStreamManagement.RerouteAsync(Server, unsentAgain);
                if (unsent is not null)
                    foreach (var ev in unsent) await SendAsync(ev);
                return;
            }
            catch (OperationCanceledException) when (deadline.IsCancellationRequested)
            {
                (error, reason, condition) = (StanzaError.RemoteServerTimeout, $"{key.Remote} could not be reached within {Server.Options.S2sConnectTimeoutSeconds} seconds", StreamErrors.ConnectionTimeout);
            }
            catch (Exception e) when (e is S2sUnreachableException or IOException or OperationCanceledException or StreamErrorException or XmlStreamException
                                           or System.Net.Sockets.SocketException or System.Security.Authentication.AuthenticationException)
            {
                (error, reason) = (StanzaError.RemoteServerNotFound, $"{key.Remote} could not be reached: {e.Message}");
                // A refused authentication ends the stream with not-authorized (RFC 6120 §4.9.3.12): it cannot carry stanzas.
                condition = e switch
                {
                    S2sUnreachableException { Refused: true } => StreamErrors.NotAuthorized,
                    StreamErrorException streamError => streamError.Condition,
                    _ => null,
                };
                // A link that was working and broke is tried again until the deadline, unless the peer refused us.
                if (route.Resume is not null && e is not S2sUnreachableException { Refused: true } && !deadline.IsCancellationRequested && !_stopping)
                {
                    if (stream is not null) await stream.EndNowAsync(condition, e.Message);
                    stream = null;
                    try
                    {
                        await Task.Delay(250, deadline.Token);
                        continue;
                    }
                    catch (OperationCanceledException)
                    {
                        (error, reason, condition) = (StanzaError.RemoteServerTimeout, $"{key.Remote} could not be reached again within {Server.Options.S2sConnectTimeoutSeconds} seconds", StreamErrors.ConnectionTimeout);
                    }
                }
            }
            break;
        }
        if (stream is not null) await stream.EndNowAsync(condition, reason);
        Log.Unreachable(_logger, key.Remote, reason);
        List<StanzaEvent> failed;
        Element[] unacknowledged;
        lock (route)
        {
            route.Dead = true;
            failed = route.Pending;
            route.Pending = [];
            unacknowledged = route.Resume?.GiveUp() ?? [];
        }
        _routes.TryRemove(new KeyValuePair<(string, string), Route>(key, route));
        await S2sStreamManagement.BounceAsync(Server, unacknowledged, error, reason);
        foreach (var ev in failed) await ev.ReplyErrorAsync(error, reason);
    }

    /// <summary>
    /// A stream ended: the next stanza for its domain opens a new one. An outgoing one that leaves stanzas
    /// unacknowledged (XEP-0198) is reconnected at once, to resume the link and send them again.
    /// </summary>
    internal void Forget(S2sStream stream)
    {
        foreach (var (key, route) in _routes)
        {
            if (route.Stream != stream) continue;
            lock (route) route.Dead = true;
            // While shutting down, StopAsync gives the link up and tells the senders.
            if (stream is S2sOutgoing { Sm: { Unacknowledged: > 0 } sm } && !_stopping)
            {
                // Replaced in one step: a stanza sent meanwhile must find the route that resumes the link. With a
                // moment without a route it opened a new link, and the unacknowledged stanzas, given up, went again as
                // new ones: twice to the peer where it had handled them but not yet acknowledged them.
                var again = new Route { Connecting = true, Resume = sm };
                if (_routes.TryUpdate(key, again, route)) _ = ConnectAsync(key, again);
                continue;
            }
            _routes.TryRemove(new KeyValuePair<(string, string), Route>(key, route));
        }
    }

    private const string ShuttingDown = "This server is shutting down; the stanza may not have reached the other server.";

    /// <summary>
    /// Shutdown: every peer is asked to acknowledge what it was sent (XEP-0198 &lt;r/&gt;) and given up to
    /// <paramref name="grace"/> to answer, then every stream ends with system-shutdown (RFC 6120 §4.9.3.22). What
    /// stays unacknowledged, or waits for a stream, may not have arrived: it goes back to its senders as
    /// remote-server-timeout while they are still connected. Nothing reconnects.
    /// </summary>
    public async Task StopAsync(TimeSpan grace)
    {
        _stopping = true;
        var streams = _streams.Keys.ToArray();
        foreach (var stream in streams) stream.Sm?.RequestAck(stream);
        var waited = System.Diagnostics.Stopwatch.StartNew();
        while (waited.Elapsed < grace && streams.Any(s => !s.IsClosing && s.Sm is { Unacknowledged: > 0 })) await Task.Delay(50);

        var links = streams.Select(s => s.Sm).Concat(_resumable.Values).Concat(_routes.Values.Select(r => r.Resume)).OfType<S2sStreamManagement>().Distinct().ToArray();
        foreach (var stream in streams) stream.Close(StreamErrors.SystemShutdown, "the server is shutting down");
        var waiting = new List<StanzaEvent>();
        foreach (var route in _routes.Values)
        {
            lock (route)
            {
                route.Dead = true;
                waiting.AddRange(route.Pending);
                route.Pending = [];
            }
        }
        _routes.Clear();
        _resumable.Clear();
        await S2sStreamManagement.BounceAsync(Server, links.SelectMany(link => link.GiveUp()), StanzaError.RemoteServerTimeout, ShuttingDown);
        foreach (var ev in waiting) await ev.ReplyErrorAsync(StanzaError.RemoteServerTimeout, ShuttingDown);
    }

    /// <summary>XEP-0288: a peer's incoming stream proved (ours, its) domain pair and carries our stanzas for it.</summary>
    internal void Adopt(string local, string remote, S2sIncoming stream) => _routes.TryAdd((local, remote), new Route { Stream = stream });

    internal void Keep(S2sStreamManagement sm) => _resumable[sm.Id!] = sm;

    internal S2sStreamManagement? FindResumable(string id) => _resumable.GetValueOrDefault(id);

    /// <summary>
    /// A resumable link lost its incoming stream: kept SmResumeTimeoutSeconds for the peer to resume, then given up
    /// (what we sent on it unacknowledged, with XEP-0288, routed again as if never sent).
    /// </summary>
    internal void Park(S2sStreamManagement sm)
    {
        if (sm.Id is null)
        {
            _ = S2sStreamManagement.RerouteAsync(Server, sm.GiveUp());
            return;
        }
        var detachments = sm.Detachments;
        _ = ExpireAsync();

        async Task ExpireAsync()
        {
            await Task.Delay(TimeSpan.FromSeconds(Server.Options.SmResumeTimeoutSeconds));
            if (sm.IsAttached || sm.Detachments != detachments || !_resumable.TryRemove(new KeyValuePair<string, S2sStreamManagement>(sm.Id, sm))) return;
            await S2sStreamManagement.RerouteAsync(Server, sm.GiveUp());
        }
    }

    /// <summary>
    /// XEP-0220 §2.3: asks the authoritative server of <paramref name="originating"/>, over a connection of its own,
    /// whether <paramref name="key"/> is valid; null when it cannot be reached.
    /// </summary>
    internal async Task<bool?> VerifyAsync(string receiving, string originating, string streamId, string key, CancellationToken cancellation)
    {
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellation);
        deadline.CancelAfter(TimeSpan.FromSeconds(Server.Options.S2sConnectTimeoutSeconds));
        try
        {
            var stream = await S2sOutgoing.ConnectAsync(this, receiving, originating, deadline.Token);
            return await stream.VerifyAsync(streamId, key, deadline.Token);
        }
        catch (Exception e) when (e is S2sUnreachableException or OperationCanceledException or IOException or StreamErrorException
                                       or XmlStreamException or System.Net.Sockets.SocketException)
        {
            Log.Unreachable(_logger, originating, e.Message);
            return null;
        }
    }

    /// <summary>
    /// Where a domain's server listens: S2sRoutes first, then DNS SRV _xmpps-server._tcp (direct TLS, XEP-0368) and
    /// _xmpp-server._tcp (RFC 6120 §3.2.1), direct TLS first at equal priority, then the domain itself (A/AAAA) on 5269.
    /// </summary>
    internal async Task<IReadOnlyList<(string Host, int Port, bool DirectTls)>> ResolveAsync(string domain, CancellationToken cancellation)
    {
        if (Server.Options.ParseS2sRoutes().TryGetValue(domain, out var route)) return [route];
        var direct = SrvResolver.QueryAsync("_xmpps-server._tcp." + domain, DnsServers, TimeSpan.FromSeconds(5), cancellation);
        var starttls = SrvResolver.QueryAsync("_xmpp-server._tcp." + domain, DnsServers, TimeSpan.FromSeconds(5), cancellation);
        var (directRecords, starttlsRecords) = (await direct, await starttls);
        var found = Usable(directRecords, true).Concat(Usable(starttlsRecords, false)).OrderBy(r => r.Priority).ToList();
        if (found.Count > 0) return [.. found.Select(r => (r.Target.TrimEnd('.'), r.Port, r.DirectTls))];
        return Refused(directRecords) || Refused(starttlsRecords) ? [] : [(domain, 5269, false)];

        // A single "." target says the service is decidedly not available (RFC 2782).
        static bool Refused(IReadOnlyList<SrvRecord> records) => records is [{ Target: "." or "" }];
        static IEnumerable<(string Target, int Port, int Priority, bool DirectTls)> Usable(IReadOnlyList<SrvRecord> records, bool directTls) =>
            Refused(records) ? [] : records.Select(r => (r.Target, r.Port, r.Priority, directTls));
    }

    private static partial class Log
    {
        [LoggerMessage(Level = LogLevel.Information, Message = "s2s: {Local} connected to {Remote}")]
        public static partial void Connected(ILogger logger, string local, string remote);

        [LoggerMessage(Level = LogLevel.Information, Message = "s2s: {Remote} unreachable: {Reason}")]
        public static partial void Unreachable(ILogger logger, string remote, string reason);
    }
}
