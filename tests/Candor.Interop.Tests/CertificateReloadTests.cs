using System.Net.Security;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Candor.Client;
using Candor.Interop.Tests.Infrastructure;
using Candor.Xmpp;
using Xunit.Abstractions;

namespace Candor.Interop.Tests;

/// <summary>
/// A renewed certificate put in place while sessions are open: after the file changes (or SIGHUP) new
/// connections on every TLS listener (STARTTLS, direct TLS, HTTPS) get it, and the session opened before
/// goes on under the old one, exchanging messages with a session opened after.
/// </summary>
[Trait("Category", "Interop")]
public sealed class CertificateReloadTests(ITestOutputHelper output) : IDisposable
{
    private readonly string _directory = Directory.CreateTempSubdirectory("candor-cert-reload-").FullName;
    private string CertificateFile => Path.Combine(_directory, "candor.crt");
    private string KeyFile => Path.Combine(_directory, "candor.key");

    public void Dispose() => Directory.Delete(_directory, recursive: true);

    /// <summary>Writes a new self-signed pair for localhost over the old files; returns its SHA-256 fingerprint.</summary>
    private string WritePair(string label)
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest($"CN=localhost, O={label}", key, HashAlgorithmName.SHA256);
        var names = new SubjectAlternativeNameBuilder();
        names.AddDnsName("localhost");
        request.CertificateExtensions.Add(names.Build());
        using var certificate = request.CreateSelfSigned(DateTimeOffset.UtcNow.AddMinutes(-5), DateTimeOffset.UtcNow.AddDays(90));
        // Key first, as a renewal tool might: until the certificate follows, the pair does not match and is not loaded.
        File.WriteAllText(KeyFile, key.ExportPkcs8PrivateKeyPem());
        File.WriteAllText(CertificateFile, certificate.ExportCertificatePem());
        return certificate.GetCertHashString(HashAlgorithmName.SHA256);
    }

    private static async Task<XmppClient> ConnectAsync(CandorServer server, string jid, string password, string fingerprint)
    {
        var client = new XmppClient(new XmppClientOptions
        {
            Jid = Jid.Parse(jid),
            Password = password,
            Host = CandorServer.Host,
            Port = server.C2sPort,
            CertificateFingerprint = fingerprint,
            AutoReceipts = false,
        });
        await client.ConnectAsync();
        await client.SendPresenceAsync();
        return client;
    }

    /// <summary>The fingerprint of the certificate a direct TLS handshake (XEP-0368) on the server's TLS port presents.</summary>
    private static async Task<string> DirectTlsFingerprintAsync(CandorServer server)
    {
        using var tcp = new TcpClient();
        await tcp.ConnectAsync(CandorServer.Host, server.TlsPort);
        await using var ssl = new SslStream(tcp.GetStream(), false, (_, _, _, _) => true);
        await ssl.AuthenticateAsClientAsync(new SslClientAuthenticationOptions
        {
            TargetHost = "localhost",
            ApplicationProtocols = [new SslApplicationProtocol("xmpp-client")],
        });
        return new X509Certificate2(ssl.RemoteCertificate!).GetCertHashString(HashAlgorithmName.SHA256);
    }

    private static async Task<string> HttpsFingerprintAsync(CandorServer server)
    {
        string? seen = null;
        using var handler = new HttpClientHandler
        {
            ServerCertificateCustomValidationCallback = (_, certificate, _, _) =>
            {
                seen = certificate!.GetCertHashString(HashAlgorithmName.SHA256);
                return true;
            },
        };
        using var http = new HttpClient(handler);
        await http.GetAsync($"https://{CandorServer.Host}:{server.HttpsPort}/.well-known/candor/policy");
        return seen!;
    }

    private async Task<CandorServer> StartAsync(int checkSeconds)
    {
        var server = await CandorServer.StartAsync(output, ["--cert", CertificateFile, "--key", KeyFile],
            new Dictionary<string, string?> { ["CANDOR__CERTIFICATECHECKSECONDS"] = checkSeconds.ToString() });
        await server.AddUserAsync("alice@localhost", "alice-secret");
        await server.AddUserAsync("bob@localhost", "bob-secret");
        return server;
    }

    /// <summary><paramref name="renew"/> puts the new pair in place (and signals) and returns its fingerprint.</summary>
    private async Task NewCertificateServesNewConnectionsAndTheOldSessionGoesOnAsync(CandorServer server, string oldFingerprint, Func<Task<string>> renew)
    {
        await using var alice = await ConnectAsync(server, "alice@localhost/before", "alice-secret", oldFingerprint);
        Assert.Equal(oldFingerprint, alice.ServerCertificateFingerprint);

        var newFingerprint = await renew();
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(20);
        while (await DirectTlsFingerprintAsync(server) != newFingerprint && DateTime.UtcNow < deadline) await Task.Delay(250);
        Assert.Equal(newFingerprint, await DirectTlsFingerprintAsync(server));
        Assert.Equal(newFingerprint, await HttpsFingerprintAsync(server));

        // A client pinned to the old certificate is refused now; one pinned to the new one logs in (STARTTLS).
        await Assert.ThrowsAnyAsync<Exception>(async () =>
        {
            await using var stale = await ConnectAsync(server, "bob@localhost/stale", "bob-secret", oldFingerprint);
        });
        await using var bob = await ConnectAsync(server, "bob@localhost/after", "bob-secret", newFingerprint);
        Assert.Equal(newFingerprint, bob.ServerCertificateFingerprint);

        // The session opened before the reload is still up and talks with the one opened after it.
        await alice.PingAsync();
        var toBob = SealedStorageInteropTests.Received(bob, "sent before-to-after");
        await alice.SendMessageAsync(Jid.Parse("bob@localhost/after"), "sent before-to-after", requestReceipt: false);
        await toBob.WaitAsync(TimeSpan.FromSeconds(20));
        var toAlice = SealedStorageInteropTests.Received(alice, "sent after-to-before");
        await bob.SendMessageAsync(Jid.Parse("alice@localhost/before"), "sent after-to-before", requestReceipt: false);
        await toAlice.WaitAsync(TimeSpan.FromSeconds(20));
        Assert.Equal(oldFingerprint, alice.ServerCertificateFingerprint);
    }

    [Fact]
    public async Task A_changed_certificate_file_is_loaded_without_dropping_sessions()
    {
        var first = WritePair("first");
        await using var server = await StartAsync(checkSeconds: 1);
        await NewCertificateServesNewConnectionsAndTheOldSessionGoesOnAsync(server, first, () => Task.FromResult(WritePair("second")));
    }

    [Fact]
    public async Task Sighup_loads_a_renewed_certificate_without_dropping_sessions()
    {
        var first = WritePair("first");
        await using var server = await StartAsync(checkSeconds: 0);
        await NewCertificateServesNewConnectionsAndTheOldSessionGoesOnAsync(server, first, async () =>
        {
            var second = WritePair("second");
            await Task.Delay(1500);
            Assert.Equal(first, await DirectTlsFingerprintAsync(server));
            var hup = await ChildProcess.RunAsync("kill", ["-HUP", server.ProcessId.ToString()], TimeSpan.FromSeconds(10));
            Assert.True(hup.Succeeded, hup.Describe());
            return second;
        });
        Assert.Contains("TLS certificate reloaded", server.Output);
    }
}
