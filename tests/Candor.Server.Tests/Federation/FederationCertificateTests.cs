using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Candor.Server.Hosting;
using Candor.Server.Tests.Harness;
using Candor.Xml;
using Candor.Xmpp;

namespace Candor.Server.Tests.Federation;

/// <summary>
/// a.test and b.test with certificates from a CA made for the test, which both trust (S2sTrustedCaFile); with an
/// operator's certificate S2sRequireValidCertificates is in effect by default.
/// </summary>
public sealed class CertifiedDomains : TwoDomains
{
    public TestCa Ca { get; } = new();

    protected override void Configure(string domain, ServerOptions options)
    {
        (options.CertificateFile, options.KeyFile) = Ca.IssueFiles(domain);
        options.S2sTrustedCaFile = Ca.RootFile;
        options.S2sTlsPort = 0;
    }

    public override async Task DisposeAsync()
    {
        await base.DisposeAsync();
        Ca.Dispose();
    }
}

public sealed class FederationCertificateTests(CertifiedDomains servers) : IClassFixture<CertifiedDomains>
{
    private static readonly TimeSpan Slow = TimeSpan.FromSeconds(20);

    [Fact]
    public async Task Servers_with_trusted_certificates_exchange_messages_both_ways()
    {
        await using var alice = await TwoDomains.OnlineAsync(servers.A, "alice");
        await using var bob = await TwoDomains.OnlineAsync(servers.B, "bob");
        await alice.SendMessageAsync(bob.Full, "certified hello");
        Assert.Equal(alice.Full, (await bob.ExpectMessageAsync("certified hello", Slow)).GetAttribute("from"));
        await bob.SendMessageAsync(alice.Full, "certified reply");
        Assert.Equal(bob.Full, (await alice.ExpectMessageAsync("certified reply", Slow)).GetAttribute("from"));
    }

    [Fact]
    public async Task A_server_that_b_cannot_call_back_is_authenticated_by_its_certificate_alone()
    {
        // b.test has no route to c.test, so dialback (which needs b.test to reach c.test's server) cannot succeed:
        // the message arrives only because c.test proved itself with SASL EXTERNAL.
        await using var c = await servers.StartAsync("c.test");
        c.Server.Options.S2sRoutes = $"b.test=127.0.0.1:{servers.B.S2sPort}";
        await using var carol = await TwoDomains.OnlineAsync(c, "carol");
        await using var bob = await TwoDomains.OnlineAsync(servers.B, "bob");
        await carol.SendMessageAsync(bob.Full, "proved by certificate");
        Assert.Equal(carol.Full, (await bob.ExpectMessageAsync("proved by certificate", Slow)).GetAttribute("from"));
    }

    [Fact]
    public async Task Direct_tls_routes_carry_messages()
    {
        await using var d = await servers.StartAsync("d.test");
        d.Server.Options.S2sRoutes = $"b.test=tls:127.0.0.1:{servers.B.S2sTlsPort}";
        servers.B.Server.Options.S2sRoutes = $"a.test=127.0.0.1:{servers.A.S2sPort},d.test=tls:127.0.0.1:{d.S2sTlsPort}";
        await using var dora = await TwoDomains.OnlineAsync(d, "dora");
        await using var bob = await TwoDomains.OnlineAsync(servers.B, "bob");
        await dora.SendMessageAsync(bob.Full, "over direct tls");
        await bob.ExpectMessageAsync("over direct tls", Slow);
        await bob.SendMessageAsync(dora.Full, "back over direct tls");
        await dora.ExpectMessageAsync("back over direct tls", Slow);
    }

    [Fact]
    public async Task The_direct_tls_port_speaks_tls_first_with_alpn_xmpp_server()
    {
        await using var peer = await XmppTestClient.ConnectTcpAsync(servers.B.S2sTlsPort, directTls: true, domain: "b.test", alpn: ["xmpp-server"]);
        Assert.Equal("xmpp-server", peer.NegotiatedAlpn.ToString());
        peer.ServerFrom = "a.test";
        var features = await peer.OpenStreamAsync();
        Assert.Null(features.GetChild("starttls", Ns.Tls));
        Assert.NotNull(features.GetChild("dialback", Ns.DialbackFeature));
    }

    /// <summary>A raw peer claiming <paramref name="claimed"/>, showing <paramref name="certificate"/> in the STARTTLS handshake.</summary>
    private async Task<XmppTestClient> PeerAsync(string claimed, X509Certificate2? certificate)
    {
        var peer = await XmppTestClient.ConnectTcpAsync(servers.B.S2sPort, domain: "b.test");
        peer.ServerFrom = claimed;
        peer.ClientCertificate = certificate;
        await peer.OpenStreamAsync();
        await peer.StartTlsAsync();
        return peer;
    }

