using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Candor.Server.Hosting;
using Candor.Server.Tests.Harness;
using Candor.Xmpp;

namespace Candor.Client.Tests.Infrastructure;

/// <summary>
/// One user on Candor and one on a server we did not write, each on its own domain: subscription, presence and
/// messages both ways over federation, as each user's client sees them.
/// </summary>
public static class FederationScenario
{
    /// <summary>
    /// Candor serving <paramref name="domain"/> on loopback with federation on a free port; with <paramref name="ca"/>
    /// a certificate it issued (with an XmppAddr besides the DNS-ID when <paramref name="xmppAddr"/>), peers'
    /// certificates judged against it (and then required), and a direct TLS s2s port.
    /// </summary>
    public static Task<CandorHost> StartCandorAsync(string domain, string data, TestCa? ca, bool xmppAddr = true)
    {
        var options = new ServerOptions
        {
            Domain = domain, DataDirectory = data, Bind = "127.0.0.1", C2sPort = 0, TlsPort = -1, S2sPort = 0,
            HttpPort = -1, HttpsPort = -1, MucDomain = "",
        };
        if (ca is not null)
        {
            (options.CertificateFile, options.KeyFile) = ca.IssueFiles(domain, xmppAddr);
            options.S2sTrustedCaFile = ca.RootFile;
            options.S2sTlsPort = 0;
        }
        return CandorHost.StartAsync(options, _ => { });
    }

    /// <summary>The SHA-256 fingerprint of the certificate Candor serves (the operator's, or the self-signed one it made).</summary>
    public static string Fingerprint(CandorHost candor)
    {
        var options = candor.Server.Options;
        using var certificate = X509Certificate2.CreateFromPem(File.ReadAllText(Certificates.Files(options).Certificate));
        return certificate.GetCertHashString(HashAlgorithmName.SHA256);
    }

    public static XmppClientOptions CandorUser(CandorHost candor, string user, string password, string fingerprint) => new()
    {
        Jid = Jid.Parse($"{user}@{candor.Server.Domain.Domain}"), Password = password, Host = "127.0.0.1", Port = candor.C2sPort,
        CertificateFingerprint = fingerprint, ConnectTimeout = TimeSpan.FromSeconds(20), RequestTimeout = TimeSpan.FromSeconds(20),
    };

    /// <param name="status">The status the peer's user publishes, checked where Candor's user receives it.</param>
    /// <param name="peerLog">The peer server's log, added to a failure.</param>
    public static async Task RunAsync(XmppClientOptions candorUser, XmppClientOptions peerUser, string status, Func<string> peerLog)
    {
        var (cidJid, annaJid) = (candorUser.Jid, peerUser.Jid);
        await using var cid = new XmppClient(candorUser);
        await using var anna = new XmppClient(peerUser);
        var cidEvents = new EventLog(cid);
        var annaEvents = new EventLog(anna);
        await cid.ConnectAsync();
        await anna.ConnectAsync();
        await cid.GetRosterAsync();
        await anna.GetRosterAsync();
        await cid.SendPresenceAsync();
        await anna.SendPresenceAsync(show: "away", status: status);

        try
        {
            // Candor → peer: cid asks, anna (on the peer) accepts, cid sees her presence.
            await cid.SubscribeAsync(annaJid);
            await annaEvents.WaitAsync<SubscriptionEvent>(s => s.From == cidJid && s.Kind == SubscriptionKind.Subscribe, 30);
            await anna.AcceptSubscriptionAsync(cidJid);
            await cidEvents.WaitAsync<SubscriptionEvent>(s => s.From == annaJid && s.Kind == SubscriptionKind.Subscribed, 30);
            var away = await cidEvents.WaitAsync<PresenceUpdate>(p => p.From.Bare == annaJid && p.Available, 30);
            Assert.Equal(status, away.Status);

            // Peer → Candor: anna asks back, cid accepts, anna sees his presence.
            await anna.SubscribeAsync(cidJid);
            await cidEvents.WaitAsync<SubscriptionEvent>(s => s.From == annaJid && s.Kind == SubscriptionKind.Subscribe, 30);
            await cid.AcceptSubscriptionAsync(annaJid);
            await annaEvents.WaitAsync<SubscriptionEvent>(s => s.From == cidJid && s.Kind == SubscriptionKind.Subscribed, 30);
            await annaEvents.WaitAsync<PresenceUpdate>(p => p.From.Bare == cidJid && p.Available, 30);

            await cid.SendMessageAsync(annaJid, "hello from candor", requestReceipt: false);
            var toAnna = await annaEvents.WaitAsync<ChatMessage>(m => m.Body == "hello from candor", 30);
            Assert.Equal(cidJid, toAnna.From!.Bare);
            await anna.SendMessageAsync(cidJid, "hello to candor", requestReceipt: false);
            var toCid = await cidEvents.WaitAsync<ChatMessage>(m => m.Body == "hello to candor", 30);
            Assert.Equal(annaJid, toCid.From!.Bare);
        }
        catch (Exception e) when (e is TimeoutException or Xunit.Sdk.XunitException)
        {
            throw new Exception($"{e.Message}\npeer server log:\n{peerLog()}", e);
        }
    }
}
