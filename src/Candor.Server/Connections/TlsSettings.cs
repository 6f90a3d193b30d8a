using System.Net.Security;
using System.Security.Authentication;
using System.Security.Cryptography.X509Certificates;
using Candor.Xmpp.Sasl;

namespace Candor.Server.Connections;

/// <summary>The server certificate and the TLS options built from it once.</summary>
public sealed class TlsSettings
{
    public TlsSettings(X509Certificate2? certificate)
    {
        Certificate = certificate;
        if (certificate is null) return;
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
    }

    public X509Certificate2? Certificate { get; }
    /// <summary>tls-server-end-point channel-binding data (RFC 5929) for SCRAM -PLUS.</summary>
    public byte[]? ChannelBinding { get; }
    public SslServerAuthenticationOptions StartTlsOptions { get; } = new();
    public SslServerAuthenticationOptions DirectOptions { get; } = new();
}
