using Candor.Server.Tests.Harness;
using Candor.Xmpp;

namespace Candor.Server.Tests;

/// <summary>RFC 6120 §7 resource binding, and the legacy session IQ (RFC 6121 Appendix E).</summary>
public sealed class BindTests(ServerFixture server) : IClassFixture<ServerFixture>
{
    private async Task<XmppTestClient> AuthenticatedAsync(string user)
    {
        var client = await XmppTestClient.ConnectAsync(server.C2sPort);
        await client.StartTlsAsync();
        await client.AuthenticateAsync(user, ServerFixture.Password(user));
        return client;
    }

    [Fact]
    public async Task Client_chosen_resource_is_bound()
    {
        var user = await server.CreateUserAsync();
        await using var client = await AuthenticatedAsync(user);
        await client.SendAsync("<iq type='set' id='b1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>laptop</resource></bind></iq>");
        var result = await client.ExpectStanzaAsync("iq", e => e.Id() == "b1");
        Assert.Equal("result", result.Type());
        Assert.Equal($"{user}@localhost/laptop", result.GetChild("bind", Ns.Bind)!.GetChildText("jid", Ns.Bind));
    }

    [Fact]
    public async Task Server_generates_a_resource_when_none_is_asked()
    {
        var user = await server.CreateUserAsync();
        await using var first = await AuthenticatedAsync(user);
        await using var second = await AuthenticatedAsync(user);
        var a = await first.BindAsync();
        var b = await second.BindAsync();
        Assert.Equal($"{user}@localhost", a.Bare.ToString());
        Assert.False(string.IsNullOrEmpty(a.Resource));
        Assert.NotEqual(a.Resource, b.Resource);
    }

    [Fact]
    public async Task Same_resource_again_ends_the_old_session_with_conflict_and_the_new_one_works()
    {
        var user = await server.CreateUserAsync();
        await using var old = await server.LoginAsync(user, "phone");
        await using var replacement = await server.LoginAsync(user, "phone");

        await old.ExpectStreamErrorAsync("conflict");
        Assert.Equal($"{user}@localhost/phone", replacement.Full);
        await replacement.SyncAsync();
        await replacement.SendMessageAsync(replacement.Full, "to myself");
        await replacement.ExpectMessageAsync("to myself");
    }

    [Fact]
    public async Task Legacy_session_iq_is_answered_with_result()
    {
        var user = await server.CreateUserAsync();
        await using var client = await server.LoginAsync(user);
        Assert.NotNull(client.Features!.GetChild("session", Ns.Session)?.GetChild("optional", Ns.Session));
        var result = await client.RequestAsync("<iq type='set' id='s1'><session xmlns='urn:ietf:params:xml:ns:xmpp-session'/></iq>");
        Assert.Equal("result", result.Type());
    }

    [Fact]
    public async Task Stanza_before_bind_is_not_authorized()
    {
        var user = await server.CreateUserAsync();
        await using var client = await AuthenticatedAsync(user);
        await client.SendAsync("<message to='someone@localhost'><body>too early</body></message>");
        await client.ExpectStreamErrorAsync("not-authorized");
    }
}
