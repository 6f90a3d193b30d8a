using Candor.Xml;
using Candor.Xmpp;
using Candor.Xmpp.Sasl;

namespace Candor.Server.Tests.Harness;

/// <summary>The two ways to frame SASL that Candor offers: RFC 6120 §6 and XEP-0388 (SASL2).</summary>
public enum SaslProfile { Rfc6120, Sasl2 }

/// <summary>SASL in either profile, so that one test can state that both behave the same.</summary>
public static class SaslProfileExtensions
{
    /// <summary>Theory data: each mechanism in each profile.</summary>
    public static TheoryData<string, SaslProfile> InBothProfiles(params string[] mechanisms)
    {
        var data = new TheoryData<string, SaslProfile>();
        foreach (var profile in Enum.GetValues<SaslProfile>())
            foreach (var mechanism in mechanisms) data.Add(mechanism, profile);
        return data;
    }

    /// <summary>Connects and negotiates STARTTLS: a stream that offers SASL.</summary>
    public static async Task<XmppTestClient> ConnectSecureAsync(int port)
    {
        var client = await XmppTestClient.ConnectAsync(port);
        await client.StartTlsAsync();
        return client;
    }

    /// <summary>Runs one exchange in <paramref name="profile"/>; returns the server's success or failure (nothing read after it).</summary>
    public static Task<Element> TryAuthenticateAsync(this XmppTestClient client, SaslProfile profile, string user, string password,
        string mechanism = "SCRAM-SHA-256", TimeSpan? timeout = null) =>
        profile == SaslProfile.Rfc6120
            ? client.TryAuthenticateAsync(user, password, mechanism, timeout)
            : Sasl2Exchange.Over(client, timeout).AuthenticateAsync(user, password, mechanism,
                channelBinding: mechanism.EndsWith("-PLUS", StringComparison.Ordinal) ? ChannelBinding.TlsServerEndPoint(client.ServerCertificate!) : null);

    /// <summary>Authenticates and reaches the authenticated stream's features: after a restart (RFC 6120) or at once (SASL2).</summary>
    public static async Task AuthenticateAsync(this XmppTestClient client, SaslProfile profile, string user, string password,
        string mechanism = "SCRAM-SHA-256")
    {
        if (profile == SaslProfile.Rfc6120)
        {
            await client.AuthenticateAsync(user, password, mechanism);
            return;
        }
        var outcome = await client.TryAuthenticateAsync(profile, user, password, mechanism);
        Assert.True(outcome.Is("success", Ns.Sasl2), "expected SASL2 success, got " + outcome);
        await client.ExpectFeaturesWithoutRestartAsync();
    }

    /// <summary>XEP-0388 §2.6.1: after success the features follow on the same stream, with no new stream header.</summary>
    public static async Task<Element> ExpectFeaturesWithoutRestartAsync(this XmppTestClient client)
    {
        var next = await client.ExpectAsync(e => e.Is("features", Ns.Stream) || e.Is("stream", Ns.Stream));
        Assert.True(next.Is("features", Ns.Stream), "SASL2 success is followed by features, not a stream restart; got " + next);
        return next;
    }

    public static bool IsSaslSuccess(this Element outcome) => outcome.Name == "success" && outcome.Namespace is Ns.Sasl or Ns.Sasl2;

    /// <summary>The RFC 6120 §6.5 condition of a failure in either profile (it is in the RFC 6120 namespace in both), or null.</summary>
    public static string? SaslCondition(this Element outcome) =>
        outcome.Name == "failure" && outcome.Namespace is Ns.Sasl or Ns.Sasl2
            ? outcome.Elements.FirstOrDefault(e => e.Namespace == Ns.Sasl && e.Name != "text")?.Name
            : null;
}
