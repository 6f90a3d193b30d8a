using System.Formats.Asn1;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace Candor.Xmpp.Sasl;

public static class ChannelBinding
{
    public const string TlsServerEndPointType = "tls-server-end-point";
    public const string TlsExporterType = "tls-exporter";

    /// <summary>
    /// RFC 5929 §4.1 tls-server-end-point: the certificate hashed with its signature's hash algorithm, SHA-256 when
    /// that is MD5 or SHA-1. Throws <see cref="NotSupportedException"/> for signatures without one (e.g. Ed25519).
    /// </summary>
    public static byte[] TlsServerEndPoint(X509Certificate2 serverCertificate)
    {
        ArgumentNullException.ThrowIfNull(serverCertificate);
        byte[] der = serverCertificate.RawData;
        string oid = serverCertificate.SignatureAlgorithm.Value ?? "";
        return oid switch
        {
            "1.2.840.113549.1.1.4" or "1.2.840.113549.1.1.5" or "1.2.840.10045.4.1" or "1.2.840.10040.4.3"
                or "1.2.840.113549.1.1.11" or "1.2.840.10045.4.3.2" or "2.16.840.1.101.3.4.3.2" => SHA256.HashData(der),
            "1.2.840.113549.1.1.12" or "1.2.840.10045.4.3.3" or "2.16.840.1.101.3.4.3.3" => SHA384.HashData(der),
            "1.2.840.113549.1.1.13" or "1.2.840.10045.4.3.4" or "2.16.840.1.101.3.4.3.4" => SHA512.HashData(der),
            "1.2.840.113549.1.1.10" => HashForPss(der),
            _ => throw new NotSupportedException($"tls-server-end-point is undefined for the signature algorithm {oid}."),
        };
    }

    // RSASSA-PSS names its hash in the parameters: RSASSA-PSS-params ::= SEQUENCE { hashAlgorithm [0] DEFAULT sha1, ... }.
    static byte[] HashForPss(byte[] der)
    {
        var certificate = new AsnReader(der, AsnEncodingRules.DER).ReadSequence();
        certificate.ReadEncodedValue();
        var algorithm = certificate.ReadSequence();
        algorithm.ReadObjectIdentifier();
        var parameters = algorithm.ReadSequence();
        string hash = "1.3.14.3.2.26";
        var hashTag = new Asn1Tag(TagClass.ContextSpecific, 0);
        if (parameters.HasData && parameters.PeekTag().HasSameClassAndValue(hashTag))
            hash = parameters.ReadSequence(hashTag).ReadSequence().ReadObjectIdentifier();
        return hash switch
        {
            "1.3.14.3.2.26" or "2.16.840.1.101.3.4.2.1" => SHA256.HashData(der),
            "2.16.840.1.101.3.4.2.2" => SHA384.HashData(der),
            "2.16.840.1.101.3.4.2.3" => SHA512.HashData(der),
            _ => throw new NotSupportedException($"tls-server-end-point is undefined for the PSS hash {hash}."),
        };
    }
}
