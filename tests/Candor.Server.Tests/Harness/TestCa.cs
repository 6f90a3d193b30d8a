using System.Formats.Asn1;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace Candor.Server.Tests.Harness;

/// <summary>
/// A certificate authority made for one test: a root and, per domain, a server certificate it signs (DNS-ID and
/// XmppAddr for the domain, usable as TLS server and client, RFC 6120 §13.7.1.4), written as PEM files in a
/// temporary directory for servers that read files.
/// </summary>
public sealed class TestCa : IDisposable
{
    private readonly ECDsa _key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
    private readonly X509Certificate2 _root;

    public TestCa(string name = "Candor test CA")
    {
        var request = new CertificateRequest($"CN={name}", _key, HashAlgorithmName.SHA256);
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, false, 0, true));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.KeyCertSign | X509KeyUsageFlags.CrlSign, true));
        request.CertificateExtensions.Add(new X509SubjectKeyIdentifierExtension(request.PublicKey, false));
        _root = request.CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddDays(30));
        RootFile = Path.Combine(Directory, "ca.crt");
        File.WriteAllText(RootFile, _root.ExportCertificatePem());
    }

    public string Directory { get; } = System.IO.Directory.CreateTempSubdirectory("candor-ca-").FullName;
    /// <summary>The root certificate, PEM.</summary>
    public string RootFile { get; }

    /// <summary>
    /// A certificate for <paramref name="domain"/> with its private key; without <paramref name="dnsName"/> the
    /// domain is only its XmppAddr (and not its CN), without <paramref name="xmppAddr"/> only its DNS-ID.
    /// </summary>
    public X509Certificate2 Issue(string domain, bool dnsName = true, bool xmppAddr = true)
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest(dnsName ? $"CN={domain}" : "CN=XMPP server", key, HashAlgorithmName.SHA256);
        request.CertificateExtensions.Add(SubjectAltName(domain, dnsName, xmppAddr));
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(false, false, 0, true));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.DigitalSignature | X509KeyUsageFlags.KeyAgreement, true));
        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([new Oid("1.3.6.1.5.5.7.3.1"), new Oid("1.3.6.1.5.5.7.3.2")], false));
        request.CertificateExtensions.Add(X509AuthorityKeyIdentifierExtension.CreateFromCertificate(_root, true, false));
        var serial = RandomNumberGenerator.GetBytes(12);
        serial[0] &= 0x7f;
        using var issued = request.Create(_root, DateTimeOffset.UtcNow.AddHours(-1), DateTimeOffset.UtcNow.AddDays(20), serial);
        return issued.CopyWithPrivateKey(key);
    }

    /// <summary>Writes a certificate for <paramref name="domain"/> and its key as PEM files; returns their paths.</summary>
    public (string Certificate, string Key) IssueFiles(string domain, bool xmppAddr = true)
    {
        using var certificate = Issue(domain, xmppAddr: xmppAddr);
        var certificatePath = Path.Combine(Directory, domain + ".crt");
        var keyPath = Path.Combine(Directory, domain + ".key");
        File.WriteAllText(certificatePath, certificate.ExportCertificatePem());
        File.WriteAllText(keyPath, certificate.GetECDsaPrivateKey()!.ExportPkcs8PrivateKeyPem());
        return (certificatePath, keyPath);
    }

    /// <summary>subjectAltName with id-on-xmppAddr (1.3.6.1.5.5.7.8.5, UTF8String) and dNSName for the domain (either may be left out).</summary>
    private static X509Extension SubjectAltName(string domain, bool dnsName, bool xmppAddr)
    {
        var writer = new AsnWriter(AsnEncodingRules.DER);
        using (writer.PushSequence())
        {
            if (xmppAddr)
            {
                using (writer.PushSequence(new Asn1Tag(TagClass.ContextSpecific, 0, isConstructed: true)))
                {
                    writer.WriteObjectIdentifier("1.3.6.1.5.5.7.8.5");
                    using (writer.PushSequence(new Asn1Tag(TagClass.ContextSpecific, 0, isConstructed: true)))
                        writer.WriteCharacterString(UniversalTagNumber.UTF8String, domain);
                }
            }
            if (dnsName) writer.WriteCharacterString(UniversalTagNumber.IA5String, domain, new Asn1Tag(TagClass.ContextSpecific, 2));
        }
        return new X509Extension("2.5.29.17", writer.Encode(), false);
    }

    public void Dispose()
    {
        _root.Dispose();
        _key.Dispose();
        System.IO.Directory.Delete(Directory, recursive: true);
    }
}
