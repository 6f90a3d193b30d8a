using Candor.Xmpp;

namespace Candor.Client;

/// <summary>How the client reaches the server.</summary>
public enum TlsMode
{
    /// <summary>Plain TCP, then STARTTLS (RFC 6120 §5), which must be offered.</summary>
    StartTls,
    /// <summary>TLS from the first byte (XEP-0368), ALPN "xmpp-client".</summary>
    DirectTls,
}

/// <summary>Opt-in automatic reconnection with exponential backoff and jitter.</summary>
public sealed record ReconnectPolicy
{
    public bool Enabled { get; init; }
    public TimeSpan InitialDelay { get; init; } = TimeSpan.FromSeconds(1);
    public TimeSpan MaxDelay { get; init; } = TimeSpan.FromMinutes(1);
    /// <summary>Attempts after one loss before giving up; 0 means no limit.</summary>
    public int MaxAttempts { get; init; }

    /// <summary>The delay before attempt <paramref name="attempt"/> (1-based): doubling, capped, ±20% jitter.</summary>
    public TimeSpan DelayFor(int attempt)
    {
        var ms = InitialDelay.TotalMilliseconds * Math.Pow(2, Math.Min(attempt - 1, 30));
        ms = Math.Min(ms, MaxDelay.TotalMilliseconds);
        return TimeSpan.FromMilliseconds(ms * (0.8 + Random.Shared.NextDouble() * 0.4));
    }
}

public sealed record XmppClientOptions
{
    /// <summary>The account: a bare JID, or a full JID to ask for that resource.</summary>
    public required Jid Jid { get; init; }
    public required string Password { get; init; }

    /// <summary>
    /// Explicit host and port. When null the domain is looked up with DNS SRV (<c>_xmpps-client._tcp</c> and
    /// <c>_xmpp-client._tcp</c>, RFC 6120 §3.2, XEP-0368), falling back to the domain on port 5222 with STARTTLS.
    /// </summary>
    public string? Host { get; init; }
    public int Port { get; init; } = 5222;
    /// <summary>Applies to an explicit <see cref="Host"/>; SRV records say themselves which mode they use.</summary>
    public TlsMode TlsMode { get; init; } = TlsMode.StartTls;

    /// <summary>Pin the server certificate: its SHA-256 fingerprint in hex (colons and case ignored). Replaces chain validation.</summary>
    public string? CertificateFingerprint { get; init; }
    /// <summary>Accept any certificate (self-signed development servers). <see cref="XmppClient.Warning"/> fires on every connection.</summary>
    public bool Insecure { get; init; }

    /// <summary>SASL mechanisms the client may use, most preferred first. PLAIN is only ever used over TLS.</summary>
    public IReadOnlyList<string> Mechanisms { get; init; } =
        ["SCRAM-SHA-256-PLUS", "SCRAM-SHA-1-PLUS", "SCRAM-SHA-256", "SCRAM-SHA-1", "PLAIN"];

    /// <summary>
    /// Authenticate with SASL2 (XEP-0388) when the server offers it: no stream restart, and the server learns the
    /// user agent below. RFC 6120 SASL otherwise (and always when false).
    /// </summary>
    public bool UseSasl2 { get; init; } = true;
    /// <summary>
    /// A stable id of this installation for SASL2's &lt;user-agent/&gt; (normally a UUID, kept across runs): a server
    /// such as Candor recognises the client by it, so logging in again is not announced as a new client. Null sends
    /// none, and the server falls back to what it can observe (resource and address).
    /// </summary>
    public string? UserAgentId { get; init; }
    /// <summary>The software name sent in SASL2's &lt;user-agent/&gt; (shown in login notices); null sends none.</summary>
    public string? UserAgentSoftware { get; init; } = "Candor.Client";
    /// <summary>The device name sent in SASL2's &lt;user-agent/&gt; (shown in login notices), e.g. "work laptop"; null sends none.</summary>
    public string? UserAgentDevice { get; init; }

    /// <summary>From the first TCP connect to a bound resource.</summary>
    public TimeSpan ConnectTimeout { get; init; } = TimeSpan.FromSeconds(30);
    /// <summary>Default timeout of IQ requests.</summary>
    public TimeSpan RequestTimeout { get; init; } = TimeSpan.FromSeconds(30);
    /// <summary>How long <see cref="XmppClient.DisconnectAsync"/> waits for the server to close its side.</summary>
    public TimeSpan CloseTimeout { get; init; } = TimeSpan.FromSeconds(3);

    /// <summary>Answer XEP-0184 receipt requests on messages with a body automatically.</summary>
    public bool AutoReceipts { get; init; } = true;
    public ReconnectPolicy Reconnect { get; init; } = new();

    /// <summary>DNS servers for SRV lookups; null reads /etc/resolv.conf.</summary>
    public IReadOnlyList<System.Net.IPEndPoint>? DnsServers { get; init; }
}
