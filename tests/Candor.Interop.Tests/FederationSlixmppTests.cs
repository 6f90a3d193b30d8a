using Candor.Client.Tests.Infrastructure;
using Candor.Interop.Tests.Infrastructure;
using Candor.Server.Tests.Harness;
using Candor.Xmpp;
using Xunit.Abstractions;

namespace Candor.Interop.Tests;

/// <summary>
/// Federation seen from clients we did not write: a slixmpp user on a <c>candor serve</c> process (domain
/// candor.example) and a slixmpp user on a peer server of its own domain, all on loopback. scripts/federation_pair.py
/// makes them subscribe to each other, see each other's presence, exchange messages and IQs both ways. Each class shares
/// one pair of servers between its tests (<see cref="FederationPeers"/>); each test uses accounts of its own.
/// </summary>
public abstract class FederationSlixmppTests(FederationPeers peers, ITestOutputHelper output)
{
    private static int _accounts;

    /// <summary>The log line Candor writes when the peer's stream to it authenticated, and how (null: the peers check it).</summary>
    protected abstract string? CandorAcceptedPeer { get; }

    [Fact]
    public async Task Slixmpp_users_subscribe_see_presence_and_exchange_messages_both_ways()
    {
        await Tools.RequireSlixmppAsync();
        var n = Interlocked.Increment(ref _accounts);
        var (cid, anna) = ($"cid{n}@{peers.Candor.ServedDomain}", $"anna{n}@{peers.PeerDomain}");
        await peers.Candor.AddUserAsync(cid, "cid-secret");
        await peers.AddPeerUserAsync($"anna{n}", "anna-secret");

        var result = await ChildProcess.RunAsync(Tools.Python,
            [Tools.Script("federation_pair.py"), CandorServer.Host, peers.Candor.C2sPort.ToString(), cid, "cid-secret",
             "127.0.0.1", peers.PeerC2sPort.ToString(), anna, "anna-secret", "--timeout", "30"],
            TimeSpan.FromMinutes(5));

        output.WriteLine(result.Describe());
        Assert.True(result.Succeeded && result.Output.Contains("PASS"),
            $"federation_pair.py failed\n{result.Describe()}\n{peers.Candor.Transcript}\n--- peer log ---\n{peers.PeerLog}");
        if (CandorAcceptedPeer is { } accepted) Assert.Contains(accepted, peers.Candor.Output);
        peers.AssertPeerAuthentication();
    }

    /// <summary>
    /// No silent discard across domains: a message from the peer's user to an account Candor does not have comes back
    /// over federation as the error Candor gives a local sender (service-unavailable, RFC 6121 8.5.2.1.1).
    /// </summary>
    [Fact]
    public async Task A_peer_users_message_to_a_missing_candor_account_comes_back_as_an_error()
    {
        await Tools.RequireSlixmppAsync();
        var n = Interlocked.Increment(ref _accounts);
        await peers.AddPeerUserAsync($"anna{n}", "anna-secret");

        var result = await ChildProcess.RunAsync(Tools.Python,
            [Tools.Script("federation_bounce.py"), "127.0.0.1", peers.PeerC2sPort.ToString(), $"anna{n}@{peers.PeerDomain}", "anna-secret",
             $"nobody{n}@{peers.Candor.ServedDomain}", "service-unavailable", "--timeout", "30"],
            TimeSpan.FromMinutes(3));

        output.WriteLine(result.Describe());
        Assert.True(result.Succeeded && result.Output.Contains("PASS"),
            $"federation_bounce.py failed\n{result.Describe()}\n{peers.Candor.Transcript}\n--- peer log ---\n{peers.PeerLog}");
    }
}

/// <summary>Candor ↔ Prosody 0.12 (Debian), self-signed certificates on both sides: XEP-0220 dialback both ways.</summary>
[Trait("Category", "Interop")]
public sealed class FederationSlixmppProsodyTests(ProsodyPeers peers, ITestOutputHelper output)
    : FederationSlixmppTests(peers, output), IClassFixture<ProsodyPeers>
{
    protected override string CandorAcceptedPeer => $"{ProsodyFixture.Domain} authenticated by dialback";
}

