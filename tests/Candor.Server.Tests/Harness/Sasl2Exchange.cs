using System.Security;
using Candor.Xml;
using Candor.Xmpp;
using Candor.Xmpp.Sasl;

namespace Candor.Server.Tests.Harness;

/// <summary>
/// XEP-0388 (SASL2) exchanges written as raw XML, over any connection that can send text and wait for an
/// element: <see cref="XmppTestClient"/> over TCP, or a WebSocket. SCRAM success is checked against the server
/// signature in &lt;additional-data/&gt;.
/// </summary>
public sealed class Sasl2Exchange(Func<string, Task> send, Func<Func<Element, bool>, Task<Element>> expect)
{
    public const string Namespace = "urn:xmpp:sasl:2";

    public static Sasl2Exchange Over(XmppTestClient client, TimeSpan? timeout = null) =>
        new(client.SendAsync, match => client.ExpectAsync(match, timeout));

    public static bool IsOutcome(Element e) => e.Namespace == Ns.Sasl2 && e.Name is "success" or "failure";

    /// <summary>The mechanisms of the &lt;authentication/&gt; feature (empty when it is not offered).</summary>
    public static IReadOnlyList<string> Mechanisms(Element? features) =>
        features?.GetChild("authentication", Ns.Sasl2)?.Elements.Where(e => e.Is("mechanism", Ns.Sasl2)).Select(e => e.Text).ToList() ?? [];

    /// <summary>A &lt;user-agent/&gt; element; null parts are left out.</summary>
    public static string UserAgent(string? id, string? software = null, string? device = null) =>
        "<user-agent" + (id is null ? "" : $" id='{SecurityElement.Escape(id)}'") + ">"
        + (software is null ? "" : $"<software>{SecurityElement.Escape(software)}</software>")
        + (device is null ? "" : $"<device>{SecurityElement.Escape(device)}</device>")
        + "</user-agent>";

    /// <summary>
    /// Runs one exchange and returns the server's &lt;success/&gt; or &lt;failure/&gt;. For -PLUS mechanisms
    /// <paramref name="channelBinding"/> is the tls-server-end-point data to send.
    /// </summary>
    public async Task<Element> AuthenticateAsync(string user, string password, string mechanism = "SCRAM-SHA-256",
        string userAgent = "", byte[]? channelBinding = null, string? authzid = null)
    {
        if (mechanism == "PLAIN")
        {
            var plain = Convert.ToBase64String(SaslPlain.Create(authzid, user, password));
            await send(Authenticate(mechanism, plain, userAgent));
            return await expect(IsOutcome);
        }
        var algorithm = mechanism.StartsWith("SCRAM-SHA-256", StringComparison.Ordinal) ? ScramAlgorithm.Sha256 : ScramAlgorithm.Sha1;
        var plus = mechanism.EndsWith("-PLUS", StringComparison.Ordinal);
        var scram = plus
            ? new ScramClient(algorithm, user, password, ChannelBinding.TlsServerEndPointType, channelBinding, serverSupportsPlus: true, authzid: authzid)
            : new ScramClient(algorithm, user, password, authzid: authzid);
        Assert.Equal(mechanism, scram.MechanismName);
        await send(Authenticate(mechanism, Convert.ToBase64String(scram.CreateClientFirst()), userAgent));
        var challenge = await expect(e => e.Is("challenge", Ns.Sasl2) || IsOutcome(e));
        if (!challenge.Is("challenge", Ns.Sasl2)) return challenge;
        var final = scram.CreateClientFinal(Convert.FromBase64String(challenge.Text));
        await send($"<response xmlns='{Namespace}'>{Convert.ToBase64String(final)}</response>");
        var outcome = await expect(IsOutcome);
        if (outcome.Name == "success")
        {
            var additional = outcome.GetChildText("additional-data", Ns.Sasl2);
            Assert.True(additional is not null, "SCRAM success carries the server-final message in <additional-data/>: " + outcome);
            Assert.True(scram.VerifyServerFinal(Convert.FromBase64String(additional)), "the server signature does not verify");
        }
        return outcome;
    }

    public static string Authenticate(string mechanism, string? initialResponse, string userAgent = "") =>
        $"<authenticate xmlns='{Namespace}' mechanism='{mechanism}'>"
        + (initialResponse is null ? "" : $"<initial-response>{initialResponse}</initial-response>")
        + userAgent + "</authenticate>";

    /// <summary>
    /// Connects, negotiates TLS, authenticates with SASL2 (SCRAM-SHA-256) and binds on the same stream: a ready
    /// session, identified by the given user agent.
    /// </summary>
    public static async Task<XmppTestClient> LoginAsync(int port, string user, string password, string? resource, string userAgent)
    {
        var client = await SaslProfileExtensions.ConnectSecureAsync(port);
        var outcome = await Over(client).AuthenticateAsync(user, password, userAgent: userAgent);
        Assert.True(outcome.Is("success", Ns.Sasl2), "expected SASL2 success, got " + outcome);
        await client.ExpectFeaturesWithoutRestartAsync();
        await client.BindAsync(resource);
        return client;
    }
}
