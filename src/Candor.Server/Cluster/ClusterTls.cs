using System.Numerics;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;

namespace Candor.Server.Cluster;

/// <summary>
/// Mutual TLS on the cluster port (docs/CLUSTER.md, "Security of the cluster port"). Every node derives the same
/// ECDSA P-256 key from the cluster secret and presents a self-signed certificate for it, in both directions; a peer
/// is accepted only when its certificate carries that public key, and the handshake proves it holds the private key.
/// So a process without the secret can neither join the cluster nor read or inject what the nodes send each other.
/// </summary>
public sealed class ClusterTls
{
    // The order n of P-256's group: a private key is a scalar in [1, n-1].
    private static readonly BigInteger Order = BigInteger.Parse("0FFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551",
        System.Globalization.NumberStyles.HexNumber);

    private readonly byte[] _publicKey;

    public ClusterTls(string secret, string clusterId)
    {
        using var key = DeriveKey(secret, clusterId);
        _publicKey = key.ExportSubjectPublicKeyInfo();
        var request = new CertificateRequest($"CN=Candor cluster {clusterId}", key, HashAlgorithmName.SHA256);
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(false, false, 0, true));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.DigitalSignature, true));
        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension(
            [new Oid("1.3.6.1.5.5.7.3.1"), new Oid("1.3.6.1.5.5.7.3.2")], false));
        // Its dates and issuer mean nothing here (peers compare the key only), so no renewal is ever needed.
        Certificate = request.CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddYears(100));
    }

    /// <summary>This node's certificate, with the cluster key.</summary>
    public X509Certificate2 Certificate { get; }

    /// <summary>True when <paramref name="presented"/> carries the cluster's public key.</summary>
    public bool IsClusterKey(X509Certificate2 presented) =>
        CryptographicOperations.FixedTimeEquals(presented.PublicKey.ExportSubjectPublicKeyInfo(), _publicKey);

    /// <summary>The cluster's private key: HKDF-SHA256 of the secret, salted with the cluster id (a scalar outside
    /// [1, n-1], with odds of 2^-32, takes the next counter).</summary>
    internal static ECDsa DeriveKey(string secret, string clusterId)
    {
        var ikm = Encoding.UTF8.GetBytes(secret);
        var salt = Encoding.UTF8.GetBytes(clusterId);
        for (var counter = 0; ; counter++)
        {
            var d = HKDF.DeriveKey(HashAlgorithmName.SHA256, ikm, 32, salt, Encoding.UTF8.GetBytes($"candor cluster tls key {counter}"));
            var scalar = new BigInteger(d, isUnsigned: true, isBigEndian: true);
            if (scalar.IsZero || scalar >= Order) continue;
            return ECDsa.Create(new ECParameters { Curve = ECCurve.NamedCurves.nistP256, D = d });
        }
    }
}
