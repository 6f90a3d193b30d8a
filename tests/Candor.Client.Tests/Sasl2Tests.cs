using Candor.Client.Tests.Infrastructure;
using Candor.Xmpp.Sasl;

namespace Candor.Client.Tests;

/// <summary>
/// The library's XEP-0388 (SASL2) side against scripted servers: what it sends, that it binds without a stream
/// restart, and that it refuses what a server must not say. Against Candor itself: CandorTests.
/// </summary>
public sealed class Sasl2Tests
{
    private const string Sasl2Ns = "urn:xmpp:sasl:2";

    /// <summary>Both profiles offered, SASL2 with the given mechanisms.</summary>
    private static string Features(params string[] mechanisms) =>
        ScriptedConnection.Header + "<stream:features><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><mechanism>PLAIN</mechanism></mechanisms>"
        + $"<authentication xmlns='{Sasl2Ns}'>" + string.Concat(mechanisms.Select(m => $"<mechanism>{m}</mechanism>")) + "</authentication></stream:features>";

    private static string Success(string jid, byte[]? additionalData = null) =>
        $"<success xmlns='{Sasl2Ns}'>" + (additionalData is null ? "" : $"<additional-data>{Convert.ToBase64String(additionalData)}</additional-data>")
        + $"<authorization-identifier>{jid}</authorization-identifier></success>";

    private const string BindFeatures = "<stream:features><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></stream:features>";

    /// <summary>A server that offers SASL2 PLAIN and answers the client's &lt;authenticate/&gt; with <paramref name="answer"/>.</summary>
    private static ScriptedServer Answering(string answer) => ScriptedServer.Start(async (c, _) =>
    {
        await c.StartTlsAsync();
        await c.SendAsync(Features("PLAIN"));
        await c.ExpectAsync("</authenticate>");
        await c.SendAsync(answer);
        await c.DrainAsync();
    });

    [Fact]
    public async Task Sasl2_is_preferred_sends_the_user_agent_and_binds_on_the_same_stream()
    {
        string? authenticate = null, afterSuccess = null;
        await using var server = ScriptedServer.Start(async (c, _) =>
        {
            await c.StartTlsAsync();
            await c.SendAsync(Features("PLAIN"));
            authenticate = await c.ExpectAsync("</authenticate>");
            await c.SendAsync(Success("alice@localhost") + BindFeatures);
            afterSuccess = await c.ExpectAsync("<iq");
            await c.BindAsync();
            await c.DrainAsync();
        });
        var options = server.Options() with { UserAgentId = "3c7f2e9a-1b1d-4c55-9f0e-8d1c2b3a4f5e", UserAgentSoftware = "Candor tests", UserAgentDevice = "CI box" };
        await using var client = new XmppClient(options);

        await client.ConnectAsync();

        Assert.True(client.UsedSasl2);
        Assert.Equal("PLAIN", client.Mechanism);
        Assert.Equal("alice@localhost/res", client.BoundJid!.ToString());
        Assert.NotNull(authenticate);
        Assert.Contains(Sasl2Ns, authenticate);
        Assert.Contains("<initial-response>", authenticate);
        Assert.Contains("3c7f2e9a-1b1d-4c55-9f0e-8d1c2b3a4f5e", authenticate);
        Assert.Contains("<software>Candor tests</software>", authenticate);
        Assert.Contains("<device>CI box</device>", authenticate);
        Assert.DoesNotContain("<stream:stream", afterSuccess);
    }

    [Fact]
    public async Task Without_sasl2_in_the_options_rfc_6120_sasl_is_used_even_when_sasl2_is_offered()
    {
        await using var server = ScriptedServer.Start(async (c, _) =>
        {
            await c.StartTlsAsync();
            await c.SendAsync(Features("PLAIN"));
            await c.ExpectAsync("</auth>");
            await c.SendAsync("<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>");
            await c.ExpectAsync("<stream:stream");
            await c.ExpectAsync(">");
            await c.SendAsync(ScriptedConnection.Header + BindFeatures);
            await c.BindAsync();
            await c.DrainAsync();
        });
        await using var client = new XmppClient(server.Options() with { UseSasl2 = false });
        await client.ConnectAsync();
        Assert.False(client.UsedSasl2);
    }

    [Fact]
    public async Task An_authorization_identifier_of_another_account_is_refused()
    {
        await using var server = Answering(Success("mallory@localhost") + BindFeatures);
        await using var client = new XmppClient(server.Options());
        var e = await Assert.ThrowsAsync<XmppProtocolException>(() => client.ConnectAsync());
        Assert.Contains("mallory@localhost", e.Message);
        Assert.False(client.IsConnected);
    }

    [Fact]
    public async Task A_sasl2_failure_is_an_authentication_failure_with_its_condition_and_text()
    {
        await using var server = Answering(
            $"<failure xmlns='{Sasl2Ns}'><account-disabled xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/><text>closed by the operator</text></failure>");
        await using var client = new XmppClient(server.Options());
        var e = await Assert.ThrowsAsync<XmppAuthenticationException>(() => client.ConnectAsync());
        Assert.Equal("account-disabled", e.Condition);
        Assert.Contains("closed by the operator", e.Message);
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task Scram_success_must_carry_the_server_signature_in_additional_data(bool withSignature)
    {
        await using var server = ScriptedServer.Start(async (c, _) =>
        {
            await c.StartTlsAsync();
            await c.SendAsync(Features("SCRAM-SHA-256"));
            await c.ExpectAsync("<initial-response>");
            var scram = new ScramServer(ScramAlgorithm.Sha256, plus: false, serverOffersPlus: false, null, null);
            scram.ReadClientFirst(Convert.FromBase64String(await c.ExpectAsync("</initial-response>")));
            var serverFirst = scram.CreateServerFirst(ScramCredential.Create(ScramAlgorithm.Sha256, "secret", 4096));
            await c.SendAsync($"<challenge xmlns='{Sasl2Ns}'>{Convert.ToBase64String(serverFirst)}</challenge>");
            await c.ExpectAsync("<response");
            await c.ExpectAsync(">");
            if (!scram.VerifyClientFinal(Convert.FromBase64String(await c.ExpectAsync("</response>")), out var serverFinal))
                throw new IOException("the client's proof does not verify");
            await c.SendAsync(Success("alice@localhost", withSignature ? serverFinal : null) + BindFeatures);
            await c.BindAsync();
            await c.DrainAsync();
        });
        await using var client = new XmppClient(server.Options());

        if (withSignature)
        {
            await client.ConnectAsync();
            Assert.Equal("SCRAM-SHA-256", client.Mechanism);
            Assert.True(client.UsedSasl2);
            return;
        }
        var e = await Assert.ThrowsAsync<XmppAuthenticationException>(() => client.ConnectAsync());
        Assert.Equal(XmppAuthenticationException.BadServerSignature, e.Condition);
    }
}
