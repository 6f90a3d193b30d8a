using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Candor.Server.Connections;
using Microsoft.Extensions.Logging;

namespace Candor.Server.Hosting;

/// <summary>
/// Puts a renewed certificate in service without a restart: on SIGHUP (<see cref="Reload"/>) and when the
/// certificate or key file changes (checked every <see cref="ServerOptions.CertificateCheckSeconds"/>). New
/// handshakes use the new pair; streams already encrypted keep theirs. A pair that does not load (a key that
/// does not match while a renewal writes the two files) leaves the previous certificate in use and is logged.
/// </summary>
public sealed partial class CertificateReload(ServerOptions options, TlsSettings tls, ILogger log)
{
    private readonly Lock _lock = new();
    private byte[] _loaded = FilesDigest(options);
    private byte[]? _failed;

    /// <summary>Loads the files if their content differs from the pair in use; returns what happened, for the log and the caller.</summary>
    public string Reload()
    {
        lock (_lock)
        {
            var (certificateFile, keyFile) = Certificates.Files(options);
            byte[] digest;
            try
            {
                digest = FilesDigest(options);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                return Failed(certificateFile, e.Message, null);
            }
            if (digest.AsSpan().SequenceEqual(_loaded)) return "certificate unchanged";
            X509Certificate2 certificate;
            try
            {
                certificate = X509Certificate2.CreateFromPemFile(certificateFile, keyFile);
            }
            catch (Exception e) when (e is CryptographicException or IOException or UnauthorizedAccessException or ArgumentException)
            {
                return Failed(certificateFile, e.Message, digest);
            }
            tls.Replace(certificate);
            _loaded = digest;
            _failed = null;
            var fingerprint = certificate.GetCertHashString(HashAlgorithmName.SHA256);
            Log.Reloaded(log, certificateFile, certificate.Subject, fingerprint, certificate.NotAfter.ToUniversalTime());
            return $"certificate reloaded: {certificate.Subject}, SHA-256 {fingerprint}";
        }
    }

    /// <summary>Checks the files every <see cref="ServerOptions.CertificateCheckSeconds"/> until the server stops.</summary>
    public async Task WatchAsync(CancellationToken stopping)
    {
        if (options.CertificateCheckSeconds == 0) return;
        using var timer = new PeriodicTimer(TimeSpan.FromSeconds(options.CertificateCheckSeconds));
        try
        {
            while (await timer.WaitForNextTickAsync(stopping)) Reload();
        }
        catch (OperationCanceledException)
        {
        }
    }

    private string Failed(string file, string reason, byte[]? digest)
    {
        // Logged once per content: a broken pair left in place is not reported again at every check.
        if (digest is null || _failed is null || !digest.AsSpan().SequenceEqual(_failed)) Log.NotReloaded(log, file, reason);
        _failed = digest;
        return $"certificate not reloaded ({reason}); the previous one stays in use";
    }

    private static byte[] FilesDigest(ServerOptions options)
    {
        var (certificateFile, keyFile) = Certificates.Files(options);
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        hash.AppendData(File.ReadAllBytes(certificateFile));
        hash.AppendData(File.ReadAllBytes(keyFile));
        return hash.GetHashAndReset();
    }

    private static partial class Log
    {
        [LoggerMessage(Level = LogLevel.Information, Message = "TLS certificate reloaded from {File}: {Subject}, SHA-256 {Fingerprint}, valid until {NotAfter:u}; new connections use it")]
        public static partial void Reloaded(ILogger logger, string file, string subject, string fingerprint, DateTime notAfter);

        [LoggerMessage(Level = LogLevel.Error, Message = "TLS certificate {File} not reloaded: {Reason}; the previous certificate stays in use")]
        public static partial void NotReloaded(ILogger logger, string file, string reason);
    }
}
