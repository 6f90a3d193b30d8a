using Candor.Client.Tests.Infrastructure;
using Candor.Server.Hosting;
using Candor.Server.Tests.Harness;

namespace Candor.Client.Tests;

/// <summary>
/// Federation with ejabberd 23.01 (Debian): Candor serving candor.example, ejabberd serving ejabberd.example, both on
/// loopback with self-signed certificates, so they authenticate each other by XEP-0220 dialback over STARTTLS. Candor
/// finds ejabberd through S2sRoutes; ejabberd finds Candor by DNS SRV answered by a fake resolver on loopback.
/// </summary>
public sealed class FederationEjabberdTests() : EjabberdFederation(certificates: false);

/// <summary>
/// The same with certificates from a CA the test makes, trusted by both, and no dialback on either side (ejabberd
/// without mod_s2s_dialback, Candor with S2sRequireValidCertificates): both directions authenticate by SASL EXTERNAL
/// (XEP-0178), which ejabberd accepts only from a certificate usable for TLS client authentication.
/// </summary>
public sealed class FederationEjabberdCertificateTests() : EjabberdFederation(certificates: true);

public abstract class EjabberdFederation(bool certificates) : IAsyncLifetime
{
    private const string CandorDomain = "candor.example";
    private readonly string _data = Directory.CreateTempSubdirectory("candor-fed-ej-").FullName;
    private readonly TestCa? _ca = certificates ? new TestCa() : null;
    private CandorHost _candor = null!;
    private EjabberdFixture _ejabberd = null!;

    public async Task InitializeAsync()
    {
        // ejabberd 23.01 fails on an XmppAddr in a peer's certificate (xmpp_stream_pkix:get_domains_from_san hands a
        // binary to lists:flatmap and the stream process crashes), so Candor's names its domain as a DNS-ID only.
        _candor = await FederationScenario.StartCandorAsync(CandorDomain, _data, _ca, xmppAddr: false);
        _ejabberd = new EjabberdFixture
        {
            PeerDomain = CandorDomain, PeerPort = _candor.S2sPort,
            Pki = _ca?.IssueFiles(EjabberdFixture.Domain) is { } files ? (files.Certificate, files.Key, _ca.RootFile) : null,
        };
        await _ejabberd.StartAsync();
        _candor.Server.Options.S2sRoutes = $"{EjabberdFixture.Domain}=127.0.0.1:{_ejabberd.S2sPort}";
    }

    public async Task DisposeAsync()
    {
        await _ejabberd.DisposeAsync();
        await _candor.StopAsync();
        Directory.Delete(_data, recursive: true);
        _ca?.Dispose();
    }

    [Fact]
    public async Task Subscription_presence_and_messages_work_both_ways_with_ejabberd()
    {
        Assert.True(await _candor.Server.Accounts.CreateAsync("cid", "cid-secret"));
        await _ejabberd.CreateUserAsync("anna", "anna-secret");
        await FederationScenario.RunAsync(FederationScenario.CandorUser(_candor, "cid", "cid-secret", FederationScenario.Fingerprint(_candor)),
            _ejabberd.Options("anna", "anna-secret"), "on ejabberd", () => _ejabberd.Log);
        // ejabberd's own account of how each direction authenticated.
        var mechanism = certificates ? "EXTERNAL" : "dialback";
        Assert.Contains($"Accepted inbound s2s {mechanism} authentication {CandorDomain} -> {EjabberdFixture.Domain}", _ejabberd.Log);
        Assert.Contains($"Accepted outbound s2s {mechanism} authentication {EjabberdFixture.Domain} -> {CandorDomain}", _ejabberd.Log);
    }
}
