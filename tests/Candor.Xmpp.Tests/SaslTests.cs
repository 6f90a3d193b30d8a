using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using Candor.Xmpp.Sasl;

namespace Candor.Xmpp.Tests;

public class SaslTests
{
    [Theory]
    [InlineData(SaslFailure.Aborted, "aborted")]
    [InlineData(SaslFailure.AccountDisabled, "account-disabled")]
    [InlineData(SaslFailure.CredentialsExpired, "credentials-expired")]
    [InlineData(SaslFailure.EncryptionRequired, "encryption-required")]
    [InlineData(SaslFailure.IncorrectEncoding, "incorrect-encoding")]
    [InlineData(SaslFailure.InvalidAuthzid, "invalid-authzid")]
    [InlineData(SaslFailure.InvalidMechanism, "invalid-mechanism")]
    [InlineData(SaslFailure.MalformedRequest, "malformed-request")]
    [InlineData(SaslFailure.MechanismTooWeak, "mechanism-too-weak")]
    [InlineData(SaslFailure.NotAuthorized, "not-authorized")]
    [InlineData(SaslFailure.TemporaryAuthFailure, "temporary-auth-failure")]
    public void FailureElementNames(SaslFailure failure, string name) => Assert.Equal(name, failure.ToElementName());

    [Fact]
    public void EveryFailureHasAName() =>
        Assert.All(Enum.GetValues<SaslFailure>(), f => Assert.NotEmpty(f.ToElementName()));

    [Theory]
    [InlineData("\0juliet\0pencil", null, "juliet", "pencil")]
    [InlineData("admin@example.com\0juliet\0pencil", "admin@example.com", "juliet", "pencil")]
    [InlineData("\0jüliet\0pen cil\u00E9", null, "jüliet", "pen cil\u00E9")]
    public void PlainParses(string message, string? authzid, string authcid, string password)
    {
        Assert.True(SaslPlain.TryParse(Encoding.UTF8.GetBytes(message), out string? z, out string c, out string p));
        Assert.Equal((authzid, authcid, password), (z, c, p));
    }

    [Theory]
    [InlineData("")]
    [InlineData("juliet")]
    [InlineData("juliet\0pencil")]
    [InlineData("\0\0pencil")]
    [InlineData("\0juliet\0")]
    [InlineData("\0\0")]
    [InlineData("a\0juliet\0pen\0cil")]
    [InlineData("\0juliet\0pencil\0")]
    public void PlainRejectsMalformed(string message)
    {
        Assert.False(SaslPlain.TryParse(Encoding.UTF8.GetBytes(message), out _, out _, out _));
    }

    [Fact]
    public void PlainRejectsInvalidUtf8() =>
        Assert.False(SaslPlain.TryParse([0, .. "jul"u8, 0xC3, 0, .. "pencil"u8], out _, out _, out _));

    [Fact]
    public void PlainRoundTrips()
    {
        Assert.Equal("\0juliet\0pencil"u8.ToArray(), SaslPlain.Create(null, "juliet", "pencil"));
        byte[] message = SaslPlain.Create("admin", "jüliet", "pen cil");

        Assert.True(SaslPlain.TryParse(message, out string? authzid, out string authcid, out string password));
        Assert.Equal(("admin", "jüliet", "pen cil"), (authzid, authcid, password));
        Assert.Throws<ArgumentException>(() => SaslPlain.Create(null, "jul\0iet", "pencil"));
        Assert.Throws<ArgumentException>(() => SaslPlain.Create(null, "juliet", ""));
    }

    static X509Certificate2 SelfSigned(AsymmetricAlgorithm key, HashAlgorithmName hash, RSASignaturePadding? padding = null)
    {
        CertificateRequest request = key is RSA rsa
            ? new CertificateRequest("CN=example.com", rsa, hash, padding ?? RSASignaturePadding.Pkcs1)
            : new CertificateRequest("CN=example.com", (ECDsa)key, hash);
        return request.CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddDays(1));
    }

    [Fact]
    public void TlsServerEndPointUsesTheSignatureHash()
    {
        using var rsa = RSA.Create(2048);
        using var ecdsa = ECDsa.Create(ECCurve.NamedCurves.nistP256);

        using (var cert = SelfSigned(rsa, HashAlgorithmName.SHA256))
            Assert.Equal(SHA256.HashData(cert.RawData), ChannelBinding.TlsServerEndPoint(cert));
        using (var cert = SelfSigned(rsa, HashAlgorithmName.SHA512))
            Assert.Equal(SHA512.HashData(cert.RawData), ChannelBinding.TlsServerEndPoint(cert));
        using (var cert = SelfSigned(ecdsa, HashAlgorithmName.SHA384))
            Assert.Equal(SHA384.HashData(cert.RawData), ChannelBinding.TlsServerEndPoint(cert));
        using (var cert = SelfSigned(rsa, HashAlgorithmName.SHA384, RSASignaturePadding.Pss))
            Assert.Equal(SHA384.HashData(cert.RawData), ChannelBinding.TlsServerEndPoint(cert));
    }

    [Fact]
    public void TlsServerEndPointReplacesSha1WithSha256()
    {
        // CertificateRequest refuses SHA-1, so sign with a generator that uses it anyway.
        using var rsa = RSA.Create(2048);
        var generator = new Sha1RsaSignatureGenerator(rsa);
        var name = new X500DistinguishedName("CN=example.com");
        using var cert = new CertificateRequest(name, generator.PublicKey, HashAlgorithmName.SHA256)
            .Create(name, generator, DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddDays(1), [1]);

        Assert.Equal("1.2.840.113549.1.1.5", cert.SignatureAlgorithm.Value);

        Assert.Equal(SHA256.HashData(cert.RawData), ChannelBinding.TlsServerEndPoint(cert));
    }

    sealed class Sha1RsaSignatureGenerator(RSA key) : X509SignatureGenerator
    {
        protected override PublicKey BuildPublicKey() => CreateForRSA(key, RSASignaturePadding.Pkcs1).PublicKey;

        // AlgorithmIdentifier { sha1WithRSAEncryption, NULL }
        public override byte[] GetSignatureAlgorithmIdentifier(HashAlgorithmName hashAlgorithm) =>
            [0x30, 0x0D, 0x06, 0x09, 0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x01, 0x05, 0x05, 0x00];

        public override byte[] SignData(byte[] data, HashAlgorithmName hashAlgorithm) =>
            key.SignData(data, HashAlgorithmName.SHA1, RSASignaturePadding.Pkcs1);
    }
}
