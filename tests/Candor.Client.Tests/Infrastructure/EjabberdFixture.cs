using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace Candor.Client.Tests.Infrastructure;

/// <summary>
/// A private ejabberd 23.01 (Debian package) on free loopback ports, in a temporary directory: its own configuration,
/// spool, self-signed certificate and logs, an Erlang node of its own without epmd, run as the ejabberd user through
/// setpriv when root (as /work/shared/xmpp-bench does). It federates (STARTTLS required, XEP-0220 dialback) and finds
/// its peer <see cref="PeerDomain"/> by a DNS SRV record (target 127.0.0.1) that a resolver of the test's answers. A missing ejabberd is a failure, never a skip (./test.sh installs it).
/// </summary>
public sealed class EjabberdFixture : IAsyncDisposable
{
    public const string Domain = "ejabberd.example";
    private static int _nodes;
    private readonly string _node = $"candortest{Environment.ProcessId}x{Interlocked.Increment(ref _nodes)}@localhost";
    private int _distPort;

    public string Directory { get; } = System.IO.Directory.CreateTempSubdirectory("candor-ejabberd-").FullName;
    public int Port { get; private set; }
    public int S2sPort { get; private set; }
    public string Fingerprint { get; private set; } = "";
    public required string PeerDomain { get; init; }
    public required int PeerPort { get; init; }
    /// <summary>
    /// Set before starting: ejabberd's certificate, key and the CA it trusts for peers. Dialback is then not loaded,
    /// so both directions must authenticate by certificate (SASL EXTERNAL, XEP-0178).
    /// </summary>
    public (string Certificate, string Key, string CaFile)? Pki { get; init; }
    private FakeDns? _dns;

    public string Log => string.Join("\n", new[] { "ejabberd.log", "error.log", "ctl.log" }
        .Select(f => Path.Combine(Directory, "logs", f)).Where(File.Exists).Select(f => $"--- {Path.GetFileName(f)}\n{File.ReadAllText(f)}"))
        + $"\n--- DNS queries: {string.Join(", ", _dns?.Queries ?? [])}";

