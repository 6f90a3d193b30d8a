using System.Security.Cryptography;
using System.Text;
using Candor.Server.Core;
using Candor.Server.Modules.Clients;
using Candor.Server.Tests.Harness;
using Candor.Xml;
using Candor.Xmpp;
using Candor.Xmpp.Sasl;

namespace Candor.Server.Tests;

/// <summary>
/// XEP-0484 FAST inside SASL2, over raw sockets: a token asked for with &lt;request-token/&gt; during a password
/// login, then a login with it in one round trip (HT-SHA-256-NONE / -ENDP); wrong, replayed, expired and revoked
/// tokens fail.
/// </summary>
public sealed class FastTests(ServerFixture server) : IClassFixture<ServerFixture>
{
    private const string FastNs = "urn:xmpp:fast:0";

    private static string Agent(string id) => Sasl2Exchange.UserAgent(id, "Candor tests");

    /// <summary>Logs in with the password over SASL2, asking for a token; returns the session's client and the token.</summary>
    private static async Task<(XmppTestClient Client, string Token)> RequestTokenAsync(int port, string user, string agentId, string mechanism = "HT-SHA-256-NONE")
    {
        var client = await SaslProfileExtensions.ConnectSecureAsync(port);
        var asked = DateTimeOffset.UtcNow;
        var success = await Sasl2Exchange.Over(client).AuthenticateAsync(user, ServerFixture.Password(user),
            userAgent: Agent(agentId) + $"<request-token xmlns='{FastNs}' mechanism='{mechanism}'/>");
        Assert.True(success.Is("success", Ns.Sasl2), "expected success, got " + success);
        var token = success.GetChild("token", FastNs);
        Assert.True(token is not null, "no <token/> in " + success);
        // Whole seconds on the wire, and a busy machine may take longer than a 1-second lifetime to answer.
        Assert.True(XmppTime.TryParse(token.GetAttribute("expiry")!, out var expiry) && expiry > asked.AddSeconds(-1), "expiry after the request: " + token);
        await client.ExpectFeaturesWithoutRestartAsync();
        await client.BindAsync(agentId);
        return (client, token.GetAttribute("token")!);
    }

    private static byte[] Hmac(string token, string label, byte[] binding) =>
        HMACSHA256.HashData(Encoding.UTF8.GetBytes(token), (byte[])[.. Encoding.ASCII.GetBytes(label), .. binding]);

    /// <summary>One &lt;authenticate/&gt; with the token; returns the connection and the first thing the server answered.</summary>
    private static async Task<(XmppTestClient Client, Element Outcome)> FastLoginAsync(int port, string user, string agentId, string token,
        string mechanism = "HT-SHA-256-NONE", string fast = "<fast xmlns='urn:xmpp:fast:0'/>")
    {
        var client = await SaslProfileExtensions.ConnectSecureAsync(port);
        var binding = mechanism.EndsWith("-ENDP") ? ChannelBinding.TlsServerEndPoint(client.ServerCertificate!) : [];
        var response = Convert.ToBase64String([.. Encoding.UTF8.GetBytes(user), 0, .. Hmac(token, "Initiator", binding)]);
        await client.SendAsync(Sasl2Exchange.Authenticate(mechanism, response, Agent(agentId) + fast));
        var outcome = await client.ExpectAsync(e => e.Namespace == Ns.Sasl2);
        if (outcome.Is("success", Ns.Sasl2))
            Assert.Equal(Convert.ToBase64String(Hmac(token, "Responder", binding)), outcome.GetChildText("additional-data", Ns.Sasl2));
        return (client, outcome);
    }

    private static void AssertNotAuthorized(Element outcome)
    {
        Assert.True(outcome.Is("failure", Ns.Sasl2), "expected failure, got " + outcome);
        Assert.Equal("not-authorized", outcome.SaslCondition());
    }

