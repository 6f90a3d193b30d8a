using System.Security.Cryptography;
using Candor.Server.Tests.Harness;
using Candor.Xml;
using Candor.Xmpp;
using Candor.Xmpp.Sasl;
using static Candor.Xmpp.StreamErrors;

namespace Candor.Server.Tests.Hostile;

/// <summary>
/// SASL garbage in XEP-0388's framing, and what only SASL2 has (the user agent, its rule that nothing else may be
/// sent during an exchange). A bad exchange gets a SASL2 &lt;failure/&gt; with the RFC 6120 §6.5 condition and the
/// stream stays open, exactly as with &lt;auth/&gt;: both profiles share one negotiator per stream.
/// </summary>
public static partial class HostileCases
{
    private static string Authenticate(string? mechanism, string? initialResponse, string extra = "") =>
        $"<authenticate xmlns='{Ns.Sasl2}'" + (mechanism is null ? "" : $" mechanism='{mechanism}'") + ">"
        + (initialResponse is null ? "" : $"<initial-response>{initialResponse}</initial-response>") + extra + "</authenticate>";

    private static async Task ExpectSasl2FailureAsync(CaseContext c, string condition)
    {
        var outcome = await c.Client.ExpectAsync(e => e.Namespace == Ns.Sasl2 && e.Name is "failure" or "success" or "challenge"
            || e.Is("error", Ns.Stream) || e.Namespace == XmppTestClient.TestNs, CaseContext.Timeout);
        Assert.True(outcome.Is("failure", Ns.Sasl2) && outcome.SaslCondition() == condition, $"expected SASL2 failure <{condition}/>, got {outcome}");
    }

    /// <summary>Sends the elements, expects the SASL2 failure, then shows the stream still negotiating (an abort is answered).</summary>
    private static HostileCase Sasl2Failure(string id, string condition, params string[] elements) =>
        new("sasl2 " + condition + ": " + id, Stage.Secure, async c =>
        {
            foreach (var element in elements) await c.Client.SendAsync(element);
            await ExpectSasl2FailureAsync(c, condition);
            await c.Client.SendAsync($"<abort xmlns='{Ns.Sasl2}'/>");
            await ExpectSasl2FailureAsync(c, "aborted");
        });

