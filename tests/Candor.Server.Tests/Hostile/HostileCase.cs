using System.Text;
using Candor.Server.Tests.Harness;
using Candor.Xml;
using Candor.Xmpp;

namespace Candor.Server.Tests.Hostile;

/// <summary>Where a case starts: what the attacker's connection has done before the attack.</summary>
public enum Stage
{
    /// <summary>TCP connected, nothing sent.</summary>
    Tcp,
    /// <summary>Stream opened (header and features exchanged), no TLS.</summary>
    Opened,
    /// <summary>TLS negotiated and the stream restarted; not authenticated.</summary>
    Secure,
    /// <summary>Authenticated as mallory with a resource bound.</summary>
    LoggedIn,
    /// <summary>The case makes its own connections.</summary>
    None,
}

/// <summary>One hostile input and the exact answer RFC 6120 (or RFC 7395, XEP-0077...) prescribes for it.</summary>
public sealed record HostileCase(string Id, Stage Stage, Func<CaseContext, Task> Run)
{
    public override string ToString() => Id;
}

/// <summary>The attacker's connection and the expectations cases use.</summary>
public sealed class CaseContext(HostileServer suite, XmppTestClient? client)
{
    public static readonly TimeSpan Timeout = TimeSpan.FromSeconds(10);

    public HostileServer Suite { get; } = suite;
    public XmppTestClient Client => client ?? throw new InvalidOperationException("this case has no prepared connection");

    public Task SendAsync(string xml) => Client.SendIgnoringResetAsync(xml);

    public async Task SendRawAsync(byte[] bytes)
    {
        try
        {
            await Client.SendRawAsync(bytes);
        }
        catch (IOException)
        {
        }
    }

    /// <summary>&lt;stream:error/&gt; with exactly this condition, then &lt;/stream:stream&gt;, then the connection's end.</summary>
    public Task ExpectStreamErrorAsync(string condition) => Client.ExpectStreamErrorAsync(condition, Timeout);

    /// <summary>A SASL &lt;failure/&gt; with this condition (RFC 6120 §6.5); the stream stays open.</summary>
    public async Task ExpectSaslFailureAsync(string condition)
    {
        var outcome = await Client.ExpectAsync(e => e.Namespace == Ns.Sasl && e.Name is "failure" or "success" or "challenge"
            || e.Is("error", Ns.Stream) || e.Namespace == XmppTestClient.TestNs, Timeout);
        Assert.True(outcome.Is("failure", Ns.Sasl), $"expected SASL failure <{condition}/>, got {outcome}");
        Assert.True(outcome.GetChild(condition, Ns.Sasl) is not null, $"expected SASL failure <{condition}/>, got {outcome}");
    }

    /// <summary>The server's SASL challenge (base64 decoded).</summary>
    public async Task<byte[]> ExpectChallengeAsync()
    {
        var challenge = await Client.ExpectAsync(e => e.Namespace == Ns.Sasl || e.Is("error", Ns.Stream) || e.Namespace == XmppTestClient.TestNs, Timeout);
        Assert.True(challenge.Is("challenge", Ns.Sasl), "expected a SASL challenge, got " + challenge);
        return Convert.FromBase64String(challenge.Text);
    }

    /// <summary>An error stanza answering the stanza with this id, with this condition (RFC 6120 §8.3); the stream stays open.</summary>
    public async Task ExpectStanzaErrorAsync(string id, string condition)
    {
        var reply = await Client.ExpectAsync(e => e.Namespace == Ns.Client && e.Id() == id || e.Is("error", Ns.Stream)
            || e.Namespace == XmppTestClient.TestNs, Timeout);
        Assert.True(reply.Namespace == Ns.Client, $"expected a stanza error <{condition}/>, got {reply}");
        reply.AssertError(condition);
        await Client.SyncAsync();
    }

    /// <summary>The stream is still open and served: a ping round trip.</summary>
    public Task StillServedAsync() => Client.SyncAsync();

    /// <summary>The connection ends (stream closed or dropped) within the time, whatever was sent before.</summary>
    public async Task ExpectConnectionEndAsync(TimeSpan within) =>
        await Client.ExpectAsync(e => e.Namespace == XmppTestClient.TestNs && e.Name is XmppTestClient.EofName, within);

    public static byte[] Bytes(params object[] parts) =>
        [.. parts.SelectMany(p => p is string s ? Encoding.UTF8.GetBytes(s) : (byte[])p)];
}
