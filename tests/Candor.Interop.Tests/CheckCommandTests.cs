using System.Net;
using System.Runtime.Versioning;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text.Json;
using Candor.Interop.Tests.Infrastructure;
using Xunit.Abstractions;

namespace Candor.Interop.Tests;

/// <summary>
/// <c>candor check</c> against a good setup and against setups broken in one way each: every test asserts the one
/// line that names the problem, its severity, and the exit code (0 fine, 1 warnings, 2 errors).
/// </summary>
[SupportedOSPlatform("linux")]
public sealed class CheckCommandTests(ITestOutputHelper output) : IDisposable
{
    private readonly string _root = Directory.CreateTempSubdirectory("candor-check-").FullName;
    private readonly Dictionary<string, object?> _settings = new();

    private string DataDirectory => Path.Combine(_root, "data");

    public void Dispose() => Directory.Delete(_root, recursive: true);

    /// <summary>A setup with nothing to report: CA-issued certificate for both domains, free loopback ports, a 0750 data directory.</summary>
    private void GoodSetup(DateTimeOffset? notAfter = null, params string[] names)
    {
        Directory.CreateDirectory(DataDirectory);
        File.SetUnixFileMode(DataDirectory, (UnixFileMode)Convert.ToInt32("750", 8));
        var ports = FreePorts.Take(4);
        _settings["Domain"] = "localhost";
        _settings["DataDirectory"] = DataDirectory;
        _settings["Bind"] = "127.0.0.1";
        _settings["C2sPort"] = ports[0];
        _settings["TlsPort"] = ports[1];
        _settings["HttpPort"] = ports[2];
        _settings["HttpsPort"] = ports[3];
        WriteCertificate(notAfter ?? DateTimeOffset.UtcNow.AddDays(90), names.Length > 0 ? names : ["localhost", "conference.localhost"]);
    }

