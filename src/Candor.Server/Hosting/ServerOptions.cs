using System.Net;
using Microsoft.Extensions.Configuration;

namespace Candor.Server.Hosting;

/// <summary>
/// Everything <c>candor serve</c> can be told. Bound from the configuration file (section "Candor"), the
/// environment (<c>CANDOR__...</c>) and the command line, in that order of precedence, lowest first.
/// </summary>
public sealed class ServerOptions
{
    public string Domain { get; set; } = "localhost";
    public string DataDirectory { get; set; } = "candor-data";
    /// <summary>
    /// Npgsql connection string of a PostgreSQL database to store data in instead of SQLite in the data directory
    /// (which still holds the master key, certificates and status files).
    /// </summary>
    public string? Postgres { get; set; }
    /// <summary>
    /// Port of this node's Orleans silo: with it (and Postgres) the process joins the cluster of every node sharing the
    /// database and domain (docs/CLUSTER.md); -1, the default, runs a single node with no Orleans at all.
    /// </summary>
    public int ClusterPort { get; set; } = -1;
    /// <summary>The IP address other nodes reach this node's silo at; default: Bind when it is an address, else 127.0.0.1.</summary>
    public string? ClusterAdvertise { get; set; }
    /// <summary>
    /// The secret every node of a cluster holds (at least 32 characters; give it as CANDOR__CLUSTERSECRET or in the
    /// configuration file, not on the command line): the nodes' mutual TLS key on the cluster port is derived from it.
    /// </summary>
    public string? ClusterSecret { get; set; }
    /// <summary>Address to listen on; "*" or empty means every interface (IPv4 and IPv6).</summary>
    public string Bind { get; set; } = "*";
    /// <summary>c2s with STARTTLS (RFC 6120). 0 picks a free port.</summary>
    public int C2sPort { get; set; } = 5222;
    /// <summary>c2s with direct TLS (XEP-0368). 0 picks a free port; -1 disables.</summary>
    public int TlsPort { get; set; } = 5223;
    /// <summary>HTTP listener. 0 picks a free port; -1 disables.</summary>
    public int HttpPort { get; set; } = 5280;
    /// <summary>Server-to-server port (RFC 6120, STARTTLS); -1 disables federation.</summary>
    public int S2sPort { get; set; } = 5269;
    /// <summary>Server-to-server with direct TLS (XEP-0368, ALPN xmpp-server). 0 picks a free port; -1 (default) disables.</summary>
    public int S2sTlsPort { get; set; } = -1;
    /// <summary>
    /// Where remote domains' servers listen, before DNS: "domain=host:port" pairs separated by commas;
    /// "domain=tls:host:port" for a direct TLS port.
    /// </summary>
    public string? S2sRoutes { get; set; }
    /// <summary>PEM file of CA certificates trusted for peers' certificates (SASL EXTERNAL, XEP-0178), besides the system's.</summary>
    public string? S2sTrustedCaFile { get; set; }
    /// <summary>
    /// Outgoing s2s streams require the peer's certificate to verify for its domain; default: true with an operator's
    /// certificate, false with the self-signed default (peers are then authenticated by dialback alone).
    /// </summary>
    public bool? S2sRequireValidCertificates { get; set; }
    /// <summary>How long stanzas for a remote domain wait for its stream before the sender gets an error.</summary>
    public int S2sConnectTimeoutSeconds { get; set; } = 20;
    /// <summary>An s2s stream with no traffic for this long is closed (it is reopened when needed).</summary>
    public int S2sIdleSeconds { get; set; } = 600;
    /// <summary>HTTPS listener (same certificate as c2s), for wss:// from remote browsers. 0 picks a free port; -1 disables.</summary>
    public int HttpsPort { get; set; } = 5281;
    /// <summary>The bundled web client (Converse.js) at <c>/</c> of the HTTP and HTTPS listeners.</summary>
    public bool WebClient { get; set; } = true;
    /// <summary>Folder holding index.html, converse/ and candor/; empty means <c>web/</c> beside the executable.</summary>
    public string? WebRoot { get; set; }
    public string? CertificateFile { get; set; }
    public string? KeyFile { get; set; }
    /// <summary>Seconds between checks of the certificate and key files for a renewal, which is then loaded; 0: only on SIGHUP.</summary>
    public int CertificateCheckSeconds { get; set; } = 60;
    /// <summary>c2s without TLS and SASL PLAIN on plain text. For loopback benchmarks only.</summary>
    public bool AllowPlaintext { get; set; }
    /// <summary>In-band account creation (XEP-0077).</summary>
    public bool AllowRegistration { get; set; }
    /// <summary>Accounts one non-loopback address may create per hour.</summary>
    public int RegistrationsPerHourPerAddress { get; set; } = 3;
    /// <summary>Accounts loopback addresses may create per hour (the benchmark harness registers its users this way).</summary>
    public int RegistrationsPerHourLoopback { get; set; } = 100_000;
    public int ScramIterations { get; set; } = 4096;
    /// <summary>
    /// Refuse SCRAM with the 'y' flag when -PLUS is offered (RFC 5802 §6 downgrade check). Off by default:
    /// slixmpp and others send 'y' whenever they hold tls-unique data, which they cannot bind with here
    /// (Candor offers tls-server-end-point, announced by XEP-0440), so enforcing it locks them out of SCRAM.
    /// </summary>
    public bool RejectChannelBindingDowngrade { get; set; }
    public int MaxStanzaBytes { get; set; } = 256 * 1024;
    /// <summary>Element nesting depth within a stanza (the stanza itself is depth 1).</summary>
    public int MaxXmlDepth { get; set; } = 64;
    /// <summary>Attributes (namespace declarations included) on one element.</summary>
    public int MaxXmlAttributes { get; set; } = 64;
    /// <summary>Bytes of one attribute value as written.</summary>
    public int MaxXmlAttributeBytes { get; set; } = 64 * 1024;
    /// <summary>Bytes of one element or attribute name, prefix included.</summary>
    public int MaxXmlNameBytes { get; set; } = 256;
    /// <summary>Bytes of the stream header (and of the XML declaration before it).</summary>
    public int MaxStreamHeaderBytes { get; set; } = 4096;
    /// <summary>Stanzas queued to one session before it is disconnected as not reading.</summary>
    public int MaxOutboundQueue { get; set; } = 10_000;
    /// <summary>Bytes (as received, or estimated for the server's own stanzas) queued to one session before it is disconnected as not reading.</summary>
    public int MaxOutboundQueueBytes { get; set; } = 32 * 1024 * 1024;
    /// <summary>Messages kept for one account while it is offline; beyond that senders get resource-constraint.</summary>
    public int MaxOfflineMessages { get; set; } = 1000;
    public int MaxRosterItems { get; set; } = 1000;
    public int MaxSessionsPerAccount { get; set; } = 20;
    /// <summary>PEP (XEP-0163) nodes one account may have.</summary>
    public int PepMaxNodes { get; set; } = 256;
    /// <summary>Items one PEP node may hold; a node configured with max_items=max holds this many.</summary>
    public int PepMaxItemsPerNode { get; set; } = 1000;
    /// <summary>Bytes of PEP item payloads one account may store, over all its nodes.</summary>
    public int PepMaxBytesPerAccount { get; set; } = 8 * 1024 * 1024;
    /// <summary>Which logins are announced to the account's other clients: "new-clients" or "every-session".</summary>
    public string LoginNotices { get; set; } = "new-clients";
    /// <summary>An in-band password change ends the account's other sessions.</summary>
    public bool EndOtherSessionsOnPasswordChange { get; set; } = true;
    /// <summary>Days a client's login record (with its last IP address) is kept after its last use.</summary>
    public int LoginHistoryDays { get; set; } = 90;
    /// <summary>
    /// Which correspondents an account's message archive (XEP-0313) keeps until the account sets its own preference:
    /// "always", "roster" (only contacts in the roster) or "never" (archiving off).
    /// </summary>
    public string ArchiveDefault { get; set; } = "always";
    /// <summary>Days a message stays in the archive; an hourly sweep deletes older ones.</summary>
    public int ArchiveRetentionDays { get; set; } = 365;
    /// <summary>
    /// Seconds the login notice waits for a client without a XEP-0388 user agent to answer the server's XEP-0092
    /// version query, which names the client in the notice; 0 asks nothing.
    /// </summary>
    public int ClientVersionTimeoutSeconds { get; set; } = 3;
    /// <summary>Streams not yet bound to a resource, from one address.</summary>
    public int MaxUnauthenticatedStreamsPerAddress { get; set; } = 20;
    /// <summary>The same for loopback addresses (load generators, a local proxy).</summary>
    public int MaxUnauthenticatedStreamsLoopback { get; set; } = 1000;
    /// <summary>Streams not yet bound to a resource, in total.</summary>
    public int MaxUnauthenticatedStreams { get; set; } = 5000;
    /// <summary>Sustained bytes per second one stream may send; beyond it the server reads more slowly.</summary>
    public int InboundBytesPerSecond { get; set; } = 512 * 1024;
    /// <summary>Bytes one stream may send in a burst above the sustained rate.</summary>
    public int InboundBurstBytes { get; set; } = 1024 * 1024;
    /// <summary>Megabytes allocated after which an idle server gives unused memory back to the system (<see cref="IdleMemoryTrim"/>); 0: never.</summary>
    public int TrimMemoryAfterMegabytes { get; set; } = 64;
    /// <summary>Serve /metrics (Prometheus text format) on the HTTP listener.</summary>
    public bool Metrics { get; set; } = true;
    /// <summary>Addresses and networks (CIDR), separated by commas, that may read /metrics besides loopback.</summary>
    public string? MetricsAllow { get; set; }
    /// <summary>The content policy (JSON; docs/CONFIGURATION.md, "Policy file"). None: no content rules.</summary>
    public string? PolicyFile { get; set; }
    /// <summary>Public URL of the policy document, when the server is behind a proxy; default http://DOMAIN:HTTP-PORT/.well-known/candor/policy.</summary>
    public string? PolicyUrl { get; set; }
    /// <summary>Domain of the HTTP File Upload service (XEP-0363); unset means upload.DOMAIN, empty turns it off.</summary>
    public string? UploadDomain { get; set; }
    /// <summary>Public base URL of uploads behind a proxy (its /upload/ path must reach this server); default https://DOMAIN:HTTPS-PORT.</summary>
    public string? UploadBaseUrl { get; set; }
    /// <summary>Largest file one upload may be, in bytes.</summary>
    public long UploadMaxBytes { get; set; } = 100L * 1024 * 1024;
    /// <summary>Bytes of uploads one account may keep at once; 0 means no limit beyond UploadMaxBytes per file.</summary>
    public long UploadQuotaBytes { get; set; } = 1024L * 1024 * 1024;
    /// <summary>Days an upload is kept; then the sweep deletes it.</summary>
    public int UploadRetentionDays { get; set; } = 30;
    /// <summary>STUN/TURN server offered to clients for calls (XEP-0215); unset offers none.</summary>
    public string? TurnHost { get; set; }
    public int TurnPort { get; set; } = 3478;
    /// <summary>TURN over TLS port ('turns'); 0 offers none.</summary>
    public int TurnTlsPort { get; set; }
    /// <summary>The TURN server's static-auth-secret, which signs the credentials handed out (TURN REST API).</summary>
    public string? TurnSecret { get; set; }
    /// <summary>Seconds the handed-out TURN credentials stay valid.</summary>
    public int TurnTtlSeconds { get; set; } = 86400;
    /// <summary>Domain of the multi-user chat service (XEP-0045); unset means conference.DOMAIN, empty turns it off.</summary>
    public string? MucDomain { get; set; }
    /// <summary>Rooms the chat service holds at once; creating one more is refused with resource-constraint.</summary>
    public int MucMaxRooms { get; set; } = 10_000;
    /// <summary>Whether a new room keeps an archive (XEP-0313 on the room JID) until its owner changes muc#roomconfig_enablearchiving.</summary>
    public bool MucArchiveByDefault { get; set; } = true;
    /// <summary>Days a room message stays in the room's archive; an hourly sweep deletes older ones.</summary>
    public int MucArchiveRetentionDays { get; set; } = 365;
    /// <summary>The longest a BOSH request (XEP-0124 'wait') is held open when there is nothing to send.</summary>
    public int BoshMaxWaitSeconds { get; set; } = 60;
    /// <summary>Seconds a BOSH session may go without any request before it counts as a lost connection (XEP-0124 'inactivity').</summary>
    public int BoshInactivitySeconds { get; set; } = 60;
    /// <summary>Seconds a session with stream management (XEP-0198) stays resumable after its connection vanished.</summary>
    public int SmResumeTimeoutSeconds { get; set; } = 300;
    /// <summary>Seconds a XEP-0484 FAST token stays valid after it was issued.</summary>
    public int FastTokenLifetimeSeconds { get; set; } = 14 * 24 * 3600;
    /// <summary>Stanzas kept for a stream-managed session until the client acknowledges them (or while it is away); beyond it senders get resource-constraint.</summary>
    public int SmMaxQueue { get; set; } = 1000;
    /// <summary>Seconds a connection may take from connecting to binding a resource.</summary>
    public int AuthenticationTimeoutSeconds { get; set; } = 60;
    /// <summary>Seconds a connection may take to send its stream header (after connecting, and again after TLS).</summary>
    public int StreamHeaderTimeoutSeconds { get; set; } = 10;
    /// <summary>Seconds from the stream header (on the direct TLS port, from connecting) to a completed TLS handshake.</summary>
    public int TlsTimeoutSeconds { get; set; } = 10;
    /// <summary>Seconds from the offer of SASL to a successful authentication.</summary>
    public int SaslTimeoutSeconds { get; set; } = 30;
    /// <summary>Idle seconds before TCP keepalive probes a connection, so that a vanished peer's session ends; 0 turns them off.</summary>
    public int TcpKeepAliveSeconds { get; set; } = 300;
    /// <summary>The file holding the master key that seals stored data (base64, 256 bits); default DATA/keys/master.key, made on first start.</summary>
    public string? MasterKeyFile { get; set; }
    /// <summary>The master key itself (base64, 256 bits), e.g. from CANDOR__MASTERKEY; takes the place of MasterKeyFile.</summary>
    public string? MasterKey { get; set; }
    /// <summary>Failed SASL attempts on one stream before it ends with policy-violation (RFC 6120 §6.4.5).</summary>
    public int MaxSaslFailuresPerStream { get; set; } = 5;
    /// <summary>Failed logins per address and per account, within the memory window, before each further attempt waits.</summary>
    public int AuthFailuresBeforeDelay { get; set; } = 2;
    /// <summary>Longest wait imposed on a login attempt after repeated failures (the wait doubles from 0.5 s).</summary>
    public int AuthMaxDelaySeconds { get; set; } = 8;
    /// <summary>Minutes without a failure after which an address's or account's failures are forgotten.</summary>
    public int AuthFailureMemoryMinutes { get; set; } = 15;