/// <summary>
/// Candor ↔ Prosody with certificates from a CA the test makes, valid certificates required on both sides (Prosody's
/// s2s_secure_auth, Candor's S2sRequireValidCertificates, on by default with an operator's certificate): both directions
/// authenticate by SASL EXTERNAL (XEP-0178) after STARTTLS, never by dialback.
/// </summary>
[Trait("Category", "Interop")]
public sealed class FederationSlixmppProsodyCertificateTests(ProsodyCertificatePeers peers, ITestOutputHelper output)
    : FederationSlixmppTests(peers, output), IClassFixture<ProsodyCertificatePeers>
{
    protected override string CandorAcceptedPeer => $"{ProsodyFixture.Domain} authenticated by certificate (SASL EXTERNAL)";
}

/// <summary>Candor ↔ ejabberd 23.01 (Debian), self-signed certificates: XEP-0220 dialback over STARTTLS both ways.</summary>
[Trait("Category", "Interop")]
public sealed class FederationSlixmppEjabberdTests(EjabberdPeers peers, ITestOutputHelper output)
    : FederationSlixmppTests(peers, output), IClassFixture<EjabberdPeers>
{
    protected override string CandorAcceptedPeer => $"{EjabberdFixture.Domain} authenticated by dialback";
}

/// <summary>
/// Candor ↔ Candor: two <c>candor serve</c> processes, two domains, self-signed certificates, dialback. They share one
/// bidirectional stream (XEP-0288), so which of them authenticates the other depends on which wrote first.
/// </summary>
[Trait("Category", "Interop")]
public sealed class FederationSlixmppCandorTests(CandorPeers peers, ITestOutputHelper output)
    : FederationSlixmppTests(peers, output), IClassFixture<CandorPeers>
{
    protected override string? CandorAcceptedPeer => null;
}

/// <summary>
/// A <c>candor serve</c> process for candor.example and a peer server for another domain, federating on loopback:
/// Candor reaches the peer through <c>S2sRoutes</c>, the peer reaches Candor through its own means.
/// </summary>
public abstract class FederationPeers : IAsyncLifetime
{
    public const string CandorDomain = "candor.example";

    public CandorServer Candor { get; private set; } = null!;
    public abstract string PeerDomain { get; }
    public abstract int PeerC2sPort { get; }
    public abstract string PeerLog { get; }

    public abstract Task AddPeerUserAsync(string user, string password);

    /// <summary>Checks the peer's own account of how each direction authenticated, where its log gives one.</summary>
    public virtual void AssertPeerAuthentication()
    {
    }

    public abstract Task InitializeAsync();

    public abstract Task DisposeAsync();

    /// <summary>Candor on <paramref name="s2sPort"/> (0: any free port), its outgoing s2s to the peer at <paramref name="peerS2sPort"/>.</summary>
    protected async Task StartCandorAsync(int peerS2sPort, int s2sPort = 0, IReadOnlyDictionary<string, string?>? settings = null)
    {
        var environment = new Dictionary<string, string?>(settings ?? new Dictionary<string, string?>())
        {
            ["CANDOR__S2sRoutes"] = $"{PeerDomain}=127.0.0.1:{peerS2sPort}",
        };
        Candor = await CandorServer.StartAsync(environment: environment, domain: CandorDomain, s2sPort: s2sPort);
    }

    protected async Task StopCandorAsync()
    {
        if (Candor is not null) await Candor.DisposeAsync();
    }
}

/// <summary>
/// Prosody serving localhost; it finds Candor by a DNS SRV record (_xmpp-server._tcp, STARTTLS) a resolver of the
/// test's answers, the target's address from a hosts file.
/// </summary>
public class ProsodyPeers : FederationPeers
{
    private readonly TestCa? _ca;
    private FakeDns _dns = null!;
    private ProsodyFixture _prosody = null!;

    public ProsodyPeers()
        : this(null)
    {
    }

    protected ProsodyPeers(TestCa? ca) => _ca = ca;

    public override string PeerDomain => ProsodyFixture.Domain;
    public override int PeerC2sPort => _prosody.Port;
    public override string PeerLog => _prosody.Log;

    public override Task AddPeerUserAsync(string user, string password) => _prosody.CreateUserAsync(user, password);

