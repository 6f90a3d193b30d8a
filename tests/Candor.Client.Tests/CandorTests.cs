using Candor.Client.Tests.Infrastructure;
using Candor.Xml;
using Candor.Xmpp;

namespace Candor.Client.Tests;

/// <summary>The client library over real sockets against an in-process Candor server.</summary>
public sealed class CandorTests(CandorFixture server) : IClassFixture<CandorFixture>
{
    [Fact]
    public async Task Starttls_with_pinned_certificate_binds_with_SCRAM_SHA_256_PLUS()
    {
        var (jid, password) = await server.CreateUserAsync();
        await using var client = await server.ConnectAsync(jid, password);
        Assert.True(client.IsConnected);
        Assert.Equal("SCRAM-SHA-256-PLUS", client.Mechanism);
        Assert.True(client.UsedSasl2, "Candor offers SASL2 (XEP-0388), so the library uses it");
        Assert.Equal(jid, client.BoundJid!.Bare);
        Assert.NotNull(client.BoundJid.Resource);
        Assert.Equal(server.Fingerprint, client.ServerCertificateFingerprint);
        Assert.True(await client.PingAsync() < TimeSpan.FromSeconds(10));
    }

    [Fact]
    public async Task Direct_tls_in_insecure_mode_warns_and_works()
    {
        var (jid, password) = await server.CreateUserAsync();
        var warnings = new List<string>();
        await using var client = new XmppClient(server.Options(jid, password, directTls: true) with { CertificateFingerprint = null, Insecure = true });
        client.Warning += warnings.Add;
        await client.ConnectAsync();
        Assert.Contains(warnings, w => w.Contains("INSECURE", StringComparison.Ordinal));
        Assert.Equal("SCRAM-SHA-256-PLUS", client.Mechanism);
    }

    public static TheoryData<string, bool> EveryMechanismInBothProfiles()
    {
        var data = new TheoryData<string, bool>();
        foreach (var sasl2 in new[] { true, false })
            foreach (var mechanism in new[] { "SCRAM-SHA-1", "SCRAM-SHA-256", "SCRAM-SHA-1-PLUS", "PLAIN" })
                data.Add(mechanism, sasl2);
        return data;
    }

    [Theory]
    [MemberData(nameof(EveryMechanismInBothProfiles))]
    public async Task Every_mechanism_authenticates_with_sasl2_and_with_rfc_6120_sasl(string mechanism, bool sasl2)
    {
        var (jid, password) = await server.CreateUserAsync();
        await using var client = new XmppClient(server.Options(jid, password) with { Mechanisms = [mechanism], UseSasl2 = sasl2 });
        await client.ConnectAsync();
        Assert.Equal(mechanism, client.Mechanism);
        Assert.Equal(sasl2, client.UsedSasl2);
        await client.PingAsync();
    }

    [Fact]
    public async Task The_user_agent_reaches_the_server_and_identifies_the_client_across_resources()
    {
        var (jid, password) = await server.CreateUserAsync();
        var id = Guid.NewGuid().ToString();
        var options = server.Options(jid.WithResource("one"), password) with { UserAgentId = id, UserAgentSoftware = "Candor tests", UserAgentDevice = "CI box" };
        await using (var first = new XmppClient(options))
        {
            await first.ConnectAsync();
            var session = Assert.Single(server.Host.Server.Sessions.Get(jid.Local!));
            Assert.Equal(new Candor.Server.Core.UserAgent(id, "Candor tests", "CI box"), session.UserAgent);
        }
        await using var second = new XmppClient(options with { Jid = jid.WithResource("two") });
        await second.ConnectAsync();
        await second.PingAsync();
        var client = Assert.Single(await server.Host.Server.Clients.ListAsync(jid.Local!));
        Assert.Equal(("Candor tests", "CI box", "two"), (client.Software, client.Device, client.Resource));
    }

    [Fact]
    public async Task Requested_resource_is_bound()
    {
        var (jid, password) = await server.CreateUserAsync();
        await using var client = await server.ConnectAsync(jid.WithResource("laptop"), password);
        Assert.Equal("laptop", client.BoundJid!.Resource);
    }

    [Fact]
    public async Task Self_signed_certificate_is_refused_without_pin_or_insecure()
    {
        var (jid, password) = await server.CreateUserAsync();
        await using var client = new XmppClient(server.Options(jid, password) with { CertificateFingerprint = null });
        var e = await Assert.ThrowsAsync<XmppTlsException>(() => client.ConnectAsync());
        Assert.Equal(TlsFailure.CertificateInvalid, e.Reason);
        Assert.False(client.IsConnected);
    }

    [Fact]
    public async Task Wrong_fingerprint_is_refused()
    {
        var (jid, password) = await server.CreateUserAsync();
        await using var client = new XmppClient(server.Options(jid, password) with { CertificateFingerprint = new string('A', 64) });
        var e = await Assert.ThrowsAsync<XmppTlsException>(() => client.ConnectAsync());
        Assert.Equal(TlsFailure.FingerprintMismatch, e.Reason);
        Assert.Contains(server.Fingerprint, e.Message);
    }