    private static IEnumerable<HostileCase> Sasl2()
    {
        yield return Sasl2Failure("unknown mechanism", "invalid-mechanism", Authenticate("X-EVIL", "AA=="));
        yield return Sasl2Failure("no mechanism attribute", "invalid-mechanism", Authenticate(null, "AA=="));
        yield return Sasl2Failure("base64 garbage", "incorrect-encoding", Authenticate("SCRAM-SHA-256", "!!!!"));
        yield return Sasl2Failure("client-first with an unknown gs2 flag", "malformed-request", Authenticate("SCRAM-SHA-256", B64("x,,n=user,r=abc")));
        yield return Sasl2Failure("-PLUS without channel binding", "not-authorized", Authenticate("SCRAM-SHA-256-PLUS", B64("n,,n=user,r=abc")));
        yield return Sasl2Failure("PLAIN for an unknown user", "not-authorized", Authenticate("PLAIN", B64("\0nobody-here\0password")));
        yield return Sasl2Failure("response without authenticate", "malformed-request", $"<response xmlns='{Ns.Sasl2}'>{B64("c=biws,r=abc,p=AAAA")}</response>");
        yield return Sasl2Failure("<success/> from the client", "malformed-request", $"<success xmlns='{Ns.Sasl2}'/>");
        yield return Sasl2Failure("<next/> for a task never offered", "malformed-request", $"<next xmlns='{Ns.Sasl2}' task='TOTP'/>");
        yield return Sasl2Failure("a user-agent id of 10,000 characters", "malformed-request",
            Authenticate("PLAIN", B64("\0nobody-here\0password"), $"<user-agent id='{new string('u', 10_000)}'/>"));
        yield return Sasl2Failure("a user-agent id of white space", "malformed-request",
            Authenticate("PLAIN", B64("\0nobody-here\0password"), "<user-agent id='   '/>"));
        yield return Sasl2Failure("a user-agent device name of 10,000 characters", "malformed-request",
            Authenticate("PLAIN", B64("\0nobody-here\0password"), $"<user-agent><device>{new string('d', 10_000)}</device></user-agent>"));
        yield return Sasl2Failure("a huge garbage initial response", "malformed-request",
            Authenticate("SCRAM-SHA-256", Convert.ToBase64String(RandomNumberGenerator.GetBytes(40_000))));
        yield return new("sasl2 invalid-authzid: PLAIN for another account", Stage.Secure, async c =>
        {
            await c.Client.SendAsync(Authenticate("PLAIN", B64($"victim@localhost\0{c.Suite.Mallory}\0{ServerFixture.Password(c.Suite.Mallory)}")));
            await ExpectSasl2FailureAsync(c, "invalid-authzid");
        });
        yield return new("sasl2 not-authorized: -PLUS bound to another certificate", Stage.Secure, async c =>
        {
            var client = new ScramClient(ScramAlgorithm.Sha256, c.Suite.Mallory, ServerFixture.Password(c.Suite.Mallory),
                ChannelBinding.TlsServerEndPointType, SHA256.HashData("a man in the middle's certificate"u8), serverSupportsPlus: true);
            await c.Client.SendAsync(Authenticate("SCRAM-SHA-256-PLUS", Convert.ToBase64String(client.CreateClientFirst())));
            var challenge = await c.Client.ExpectAsync(e => e.Is("challenge", Ns.Sasl2), CaseContext.Timeout);
            await c.Client.SendAsync($"<response xmlns='{Ns.Sasl2}'>{Convert.ToBase64String(client.CreateClientFinal(Convert.FromBase64String(challenge.Text)))}</response>");
            await ExpectSasl2FailureAsync(c, "not-authorized");
        });
        yield return new("sasl2 during an exchange: a stanza ends the stream", Stage.Secure, async c =>
        {
            await c.Client.SendAsync(Authenticate("SCRAM-SHA-256", null));
            await c.Client.ExpectAsync(e => e.Is("challenge", Ns.Sasl2), CaseContext.Timeout);
            await c.SendAsync("<iq type='get' id='x'><query xmlns='jabber:iq:register'/></iq>");
            await c.ExpectStreamErrorAsync(PolicyViolation);
        });
        yield return new("sasl2 during an exchange: an RFC 6120 <auth/> ends the stream", Stage.Secure, async c =>
        {
            await c.Client.SendAsync(Authenticate("SCRAM-SHA-256", null));
            await c.Client.ExpectAsync(e => e.Is("challenge", Ns.Sasl2), CaseContext.Timeout);
            await c.SendAsync(Auth("PLAIN", B64($"\0{c.Suite.Mallory}\0{ServerFixture.Password(c.Suite.Mallory)}")));
            await c.ExpectStreamErrorAsync(PolicyViolation);
        });
        yield return new("authenticate after success: policy-violation", Stage.LoggedIn, async c =>
        {
            // XEP-0388 §3.8: once authenticated, a further <authenticate/> is a stream error.
            await c.SendAsync(Authenticate("PLAIN", B64($"\0{c.Suite.Mallory}\0{ServerFixture.Password(c.Suite.Mallory)}")));
            await c.ExpectStreamErrorAsync(PolicyViolation);
        });
        yield return new("sasl2: five failures end the stream with policy-violation", Stage.Secure, async c =>
        {
            for (var i = 0; i < 5; i++)
            {
                await c.Client.SendAsync(Authenticate("X-EVIL", null));
                await ExpectSasl2FailureAsync(c, "invalid-mechanism");
            }
            await c.ExpectStreamErrorAsync(PolicyViolation);
        });
    }
}
