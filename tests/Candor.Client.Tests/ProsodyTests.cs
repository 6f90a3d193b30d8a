using Candor.Client.Tests.Infrastructure;
using Candor.Xmpp;

namespace Candor.Client.Tests;

/// <summary>The same library against another server: Prosody 0.12 from Debian (SCRAM-SHA-1 and PLAIN).</summary>
public sealed class ProsodyTests(ProsodyFixture prosody) : IClassFixture<ProsodyFixture>
{
    [Fact]
    public async Task Logs_in_with_scram_sha_1_over_starttls_with_a_pinned_certificate()
    {
        await prosody.CreateUserAsync("login", "login-secret");
        await using var client = new XmppClient(prosody.Options("login", "login-secret"));
        await client.ConnectAsync();
        Assert.StartsWith("SCRAM-SHA-1", client.Mechanism);
        Assert.False(client.UsedSasl2, "Prosody 0.12 offers no SASL2: the library falls back to RFC 6120 SASL");
        Assert.Equal("login@localhost", client.BoundJid!.Bare.ToString());
        Assert.Equal(prosody.Fingerprint, client.ServerCertificateFingerprint);
        await client.PingAsync();
    }

    [Fact]
    public async Task Plain_over_tls_works_too()
    {
        await prosody.CreateUserAsync("plain", "plain-secret");
        await using var client = new XmppClient(prosody.Options("plain", "plain-secret") with { Mechanisms = ["PLAIN"] });
        await client.ConnectAsync();
        Assert.Equal("PLAIN", client.Mechanism);
    }

    [Fact]
    public async Task Bad_password_is_an_authentication_failure()
    {
        await prosody.CreateUserAsync("victim", "right-secret");
        await using var client = new XmppClient(prosody.Options("victim", "wrong-secret"));
        var e = await Assert.ThrowsAsync<XmppAuthenticationException>(() => client.ConnectAsync());
        Assert.Equal("not-authorized", e.Condition);
    }

    [Fact]
    public async Task Unpinned_self_signed_certificate_is_refused()
    {
        await prosody.CreateUserAsync("cert", "cert-secret");
        await using var client = new XmppClient(prosody.Options("cert", "cert-secret") with { CertificateFingerprint = null });
        var e = await Assert.ThrowsAsync<XmppTlsException>(() => client.ConnectAsync());
        Assert.Equal(TlsFailure.CertificateInvalid, e.Reason);
    }

    [Fact]
    public async Task Two_users_subscribe_and_exchange_a_message_with_a_receipt()
    {
        await prosody.CreateUserAsync("anna", "anna-secret");
        await prosody.CreateUserAsync("ben", "ben-secret");
        var annaJid = Jid.Parse("anna@localhost");
        var benJid = Jid.Parse("ben@localhost");
        await using var anna = new XmppClient(prosody.Options("anna", "anna-secret"));
        await using var ben = new XmppClient(prosody.Options("ben", "ben-secret"));
        var annaEvents = new EventLog(anna);
        var benEvents = new EventLog(ben);
        await anna.ConnectAsync();
        await ben.ConnectAsync();
        await anna.GetRosterAsync();
        await ben.GetRosterAsync();
        await anna.SendPresenceAsync();
        await ben.SendPresenceAsync(show: "away", status: "lunch");

        await anna.SubscribeAsync(benJid);
        await annaEvents.WaitAsync<RosterPush>(p => p.Item.Jid == benJid && p.Item.PendingOut);
        await benEvents.WaitAsync<SubscriptionEvent>(s => s.From == annaJid && s.Kind == SubscriptionKind.Subscribe);
        await ben.AcceptSubscriptionAsync(annaJid);
        await annaEvents.WaitAsync<SubscriptionEvent>(s => s.From == benJid && s.Kind == SubscriptionKind.Subscribed);
        var away = await annaEvents.WaitAsync<PresenceUpdate>(p => p.From.Bare == benJid && p.Available);
        Assert.Equal("away", away.Label);
        Assert.Equal("lunch", away.Status);
        Assert.Contains(anna.Roster, i => i.Jid == benJid && i.Subscription == "to");

        var id = await anna.SendMessageAsync(benJid, "hallo ben");
        var message = await benEvents.WaitAsync<ChatMessage>(m => m.Body is not null);
        Assert.Equal("hallo ben", message.Body);
        Assert.Equal(annaJid, message.From!.Bare);
        await annaEvents.WaitAsync<ReceiptReceived>(r => r.Id == id);
    }
}
