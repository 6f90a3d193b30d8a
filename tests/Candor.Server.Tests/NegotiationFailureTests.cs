using System.Net;
using System.Text;
using Candor.Server.Tests.Harness;
using Candor.Xmpp;

namespace Candor.Server.Tests;

/// <summary>
/// Issue 23.4: a SASL mechanism or channel-binding negotiation that does not work out is not a wrong password. slixmpp
/// tries SCRAM-*-PLUS with a binding type the server does not offer, fails, and retries plain SCRAM; that must not
/// count toward the failure throttle, or an honest client would slow down its own logins.
/// </summary>
public sealed class NegotiationFailureTests
{
    private static readonly IPAddress Loopback = IPAddress.Parse("127.0.0.1");

    private static string B64(string text) => Convert.ToBase64String(Encoding.UTF8.GetBytes(text));

    [Fact]
    public async Task Failed_channel_binding_negotiations_are_not_counted_as_failed_logins()
    {
        await using var server = await ServerFixture.StartAsync();
        var user = await server.CreateUserAsync("honest");
        var throttle = server.Host.Server.AuthThrottle;
        for (var i = 0; i < 6; i++)
        {
            await using var client = await XmppTestClient.ConnectAsync(server.C2sPort);
            await client.StartTlsAsync();
            await client.SendAsync($"<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='SCRAM-SHA-256-PLUS'>{B64($"p=tls-unique,,n={user},r=abcdefgh")}</auth>");
            Assert.Equal("failure", (await client.ExpectAsync(e => e.Namespace == Ns.Sasl && e.Name is "success" or "failure")).Name);
            // The client retries with a mechanism that works, as slixmpp does.
            await client.AuthenticateAsync(user, ServerFixture.Password(user));
        }
        Assert.Equal(TimeSpan.Zero, throttle.DelayFor(Loopback, user));

        // The control: wrong passwords do count.
        for (var i = 0; i < 3; i++)
        {
            await using var client = await XmppTestClient.ConnectAsync(server.C2sPort);
            await client.StartTlsAsync();
            Assert.Equal("failure", (await client.TryAuthenticateAsync(user, "wrong", timeout: TimeSpan.FromSeconds(15))).Name);
        }
        Assert.True(throttle.DelayFor(Loopback, user) > TimeSpan.Zero);
    }

    [Fact]
    public async Task An_unknown_mechanism_and_a_malformed_message_are_not_counted_either()
    {
        await using var server = await ServerFixture.StartAsync();
        var user = await server.CreateUserAsync("honest");
        for (var i = 0; i < 4; i++)
        {
            await using var client = await XmppTestClient.ConnectAsync(server.C2sPort);
            await client.StartTlsAsync();
            await client.SendAsync("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='X-UNKNOWN'/>");
            Assert.NotNull((await client.ExpectAsync(e => e.Is("failure", Ns.Sasl))).GetChild("invalid-mechanism", Ns.Sasl));
            await client.SendAsync($"<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='SCRAM-SHA-256'>{B64($"x,,n={user},r=abc")}</auth>");
            Assert.NotNull((await client.ExpectAsync(e => e.Is("failure", Ns.Sasl))).GetChild("malformed-request", Ns.Sasl));
        }
        Assert.Equal(TimeSpan.Zero, server.Host.Server.AuthThrottle.DelayFor(Loopback, user));
    }
}