    public async Task StartAsync()
    {
        Assert.True(File.Exists("/usr/sbin/ejabberdctl"), "ejabberd is not installed: install the Debian package ejabberd (./test.sh does this)");
        foreach (var sub in new[] { "conf", "logs", "spool" }) System.IO.Directory.CreateDirectory(Path.Combine(Directory, sub));
        var pem = Path.Combine(Directory, "conf", "server.pem");
        if (Pki is { } pki)
        {
            await File.WriteAllTextAsync(pem, await File.ReadAllTextAsync(pki.Certificate) + "\n" + await File.ReadAllTextAsync(pki.Key));
            File.Copy(pki.CaFile, Path.Combine(Directory, "conf", "ca.crt"));
            using var issued = X509Certificate2.CreateFromPem(await File.ReadAllTextAsync(pki.Certificate));
            Fingerprint = issued.GetCertHashString(HashAlgorithmName.SHA256);
        }
        else
        {
            using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
            var request = new CertificateRequest($"CN={Domain}", key, HashAlgorithmName.SHA256);
            var names = new SubjectAlternativeNameBuilder();
            names.AddDnsName(Domain);
            request.CertificateExtensions.Add(names.Build());
            using var certificate = request.CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddDays(30));
            await File.WriteAllTextAsync(pem, certificate.ExportCertificatePem() + "\n" + key.ExportPkcs8PrivateKeyPem());
            Fingerprint = certificate.GetCertHashString(HashAlgorithmName.SHA256);
        }
        Port = PeerProcess.FreePort();
        S2sPort = PeerProcess.FreePort();
        _distPort = PeerProcess.FreePort();
        var conf = Path.Combine(Directory, "conf");
        // ejabberd looks SRV records up with Erlang's resolver, which this inetrc points at the test's resolver, but
        // their targets with the system's getaddrinfo: the target is an address, so no name needs resolving.
        _dns = FakeDns.Start(("_xmpp-server._tcp." + PeerDomain, new Candor.Xmpp.SrvRecord("127.0.0.1", PeerPort, 0, 0)));
        await File.WriteAllTextAsync(Path.Combine(conf, "inetrc"), $$"""
            {lookup,[file,dns]}.
            {resolv_conf,""}.
            {nameserver,{127,0,0,1},{{_dns.EndPoint.Port}}}.

            """);
        await File.WriteAllTextAsync(Path.Combine(conf, "ejabberd.yml"), $$"""
            # written by Candor.Client.Tests: a private loopback-only ejabberd
            hosts:
              - "{{Domain}}"
            loglevel: debug
            log_rotate_count: 1
            certfiles:
              - "{{conf}}/server.pem"
            {{(Pki is null ? "" : $"s2s_cafile: \"{conf}/ca.crt\"")}}
            listen:
              -
                port: {{Port}}
                ip: "127.0.0.1"
                module: ejabberd_c2s
                starttls_required: true
              -
                port: {{S2sPort}}
                ip: "127.0.0.1"
                module: ejabberd_s2s_in
            s2s_use_starttls: required
            s2s_access: s2s
            outgoing_s2s_families:
              - ipv4
            auth_method: internal
            acme:
              auto: false
            acl:
              local:
                user_regexp: ""
            access_rules:
              local:
                allow: local
              c2s:
                allow: all
              s2s:
                allow: all
            shaper_rules:
              c2s_shaper: none
            modules:
              mod_disco: {}
              mod_ping: {}
              mod_roster: {}
              mod_offline: {}
            {{(Pki is null ? "  mod_s2s_dialback: {}" : "")}}
            """);
        await File.WriteAllTextAsync(Path.Combine(conf, "ejabberdctl.cfg"), $"""
            ERLANG_NODE={_node}
            ERL_DIST_PORT={_distPort}
            INET_DIST_INTERFACE=127.0.0.1
            ERL_OPTIONS="-setcookie candortest -env ERL_CRASH_DUMP_BYTES 0"
            EJABBERD_PID_PATH={Directory}/ejabberd.pid
            CONTRIB_MODULES_PATH={Directory}/modules
            CONTRIB_MODULES_CONF_DIR={conf}/modules.d
            EJABBERD_BYPASS_WARNINGS=true
            """);
        if (PeerProcess.IsRoot) await PeerProcess.RunAsync("chown", ["-R", "ejabberd:ejabberd", Directory]);
        var (code, output) = await CtlAsync("start");
        Assert.True(code == 0, $"ejabberdctl start failed ({code}): {output}\n{Log}");
        var deadline = DateTime.UtcNow.AddSeconds(60);
        while (true)
        {
            using var client = new TcpClient();
            try
            {
                await client.ConnectAsync(IPAddress.Loopback, S2sPort);
                break;
            }
            catch (SocketException)
            {
                if (DateTime.UtcNow > deadline) Assert.Fail($"ejabberd did not listen on {S2sPort} within 60 s\n{Log}");
                await Task.Delay(200);
            }
        }
    }

    public async Task CreateUserAsync(string user, string password)
    {
        var (code, output) = await CtlAsync("register", user, Domain, password);
        Assert.True(code == 0, $"ejabberdctl register {user} failed ({code}): {output}");
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

    private Task<(int, string)> CtlAsync(params string[] command) => PeerProcess.RunAsync("/usr/sbin/ejabberdctl",
    [
        "--config-dir", Path.Combine(Directory, "conf"), "--config", Path.Combine(Directory, "conf", "ejabberd.yml"),
        "--ctl-config", Path.Combine(Directory, "conf", "ejabberdctl.cfg"), "--logs", Path.Combine(Directory, "logs"),
        "--spool", Path.Combine(Directory, "spool"), .. command,
    ], "ejabberd", Directory);

    public async ValueTask DisposeAsync()
    {
        if (_dns is not null) await _dns.DisposeAsync();
        await CtlAsync("stop");
        var pidFile = Path.Combine(Directory, "ejabberd.pid");
        if (File.Exists(pidFile) && int.TryParse(File.ReadAllText(pidFile).Trim(), out var pid))
        {
            try
            {
                using var process = Process.GetProcessById(pid);
                if (!process.WaitForExit(TimeSpan.FromSeconds(15))) process.Kill(entireProcessTree: true);
            }
            catch (ArgumentException)
            {
            }
        }
        try
        {
            System.IO.Directory.Delete(Directory, recursive: true);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
        }
    }
}
