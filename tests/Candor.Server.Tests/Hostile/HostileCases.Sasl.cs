using System.Security.Cryptography;
using System.Text;
using Candor.Server.Tests.Harness;
using Candor.Xmpp;
using Candor.Xmpp.Sasl;
using static Candor.Xmpp.StreamErrors;

namespace Candor.Server.Tests.Hostile;

/// <summary>
/// SASL garbage and replays (RFC 6120 §6.4, §6.5; RFC 5802; RFC 7677). A bad exchange gets a SASL &lt;failure/&gt;
/// with the condition of §6.5 and the stream stays open for another try, up to MaxSaslFailuresPerStream (5), after
/// which the stream ends with policy-violation (§6.4.5: "a configurable number of retries").
/// </summary>
public static partial class HostileCases
{
    private const string SaslNs = "urn:ietf:params:xml:ns:xmpp-sasl";

    private static string Auth(string mechanism, string? data) =>
        $"<auth xmlns='{SaslNs}' mechanism='{mechanism}'>{data}</auth>";

    private static string Response(string data) => $"<response xmlns='{SaslNs}'>{data}</response>";

    private static string B64(string text) => Convert.ToBase64String(Encoding.UTF8.GetBytes(text));

    /// <summary>Sends the elements in order and expects the SASL failure, then checks the stream is still open.</summary>
    private static HostileCase SaslFailure(string id, string condition, params string[] elements) =>
        new("sasl " + condition + ": " + id, Stage.Secure, async c =>
        {
            foreach (var element in elements) await c.Client.SendAsync(element);
            await c.ExpectSaslFailureAsync(condition);
            await StillNegotiatingAsync(c);
        });

    /// <summary>After a failure the client may try again (RFC 6120 §6.4.5): an &lt;abort/&gt; is answered with aborted.</summary>
    private static async Task StillNegotiatingAsync(CaseContext c)
    {
        await c.Client.SendAsync($"<abort xmlns='{SaslNs}'/>");
        await c.ExpectSaslFailureAsync("aborted");
    }

    /// <summary>A SCRAM exchange up to the server-first-message; returns the client and the challenge.</summary>
    private static async Task<(ScramClient Client, byte[] ServerFirst)> ScramFirstAsync(CaseContext c, string user, string password,
        string mechanism = "SCRAM-SHA-256", ScramClient? client = null)
    {
        client ??= new ScramClient(ScramAlgorithm.Sha256, user, password);
        await c.Client.SendAsync(Auth(mechanism, Convert.ToBase64String(client.CreateClientFirst())));
        return (client, await c.ExpectChallengeAsync());
    }

