using Candor.Server.Tests.Harness;
using Candor.Server.Tests.Hostile;
using Candor.Xml;
using Candor.Xmpp;
using Candor.Xmpp.Sasl;

namespace Candor.Server.Tests;

/// <summary>
/// XEP-0388 (Extensible SASL Profile) beside RFC 6120 SASL: the &lt;authentication/&gt; feature, the exchange in
/// its own elements, success without a stream restart, and the same limits and checks as the legacy profile.
/// </summary>
public sealed class Sasl2Tests(ServerFixture server) : IClassFixture<ServerFixture>
{
    private static Task<XmppTestClient> SecureAsync(int port) => SaslProfileExtensions.ConnectSecureAsync(port);

    private Task<XmppTestClient> SecureAsync() => SecureAsync(server.C2sPort);

    private static byte[] Binding(XmppTestClient client) => ChannelBinding.TlsServerEndPoint(client.ServerCertificate!);

    private static void AssertFailure(Element outcome, string condition)
    {
        Assert.True(outcome.Is("failure", Ns.Sasl2), $"expected a SASL2 <failure/>, got {outcome}");
        Assert.True(outcome.SaslCondition() == condition, $"expected <{condition}/>, got {outcome}");
    }

    // ---- the feature

    [Fact]
    public async Task Over_tls_both_profiles_are_offered_with_the_same_mechanisms()
    {
        await using var client = await SecureAsync();

        Assert.Equal(["SCRAM-SHA-256-PLUS", "SCRAM-SHA-1-PLUS", "SCRAM-SHA-256", "SCRAM-SHA-1", "PLAIN"], Sasl2Exchange.Mechanisms(client.Features));
        Assert.Equal(client.Mechanisms, Sasl2Exchange.Mechanisms(client.Features));
        Assert.NotNull(client.Features!.GetChild("sasl-channel-binding", Ns.SaslChannelBinding));
    }

    [Fact]
    public async Task Before_tls_neither_profile_is_offered_and_authenticate_is_refused()
    {
        var user = await server.CreateUserAsync();
        await using var client = await XmppTestClient.ConnectAsync(server.C2sPort);
        Assert.Null(client.Features!.GetChild("authentication", Ns.Sasl2));

        var plain = Convert.ToBase64String(SaslPlain.Create(null, user, ServerFixture.Password(user)));
        await client.SendAsync(Sasl2Exchange.Authenticate("PLAIN", plain));
        await client.ExpectStreamErrorAsync("policy-violation");
    }

    [Fact]
    public async Task Without_tls_plain_is_not_offered_and_scram_binds_without_a_restart_over_websocket()
    {
        await using var own = await ServerFixture.StartAsync(o => o.HttpPort = 0);
        var user = await own.CreateUserAsync();
        await using var ws = await WebSocketAttacker.ConnectAsync(own.Host.HttpPort);
        await ws.SendAsync(WebSocketAttacker.Open);
        await ws.ExpectAsync(e => e.Is("open", WebSocketAttacker.Framing));
        var features = await ws.ExpectAsync(e => e.Is("features", Ns.Stream));
        Assert.Equal(["SCRAM-SHA-256", "SCRAM-SHA-1"], Sasl2Exchange.Mechanisms(features));
        var exchange = new Sasl2Exchange(ws.SendAsync, ws.ExpectAsync);

        var refused = await exchange.AuthenticateAsync(user, ServerFixture.Password(user), "PLAIN");
        AssertFailure(refused, "encryption-required");
        var success = await exchange.AuthenticateAsync(user, ServerFixture.Password(user), "SCRAM-SHA-1");

        Assert.True(success.Is("success", Ns.Sasl2), "expected success, got " + success);
        var after = await ws.ExpectAsync(e => e.Is("features", Ns.Stream) || e.Is("open", WebSocketAttacker.Framing));
        Assert.True(after.Is("features", Ns.Stream), "no <open/>: SASL2 does not restart the stream");
        Assert.NotNull(after.GetChild("bind", Ns.Bind));
        await ws.SendAsync("<iq xmlns='jabber:client' type='set' id='b'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>ws</resource></bind></iq>");
        var bound = await ws.ExpectAsync(e => e.IsIq() && e.Id() == "b");
        Assert.Equal($"{user}@localhost/ws", bound.GetChild("bind", Ns.Bind)?.GetChildText("jid", Ns.Bind));
    }