    [Fact]
    public async Task Bad_password_is_an_authentication_failure()
    {
        var (jid, _) = await server.CreateUserAsync();
        await using var client = new XmppClient(server.Options(jid, "wrong"));
        var e = await Assert.ThrowsAsync<XmppAuthenticationException>(() => client.ConnectAsync());
        Assert.Equal("not-authorized", e.Condition);
    }

    [Fact]
    public async Task Unreachable_port_is_a_connection_failure()
    {
        var (jid, password) = await server.CreateUserAsync();
        var port = FreePort();
        await using var client = new XmppClient(server.Options(jid, password) with { Port = port });
        var e = await Assert.ThrowsAsync<XmppConnectionException>(() => client.ConnectAsync());
        Assert.Equal(ConnectionFailure.Unreachable, e.Reason);
    }

    [Fact]
    public async Task Unresolvable_host_is_a_connection_failure()
    {
        var (jid, password) = await server.CreateUserAsync();
        await using var client = new XmppClient(server.Options(jid, password) with { Host = "no-such-host.invalid" });
        var e = await Assert.ThrowsAsync<XmppConnectionException>(() => client.ConnectAsync());
        Assert.Equal(ConnectionFailure.Unresolvable, e.Reason);
    }

    [Fact]
    public async Task Srv_record_from_the_resolver_leads_to_the_server()
    {
        var (jid, password) = await server.CreateUserAsync();
        await using var dns = FakeDns.Start(("_xmpp-client._tcp.localhost", new SrvRecord("127.0.0.1", server.C2sPort, 10, 5)));
        await using var client = new XmppClient(server.Options(jid, password) with { Host = null, DnsServers = [dns.EndPoint] });
        await client.ConnectAsync();
        Assert.True(client.IsConnected);
        Assert.Equal($"127.0.0.1:{server.C2sPort}", client.EndPoint);
        Assert.Contains("_xmpps-client._tcp.localhost", dns.Queries);
    }

    [Fact]
    public async Task Subscription_presence_messages_receipts_and_chat_states_between_two_users()
    {
        var (aliceJid, alicePassword) = await server.CreateUserAsync("alice");
        var (bobJid, bobPassword) = await server.CreateUserAsync("bob");
        await using var alice = await server.ConnectAsync(aliceJid, alicePassword);
        await using var bob = await server.ConnectAsync(bobJid, bobPassword);
        var aliceEvents = new EventLog(alice);
        var bobEvents = new EventLog(bob);
        Assert.Empty(await alice.GetRosterAsync());
        Assert.Empty(await bob.GetRosterAsync());
        await alice.SendPresenceAsync();
        await bob.SendPresenceAsync(status: "here");

        // alice asks, bob accepts and asks back, alice accepts.
        await alice.SetRosterItemAsync(bobJid, "Bob", ["Friends"]);
        var push = await aliceEvents.WaitAsync<RosterPush>(p => p.Item.Jid == bobJid);
        Assert.NotNull(push.Stanza.GetChild("query", Ns.Roster)?.GetAttribute("ver"));
        Assert.Equal("Bob", push.Item.Name);
        Assert.Equal(["Friends"], push.Item.Groups);
        await alice.SubscribeAsync(bobJid);
        var request = await bobEvents.WaitAsync<SubscriptionEvent>(s => s.Kind == SubscriptionKind.Subscribe);
        Assert.Equal(aliceJid, request.From);
        Assert.Equal(bobJid.ToString(), request.Stanza.GetAttribute("to"));
        await bob.AcceptSubscriptionAsync(aliceJid);
        await bob.SubscribeAsync(aliceJid);
        await aliceEvents.WaitAsync<SubscriptionEvent>(s => s.Kind == SubscriptionKind.Subscribe && s.From == bobJid);
        await alice.AcceptSubscriptionAsync(bobJid);

        var bobOnline = await aliceEvents.WaitAsync<PresenceUpdate>(p => p.From.Bare == bobJid && p.Available);
        Assert.Equal("here", bobOnline.Status);
        Assert.Equal("online", bobOnline.Label);
        await bobEvents.WaitAsync<PresenceUpdate>(p => p.From.Bare == aliceJid && p.Available);
        Assert.Single(alice.PresenceOf(bobJid));
        // alice's own approval reaches her roster as a push, independently of bob's presence.
        await aliceEvents.WaitAsync<RosterPush>(p => p.Item.Jid == bobJid && p.Item.Subscription == "both");
        Assert.Contains(alice.Roster, i => i.Jid == bobJid && i.Subscription == "both");

        // A message with a receipt request and chat state; bob's client answers the receipt itself.
        await alice.SendChatStateAsync(bobJid, ChatState.Composing);
        var composing = await bobEvents.WaitAsync<ChatMessage>(m => m.State == ChatState.Composing);
        Assert.Null(composing.Body);
        var text = "hello <bob> & ünïcödé";
        var id = await alice.SendMessageAsync(bobJid, text);
        var received = await bobEvents.WaitAsync<ChatMessage>(m => m.Body is not null);
        Assert.Equal(text, received.Body);
        Assert.Equal(aliceJid, received.From!.Bare);
        Assert.Equal("chat", received.Type);
        Assert.Equal(ChatState.Active, received.State);
        Assert.True(received.ReceiptRequested);
        var receipt = await aliceEvents.WaitAsync<ReceiptReceived>(r => r.Id == id);
        Assert.Equal(bobJid, receipt.From!.Bare);

        // bob goes away: alice sees it.
        await bob.DisconnectAsync();
        await aliceEvents.WaitAsync<PresenceUpdate>(p => p.From.Bare == bobJid && !p.Available);
        Assert.Empty(alice.PresenceOf(bobJid));

        await alice.RemoveRosterItemAsync(bobJid);
        await aliceEvents.WaitAsync<RosterPush>(p => p.Item.Jid == bobJid && p.Removed);
        Assert.DoesNotContain(alice.Roster, i => i.Jid == bobJid);
    }

