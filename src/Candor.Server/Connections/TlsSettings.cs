using System.Net.Security;
using System.Security.Authentication;
using System.Security.Cryptography.X509Certificates;

namespace Candor.Server.Connections;

/// <summary>
/// The server certificate and the TLS options built from it, replaceable while the server runs
/// (<see cref="Replace"/>: a renewed certificate). Each handshake takes the <see cref="Current"/> credentials;
/// streams already encrypted keep the certificate they negotiated with.
/// </summary>
public sealed class TlsSettings
{
    private static readonly SslServerAuthenticationOptions None = new();
    private volatile TlsCredentials? _current;

    public TlsSettings(X509Certificate2? certificate)
    {
        if (certificate is not null) _current = new TlsCredentials(certificate);
    }

    public TlsCredentials? Current => _current;
    public X509Certificate2? Certificate => _current?.Certificate;
    /// <summary>tls-server-end-point channel-binding data (RFC 5929) of the current certificate.</summary>
    public byte[]? ChannelBinding => _current?.ChannelBinding;
    public SslServerAuthenticationOptions StartTlsOptions => _current?.StartTlsOptions ?? None;
    public SslServerAuthenticationOptions DirectOptions => _current?.DirectOptions ?? None;

    /// <summary>New handshakes use <paramref name="certificate"/> from now on.</summary>
    public void Replace(X509Certificate2 certificate) => _current = new TlsCredentials(certificate);
}

/// <summary>One certificate and the options of every kind of handshake made with it, built once.</summary>
public sealed class TlsCredentials
{
    public TlsCredentials(X509Certificate2 certificate)
    {
        Certificate = certificate;
        ChannelBinding = Candor.Xmpp.Sasl.ChannelBinding.TlsServerEndPoint(certificate);
        var context = SslStreamCertificateContext.Create(certificate, additionalCertificates: null, offline: true);
        StartTlsOptions = new SslServerAuthenticationOptions
        {
            ServerCertificateContext = context,
            EnabledSslProtocols = SslProtocols.Tls12 | SslProtocols.Tls13,
            ClientCertificateRequired = false,
        };
        DirectOptions = new SslServerAuthenticationOptions
        {
            ServerCertificateContext = context,
            EnabledSslProtocols = SslProtocols.Tls12 | SslProtocols.Tls13,
            ClientCertificateRequired = false,
            // XEP-0368: direct TLS for c2s is identified by the ALPN protocol "xmpp-client".
            ApplicationProtocols = [new SslApplicationProtocol("xmpp-client")],
        };
        HttpsOptions = new SslServerAuthenticationOptions
        {
            ServerCertificateContext = context,
            EnabledSslProtocols = SslProtocols.Tls12 | SslProtocols.Tls13,
            ClientCertificateRequired = false,
            ApplicationProtocols = [SslApplicationProtocol.Http11],
        };
    }

    public X509Certificate2 Certificate { get; }
    /// <summary>tls-server-end-point channel-binding data (RFC 5929) for SCRAM -PLUS.</summary>
    public byte[] ChannelBinding { get; }
    public SslServerAuthenticationOptions StartTlsOptions { get; }
    public SslServerAuthenticationOptions DirectOptions { get; }
    /// <summary>The HTTPS listener (wss://, uploads).</summary>
    public SslServerAuthenticationOptions HttpsOptions { get; }
}