    [Fact]
    public async Task The_feature_offers_both_ht_mechanisms_inline_and_not_as_password_mechanisms()
    {
        await using var client = await SaslProfileExtensions.ConnectSecureAsync(server.C2sPort);
        var fast = client.Features!.GetChild("authentication", Ns.Sasl2)!.GetChild("inline", Ns.Sasl2)!.GetChild("fast", FastNs);
        Assert.Equal(["HT-SHA-256-ENDP", "HT-SHA-256-NONE"], fast!.Elements.Select(m => m.Text));
        Assert.DoesNotContain(Sasl2Exchange.Mechanisms(client.Features), m => m.StartsWith("HT-"));
    }

    [Theory]
    [InlineData("HT-SHA-256-NONE")]
    [InlineData("HT-SHA-256-ENDP")]
    public async Task A_token_logs_in_again_in_one_round_trip_and_binds(string mechanism)
    {
        var user = await server.CreateUserAsync();
        var agent = Guid.NewGuid().ToString();
        var (first, token) = await RequestTokenAsync(server.C2sPort, user, agent, mechanism);
        await first.DisposeAsync();

        var (client, outcome) = await FastLoginAsync(server.C2sPort, user, agent, token, mechanism);
        await using var _ = client;
        Assert.True(outcome.Is("success", Ns.Sasl2), "one <authenticate/>, then success: " + outcome);
        await client.ExpectFeaturesWithoutRestartAsync();
        await client.BindAsync("fast");
        await client.SyncAsync();
        Assert.Equal(mechanism, Assert.Single(server.Host.Server.Sessions.Get(user)).Mechanism);

        // The token stays valid (it was not rotated) and may be used again.
        var (again, second) = await FastLoginAsync(server.C2sPort, user, agent, token, mechanism);
        await using var __ = again;
        Assert.True(second.Is("success", Ns.Sasl2), "expected success, got " + second);
    }

    [Fact]
    public async Task Wrong_token_other_client_other_mechanism_replayed_count_and_wrong_binding_fail()
    {
        var user = await server.CreateUserAsync();
        var agent = Guid.NewGuid().ToString();
        var (first, token) = await RequestTokenAsync(server.C2sPort, user, agent, "HT-SHA-256-ENDP");
        await first.DisposeAsync();

        foreach (var (tokenUsed, agentUsed, mechanism) in new[]
                 {
                     ("not-the-token", agent, "HT-SHA-256-ENDP"),
                     (token, Guid.NewGuid().ToString(), "HT-SHA-256-ENDP"),
                     (token, agent, "HT-SHA-256-NONE"),
                 })
        {
            var (client, outcome) = await FastLoginAsync(server.C2sPort, user, agentUsed, tokenUsed, mechanism);
            await using var _ = client;
            AssertNotAuthorized(outcome);
        }

        var (counted, ok) = await FastLoginAsync(server.C2sPort, user, agent, token, "HT-SHA-256-ENDP", $"<fast xmlns='{FastNs}' count='5'/>");
        await counted.DisposeAsync();
        Assert.True(ok.Is("success", Ns.Sasl2), "expected success, got " + ok);
        var (replay, replayed) = await FastLoginAsync(server.C2sPort, user, agent, token, "HT-SHA-256-ENDP", $"<fast xmlns='{FastNs}' count='5'/>");
        await replay.DisposeAsync();
        AssertNotAuthorized(replayed);

        // A proof made for another connection's channel binding does not verify on this one.
        await using var other = await SaslProfileExtensions.ConnectSecureAsync(server.C2sPort);
        var stale = Convert.ToBase64String([.. Encoding.UTF8.GetBytes(user), 0, .. Hmac(token, "Initiator", [1, 2, 3])]);
        await other.SendAsync(Sasl2Exchange.Authenticate("HT-SHA-256-ENDP", stale, Agent(agent) + $"<fast xmlns='{FastNs}'/>"));
        AssertNotAuthorized(await other.ExpectAsync(Sasl2Exchange.IsOutcome));
    }

    [Fact]
    public async Task A_token_request_without_a_user_agent_id_is_refused()
    {
        var user = await server.CreateUserAsync();
        await using var client = await SaslProfileExtensions.ConnectSecureAsync(server.C2sPort);
        var outcome = await Sasl2Exchange.Over(client).AuthenticateAsync(user, ServerFixture.Password(user),
            userAgent: $"<request-token xmlns='{FastNs}' mechanism='HT-SHA-256-NONE'/>");
        Assert.True(outcome.Is("failure", Ns.Sasl2), "expected failure, got " + outcome);
        Assert.Equal("malformed-request", outcome.SaslCondition());
    }

