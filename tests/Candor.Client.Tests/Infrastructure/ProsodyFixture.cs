using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;

namespace Candor.Client.Tests.Infrastructure;

/// <summary>
/// A private Prosody (Debian package) on a free loopback port, in a temporary directory: its own configuration,
/// data, certificate and log, running as the prosody user through setpriv (as root) or as the current user.
/// Accounts are made with prosodyctl against the same configuration. A missing prosody is a failure, never a
/// skip (./test.sh installs it).
/// </summary>
public sealed class ProsodyFixture : IAsyncLifetime
{
    public const string Domain = "localhost";
    private Process? _process;

    public string Directory { get; } = System.IO.Directory.CreateTempSubdirectory("candor-prosody-").FullName;
    public int Port { get; private set; }
    public string Fingerprint { get; private set; } = "";
    private string ConfigPath => Path.Combine(Directory, "prosody.cfg.lua");
    private string LogPath => Path.Combine(Directory, "prosody.log");

    public string Log => File.Exists(LogPath) ? File.ReadAllText(LogPath) : "(no prosody log)";

    /// <summary>
    /// Set before starting: federation on a free s2s port, dialback with self-signed certificates
    /// (s2s_secure_auth = false), DNS through this resolver (libunbound forwarding to it, nothing else).
    /// </summary>
    public IPEndPoint? FederationDns { get; init; }
    /// <summary>Lines of a hosts file for Prosody's resolver (libunbound's hoststxt), for the peers' A records.</summary>
    public string FederationHosts { get; init; } = "";
    public int S2sPort { get; private set; } = -1;
    /// <summary>
    /// Set before starting: Prosody's certificate, key and the CA it trusts for peers; federation then requires
    /// valid certificates (s2s_secure_auth = true), so peers authenticate by SASL EXTERNAL (XEP-0178).
    /// </summary>
    public (string Certificate, string Key, string CaFile)? Pki { get; init; }
    /// <summary>Set before starting: Prosody's chat service at <see cref="MucDomain"/>, rooms unlocked at once (instant rooms).</summary>
    public bool Rooms { get; init; }
    public const string MucDomain = "conference." + Domain;
    /// <summary>With <see cref="Pki"/>: the port of Prosody's direct TLS s2s listener (XEP-0368).</summary>
    public int S2sTlsPort { get; private set; } = -1;
    /// <summary>Set before starting: Prosody modules to load besides the basic ones (e.g. "pep").</summary>
    public string[] Modules { get; init; } = [];

