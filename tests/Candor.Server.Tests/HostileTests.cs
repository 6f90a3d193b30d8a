using System.Text;
using Candor.Server.Tests.Harness;
using Candor.Xmpp;

namespace Candor.Server.Tests;

/// <summary>
/// Hostile connections are refused one by one with the right stream error while an honest pair keeps
/// chatting on the same server: no message of theirs is lost or delayed beyond the usual timeout.
/// </summary>
public sealed class HostileTests(ServerFixture server) : IClassFixture<ServerFixture>
{
    private sealed record Hostile(string Name, bool Secure, bool Login, Func<XmppTestClient, Task> Attack, string Condition);

    private static Func<XmppTestClient, Task> Send(string xml) => c => c.SendIgnoringResetAsync(xml);

    private IEnumerable<Hostile> Cases(string victim) =>
    [
        new("wrong to", false, false, c => c.SendAsync(XmppTestClient.Header(to: "evil.example")), "host-unknown"),
        new("stream namespace", false, false, c => c.SendAsync(XmppTestClient.Header(streamNs: "urn:evil")), "invalid-namespace"),
        new("content namespace", false, false, c => c.SendAsync(XmppTestClient.Header(ns: "jabber:server")), "invalid-namespace"),
        new("no version", false, false, c => c.SendAsync(XmppTestClient.Header(version: null)), "unsupported-version"),
        new("old version", false, false, c => c.SendAsync(XmppTestClient.Header(version: "0.9")), "unsupported-version"),
        new("DTD", true, false, Send("<!DOCTYPE x [<!ENTITY a 'aaaaaaaaaa'>]>"), "restricted-xml"),
        new("comment", true, false, Send("<!-- hello -->"), "restricted-xml"),
        new("processing instruction", true, false, Send("<?evil x?>"), "restricted-xml"),
        new("unknown entity", true, true, Send($"<message to='{victim}'><body>&lol9;</body></message>"), "restricted-xml"),
        new("mismatched tag", true, true, Send($"<message to='{victim}'><body>x</message></body>"), "not-well-formed"),
        new("invalid UTF-8", true, true, c => c.SendRawAsync([.. Encoding.UTF8.GetBytes($"<message to='{victim}'><body>"), 0xFE, 0xFF, .. "</body></message>"u8]), "not-well-formed"),
        new("stanza before auth", true, false, Send($"<message to='{victim}'><body>spam</body></message>"), "not-authorized"),
        new("unknown top-level element", true, true, Send("<evil xmlns='jabber:client'/>"), "unsupported-stanza-type"),
        new("forged from", true, true, Send($"<message from='{victim}' to='{victim}'><body>forged</body></message>"), "invalid-from"),
        new("oversize stanza", true, true, Send($"<message to='{victim}'><body>{new string('A', 400 * 1024)}</body></message>"), "policy-violation"),
        new("deep nesting", true, true, Send($"<message to='{victim}'>{string.Concat(Enumerable.Repeat("<a>", 200))}"), "policy-violation"),
    ];

    [Fact]
    public async Task Hostile_connections_are_refused_while_an_honest_pair_chats_without_loss()
    {
        await using var alice = await server.OnlineUserAsync("alice");
        await using var bob = await server.OnlineUserAsync("bob");
        var mallory = await server.CreateUserAsync("mallory");
        using var stop = new CancellationTokenSource();

        var exchanged = 0;
        var chat = Task.Run(async () =>
        {
            while (!stop.IsCancellationRequested || exchanged < 10)
            {
                var n = exchanged;
                await alice.SendMessageAsync(bob.Full, "ping " + n);
                await bob.ExpectMessageAsync("ping " + n);
                await bob.SendMessageAsync(alice.Full, "pong " + n);
                await alice.ExpectMessageAsync("pong " + n);
                exchanged++;
            }
        });

        foreach (var hostile in Cases(bob.Full))
        {
            await using var attacker = hostile.Login
                ? await XmppTestClient.LoginAsync(server.C2sPort, mallory, ServerFixture.Password(mallory), "attack")
                : hostile.Secure ? await SecureAsync() : await XmppTestClient.ConnectTcpAsync(server.C2sPort);
            await hostile.Attack(attacker);
            try
            {
                await attacker.ExpectStreamErrorAsync(hostile.Condition);
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                throw new Xunit.Sdk.XunitException($"hostile case '{hostile.Name}': {e.Message}");
            }
            Assert.False(chat.IsFaulted, "the honest chat failed during " + hostile.Name);
        }

        stop.Cancel();
        await chat.WaitAsync(TimeSpan.FromSeconds(30));
        Assert.True(exchanged >= 10);
        // nothing from mallory reached bob, and nothing extra arrived
        await bob.ExpectNothingAsync(TimeSpan.FromMilliseconds(200), e => e.IsMessage());
        await alice.ExpectNothingAsync(TimeSpan.FromMilliseconds(100), e => e.IsMessage());
    }

    private async Task<XmppTestClient> SecureAsync()
    {
        var client = await XmppTestClient.ConnectAsync(server.C2sPort);
        await client.StartTlsAsync();
        return client;
    }
}
