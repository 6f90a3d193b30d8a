using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace Candor.Server.Hosting;

/// <summary>The server's TLS certificate: the PEM pair the operator gave, or a self-signed one made on first start.</summary>
public static class Certificates
{
    /// <summary>The certificate and key files in use: the operator's, or the self-signed pair in DATA/tls.</summary>
    public static (string Certificate, string Key) Files(ServerOptions options) => options.CertificateFile is { } file
        ? (file, options.KeyFile!)
        : (Path.Combine(options.DataDirectory, "tls", options.Domain + ".crt"), Path.Combine(options.DataDirectory, "tls", options.Domain + ".key"));

    public static X509Certificate2 Load(ServerOptions options, Action<string> announce)
    {
        if (options.CertificateFile is not null)
        {
            try
            {
                return X509Certificate2.CreateFromPemFile(options.CertificateFile, options.KeyFile);
            }
            catch (Exception e) when (e is CryptographicException or IOException or UnauthorizedAccessException)
            {
                throw new OptionsException($"cannot load certificate {options.CertificateFile} with key {options.KeyFile}: {e.Message}");
            }
        }
        var (certPath, keyPath) = Files(options);
        var directory = Path.GetDirectoryName(certPath)!;
        if (File.Exists(certPath) && File.Exists(keyPath))
        {
            var existing = X509Certificate2.CreateFromPemFile(certPath, keyPath);
            if (existing.NotAfter > DateTime.UtcNow.AddDays(1)) return existing;
        }
        Directory.CreateDirectory(directory);
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest($"CN={options.Domain}", key, HashAlgorithmName.SHA256);
        var names = new SubjectAlternativeNameBuilder();
        names.AddDnsName(options.Domain);
        request.CertificateExtensions.Add(names.Build());
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(false, false, 0, true));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.DigitalSignature, true));
        // Server and client authentication: the certificate is also shown to other servers as the initiating side of s2s.
        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([new Oid("1.3.6.1.5.5.7.3.1"), new Oid("1.3.6.1.5.5.7.3.2")], false));
        using var created = request.CreateSelfSigned(DateTimeOffset.UtcNow.AddMinutes(-5), DateTimeOffset.UtcNow.AddYears(2));
        File.WriteAllText(keyPath, key.ExportPkcs8PrivateKeyPem());
        if (!OperatingSystem.IsWindows()) File.SetUnixFileMode(keyPath, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        File.WriteAllText(certPath, created.ExportCertificatePem());
        announce($"Created a self-signed certificate for {options.Domain}: {certPath} (SHA-256 {created.GetCertHashString(HashAlgorithmName.SHA256)})");
        return X509Certificate2.CreateFromPemFile(certPath, keyPath);
    }
}
