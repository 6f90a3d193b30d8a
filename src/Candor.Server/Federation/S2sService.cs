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
        public S2sOutgoing? Stream;
        public List<StanzaEvent> Pending = [];
        public bool Dead;
    }

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
        var local = Serves(ev.From.Domain) ? ev.From.Domain : Server.Domain.Domain;
        var key = (local, ev.To.Domain);
        while (true)
        {
            var route = _routes.GetOrAdd(key, _ => new Route());
            var start = false;
            lock (route)
            {
                if (route.Dead) continue;
                if (route.Stream is { } stream)
                {
                    if (stream.SendStanza(ev.Stanza)) return;
                    route.Dead = true;
                    _routes.TryRemove(new KeyValuePair<(string, string), Route>(key, route));
                    continue;
                }
                if (route.Pending.Count < Server.Options.MaxOutboundQueue)
                {
                    route.Pending.Add(ev);
                    start = route.Pending.Count == 1;
                    if (!start) return;
                }
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
        try
        {
            stream = await S2sOutgoing.ConnectAsync(this, key.Local, key.Remote, deadline.Token);
            await stream.AuthenticateAsync(deadline.Token);
            List<StanzaEvent> pending;
            lock (route)
            {
                route.Stream = stream;
                pending = route.Pending;
                route.Pending = [];
            }
            Log.Connected(_logger, key.Local, key.Remote);
            foreach (var ev in pending) stream.SendStanza(ev.Stanza);
            return;
        }
        catch (OperationCanceledException)
        {
            (error, reason) = (StanzaError.RemoteServerTimeout, $"{key.Remote} could not be reached within {Server.Options.S2sConnectTimeoutSeconds} seconds");
        }
        catch (Exception e) when (e is S2sUnreachableException or IOException or StreamErrorException or XmlStreamException
                                       or System.Net.Sockets.SocketException or System.Security.Authentication.AuthenticationException)
        {
            (error, reason) = (StanzaError.RemoteServerNotFound, $"{key.Remote} could not be reached: {e.Message}");
        }
        stream?.Close(null);
        Log.Unreachable(_logger, key.Remote, reason);
        List<StanzaEvent> failed;
        lock (route)
        {
            route.Dead = true;
            failed = route.Pending;
            route.Pending = [];
        }
        _routes.TryRemove(new KeyValuePair<(string, string), Route>(key, route));
        foreach (var ev in failed) await ev.ReplyErrorAsync(error, reason);
    }

    /// <summary>An outgoing stream ended: the next stanza for its domain opens a new one.</summary>
    internal void Forget(string remote, S2sOutgoing stream)
    {
        foreach (var (key, route) in _routes)
        {
            if (key.Remote != remote || route.Stream != stream) continue;
            lock (route) route.Dead = true;
            _routes.TryRemove(new KeyValuePair<(string, string), Route>(key, route));
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