    // ---- success

    /// <summary>Every mechanism in both profiles: SaslTests. Here, what SASL2's success says and what follows it.</summary>
    [Theory]
    [InlineData("SCRAM-SHA-256-PLUS")]
    [InlineData("PLAIN")]
    public async Task Success_carries_the_bare_jid_and_the_stream_continues_to_bind_without_a_restart(string mechanism)
    {
        var user = await server.CreateUserAsync();
        await using var client = await SecureAsync();

        var success = await Sasl2Exchange.Over(client).AuthenticateAsync(user, ServerFixture.Password(user), mechanism,
            Sasl2Exchange.UserAgent(Guid.NewGuid().ToString(), "Candor tests", "CI"), Binding(client));

        Assert.True(success.Is("success", Ns.Sasl2), "expected success, got " + success);
        Assert.Equal($"{user}@localhost", success.GetChildText("authorization-identifier", Ns.Sasl2));
        // SCRAM's server-final message is the additional data (checked by the exchange); PLAIN has none.
        Assert.Equal(mechanism == "PLAIN", success.GetChild("additional-data", Ns.Sasl2) is null);
        var features = await client.ExpectFeaturesWithoutRestartAsync();
        Assert.NotNull(features.GetChild("bind", Ns.Bind));
        Assert.Null(features.GetChild("authentication", Ns.Sasl2));
        Assert.Null(features.GetChild("mechanisms", Ns.Sasl));

        var jid = await client.BindAsync("sasl2");
        Assert.Equal($"{user}@localhost/sasl2", jid.ToString());
        await client.SyncAsync();
        var session = Assert.Single(server.Host.Server.Sessions.Get(user));
        Assert.Equal(mechanism, session.Mechanism);
        Assert.Equal("Candor tests", session.UserAgent?.Software);
    }

    [Fact]
    public async Task Initial_response_may_be_left_out_and_comes_as_the_first_response()
    {
        var user = await server.CreateUserAsync();
        await using var client = await SecureAsync();
        await client.SendAsync(Sasl2Exchange.Authenticate("PLAIN", null));
        var challenge = await client.ExpectAsync(e => e.Is("challenge", Ns.Sasl2) || Sasl2Exchange.IsOutcome(e));
        Assert.True(challenge.Is("challenge", Ns.Sasl2), "expected an empty challenge, got " + challenge);
        Assert.Equal("", challenge.Text);

        var plain = Convert.ToBase64String(SaslPlain.Create(null, user, ServerFixture.Password(user)));
        await client.SendAsync($"<response xmlns='urn:xmpp:sasl:2'>{plain}</response>");
        var success = await client.ExpectAsync(Sasl2Exchange.IsOutcome);
        Assert.True(success.Is("success", Ns.Sasl2), "expected success, got " + success);
    }

    [Fact]
    public async Task A_second_authenticate_after_success_is_a_stream_error()
    {
        var user = await server.CreateUserAsync();
        await using var client = await SecureAsync();
        var success = await Sasl2Exchange.Over(client).AuthenticateAsync(user, ServerFixture.Password(user));
        Assert.True(success.Is("success", Ns.Sasl2));
        await client.SendAsync(Sasl2Exchange.Authenticate("SCRAM-SHA-256", null));
        await client.ExpectStreamErrorAsync("policy-violation");
    }

    // ---- failures

    [Fact]
    public async Task Abort_is_answered_with_aborted()
    {
        await using var client = await SecureAsync();
        await client.SendAsync(Sasl2Exchange.Authenticate("SCRAM-SHA-256", null));
        await client.ExpectAsync(e => e.Is("challenge", Ns.Sasl2));
        await client.SendAsync("<abort xmlns='urn:xmpp:sasl:2'/>");
        AssertFailure(await client.ExpectAsync(Sasl2Exchange.IsOutcome), "aborted");
    }

