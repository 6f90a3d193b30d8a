using Candor.Server.Tests.Harness;
using Candor.Xml;
using Candor.Xmpp;

namespace Candor.Server.Tests;

/// <summary>Bind 2 (XEP-0386) inside SASL2: one round trip to a bound session with carbons, stream management and client state inline.</summary>
public sealed class Bind2Tests(ServerFixture server) : IClassFixture<ServerFixture>
{
    private const string Bind2 = "urn:xmpp:bind:0";

    [Fact]
    public async Task Authentication_offers_inline_bind_with_its_features()
    {
        await using var client = await SaslProfileExtensions.ConnectSecureAsync(server.C2sPort);
        var bind = client.Features!.GetChild("authentication", Ns.Sasl2)!.GetChild("inline", Ns.Sasl2)!.GetChild("bind", Bind2)!;
        var features = bind.GetChild("inline", Bind2)!.Elements.Select(f => f.GetAttribute("var")).ToList();
        Assert.Equal(["urn:xmpp:carbons:2", "urn:xmpp:csi:0", "urn:xmpp:sm:3"], features.Order());
    }

    [Fact]
    public async Task A_bind_inside_authenticate_binds_and_enables_carbons_and_stream_management_at_once()
    {
        var user = await server.CreateUserAsync("alice");
        await using var other = await server.LoginAsync(user, "laptop");
        await using var client = await SaslProfileExtensions.ConnectSecureAsync(server.C2sPort);
        var request = $"<bind xmlns='{Bind2}'><tag>Phone</tag><enable xmlns='urn:xmpp:carbons:2'/><enable xmlns='urn:xmpp:sm:3' resume='true'/></bind>";
        var success = await Sasl2Exchange.Over(client).AuthenticateAsync(user, ServerFixture.Password(user), userAgent: request);
        Assert.True(success.Is("success", Ns.Sasl2), "expected success, got " + success);
        var jid = Jid.Parse(success.GetChildText("authorization-identifier", Ns.Sasl2)!);
        Assert.Equal(user, jid.Local);
        Assert.StartsWith("Phone.", jid.Resource);
        var enabled = success.GetChild("bound", Bind2)!.GetChild("enabled", "urn:xmpp:sm:3")!;
        Assert.Equal("true", enabled.GetAttribute("resume"));
        Assert.False(string.IsNullOrEmpty(enabled.GetAttribute("id")));
        var features = await client.ExpectFeaturesWithoutRestartAsync();
        Assert.Null(features.GetChild("bind", Ns.Bind));

        // Bound: an IQ works at once; stream management counts it; carbons copy what the other resource sends.
        await client.SendAsync("<iq type='get' id='p1' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>");
        await client.ExpectAsync(e => e.IsIq() && e.Id() == "p1" && e.Type() == "result");
        await client.SendAsync("<r xmlns='urn:xmpp:sm:3'/>");
        Assert.Equal("1", (await client.ExpectAsync(e => e.Is("a", "urn:xmpp:sm:3"))).GetAttribute("h"));
        await other.SendAsync("<message to='nobody@localhost' type='chat' id='c1'><body>copied</body></message>");
        var copy = await client.ExpectAsync(e => e.IsMessage() && e.GetChild("sent", "urn:xmpp:carbons:2") is not null);
        Assert.Equal(jid.ToString(), copy.GetAttribute("to"));
    }

    [Fact]
    public async Task Without_a_tag_the_server_picks_the_resource_and_inactive_holds_presence()
    {
        var user = await server.CreateUserAsync("alice");
        await using var client = await SaslProfileExtensions.ConnectSecureAsync(server.C2sPort);
        var success = await Sasl2Exchange.Over(client).AuthenticateAsync(user, ServerFixture.Password(user),
            userAgent: $"<bind xmlns='{Bind2}'><inactive xmlns='urn:xmpp:csi:0'/></bind>");
        var jid = Jid.Parse(success.GetChildText("authorization-identifier", Ns.Sasl2)!);
        Assert.StartsWith("candor-", jid.Resource);
        await client.ExpectFeaturesWithoutRestartAsync();
        await using var bob = await server.OnlineUserAsync("bob");
        await bob.SendAsync($"<presence to='{jid}'><status>held</status></presence>");
        await bob.SyncAsync();
        await client.ExpectNothingAsync(TimeSpan.FromMilliseconds(300), e => e.IsPresence());
        await bob.SendMessageAsync(jid.ToString(), "wake");
        await client.ExpectMessageAsync("wake");
        await client.ExpectStanzaAsync("presence", p => p.GetChildText("status", Ns.Client) == "held");
    }
}