    /// <summary>
    /// Binds the "Candor" section of the configuration <paramref name="builder"/> builds. Every problem with the
    /// sources (unreadable or malformed JSON, a value of the wrong type) becomes an <see cref="OptionsException"/>.
    /// </summary>
    public bool S2sRequireValidCertificatesInEffect => S2sRequireValidCertificates ?? CertificateFile is not null;

    /// <summary>S2sRoutes as a map from domain to endpoint.</summary>
    public Dictionary<string, (string Host, int Port, bool DirectTls)> ParseS2sRoutes()
    {
        var routes = new Dictionary<string, (string, int, bool)>(StringComparer.Ordinal);
        foreach (var entry in (S2sRoutes ?? "").Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            var equals = entry.IndexOf('=');
            var colon = entry.LastIndexOf(':');
            if (equals <= 0 || colon < equals + 2 || !int.TryParse(entry[(colon + 1)..], out var port) || port is < 1 or > 65535)
                throw new OptionsException($"S2sRoutes: '{entry}' is not domain=host:port");
            var host = entry[(equals + 1)..colon];
            var directTls = host.StartsWith("tls:", StringComparison.Ordinal);
            if (directTls) host = host[4..];
            if (host.Length == 0) throw new OptionsException($"S2sRoutes: '{entry}' is not domain=host:port");
            routes[entry[..equals].ToLowerInvariant()] = (host.Trim('[', ']'), port, directTls);
        }
        return routes;
    }