    public async Task InitializeAsync()
    {
        Assert.True(File.Exists("/usr/bin/prosody") && File.Exists("/usr/bin/prosodyctl"),
            "prosody is not installed: install the Debian package prosody (./test.sh does this)");
        if (Pki is { } pki)
        {
            File.Copy(pki.Certificate, Path.Combine(Directory, "localhost.crt"));
            File.Copy(pki.Key, Path.Combine(Directory, "localhost.key"));
            File.Copy(pki.CaFile, Path.Combine(Directory, "ca.crt"));
            using var issued = X509Certificate2.CreateFromPem(File.ReadAllText(pki.Certificate));
            Fingerprint = issued.GetCertHashString(HashAlgorithmName.SHA256);
        }
        else
        {
            using var key = RSA.Create(2048);
            var request = new CertificateRequest($"CN={Domain}", key, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
            var names = new SubjectAlternativeNameBuilder();
            names.AddDnsName(Domain);
            request.CertificateExtensions.Add(names.Build());
            using var certificate = request.CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddDays(30));
            await File.WriteAllTextAsync(Path.Combine(Directory, "localhost.crt"), certificate.ExportCertificatePem());
            await File.WriteAllTextAsync(Path.Combine(Directory, "localhost.key"), key.ExportPkcs8PrivateKeyPem());
            Fingerprint = certificate.GetCertHashString(HashAlgorithmName.SHA256);
        }
        Port = PeerProcess.FreePort();
        System.IO.Directory.CreateDirectory(Path.Combine(Directory, "data"));
        var federation = "";
        if (FederationDns is { } dns)
        {
            S2sPort = PeerProcess.FreePort();
            if (Pki is not null) S2sTlsPort = PeerProcess.FreePort();
            await File.WriteAllTextAsync(Path.Combine(Directory, "hosts"), FederationHosts);
            federation = $$"""
                s2s_ports = { {{S2sPort}} }
                s2s_direct_tls_ports = { {{(S2sTlsPort > 0 ? S2sTlsPort.ToString() : "")}} }
                s2s_secure_auth = {{(Pki is null ? "false" : "true")}}
                s2s_require_encryption = true
                unbound = { resolvconf = false; hoststxt = "{{Directory}}/hosts"; forward = "{{dns.Address}}@{{dns.Port}}" }
                """;
        }
        await File.WriteAllTextAsync(ConfigPath, $$"""
            -- written by Candor.Client.Tests: a private loopback-only Prosody
            pidfile = "{{Directory}}/prosody.pid"
            data_path = "{{Directory}}/data"
            log = { {{(FederationDns is null ? "info" : "debug")}} = "{{LogPath}}" }
            interfaces = { "127.0.0.1" }
            local_interfaces = { "127.0.0.1" }
            c2s_ports = { {{Port}} }
            c2s_direct_tls_ports = { }
            component_ports = { }
            http_ports = { }
            https_ports = { }
            modules_enabled = { "roster"; "saslauth"; "tls"; "disco"; "ping"; "posix"; "offline"; {{(FederationDns is null ? "" : "\"dialback\";")}} {{string.Concat(Modules.Select(m => $"\"{m}\"; "))}} }
            {{(FederationDns is null ? "s2s_ports = { }\nmodules_disabled = { \"s2s\" }" : federation)}}
            c2s_require_encryption = true
            allow_registration = false
            authentication = "internal_hashed"
            storage = "internal"
            certificates = "{{Directory}}"
            ssl = { certificate = "{{Directory}}/localhost.crt"; key = "{{Directory}}/localhost.key"; {{(Pki is null ? "" : $"cafile = \"{Directory}/ca.crt\"")}} }
            VirtualHost "{{Domain}}"
            {{(Rooms ? $"Component \"{MucDomain}\" \"muc\"\n    muc_room_locking = false" : "")}}
            """);
        if (PeerProcess.IsRoot) await PeerProcess.RunAsync("chown", ["-R", "prosody:prosody", Directory]);
        _process = PeerProcess.Start("/usr/bin/prosody", ["--config", ConfigPath, "-F"], "prosody");
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (true)
        {
            if (_process.HasExited)
                Assert.Fail($"prosody exited with {_process.ExitCode} before listening\n{Log}");
            using var client = new TcpClient();
            try
            {
                await client.ConnectAsync(IPAddress.Loopback, Port);
                break;
            }
            catch (SocketException)
            {
                if (DateTime.UtcNow > deadline) Assert.Fail($"prosody did not listen on {Port} within 30 s\n{Log}");
                await Task.Delay(100);
            }
        }
    }

    /// <summary>Creates an account with prosodyctl (the server reads accounts from its data files on login).</summary>
    public async Task CreateUserAsync(string user, string password)
    {
        var (code, output) = await PeerProcess.RunAsync("/usr/bin/prosodyctl", ["--config", ConfigPath, "register", user, Domain, password], "prosody");
        Assert.True(code == 0, $"prosodyctl register {user} failed ({code}): {output}");
    }

    public XmppClientOptions Options(string user, string password) => new()
    {
        Jid = Candor.Xmpp.Jid.Parse($"{user}@{Domain}"),
        Password = password,
        Host = "127.0.0.1",
        Port = Port,
        CertificateFingerprint = Fingerprint,
        ConnectTimeout = TimeSpan.FromSeconds(20),
        RequestTimeout = TimeSpan.FromSeconds(10),
    };

    public async Task DisposeAsync()
    {
        if (_process is { HasExited: false })
        {
            // SIGTERM through kill(1): prosody shuts down cleanly; kill it if it does not within 10 s.
            await PeerProcess.RunAsync("/bin/kill", ["-TERM", _process.Id.ToString()]);
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
            try
            {
                await _process.WaitForExitAsync(timeout.Token);
            }
            catch (OperationCanceledException)
            {
                _process.Kill(entireProcessTree: true);
            }
        }
        _process?.Dispose();
        try
        {
            System.IO.Directory.Delete(Directory, recursive: true);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
        }
    }
}