    public override async Task InitializeAsync()
    {
        _dns = FakeDns.Start();
        var pki = _ca?.IssueFiles(ProsodyFixture.Domain);
        _prosody = new ProsodyFixture
        {
            FederationDns = _dns.EndPoint, FederationHosts = "127.0.0.1 xmpp.candor-host.example\n",
            Pki = pki is { } files ? (files.Certificate, files.Key, _ca!.RootFile) : null,
        };
        await _prosody.InitializeAsync();
        Dictionary<string, string?>? settings = null;
        if (_ca is not null)
        {
            var (certificate, key) = _ca.IssueFiles(CandorDomain);
            settings = new()
            {
                ["CANDOR__CertificateFile"] = certificate, ["CANDOR__KeyFile"] = key, ["CANDOR__S2sTrustedCaFile"] = _ca.RootFile,
            };
        }
        await StartCandorAsync(_prosody.S2sPort, settings: settings);
        // The SRV target is a name of its own: a hosts entry for candor.example itself would make libunbound answer
        // every name under it locally (NXDOMAIN for the SRV record).
        _dns.Add("_xmpp-server._tcp." + CandorDomain, new SrvRecord("xmpp.candor-host.example", Candor.S2sPort, 0, 0));
    }

    public override void AssertPeerAuthentication()
    {
        if (_ca is null) return;
        Assert.Contains("Accepting SASL EXTERNAL identity from " + CandorDomain, _prosody.Log);
        Assert.Contains("SASL EXTERNAL with " + CandorDomain + " succeeded", _prosody.Log);
    }

    public override async Task DisposeAsync()
    {
        await StopCandorAsync();
        if (_prosody is not null) await _prosody.DisposeAsync();
        if (_dns is not null) await _dns.DisposeAsync();
        _ca?.Dispose();
    }
}

public sealed class ProsodyCertificatePeers() : ProsodyPeers(new TestCa());

/// <summary>ejabberd serving ejabberd.example; it finds Candor by a DNS SRV record its fixture's resolver answers.</summary>
public sealed class EjabberdPeers : FederationPeers
{
    private EjabberdFixture _ejabberd = null!;

    public override string PeerDomain => EjabberdFixture.Domain;
    public override int PeerC2sPort => _ejabberd.Port;
    public override string PeerLog => _ejabberd.Log;

    public override Task AddPeerUserAsync(string user, string password) => _ejabberd.CreateUserAsync(user, password);

    public override async Task InitializeAsync()
    {
        // ejabberd learns Candor's s2s port before Candor starts: its SRV record is written into its configuration.
        var candorS2s = FreePorts.Take(1)[0];
        _ejabberd = new EjabberdFixture { PeerDomain = CandorDomain, PeerPort = candorS2s };
        await _ejabberd.StartAsync();
        await StartCandorAsync(_ejabberd.S2sPort, s2sPort: candorS2s);
    }

    public override void AssertPeerAuthentication()
    {
        Assert.Contains($"Accepted inbound s2s dialback authentication {CandorDomain} -> {EjabberdFixture.Domain}", _ejabberd.Log);
        Assert.Contains($"Accepted outbound s2s dialback authentication {EjabberdFixture.Domain} -> {CandorDomain}", _ejabberd.Log);
    }

    public override async Task DisposeAsync()
    {
        await StopCandorAsync();
        if (_ejabberd is not null) await _ejabberd.DisposeAsync();
    }
}

/// <summary>A second <c>candor serve</c> process serving <see cref="SecondDomain"/>; each finds the other through S2sRoutes.</summary>
public sealed class CandorPeers : FederationPeers
{
    public const string SecondDomain = "candor2.example";
    private CandorServer _second = null!;

    public override string PeerDomain => SecondDomain;
    public override int PeerC2sPort => _second.C2sPort;
    public override string PeerLog => _second.Transcript;

    public override Task AddPeerUserAsync(string user, string password) => _second.AddUserAsync($"{user}@{SecondDomain}", password);

    public override async Task InitializeAsync()
    {
        var secondS2s = FreePorts.Take(1)[0];
        await StartCandorAsync(secondS2s);
        _second = await CandorServer.StartAsync(domain: SecondDomain, s2sPort: secondS2s,
            environment: new Dictionary<string, string?> { ["CANDOR__S2sRoutes"] = $"{CandorDomain}=127.0.0.1:{Candor.S2sPort}" });
    }

    public override void AssertPeerAuthentication() =>
        Assert.True(_second.Output.Contains($"{CandorDomain} authenticated by dialback") || Candor.Output.Contains($"{SecondDomain} authenticated by dialback"),
            $"neither Candor authenticated the other by dialback\n--- {CandorDomain} ---\n{Candor.Output}\n--- {SecondDomain} ---\n{_second.Output}");

    public override async Task DisposeAsync()
    {
        await StopCandorAsync();
        if (_second is not null) await _second.DisposeAsync();
    }
}
