using Candor.Server.Tests.Harness;
using Candor.Xmpp;

namespace Candor.Server.Tests;

/// <summary>RFC 6120 §7 resource binding, and the legacy session IQ (RFC 6121 Appendix E).</summary>
public sealed class BindTests(ServerFixture server) : IClassFixture<ServerFixture>
{
    [Fact]
    public async Task Client_chosen_resource_is_bound()
    {
        var user = await server.CreateUserAsync();
        await using var client = await server.ClientAsync(user, "laptop");
        Assert.Equal($"{user}@localhost/laptop", client.Full.ToString());
    }

    [Fact]
    public async Task Server_generates_a_resource_when_none_is_asked()
    {
        var user = await server.CreateUserAsync();
        await using var first = await server.ClientAsync(user);
        await using var second = await server.ClientAsync(user);
        Assert.Equal($"{user}@localhost", first.Bare.ToString());
        Assert.False(string.IsNullOrEmpty(first.Full.Resource));
        Assert.NotEqual(first.Full.Resource, second.Full.Resource);
    }

    [Fact]
    public async Task Same_resource_again_ends_the_old_session_with_conflict_and_the_new_one_works()
    {
        var user = await server.CreateUserAsync();
        await using var old = await server.ClientAsync(user, "phone");
        await using var replacement = await server.ClientAsync(user, "phone");

        await old.ExpectStreamErrorAsync("conflict");
        Assert.Equal($"{user}@localhost/phone", replacement.Full.ToString());
        await replacement.PingAsync();
        await replacement.SendMessageAsync(replacement.Full, "to myself");
        await replacement.ExpectMessageAsync("to myself");
    }

    [Fact]
    public async Task Legacy_session_iq_is_answered_with_result()
    {
        var user = await server.CreateUserAsync();
        await using var client = await server.ClientAsync(user);
        Assert.NotNull(client.StreamFeatures!.GetChild("session", Ns.Session)?.GetChild("optional", Ns.Session));
        var result = await client.IqAsync("<iq type='set'><session xmlns='urn:ietf:params:xml:ns:xmpp-session'/></iq>");
        Assert.Equal("result", result.Type());
    }

    [Fact]
    public async Task Stanza_before_bind_is_not_authorized()
    {
        // Wire-level: a client library always binds first.
        var user = await server.CreateUserAsync();
        await using var client = await XmppTestClient.ConnectAsync(server.C2sPort);
        await client.StartTlsAsync();
        await client.AuthenticateAsync(user, ServerFixture.Password(user));
        await client.SendAsync("<message to='someone@localhost'><body>too early</body></message>");
        await client.ExpectStreamErrorAsync("not-authorized");
    }
}