    /// <summary>MetricsAllow as networks (a single address is a network of one).</summary>
    public IReadOnlyList<IPNetwork> ParseMetricsAllow()
    {
        var networks = new List<IPNetwork>();
        foreach (var entry in (MetricsAllow ?? "").Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            if (IPNetwork.TryParse(entry, out var network)) networks.Add(network);
            else if (IPAddress.TryParse(entry, out var address)) networks.Add(new IPNetwork(address, address.GetAddressBytes().Length * 8));
            else throw new OptionsException($"MetricsAllow: '{entry}' is not an IP address or network (CIDR)");
        }
        return networks;
    }

    public static ServerOptions FromConfiguration(IConfigurationBuilder builder)
    {
        var options = new ServerOptions();
        try
        {
            builder.Build().GetSection("Candor").Bind(options);
        }
        // A file source wraps JSON errors in InvalidDataException; a stream source lets JsonException through.
        catch (Exception e) when (e is InvalidOperationException or FormatException or InvalidDataException or System.Text.Json.JsonException)
        {
            throw new OptionsException($"configuration: {e.InnerException?.Message ?? e.Message}");
        }
        return options;
    }

    public void Validate()
    {
        if (string.IsNullOrWhiteSpace(Domain)) throw new OptionsException("domain must not be empty");
        if (!Xmpp.Jid.TryParse(Domain, out var jid) || !jid.IsBare || jid.Local is not null)
            throw new OptionsException($"'{Domain}' is not a valid domain");
        Domain = jid.Domain;
        MucDomain ??= "conference." + Domain;
        if (MucDomain.Length > 0)
        {
            if (!Xmpp.Jid.TryParse(MucDomain, out var muc) || !muc.IsBare || muc.Local is not null || muc.Domain == Domain)
                throw new OptionsException($"MucDomain '{MucDomain}' is not a valid domain other than the server's");
            MucDomain = muc.Domain;
        }
        if (MucMaxRooms < 1) throw new OptionsException("MucMaxRooms must be at least 1");
        if (MucArchiveRetentionDays < 1) throw new OptionsException("MucArchiveRetentionDays must be at least 1");
        foreach (var (name, port) in new[] { ("c2s-port", C2sPort), ("tls-port", TlsPort), ("http-port", HttpPort), ("https-port", HttpsPort), ("s2s-port", S2sPort), ("s2s-tls-port", S2sTlsPort) })
            if (port < -1 || port > 65535) throw new OptionsException($"{name} must be between 0 and 65535 (or -1 to disable)");
        if (C2sPort == -1) throw new OptionsException("c2s-port cannot be disabled");
        if (Bind is not ("*" or "" or "localhost") && !IPAddress.TryParse(Bind, out _))
            throw new OptionsException($"--bind: '{Bind}' is not an IP address, localhost or *");
        if (File.Exists(DataDirectory)) throw new OptionsException($"data directory {DataDirectory} is a file, not a directory");
        if (Postgres is not null)
        {
            try
            {
                _ = new Npgsql.NpgsqlConnectionStringBuilder(Postgres);
            }
            catch (ArgumentException e)
            {
                throw new OptionsException($"--postgres: not a valid connection string ({e.Message})");
            }
        }
        if (ClusterPort is < -1 or 0 or > 65535) throw new OptionsException("cluster-port must be between 1 and 65535 (or -1 for a single node)");
        if (ClusterPort > 0 && Postgres is null) throw new OptionsException("--cluster-port needs --postgres: the nodes share its database and membership table");
        if (ClusterPort > 0 && (ClusterSecret?.Length ?? 0) < 32)
            throw new OptionsException("--cluster-port needs ClusterSecret (CANDOR__CLUSTERSECRET), at least 32 characters and the same on every node: the nodes authenticate each other with it (docs/CLUSTER.md)");
        if (ClusterAdvertise is not null && !IPAddress.TryParse(ClusterAdvertise, out _))
            throw new OptionsException($"--cluster-advertise: '{ClusterAdvertise}' is not an IP address");
        if ((CertificateFile is null) != (KeyFile is null)) throw new OptionsException("--cert and --key go together");
        if (ScramIterations < 4096) throw new OptionsException("scram iterations must be at least 4096");
        if (MaxStanzaBytes < 10_000) throw new OptionsException("max stanza size must be at least 10000 bytes");
        if (LoginNotices is not ("new-clients" or "every-session"))
            throw new OptionsException("LoginNotices must be new-clients or every-session");
        UploadDomain ??= "upload." + Domain;
        if (UploadDomain.Length > 0)
        {
            if (!Xmpp.Jid.TryParse(UploadDomain, out var upload) || !upload.IsBare || upload.Local is not null || upload.Domain == Domain)
                throw new OptionsException($"UploadDomain '{UploadDomain}' is not a valid domain other than the server's");
            UploadDomain = upload.Domain;
        }
        if (UploadMaxBytes < 1 || UploadQuotaBytes < 0 || UploadRetentionDays < 1)
            throw new OptionsException("UploadMaxBytes and UploadRetentionDays must be at least 1 and UploadQuotaBytes cannot be negative");
        if (UploadBaseUrl is not null && !(Uri.TryCreate(UploadBaseUrl, UriKind.Absolute, out var baseUrl) && baseUrl.Scheme is "http" or "https"))
            throw new OptionsException($"UploadBaseUrl '{UploadBaseUrl}' is not an http or https URL");
        if (!string.IsNullOrEmpty(TurnHost) && (string.IsNullOrEmpty(TurnSecret) || TurnPort is < 1 or > 65535 || TurnTlsPort is < 0 or > 65535 || TurnTtlSeconds < 60))
            throw new OptionsException("TurnHost needs TurnSecret, TurnPort and TurnTlsPort (0 for none) up to 65535, and TurnTtlSeconds of at least 60");
        if (ArchiveDefault is not ("always" or "roster" or "never"))
            throw new OptionsException("ArchiveDefault must be always, roster or never");
        if (ArchiveRetentionDays < 1) throw new OptionsException("ArchiveRetentionDays must be at least 1");
        if (LoginHistoryDays < 1) throw new OptionsException("LoginHistoryDays must be at least 1");
        if (ClientVersionTimeoutSeconds is < 0 or > 30) throw new OptionsException("ClientVersionTimeoutSeconds must be between 0 and 30");
        if (InboundBytesPerSecond < 1024 || InboundBurstBytes < MaxStanzaBytes)
            throw new OptionsException("InboundBytesPerSecond must be at least 1024 and InboundBurstBytes at least MaxStanzaBytes");
        if (MaxXmlDepth < 4 || MaxXmlAttributes < 8 || MaxXmlAttributeBytes < 1024 || MaxXmlNameBytes < 64)
            throw new OptionsException("XML limits too small: MaxXmlDepth at least 4, MaxXmlAttributes at least 8, MaxXmlAttributeBytes at least 1024, MaxXmlNameBytes at least 64");
        if (MaxStreamHeaderBytes < 512) throw new OptionsException("MaxStreamHeaderBytes must be at least 512");
        if (AuthenticationTimeoutSeconds < 1 || StreamHeaderTimeoutSeconds < 1 || TlsTimeoutSeconds < 1 || SaslTimeoutSeconds < 1)
            throw new OptionsException("AuthenticationTimeoutSeconds, StreamHeaderTimeoutSeconds, TlsTimeoutSeconds and SaslTimeoutSeconds must be at least 1");
        if (CertificateCheckSeconds < 0) throw new OptionsException("CertificateCheckSeconds cannot be negative");
        if (TcpKeepAliveSeconds < 0) throw new OptionsException("TcpKeepAliveSeconds cannot be negative");
        if (TrimMemoryAfterMegabytes < 0) throw new OptionsException("TrimMemoryAfterMegabytes cannot be negative");
        if (MaxSaslFailuresPerStream < 1) throw new OptionsException("MaxSaslFailuresPerStream must be at least 1");
        if (AuthFailuresBeforeDelay < 0 || AuthMaxDelaySeconds < 0 || AuthFailureMemoryMinutes < 1)
            throw new OptionsException("AuthFailuresBeforeDelay and AuthMaxDelaySeconds cannot be negative, AuthFailureMemoryMinutes must be at least 1");
        if (MaxUnauthenticatedStreamsPerAddress < 1 || MaxUnauthenticatedStreamsLoopback < 1 || MaxUnauthenticatedStreams < 1)
            throw new OptionsException("the unauthenticated stream limits must be at least 1");
        if (MaxOfflineMessages < 0 || MaxRosterItems < 1) throw new OptionsException("MaxOfflineMessages cannot be negative and MaxRosterItems must be at least 1");
        if (PepMaxNodes < 1 || PepMaxItemsPerNode < 1 || PepMaxBytesPerAccount < 1024)
            throw new OptionsException("PepMaxNodes and PepMaxItemsPerNode must be at least 1, PepMaxBytesPerAccount at least 1024");
        if (MaxSessionsPerAccount < 1) throw new OptionsException("MaxSessionsPerAccount must be at least 1");
        if (RegistrationsPerHourPerAddress < 0 || RegistrationsPerHourLoopback < 0) throw new OptionsException("registration rates cannot be negative");
        if (MasterKey is not null)
        {
            try
            {
                Storage.KeyFiles.ParseKey(MasterKey, "MasterKey");
            }
            catch (Storage.KeyException e)
            {
                throw new OptionsException(e.Message);
            }
        }
        ParseS2sRoutes();
        ParseMetricsAllow();
        if (S2sConnectTimeoutSeconds < 1 || S2sIdleSeconds < 10)
            throw new OptionsException("S2sConnectTimeoutSeconds must be at least 1 and S2sIdleSeconds at least 10");
        if (MaxOutboundQueue < 16) throw new OptionsException("max outbound queue must be at least 16");
        if (FastTokenLifetimeSeconds < 1) throw new OptionsException("the FAST token lifetime must be at least 1 second");
        if (BoshMaxWaitSeconds < 1 || BoshInactivitySeconds < 1) throw new OptionsException("BoshMaxWaitSeconds and BoshInactivitySeconds must be at least 1 second");
        if (SmResumeTimeoutSeconds < 1) throw new OptionsException("the stream management resume timeout must be at least 1 second");
        if (SmMaxQueue < 16) throw new OptionsException("the stream management queue must hold at least 16 stanzas");
        if (MaxOutboundQueueBytes < MaxStanzaBytes) throw new OptionsException("MaxOutboundQueueBytes must be at least MaxStanzaBytes");
    }
}

public sealed class OptionsException(string message) : Exception(message);
