using System.Formats.Asn1;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Candor.Server.Hosting;

namespace Candor.Server.Federation;

/// <summary>
/// Whether a peer's certificate authenticates a domain (RFC 6120 §13.7.2, RFC 6125): it chains to a trusted root
/// (the system's, or one of S2sTrustedCaFile's) and names the domain as a DNS-ID (wildcards in the leftmost label
/// only), an XmppAddr (id-on-xmppAddr), or, only when it has no subjectAltName, as its CN.
/// </summary>
public sealed class S2sTrust
{
    private const string SubjectAltName = "2.5.29.17";
    private const string XmppAddr = "1.3.6.1.5.5.7.8.5";
    private readonly X509Certificate2Collection? _roots;

    private S2sTrust(X509Certificate2Collection? roots) => _roots = roots;

    public static S2sTrust Load(ServerOptions options)
    {
        if (options.S2sTrustedCaFile is null) return new S2sTrust(null);
        var roots = new X509Certificate2Collection();
        try
        {
            roots.ImportFromPemFile(options.S2sTrustedCaFile);
        }
        catch (Exception e) when (e is CryptographicException or IOException or UnauthorizedAccessException)
        {
            throw new OptionsException($"S2sTrustedCaFile {options.S2sTrustedCaFile}: {e.Message}");
        }
        if (roots.Count == 0) throw new OptionsException($"S2sTrustedCaFile {options.S2sTrustedCaFile} holds no certificate");
        return new S2sTrust(roots);
    }

    /// <summary>
    /// True when <paramref name="certificate"/> (with the intermediates the peer sent, <paramref name="sent"/>)
    /// is trusted and names <paramref name="domain"/>.
    /// </summary>
    internal bool Authenticates(X509Certificate2 certificate, X509Certificate2Collection? sent, string domain) =>
        Names(certificate, domain) && (Chains(certificate, sent, null) || (_roots is not null && Chains(certificate, sent, _roots)));

    private static bool Chains(X509Certificate2 certificate, X509Certificate2Collection? sent, X509Certificate2Collection? roots)
    {
        using var chain = new X509Chain();
        chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
        if (sent is not null) chain.ChainPolicy.ExtraStore.AddRange(sent);
        if (roots is not null)
        {
            chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
            chain.ChainPolicy.CustomTrustStore.AddRange(roots);
        }
        return chain.Build(certificate);
    }

    private static bool Names(X509Certificate2 certificate, string domain)
    {
        if (certificate.MatchesHostname(domain, allowWildcards: true, allowCommonName: true)) return true;
        var extension = certificate.Extensions[SubjectAltName];
        if (extension is null) return false;
        try
        {
            var names = new AsnReader(extension.RawData, AsnEncodingRules.DER).ReadSequence();
            while (names.HasData)
            {
                var tag = names.PeekTag();
                if (tag != new Asn1Tag(TagClass.ContextSpecific, 0, isConstructed: true))
                {
                    names.ReadEncodedValue();
                    continue;
                }
                var other = names.ReadSequence(tag);
                if (other.ReadObjectIdentifier() != XmppAddr) continue;
                var value = other.ReadSequence(new Asn1Tag(TagClass.ContextSpecific, 0, isConstructed: true));
                if (string.Equals(value.ReadCharacterString(UniversalTagNumber.UTF8String), domain, StringComparison.OrdinalIgnoreCase))
                    return true;
            }
        }
        catch (AsnContentException)
        {
        }
        return false;
    }
}
