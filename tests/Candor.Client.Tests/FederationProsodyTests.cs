using Candor.Client.Tests.Infrastructure;
using Candor.Server.Hosting;
using Candor.Server.Tests.Harness;
using Candor.Xmpp;

namespace Candor.Client.Tests;

/// <summary>
/// Federation with a server we did not write: Candor serving candor.example and Prosody 0.12 (Debian) serving localhost,
/// both on loopback with self-signed certificates, so they authenticate each other by XEP-0220 dialback. Candor finds
/// Prosody through S2sRoutes; Prosody finds Candor through DNS SRV answered by a fake resolver on loopback.
/// </summary>
public sealed class FederationProsodyTests() : ProsodyFederation(certificates: false);

/// <summary>
/// The same with certificates from a CA the test makes, trusted by both, and valid certificates required on both sides
/// (Prosody's s2s_secure_auth, Candor's S2sRequireValidCertificates): both authenticate by SASL EXTERNAL (XEP-0178).
/// Each finds the other only by a _xmpps-server._tcp SRV record, so both directions run over direct TLS (XEP-0368).
/// </summary>
public sealed class FederationProsodyCertificateTests() : ProsodyFederation(certificates: true);

public abstract class ProsodyFederation(bool certificates) : IAsyncLifetime
{
    // Not under .test: libunbound answers that special-use zone (RFC 6761) itself, with NXDOMAIN.
    private const string CandorDomain = "candor.example";
    private readonly string _data = Directory.CreateTempSubdirectory("candor-fed-").FullName;
    private CandorHost _candor = null!;
    private FakeDns _dns = null!;
    private ProsodyFixture _prosody = null!;
    private string _fingerprint = "";
    private readonly TestCa? _ca = certificates ? new TestCa() : null;

    public async Task InitializeAsync()
    {
        _candor = await FederationScenario.StartCandorAsync(CandorDomain, _data, _ca);
        _fingerprint = FederationScenario.Fingerprint(_candor);
        // The SRV target is a name of its own: a hosts entry for candor.example itself would make libunbound answer every
        // name under it locally (NXDOMAIN for the SRV record).
        _dns = certificates
            ? FakeDns.Start(("_xmpps-server._tcp." + CandorDomain, new SrvRecord("xmpp.candor-host.example", _candor.S2sTlsPort, 0, 0)))
            : FakeDns.Start(("_xmpp-server._tcp." + CandorDomain, new SrvRecord("xmpp.candor-host.example", _candor.S2sPort, 0, 0)));
        var pki = _ca?.IssueFiles(ProsodyFixture.Domain);
        _prosody = new ProsodyFixture
        {
            FederationDns = _dns.EndPoint, FederationHosts = "127.0.0.1 xmpp.candor-host.example\n",
            Pki = pki is { } files ? (files.Certificate, files.Key, _ca!.RootFile) : null,
        };
        await _prosody.InitializeAsync();
        if (certificates)
        {
            _dns.Add("_xmpps-server._tcp." + ProsodyFixture.Domain, new SrvRecord("127.0.0.1", _prosody.S2sTlsPort, 0, 0));
            _candor.Server.S2s!.DnsServers = [_dns.EndPoint];
        }
        else _candor.Server.Options.S2sRoutes = $"{ProsodyFixture.Domain}=127.0.0.1:{_prosody.S2sPort}";
    }

    public async Task DisposeAsync()
    {
        await _prosody.DisposeAsync();
        await _dns.DisposeAsync();
        await _candor.StopAsync();
        Directory.Delete(_data, recursive: true);
        _ca?.Dispose();
    }

    [Fact]
    public async Task Subscription_presence_and_messages_work_both_ways_with_prosody()
    {
        Assert.True(await _candor.Server.Accounts.CreateAsync("cid", "cid-secret"));
        await _prosody.CreateUserAsync("anna", "anna-secret");
        await FederationScenario.RunAsync(FederationScenario.CandorUser(_candor, "cid", "cid-secret", _fingerprint),
            _prosody.Options("anna", "anna-secret"), "on prosody", () => _prosody.Log);
        if (certificates)
        {
            // Prosody's own account of how each direction authenticated.
            Assert.Contains("Accepting SASL EXTERNAL identity from " + CandorDomain, _prosody.Log);
            Assert.Contains("SASL EXTERNAL with " + CandorDomain + " succeeded", _prosody.Log);
        }
    }
}