    private static string Base64(string text) => Convert.ToBase64String(System.Text.Encoding.UTF8.GetBytes(text));

    [Theory]
    [InlineData(true, "=")]
    [InlineData(false, "a.test")]
    public async Task A_certificate_naming_the_claimed_domain_authenticates_it_by_sasl_external(bool dnsName, string authzid)
    {
        await using var bob = await TwoDomains.OnlineAsync(servers.B, "bob");
        using var certificate = servers.Ca.Issue("a.test", dnsName);
        await using var peer = await PeerAsync("a.test", certificate);
        Assert.Equal(["EXTERNAL"], peer.Mechanisms);
        await peer.SendAsync($"<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='EXTERNAL'>{(authzid == "=" ? "=" : Base64(authzid))}</auth>");
        await peer.ExpectAsync(e => e.Is("success", Ns.Sasl), Slow);
        var features = await peer.OpenStreamAsync();
        Assert.Null(features.GetChild("mechanisms", Ns.Sasl));

        await peer.SendAsync($"<message from='x@a.test/r' to='{bob.Full}' type='chat'><body>by certificate</body></message>");
        await bob.ExpectMessageAsync("by certificate", Slow);
    }

    [Fact]
    public async Task A_certificate_for_another_domain_gets_no_external_no_dialback_and_delivers_nothing()
    {
        await using var bob = await TwoDomains.OnlineAsync(servers.B, "bob");
        using var certificate = servers.Ca.Issue("a.test");
        await using var peer = await PeerAsync("c.test", certificate);
        Assert.Empty(peer.Mechanisms);
        await peer.SendAsync("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='EXTERNAL'>=</auth>");
        var failure = await peer.ExpectAsync(e => e.Is("failure", Ns.Sasl), Slow);
        Assert.NotNull(failure.GetChild("not-authorized", Ns.Sasl));

        // With S2sRequireValidCertificates, dialback is no way around the certificate.
        await peer.SendAsync("<db:result from='c.test' to='b.test'>0123456789abcdef</db:result>");
        var result = await peer.ExpectAsync(e => e.Is("result", Ns.Dialback), Slow);
        Assert.Equal("error", result.GetAttribute("type"));
        Assert.NotNull(result.GetChild("error", Ns.Server)!.GetChild("not-authorized", Ns.Stanzas));

        await peer.SendAsync($"<message from='mallory@c.test' to='{bob.Full}' type='chat'><body>forged</body></message>");
        await peer.ExpectStreamErrorAsync("invalid-from", Slow);
        await bob.ExpectNothingAsync(TimeSpan.FromMilliseconds(500), e => e.IsMessage());
    }

    [Fact]
    public async Task An_authorization_identity_other_than_the_claimed_domain_is_refused()
    {
        using var certificate = servers.Ca.Issue("a.test");
        await using var peer = await PeerAsync("a.test", certificate);
        await peer.SendAsync($"<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='EXTERNAL'>{Base64("c.test")}</auth>");
        var failure = await peer.ExpectAsync(e => e.Is("failure", Ns.Sasl), Slow);
        Assert.NotNull(failure.GetChild("invalid-authzid", Ns.Sasl));
    }

    [Fact]
    public async Task An_unreadable_trusted_ca_file_stops_the_server_from_starting()
    {
        var error = await Assert.ThrowsAsync<OptionsException>(() =>
            servers.StartAsync("e.test", o => o.S2sTrustedCaFile = Path.Combine(servers.Ca.Directory, "missing.pem")));
        Assert.Contains("S2sTrustedCaFile", error.Message);
    }

    [Fact]
    public async Task A_self_signed_certificate_for_the_domain_is_not_trusted()
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest("CN=a.test", key, HashAlgorithmName.SHA256);
        var names = new SubjectAlternativeNameBuilder();
        names.AddDnsName("a.test");
        request.CertificateExtensions.Add(names.Build());
        using var selfSigned = request.CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddDays(1));
        await using var peer = await PeerAsync("a.test", selfSigned);
        Assert.Empty(peer.Mechanisms);
        await peer.SendAsync("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='EXTERNAL'>=</auth>");
        Assert.NotNull((await peer.ExpectAsync(e => e.Is("failure", Ns.Sasl), Slow)).GetChild("not-authorized", Ns.Sasl));
    }
}