    private void WriteCertificate(DateTimeOffset notAfter, string[] names)
    {
        using var caKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var caRequest = new CertificateRequest("CN=Candor Test CA", caKey, HashAlgorithmName.SHA256);
        caRequest.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, false, 0, true));
        using var ca = caRequest.CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-400), DateTimeOffset.UtcNow.AddDays(400));
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest($"CN={names[0]}", key, HashAlgorithmName.SHA256);
        var san = new SubjectAlternativeNameBuilder();
        foreach (var name in names) san.AddDnsName(name);
        request.CertificateExtensions.Add(san.Build());
        using var leaf = request.Create(ca, DateTimeOffset.UtcNow.AddDays(-365), notAfter, [1, 2, 3, 4]);
        var certFile = Path.Combine(_root, "server.crt");
        var keyFile = Path.Combine(_root, "server.key");
        File.WriteAllText(certFile, leaf.ExportCertificatePem());
        File.WriteAllText(keyFile, key.ExportPkcs8PrivateKeyPem());
        _settings["CertificateFile"] = certFile;
        _settings["KeyFile"] = keyFile;
    }

    private async Task<ProcessResult> CheckAsync(params string[] extra)
    {
        var config = Path.Combine(_root, "candor.json");
        File.WriteAllText(config, JsonSerializer.Serialize(new { Candor = _settings }));
        var result = await ChildProcess.RunAsync(CandorServer.Launcher.DotnetHost,
            [CandorServer.Launcher.CandorDll, "check", "--config", config, .. extra], TimeSpan.FromMinutes(1));
        output.WriteLine(result.Describe());
        return result;
    }

    private static void AssertFinding(ProcessResult result, int exitCode, string severity, string area, string contains)
    {
        Assert.True(result.ExitCode == exitCode, $"expected exit {exitCode}\n{result.Describe()}");
        var lines = result.Output.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Contains(lines, l => l.StartsWith($"{severity,-8}{area}: ", StringComparison.Ordinal) && l.Contains(contains));
        // Nothing else is worse than the finding the test provoked.
        if (exitCode < 2) Assert.DoesNotContain(lines, l => l.StartsWith("error", StringComparison.Ordinal));
        if (exitCode < 1) Assert.DoesNotContain(lines, l => l.StartsWith("warning", StringComparison.Ordinal));
        Assert.DoesNotContain("   at ", result.Output);
    }

    [Fact]
    public async Task A_good_setup_is_all_ok_and_exits_0()
    {
        GoodSetup();
        var result = await CheckAsync();
        AssertFinding(result, 0, "ok", "certificate", "covers localhost, conference.localhost");
        Assert.All(result.Output.Split('\n', StringSplitOptions.RemoveEmptyEntries), l => Assert.StartsWith("ok      ", l));
    }

    [Fact]
    public async Task An_invalid_configuration_is_an_error()
    {
        GoodSetup();
        _settings["ArchiveDefault"] = "sometimes";
        AssertFinding(await CheckAsync(), 2, "error", "config", "ArchiveDefault must be always, roster or never");
    }

    [Fact]
    public async Task A_missing_certificate_file_is_an_error()
    {
        GoodSetup();
        File.Delete((string)_settings["CertificateFile"]!);
        AssertFinding(await CheckAsync(), 2, "error", "certificate", "cannot load");
    }

    [Fact]
    public async Task No_certificate_at_all_warns_of_the_self_signed_one()
    {
        GoodSetup();
        _settings.Remove("CertificateFile");
        _settings.Remove("KeyFile");
        AssertFinding(await CheckAsync(), 1, "warning", "certificate", "self-signed");
    }

    [Fact]
    public async Task A_certificate_expiring_within_30_days_is_a_warning()
    {
        GoodSetup(DateTimeOffset.UtcNow.AddDays(10));
        AssertFinding(await CheckAsync(), 1, "warning", "certificate", "within 30 days");
    }

    [Fact]
    public async Task An_expired_certificate_is_an_error()
    {
        GoodSetup(DateTimeOffset.UtcNow.AddDays(-1));
        AssertFinding(await CheckAsync(), 2, "error", "certificate", "expired on");
    }

    [Fact]
    public async Task A_certificate_not_covering_the_conference_domain_is_an_error()
    {
        GoodSetup(null, "localhost");
        AssertFinding(await CheckAsync(), 2, "error", "certificate", "does not cover conference.localhost");
    }

    [Fact]
    public async Task Unreachable_DNS_for_a_public_domain_is_a_warning_not_an_error()
    {
        GoodSetup(null, "chat.example", "conference.chat.example");
        _settings["Domain"] = "chat.example";
        // A loopback UDP port nobody answers on: the resolver is unreachable.
        using var silent = new UdpClient(new IPEndPoint(IPAddress.Loopback, 0));
        var result = await CheckAsync("--resolver", $"127.0.0.1:{((IPEndPoint)silent.Client.LocalEndPoint!).Port}");
        AssertFinding(result, 1, "warning", "dns", "no SRV record _xmpp-client._tcp.chat.example (or DNS did not answer)");
        AssertFinding(result, 1, "warning", "dns", "no SRV record _xmpp-server._tcp.chat.example");
    }

    [Fact]
    public async Task A_port_held_by_another_program_is_an_error()
    {
        GoodSetup();
        using var squatter = new TcpListener(IPAddress.Loopback, 0);
        squatter.Start();
        _settings["HttpPort"] = ((IPEndPoint)squatter.LocalEndpoint).Port;
        AssertFinding(await CheckAsync(), 2, "error", "ports", $"HTTP port {_settings["HttpPort"]} is in use by another program");
    }

    [Fact]
    public async Task Ports_held_by_the_server_running_on_this_data_directory_are_fine()
    {
        await using var server = await CandorServer.StartAsync(output);
        GoodSetup();
        _settings["DataDirectory"] = server.DataDirectory;
        (_settings["C2sPort"], _settings["TlsPort"], _settings["HttpPort"], _settings["HttpsPort"]) = (server.C2sPort, server.TlsPort, server.HttpPort, server.HttpsPort);
        var result = await CheckAsync();
        Assert.Equal(4, result.Output.Split('\n').Count(l => l.StartsWith("ok      ports: ", StringComparison.Ordinal) && l.Contains($"held by this server (pid {server.ProcessId})")));
    }

    [Fact]
    public async Task A_data_directory_open_to_other_users_is_a_warning()
    {
        GoodSetup();
        File.SetUnixFileMode(DataDirectory, (UnixFileMode)Convert.ToInt32("755", 8));
        AssertFinding(await CheckAsync(), 1, "warning", "files", "has mode 0755: other users can reach it");
    }

    [Fact]
    public async Task A_master_key_readable_by_others_is_an_error()
    {
        GoodSetup();
        var keyFile = Path.Combine(DataDirectory, "keys", "master.key");
        Directory.CreateDirectory(Path.GetDirectoryName(keyFile)!);
        File.WriteAllText(keyFile, Convert.ToBase64String(RandomNumberGenerator.GetBytes(32)) + "\n");
        File.SetUnixFileMode(keyFile, (UnixFileMode)Convert.ToInt32("644", 8));
        AssertFinding(await CheckAsync(), 2, "error", "files", "has mode 0644: only the service user may read it");
        File.SetUnixFileMode(keyFile, (UnixFileMode)Convert.ToInt32("600", 8));
        AssertFinding(await CheckAsync(), 0, "ok", "files", "has mode 0600");
    }

    [Fact]
    public async Task A_database_without_its_master_key_is_an_error()
    {
        GoodSetup();
        File.WriteAllText(Path.Combine(DataDirectory, "candor.db"), "");
        AssertFinding(await CheckAsync(), 2, "error", "files", "no master key");
    }

    [Fact]
    public async Task A_policy_that_does_not_load_is_an_error()
    {
        GoodSetup();
        var policy = Path.Combine(_root, "policy.json");
        File.WriteAllText(policy, "{ \"version\": ");
        _settings["PolicyFile"] = policy;
        AssertFinding(await CheckAsync(), 2, "error", "policy", "policy.json");
    }
}
