using Candor.Client;
using Candor.Server.Tests.Harness;
using Candor.Xmpp;

namespace Candor.Server.Tests;

/// <summary>RFC 6120 §8.1.1-8.1.2: 'to' and 'from' of stanzas a client sends. Forged and malformed addresses are
/// wire-level input a client library never produces: those tests use the raw client.</summary>
public sealed class AddressingTests(ServerFixture server) : IClassFixture<ServerFixture>
{
    [Theory]
    [InlineData("other")]
    [InlineData("server")]
    [InlineData("own-other-resource")]
    public async Task Forged_from_is_invalid_from_and_nothing_is_delivered(string forged)
    {
        await using var victim = await server.OnlineUserAsync("victim");
        await using var mallory = await server.OnlineUserAsync("mallory");
        var from = forged switch
        {
            "other" => victim.Full,
            "server" => "localhost",
            _ => mallory.Bare + "/elsewhere",
        };

        await mallory.SendAsync($"<message from='{from}' to='{victim.Bare}' type='chat'><body>forged</body></message>");

        await mallory.ExpectStreamErrorAsync("invalid-from");
        await victim.ExpectNothingAsync(TimeSpan.FromMilliseconds(300), e => e.IsMessage());
    }

    [Fact]
    public async Task Own_bare_or_full_jid_as_from_is_accepted()
    {
        await using var alice = await server.OnlineClientAsync("alice");
        await alice.SendAsync($"<message from='{alice.Bare}' to='{alice.Full}'><body>one</body></message>");
        await alice.ExpectMessageAsync("one");
        await alice.SendAsync($"<message from='{alice.Full}' to='{alice.Full}'><body>two</body></message>");
        var two = await alice.ExpectMessageAsync("two");
        Assert.Equal(alice.Full, two.From);
    }

    [Fact]
    public async Task Invalid_to_is_jid_malformed()
    {
        await using var alice = await server.OnlineUserAsync("alice");
        await alice.SendAsync("<message id='bad' to='@localhost' type='chat'><body>x</body></message>");
        var error = await alice.ExpectStanzaAsync("message", m => m.Id() == "bad");
        error.AssertError("jid-malformed", "modify");
    }

    [Fact]
    public async Task Message_to_a_remote_domain_is_remote_server_not_found()
    {
        await using var alice = await server.OnlineClientAsync("alice");
        var id = await alice.SendMessageAsync(Jid.Parse("bob@example.org"), "hello?");
        var error = await alice.ExpectAsync<ChatMessage>(m => m.Id == id);
        error.Stanza.AssertError("remote-server-not-found", "cancel");
        Assert.Equal("bob@example.org", error.From?.ToString());
    }

    [Fact]
    public async Task Iq_to_a_remote_domain_is_remote_server_not_found()
    {
        await using var alice = await server.OnlineClientAsync("alice");
        var error = await Assert.ThrowsAsync<XmppStanzaException>(() => alice.PingAsync(Jid.Parse("example.org")));
        error.Stanza.AssertError("remote-server-not-found");
    }
}