    private static IEnumerable<HostileCase> Sasl()
    {
        yield return SaslFailure("unknown mechanism", "invalid-mechanism", Auth("X-EVIL", "AA=="));
        yield return SaslFailure("no mechanism attribute", "invalid-mechanism", $"<auth xmlns='{SaslNs}'>AA==</auth>");
        yield return SaslFailure("mechanism name in lower case", "invalid-mechanism", Auth("scram-sha-256", "AA=="));
        yield return SaslFailure("mechanism not offered (DIGEST-MD5)", "invalid-mechanism", Auth("DIGEST-MD5", ""));
        yield return SaslFailure("mechanism not offered (ANONYMOUS)", "invalid-mechanism", Auth("ANONYMOUS", ""));
        yield return SaslFailure("base64 garbage", "incorrect-encoding", Auth("SCRAM-SHA-256", "!!!!"));
        yield return SaslFailure("base64 with bad length", "incorrect-encoding", Auth("SCRAM-SHA-256", "abc"));
        yield return SaslFailure("base64 with padding inside", "incorrect-encoding", Auth("SCRAM-SHA-256", "ab=c"));
        yield return new("sasl incorrect-encoding: base64 garbage in a response", Stage.Secure, async c =>
        {
            await c.Client.SendAsync(Auth("SCRAM-SHA-256", ""));
            Assert.Empty(await c.ExpectChallengeAsync());
            await c.Client.SendAsync(Response("%%%%"));
            await c.ExpectSaslFailureAsync("incorrect-encoding");
            await StillNegotiatingAsync(c);
        });
        yield return SaslFailure("client-first that is empty ('=')", "malformed-request", Auth("SCRAM-SHA-256", "="));
        yield return SaslFailure("client-first without attributes", "malformed-request", Auth("SCRAM-SHA-256", B64("n,,")));
        yield return SaslFailure("client-first with an unknown gs2 flag", "malformed-request", Auth("SCRAM-SHA-256", B64("x,,n=user,r=abc")));
        yield return SaslFailure("client-first with a mandatory extension", "malformed-request", Auth("SCRAM-SHA-256", B64("n,,m=ext,n=user,r=abc")));
        yield return SaslFailure("client-first with an empty name", "malformed-request", Auth("SCRAM-SHA-256", B64("n,,n=,r=abc")));
        yield return SaslFailure("client-first with a bad name escape", "malformed-request", Auth("SCRAM-SHA-256", B64("n,,n=a=2Xb,r=abc")));
        yield return SaslFailure("client-first without nonce", "malformed-request", Auth("SCRAM-SHA-256", B64("n,,n=user")));
        yield return SaslFailure("client-first with a non-printable nonce", "malformed-request", Auth("SCRAM-SHA-256", B64("n,,n=user,r=a\u0001b")));
        yield return SaslFailure("client-first in invalid UTF-8", "malformed-request", Auth("SCRAM-SHA-256", Convert.ToBase64String([.. "n,,n="u8, 0xFF, .. ",r=abc"u8])));
        yield return SaslFailure("client-first with NUL", "malformed-request", Auth("SCRAM-SHA-256", B64("n,,n=us\0er,r=abc")));
        yield return SaslFailure("client-first with a malformed extension", "malformed-request", Auth("SCRAM-SHA-256", B64("n,,n=user,r=abc,garbage")));
        yield return SaslFailure("client-first with authzid missing its 'a='", "malformed-request", Auth("SCRAM-SHA-256", B64("n,user,n=user,r=abc")));
        yield return SaslFailure("channel binding requested on plain SCRAM", "malformed-request", Auth("SCRAM-SHA-256", B64("p=tls-server-end-point,,n=user,r=abc")));
        yield return SaslFailure("-PLUS without channel binding", "not-authorized", Auth("SCRAM-SHA-256-PLUS", B64("n,,n=user,r=abc")));
        yield return SaslFailure("-PLUS with an unsupported binding type", "malformed-request", Auth("SCRAM-SHA-256-PLUS", B64("p=tls-unique,,n=user,r=abc")));
        yield return SaslFailure("-PLUS with a malformed binding type", "malformed-request", Auth("SCRAM-SHA-256-PLUS", B64("p=tls_unique!,,n=user,r=abc")));
        yield return SaslFailure("response without auth", "malformed-request", Response(B64("c=biws,r=abc,p=AAAA")));
        yield return SaslFailure("<success/> from the client", "malformed-request", $"<success xmlns='{SaslNs}'/>");
        yield return SaslFailure("<challenge/> from the client", "malformed-request", $"<challenge xmlns='{SaslNs}'/>");
        yield return SaslFailure("PLAIN without NULs", "malformed-request", Auth("PLAIN", B64("userpassword")));
        yield return SaslFailure("PLAIN with three NULs", "malformed-request", Auth("PLAIN", B64("\0a\0b\0c")));
        yield return SaslFailure("PLAIN with an empty password", "malformed-request", Auth("PLAIN", B64("\0user\0")));
        yield return SaslFailure("PLAIN with an empty user", "malformed-request", Auth("PLAIN", B64("\0\0password")));
        yield return SaslFailure("PLAIN in invalid UTF-8", "malformed-request", Auth("PLAIN", Convert.ToBase64String([0, 0xFF, 0xFE, 0, .. "pw"u8])));
        yield return SaslFailure("PLAIN for an unknown user", "not-authorized", Auth("PLAIN", B64("\0nobody-here\0password")));
        yield return SaslFailure("PLAIN with a user name that is not a localpart", "not-authorized", Auth("PLAIN", B64("\0a@b/c\0password")));
        yield return new("sasl not-authorized: PLAIN with a wrong password", Stage.Secure, async c =>
        {
            await c.Client.SendAsync(Auth("PLAIN", B64($"\0{c.Suite.Mallory}\0wrong")));
            await c.ExpectSaslFailureAsync("not-authorized");
            await StillNegotiatingAsync(c);
        });
        yield return new("sasl invalid-authzid: PLAIN for another account", Stage.Secure, async c =>
        {
            await c.Client.SendAsync(Auth("PLAIN", B64($"victim@localhost\0{c.Suite.Mallory}\0{ServerFixture.Password(c.Suite.Mallory)}")));
            await c.ExpectSaslFailureAsync("invalid-authzid");
            await StillNegotiatingAsync(c);
        });
        yield return new("sasl invalid-authzid: SCRAM for another account", Stage.Secure, async c =>
        {
            var client = new ScramClient(ScramAlgorithm.Sha256, c.Suite.Mallory, "x", authzid: "alice@localhost");
            await c.Client.SendAsync(Auth("SCRAM-SHA-256", Convert.ToBase64String(client.CreateClientFirst())));
            await c.ExpectSaslFailureAsync("invalid-authzid");
            await StillNegotiatingAsync(c);
        });
        yield return new("sasl not-authorized: SCRAM with a wrong password", Stage.Secure, async c =>
        {
            var (client, serverFirst) = await ScramFirstAsync(c, c.Suite.Mallory, "wrong");
            await c.Client.SendAsync(Response(Convert.ToBase64String(client.CreateClientFinal(serverFirst))));
            await c.ExpectSaslFailureAsync("not-authorized");
            await StillNegotiatingAsync(c);
        });
        yield return new("sasl not-authorized: SCRAM for an unknown user (answered like a known one)", Stage.Secure, async c =>
        {
            var (client, serverFirst) = await ScramFirstAsync(c, "nobody-here", "whatever");
            Assert.Contains(",i=", Encoding.UTF8.GetString(serverFirst));
            await c.Client.SendAsync(Response(Convert.ToBase64String(client.CreateClientFinal(serverFirst))));
            await c.ExpectSaslFailureAsync("not-authorized");
        });
        yield return new("sasl not-authorized: client-final with another nonce", Stage.Secure, async c =>
        {
            var (client, serverFirst) = await ScramFirstAsync(c, c.Suite.Mallory, ServerFixture.Password(c.Suite.Mallory));
            var final = Encoding.UTF8.GetString(client.CreateClientFinal(serverFirst));
            var nonce = final.Split(',')[1];
            await c.Client.SendAsync(Response(B64(final.Replace(nonce, nonce + "x"))));
            await c.ExpectSaslFailureAsync("not-authorized");
        });
        yield return new("sasl not-authorized: client-final with a tampered proof", Stage.Secure, async c =>
        {
            var (client, serverFirst) = await ScramFirstAsync(c, c.Suite.Mallory, ServerFixture.Password(c.Suite.Mallory));
            var final = Encoding.UTF8.GetString(client.CreateClientFinal(serverFirst));
            var proof = Convert.FromBase64String(final[(final.LastIndexOf("p=", StringComparison.Ordinal) + 2)..]);
            proof[0] ^= 1;
            await c.Client.SendAsync(Response(B64(final[..(final.LastIndexOf("p=", StringComparison.Ordinal) + 2)] + Convert.ToBase64String(proof))));
            await c.ExpectSaslFailureAsync("not-authorized");
        });
        yield return new("sasl not-authorized: client-final with other channel-binding data", Stage.Secure, async c =>
        {
            var (client, serverFirst) = await ScramFirstAsync(c, c.Suite.Mallory, ServerFixture.Password(c.Suite.Mallory));
            var final = Encoding.UTF8.GetString(client.CreateClientFinal(serverFirst));
            await c.Client.SendAsync(Response(B64(final.Replace("c=biws", "c=" + B64("y,,")))));
            await c.ExpectSaslFailureAsync("not-authorized");
        });
        yield return new("sasl not-authorized: -PLUS bound to another certificate", Stage.Secure, async c =>
        {
            var client = new ScramClient(ScramAlgorithm.Sha256, c.Suite.Mallory, ServerFixture.Password(c.Suite.Mallory),
                ChannelBinding.TlsServerEndPointType, SHA256.HashData("a man in the middle's certificate"u8), serverSupportsPlus: true);
            var (_, serverFirst) = await ScramFirstAsync(c, "", "", "SCRAM-SHA-256-PLUS", client);
            await c.Client.SendAsync(Response(Convert.ToBase64String(client.CreateClientFinal(serverFirst))));
            await c.ExpectSaslFailureAsync("not-authorized");
        });
        yield return new("sasl not-authorized: replayed client-final of an earlier exchange", Stage.Secure, async c =>
        {
            // Eve recorded a successful exchange; the server's new nonce makes the recording useless.
            var user = c.Suite.Mallory;
            await using var earlier = await XmppTestClient.ConnectAsync(c.Suite.C2sPort);
            await earlier.StartTlsAsync();
            var recorder = new CaseContext(c.Suite, earlier);
            const string nonce = "eve-replays-this-nonce-0123";
            var (client, serverFirst) = await ScramFirstAsync(recorder, user, ServerFixture.Password(user),
                client: new ScramClient(ScramAlgorithm.Sha256, user, ServerFixture.Password(user), clientNonce: nonce));
            var recorded = client.CreateClientFinal(serverFirst);
            await earlier.SendAsync(Response(Convert.ToBase64String(recorded)));
            await earlier.ExpectAsync(e => e.Is("success", Ns.Sasl), CaseContext.Timeout);

            // The same client-first (same client nonce), then the recorded client-final.
            var replay = new ScramClient(ScramAlgorithm.Sha256, user, "unknown", clientNonce: nonce);
            await ScramFirstAsync(c, user, "unknown", client: replay);
            await c.Client.SendAsync(Response(Convert.ToBase64String(recorded)));
            await c.ExpectSaslFailureAsync("not-authorized");
        });
        yield return new("sasl not-authorized: a final message sent twice", Stage.Secure, async c =>
        {
            var (client, serverFirst) = await ScramFirstAsync(c, c.Suite.Mallory, "wrong");
            var final = Convert.ToBase64String(client.CreateClientFinal(serverFirst));
            await c.Client.SendAsync(Response(final));
            await c.ExpectSaslFailureAsync("not-authorized");
            await c.Client.SendAsync(Response(final));
            await c.ExpectSaslFailureAsync("malformed-request");
        });
        yield return new("sasl malformed-request: client-final without proof", Stage.Secure, async c =>
        {
            var (client, serverFirst) = await ScramFirstAsync(c, c.Suite.Mallory, "x");
            var final = Encoding.UTF8.GetString(client.CreateClientFinal(serverFirst));
            await c.Client.SendAsync(Response(B64(final[..final.LastIndexOf(",p=", StringComparison.Ordinal)])));
            await c.ExpectSaslFailureAsync("malformed-request");
        });
        yield return new("sasl malformed-request: proof of the wrong length", Stage.Secure, async c =>
        {
            var (client, serverFirst) = await ScramFirstAsync(c, c.Suite.Mallory, "x");
            var final = Encoding.UTF8.GetString(client.CreateClientFinal(serverFirst));
            await c.Client.SendAsync(Response(B64(final[..final.LastIndexOf(",p=", StringComparison.Ordinal)] + ",p=AAAA")));
            await c.ExpectSaslFailureAsync("malformed-request");
        });
        yield return new("sasl: a second auth restarts the exchange and can succeed", Stage.Secure, async c =>
        {
            await c.Client.SendAsync(Auth("SCRAM-SHA-256", B64("n,,n=nobody-here,r=abcdefgh")));
            await c.ExpectChallengeAsync();
            var outcome = await c.Client.TryAuthenticateAsync(c.Suite.Mallory, ServerFixture.Password(c.Suite.Mallory), timeout: CaseContext.Timeout);
            Assert.True(outcome.Is("success", Ns.Sasl), outcome.ToString());
        });
        yield return new("auth after success: policy-violation", Stage.LoggedIn, async c =>
        {
            // SASL is no longer offered once authenticated; RFC 6120 names no condition, Candor ends the stream.
            await c.SendAsync(Auth("PLAIN", B64($"\0{c.Suite.Mallory}\0{ServerFixture.Password(c.Suite.Mallory)}")));
            await c.ExpectStreamErrorAsync(PolicyViolation);
        });
        yield return new("sasl: five failures end the stream with policy-violation", Stage.Secure, async c =>
        {
            for (var i = 1; i < 5; i++)
            {
                await c.Client.SendAsync(Auth("X-EVIL", ""));
                await c.ExpectSaslFailureAsync("invalid-mechanism");
            }
            await c.Client.SendAsync(Auth("X-EVIL", ""));
            await c.ExpectSaslFailureAsync("invalid-mechanism");
            await c.ExpectStreamErrorAsync(PolicyViolation);
        });
        yield return new("sasl: a huge garbage initial response", Stage.Secure, async c =>
        {
            await c.Client.SendAsync(Auth("SCRAM-SHA-256", Convert.ToBase64String(RandomNumberGenerator.GetBytes(40_000))));
            await c.ExpectSaslFailureAsync("malformed-request");
        });
    }
}