    [Fact]
    public async Task Unknown_mechanism_is_invalid_mechanism_and_bad_base64_is_incorrect_encoding()
    {
        await using var client = await SecureAsync();
        await client.SendAsync(Sasl2Exchange.Authenticate("X-NOPE", "AAAA"));
        AssertFailure(await client.ExpectAsync(Sasl2Exchange.IsOutcome), "invalid-mechanism");
        await client.SendAsync("<authenticate xmlns='urn:xmpp:sasl:2'/>");
        AssertFailure(await client.ExpectAsync(Sasl2Exchange.IsOutcome), "invalid-mechanism");
        await client.SendAsync(Sasl2Exchange.Authenticate("SCRAM-SHA-256", "not*base64!"));
        AssertFailure(await client.ExpectAsync(Sasl2Exchange.IsOutcome), "incorrect-encoding");
        await client.SendAsync("<response xmlns='urn:xmpp:sasl:2'>AAAA</response>");
        AssertFailure(await client.ExpectAsync(Sasl2Exchange.IsOutcome), "malformed-request");
    }

    [Theory]
    [InlineData(129, 10, 10)]
    [InlineData(0, 10, 10)]
    [InlineData(36, 257, 10)]
    [InlineData(36, 10, 257)]
    public async Task An_over_long_or_empty_user_agent_is_malformed_request(int idLength, int softwareLength, int deviceLength)
    {
        var user = await server.CreateUserAsync();
        await using var client = await SecureAsync();
        var exchange = Sasl2Exchange.Over(client);

        var refused = await exchange.AuthenticateAsync(user, ServerFixture.Password(user), "PLAIN",
            Sasl2Exchange.UserAgent(new string('u', idLength), new string('s', softwareLength), new string('d', deviceLength)));

        AssertFailure(refused, "malformed-request");
        Assert.Contains("user-agent", refused.GetChildText("text", Ns.Sasl2));
        var accepted = await exchange.AuthenticateAsync(user, ServerFixture.Password(user), "PLAIN",
            Sasl2Exchange.UserAgent(new string('u', 128), new string('s', 256), new string('d', 256)));
        Assert.True(accepted.Is("success", Ns.Sasl2), "the longest accepted user agent, got " + accepted);
    }

    [Fact]
    public async Task The_authorization_identity_must_match_the_streams_from()
    {
        var user = await server.CreateUserAsync();
        await using var client = await XmppTestClient.ConnectTcpAsync(server.TlsPort, directTls: true);
        await client.SendAsync(XmppTestClient.Header().Replace("to='localhost'", "to='localhost' from='someone-else@localhost'"));
        await client.ExpectAsync(e => e.Is("features", Ns.Stream));
        var exchange = Sasl2Exchange.Over(client);

        var refused = await exchange.AuthenticateAsync(user, ServerFixture.Password(user), "PLAIN", authzid: $"{user}@localhost");
        AssertFailure(refused, "invalid-authzid");
        var scram = await exchange.AuthenticateAsync(user, ServerFixture.Password(user), "SCRAM-SHA-256", authzid: $"{user}@localhost");
        AssertFailure(scram, "invalid-authzid");
        // Without an authorization identity there is nothing to compare.
        var success = await exchange.AuthenticateAsync(user, ServerFixture.Password(user), "PLAIN");
        Assert.True(success.Is("success", Ns.Sasl2), "expected success, got " + success);
    }

    // ---- channel binding

    [Fact]
    public async Task Plus_with_the_wrong_channel_binding_is_not_authorized()
    {
        var user = await server.CreateUserAsync();
        await using var client = await SecureAsync();
        var forged = Binding(client);
        forged[0] ^= 0xFF;

        var outcome = await Sasl2Exchange.Over(client).AuthenticateAsync(user, ServerFixture.Password(user), "SCRAM-SHA-256-PLUS", channelBinding: forged);

        AssertFailure(outcome, "not-authorized");
    }

