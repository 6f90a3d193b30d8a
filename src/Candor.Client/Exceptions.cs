namespace Candor.Client;

/// <summary>The base of every error the client library raises on purpose.</summary>
public class XmppException(string message, Exception? inner = null) : Exception(message, inner);

/// <summary>Why a connection could not be made or was lost.</summary>
public enum ConnectionFailure
{
    /// <summary>The domain or host name did not resolve.</summary>
    Unresolvable,
    /// <summary>No endpoint accepted the TCP connection (refused, unreachable).</summary>
    Unreachable,
    /// <summary>Connecting or negotiating the stream took longer than <see cref="XmppClientOptions.ConnectTimeout"/>.</summary>
    Timeout,
    /// <summary>The server closed the connection (or it was reset) before the stream was closed properly.</summary>
    ClosedByServer,
}

public sealed class XmppConnectionException(ConnectionFailure reason, string message, Exception? inner = null)
    : XmppException(message, inner)
{
    public ConnectionFailure Reason { get; } = reason;
}

/// <summary>Why TLS could not be set up.</summary>
public enum TlsFailure
{
    /// <summary>The server does not offer STARTTLS; the client never continues without TLS.</summary>
    NotOffered,
    /// <summary>The server answered STARTTLS with &lt;failure/&gt;.</summary>
    Refused,
    /// <summary>The certificate did not validate against the system trust store (or the name did not match).</summary>
    CertificateInvalid,
    /// <summary>The certificate's SHA-256 fingerprint is not the pinned one.</summary>
    FingerprintMismatch,
    /// <summary>The TLS handshake failed for another reason (protocol versions, ciphers, not TLS at all).</summary>
    HandshakeFailed,
}

public sealed class XmppTlsException(TlsFailure reason, string message, Exception? inner = null) : XmppException(message, inner)
{
    public TlsFailure Reason { get; } = reason;
}

/// <summary>SASL failed: <see cref="Condition"/> is the RFC 6120 §6.5 failure element name
/// (e.g. <c>not-authorized</c>), or <c>no-mechanism</c> / <c>server-signature</c> for failures found by the client.</summary>
public sealed class XmppAuthenticationException(string condition, string message) : XmppException(message)
{
    public const string NoMechanism = "no-mechanism";
    public const string BadServerSignature = "server-signature";

    public string Condition { get; } = condition;
}

/// <summary>The server ended the stream with a stream error (RFC 6120 §4.9).</summary>
public sealed class XmppStreamErrorException(string condition, string? text)
    : XmppException(text is null ? $"stream error: {condition}" : $"stream error: {condition} ({text})")
{
    public string Condition { get; } = condition;
    public string? Text { get; } = text;
}

/// <summary>The server sent something that is not XMPP: malformed XML, or an unexpected element during negotiation.</summary>
public sealed class XmppProtocolException(string message, Exception? inner = null) : XmppException(message, inner);

/// <summary>An IQ request was answered with an error (RFC 6120 §8.3).</summary>
public sealed class XmppStanzaException(StanzaErrorInfo error, Xml.Element stanza)
    : XmppException(error.Text is null ? $"{error.Condition} ({error.Type})" : $"{error.Condition} ({error.Type}): {error.Text}")
{
    public StanzaErrorInfo Error { get; } = error;
    public Xml.Element Stanza { get; } = stanza;
}

/// <summary>An IQ request got no answer within its timeout.</summary>
public sealed class XmppTimeoutException(string message) : XmppException(message);
