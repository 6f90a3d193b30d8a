using Candor.Server.Tests.Harness;
using Candor.Xml;
using Candor.Xmpp;
using Candor.Xmpp.Sasl;

namespace Candor.Server.Tests;

/// <summary>
/// XEP-0474 over real sockets: the server's SCRAM server-first message carries the hash of what it advertised, so
/// a client that was shown a stripped mechanism list (an attacker removing the -PLUS mechanisms) notices.
/// </summary>
public sealed class ScramDowngradeTests(ServerFixture server) : IClassFixture<ServerFixture>
{
    private static readonly string[] Bindings = ["tls-server-end-point"];

    /// <summary>Starts SCRAM-SHA-256 over SASL2 and returns the server-first message.</summary>
    private static async Task<byte[]> ServerFirstAsync(XmppTestClient client, ScramClient scram)
    {
        await client.SendAsync(Sasl2Exchange.Authenticate("SCRAM-SHA-256", Convert.ToBase64String(scram.CreateClientFirst())));
        var challenge = await client.ExpectAsync(e => e.Is("challenge", Ns.Sasl2) || Sasl2Exchange.IsOutcome(e));
        Assert.True(challenge.Is("challenge", Ns.Sasl2), "expected the server-first message, got " + challenge);
        return Convert.FromBase64String(challenge.Text);
    }

    [Fact]
    public async Task The_hash_of_the_advertised_lists_verifies_and_the_login_succeeds()
    {
        var user = await server.CreateUserAsync();
        await using var client = await SaslProfileExtensions.ConnectSecureAsync(server.C2sPort);
        var seen = Sasl2Exchange.Mechanisms(client.Features);
        Assert.Contains("SCRAM-SHA-256-PLUS", seen);
        var scram = new ScramClient(ScramAlgorithm.Sha256, user, ServerFixture.Password(user))
        {
            DowngradeProtection = ScramDowngradeProtection.Hash(ScramAlgorithm.Sha256, seen, Bindings),
        };
        var serverFirst = await ServerFirstAsync(client, scram);
        Assert.Contains(",d=" + scram.DowngradeProtection, System.Text.Encoding.UTF8.GetString(serverFirst));

        await client.SendAsync($"<response xmlns='urn:xmpp:sasl:2'>{Convert.ToBase64String(scram.CreateClientFinal(serverFirst))}</response>");
        var outcome = await client.ExpectAsync(Sasl2Exchange.IsOutcome);
        Assert.True(outcome.Is("success", Ns.Sasl2), "expected success, got " + outcome);
    }

    [Theory]
    [InlineData(true, false)]
    [InlineData(false, true)]
    public async Task A_client_shown_a_stripped_list_detects_the_downgrade(bool stripPlus, bool stripBindings)
    {
        var user = await server.CreateUserAsync();
        await using var client = await SaslProfileExtensions.ConnectSecureAsync(server.C2sPort);
        var seen = Sasl2Exchange.Mechanisms(client.Features).Where(m => !stripPlus || !m.EndsWith("-PLUS")).ToList();
        var scram = new ScramClient(ScramAlgorithm.Sha256, user, ServerFixture.Password(user))
        {
            DowngradeProtection = ScramDowngradeProtection.Hash(ScramAlgorithm.Sha256, seen, stripBindings ? null : Bindings),
        };
        var serverFirst = await ServerFirstAsync(client, scram);

        var detected = Assert.Throws<SaslException>(() => scram.CreateClientFinal(serverFirst));
        Assert.Contains("XEP-0474", detected.Message);
    }

    [Fact]
    public async Task The_legacy_profile_carries_the_same_attribute()
    {
        var user = await server.CreateUserAsync();
        await using var client = await SaslProfileExtensions.ConnectSecureAsync(server.C2sPort);
        var expected = ScramDowngradeProtection.Hash(ScramAlgorithm.Sha1, client.Mechanisms, Bindings);
        var scram = new ScramClient(ScramAlgorithm.Sha1, user, ServerFixture.Password(user));
        await client.SendAsync($"<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='SCRAM-SHA-1'>{Convert.ToBase64String(scram.CreateClientFirst())}</auth>");
        var challenge = await client.ExpectAsync(e => e.Namespace == Ns.Sasl);
        Assert.Equal("challenge", challenge.Name);
        Assert.EndsWith(",d=" + expected, System.Text.Encoding.UTF8.GetString(Convert.FromBase64String(challenge.Text)));
    }
}