    [Fact]
    public async Task A_binding_downgrade_is_refused_when_the_server_rejects_downgrades()
    {
        await using var own = await ServerFixture.StartAsync(o => o.RejectChannelBindingDowngrade = true);
        var user = await own.CreateUserAsync();
        await using var client = await SecureAsync(own.C2sPort);
        // 'y': "I could bind, but you did not offer -PLUS" — false here, since the server offered it (RFC 5802 §6).
        var scram = new ScramClient(ScramAlgorithm.Sha256, user, ServerFixture.Password(user), ChannelBinding.TlsServerEndPointType, Binding(client));
        await client.SendAsync(Sasl2Exchange.Authenticate("SCRAM-SHA-256", Convert.ToBase64String(scram.CreateClientFirst())));

        var outcome = await client.ExpectAsync(e => e.Is("challenge", Ns.Sasl2) || Sasl2Exchange.IsOutcome(e));

        Assert.False(outcome.Is("success", Ns.Sasl2));
        if (outcome.Is("challenge", Ns.Sasl2))
        {
            await client.SendAsync($"<response xmlns='urn:xmpp:sasl:2'>{Convert.ToBase64String(scram.CreateClientFinal(Convert.FromBase64String(outcome.Text)))}</response>");
            outcome = await client.ExpectAsync(Sasl2Exchange.IsOutcome);
        }
        Assert.True(outcome.Is("failure", Ns.Sasl2), "expected failure, got " + outcome);
    }

    // ---- what may be sent when

    [Fact]
    public async Task Stanzas_before_authentication_are_refused_as_with_rfc_6120()
    {
        await using var client = await SecureAsync();
        await client.SendAsync("<message to='someone@localhost'><body>early</body></message>");
        await client.ExpectStreamErrorAsync("not-authorized");
    }

    [Fact]
    public async Task Anything_but_sasl2_during_a_sasl2_exchange_ends_the_stream()
    {
        await using var client = await SecureAsync();
        await client.SendAsync(Sasl2Exchange.Authenticate("SCRAM-SHA-256", null));
        await client.ExpectAsync(e => e.Is("challenge", Ns.Sasl2));
        await client.SendAsync("<iq type='get' id='reg'><query xmlns='jabber:iq:register'/></iq>");
        await client.ExpectStreamErrorAsync("policy-violation");
    }

    [Fact]
    public async Task A_legacy_response_cannot_continue_a_sasl2_exchange_nor_the_reverse()
    {
        await using (var client = await SecureAsync())
        {
            await client.SendAsync(Sasl2Exchange.Authenticate("SCRAM-SHA-256", null));
            await client.ExpectAsync(e => e.Is("challenge", Ns.Sasl2));
            await client.SendAsync("<response xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>AAAA</response>");
            await client.ExpectStreamErrorAsync("policy-violation");
        }
        await using var legacy = await SecureAsync();
        await legacy.SendAsync("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='SCRAM-SHA-256'/>");
        await legacy.ExpectAsync(e => e.Is("challenge", Ns.Sasl));
        await legacy.SendAsync("<response xmlns='urn:xmpp:sasl:2'>AAAA</response>");
        await legacy.ExpectStreamErrorAsync("policy-violation");
    }

    // ---- the same protections as RFC 6120 SASL

    [Fact]
    public async Task Failures_in_both_profiles_count_together_towards_the_limit()
    {
        await using var own = await ServerFixture.StartAsync(o => o.AuthFailuresBeforeDelay = 100);
        var user = await own.CreateUserAsync();
        await using var client = await SecureAsync(own.C2sPort);
        for (var i = 0; i < 4; i++)
        {
            var profile = i % 2 == 0 ? SaslProfile.Sasl2 : SaslProfile.Rfc6120;
            Assert.Equal("not-authorized", (await client.TryAuthenticateAsync(profile, user, "wrong" + i)).SaslCondition());
        }
        AssertFailure(await client.TryAuthenticateAsync(SaslProfile.Sasl2, user, "wrong-last", "PLAIN"), "not-authorized");
        await client.ExpectStreamErrorAsync("policy-violation");
    }

    [Fact]
    public async Task The_authentication_timeout_runs_until_a_resource_is_bound()
    {
        await using var own = await ServerFixture.StartAsync(o => o.AuthenticationTimeoutSeconds = 1);
        var user = await own.CreateUserAsync();
        await using var client = await SecureAsync(own.C2sPort);
        var success = await Sasl2Exchange.Over(client).AuthenticateAsync(user, ServerFixture.Password(user));
        Assert.True(success.Is("success", Ns.Sasl2));
        await client.ExpectStreamErrorAsync("connection-timeout", TimeSpan.FromSeconds(10));
    }
}