    [Fact]
    public async Task An_expired_token_fails()
    {
        await using var own = await ServerFixture.StartAsync(o => o.FastTokenLifetimeSeconds = 1);
        var user = await own.CreateUserAsync();
        var agent = Guid.NewGuid().ToString();
        var (first, token) = await RequestTokenAsync(own.C2sPort, user, agent);
        await first.DisposeAsync();
        await Task.Delay(TimeSpan.FromSeconds(1.5));

        var (client, outcome) = await FastLoginAsync(own.C2sPort, user, agent, token);
        await using var _ = client;
        AssertNotAuthorized(outcome);
    }

    [Fact]
    public async Task Invalidate_retires_the_token_after_its_last_use()
    {
        var user = await server.CreateUserAsync();
        var agent = Guid.NewGuid().ToString();
        var (first, token) = await RequestTokenAsync(server.C2sPort, user, agent);
        await first.DisposeAsync();

        var (last, outcome) = await FastLoginAsync(server.C2sPort, user, agent, token, fast: $"<fast xmlns='{FastNs}' invalidate='true'/>");
        await last.DisposeAsync();
        Assert.True(outcome.Is("success", Ns.Sasl2), "expected success, got " + outcome);
        var (after, refused) = await FastLoginAsync(server.C2sPort, user, agent, token);
        await after.DisposeAsync();
        AssertNotAuthorized(refused);
    }

    [Fact]
    public async Task A_password_change_revokes_every_token_of_the_account()
    {
        var user = await server.CreateUserAsync();
        var agent = Guid.NewGuid().ToString();
        var (client, token) = await RequestTokenAsync(server.C2sPort, user, agent);
        await using var _ = client;

        var changed = await client.RequestAsync($"<iq type='set' id='{{id}}'><query xmlns='jabber:iq:register'><username>{user}</username><password>{ServerFixture.Password(user)}</password></query></iq>");
        Assert.Equal("result", changed.Type());

        var (after, refused) = await FastLoginAsync(server.C2sPort, user, agent, token);
        await after.DisposeAsync();
        AssertNotAuthorized(refused);
    }

    [Fact]
    public async Task Revoking_a_client_revokes_its_token_and_ending_other_sessions_keeps_only_the_own()
    {
        var user = await server.CreateUserAsync();
        var (owner, ownToken) = await RequestTokenAsync(server.C2sPort, user, "owner-device");
        await using var _ = owner;
        var (phone, phoneToken) = await RequestTokenAsync(server.C2sPort, user, "phone");
        await phone.DisposeAsync();
        var (laptop, laptopToken) = await RequestTokenAsync(server.C2sPort, user, "laptop");
        await laptop.DisposeAsync();

        var clientId = ClientRegistry.IdentifyClient(user, new UserAgent("phone", null, null), "", "");
        var revoked = await owner.RequestAsync($"<iq type='set' id='{{id}}'><revoke xmlns='urn:xmpp:cam:0' id='{clientId}'/></iq>");
        Assert.Equal("result", revoked.Type());
        var (p, phoneOutcome) = await FastLoginAsync(server.C2sPort, user, "phone", phoneToken);
        await p.DisposeAsync();
        AssertNotAuthorized(phoneOutcome);

        var ended = await owner.RequestAsync("<iq type='set' to='localhost' id='{id}'><command xmlns='http://jabber.org/protocol/commands' node='end-other-sessions' action='execute'/></iq>");
        Assert.Equal("result", ended.Type());
        var (l, laptopOutcome) = await FastLoginAsync(server.C2sPort, user, "laptop", laptopToken);
        await l.DisposeAsync();
        AssertNotAuthorized(laptopOutcome);
        var (o, ownOutcome) = await FastLoginAsync(server.C2sPort, user, "owner-device", ownToken);
        await o.DisposeAsync();
        Assert.True(ownOutcome.Is("success", Ns.Sasl2), "the session that ended the others keeps its token: " + ownOutcome);
    }
}