    [Fact]
    public async Task Iq_errors_are_typed_and_events_can_be_enumerated()
    {
        var (aliceJid, alicePassword) = await server.CreateUserAsync("alice");
        var (bobJid, bobPassword) = await server.CreateUserAsync("bob");
        await using var alice = await server.ConnectAsync(aliceJid, alicePassword);
        await using var bob = await server.ConnectAsync(bobJid, bobPassword);

        var iq = Stanza.CreateIq("get", null, null, Jid.Parse("localhost"));
        iq.AddChild("query", "urn:example:unknown");
        var e = await Assert.ThrowsAsync<XmppStanzaException>(() => alice.IqAsync(iq));
        Assert.Equal("service-unavailable", e.Error.Condition);

        // bob's client answers pings and disco itself.
        var rtt = await alice.PingAsync(bob.BoundJid);
        Assert.True(rtt > TimeSpan.Zero);
        var disco = Stanza.CreateIq("get", null, null, bob.BoundJid);
        disco.AddChild("query", Ns.DiscoInfo);
        var info = await alice.IqAsync(disco);
        Assert.Contains(info.GetChild("query", Ns.DiscoInfo)!.Elements, f => f.GetAttribute("var") == ClientNs.Receipts);

        await bob.SendPresenceAsync(); // a type='normal' message to the bare JID goes to available resources only
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        var events = bob.ReadEventsAsync(cts.Token).GetAsyncEnumerator(cts.Token);
        var next = events.MoveNextAsync().AsTask();
        await alice.SendMessageAsync(bobJid, "via the enumerator", type: "normal", requestReceipt: false, state: null);
        while (true)
        {
            Assert.True(await next);
            if (events.Current is ChatMessage { Body: not null } m)
            {
                Assert.Equal("via the enumerator", m.Body);
                Assert.Equal("normal", m.Type);
                break;
            }
            next = events.MoveNextAsync().AsTask();
        }
        await bob.DisconnectAsync();
        while (await events.MoveNextAsync())
        {
        }
        Assert.Null(await bob.Ended);
        await events.DisposeAsync();
    }

    [Fact]
    public async Task Message_to_unknown_user_comes_back_as_an_error()
    {
        var (jid, password) = await server.CreateUserAsync();
        await using var client = await server.ConnectAsync(jid, password);
        var log = new EventLog(client);
        var id = await client.SendMessageAsync(Jid.Parse("nobody-here@localhost"), "anyone?");
        var error = await log.WaitAsync<ChatMessage>(m => m.Type == "error" && m.Id == id);
        Assert.NotNull(error.Error);
    }

    [Fact]
    public async Task Conflicting_login_ends_the_session_with_a_stream_error()
    {
        var (jid, password) = await server.CreateUserAsync();
        await using var first = await server.ConnectAsync(jid.WithResource("same"), password);
        await using var second = await server.ConnectAsync(jid.WithResource("same"), password);
        var ended = await first.Ended.WaitAsync(TimeSpan.FromSeconds(10));
        // Candor writes <stream:error><conflict/> and then aborts the connection (a TCP reset), which can destroy the
        // error before the client reads it; the scripted-server tests cover the stream error path deterministically.
        if (ended is XmppStreamErrorException error) Assert.Equal("conflict", error.Condition);
        else Assert.True(ended is XmppConnectionException { Reason: ConnectionFailure.ClosedByServer }, $"{ended}");
        Assert.True(second.IsConnected);
    }

    private static int FreePort()
    {
        var listener = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
        listener.Start();
        var port = ((System.Net.IPEndPoint)listener.LocalEndpoint).Port;
        listener.Stop();
        return port;
    }
}
