using Candor.Server.Tests.Harness;
using Candor.Xml;
using Candor.Xmpp;

namespace Candor.Server.Tests;

/// <summary>Bind 2 (XEP-0386) inside SASL2: one round trip to a bound session with carbons, stream management and client state inline.</summary>
public sealed class Bind2Tests(ServerFixture server) : IClassFixture<ServerFixture>
{
    private const string Bind2 = "urn:xmpp:bind:0";
    private const string Sm = "urn:xmpp:sm:3";

    [Fact]
    public async Task Authentication_offers_inline_bind_with_its_features()
    {
        await using var client = await SaslProfileExtensions.ConnectSecureAsync(server.C2sPort);
        var bind = client.Features!.GetChild("authentication", Ns.Sasl2)!.GetChild("inline", Ns.Sasl2)!.GetChild("bind", Bind2)!;
        var features = bind.GetChild("inline", Bind2)!.Elements.Select(f => f.GetAttribute("var")).ToList();
        Assert.Equal(["urn:xmpp:carbons:2", "urn:xmpp:csi:0", "urn:xmpp:sm:3"], features.Order());
        // XEP-0198 1.6.1: resumption inline in <authenticate/>.
        Assert.NotNull(client.Features!.GetChild("authentication", Ns.Sasl2)!.GetChild("inline", Ns.Sasl2)!.GetChild("sm", Sm));
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

    /// <summary>A phone binds with stream management inline and loses its connection; messages arrive meanwhile.</summary>
    private async Task<(string User, Jid Phone, string Id, XmppTestClient Bob)> DetachedPhoneAsync()
    {
        var user = await server.CreateUserAsync("alice");
        await using var client = await SaslProfileExtensions.ConnectSecureAsync(server.C2sPort);
        var success = await Sasl2Exchange.Over(client).AuthenticateAsync(user, ServerFixture.Password(user),
            userAgent: $"<bind xmlns='{Bind2}'><tag>phone</tag><enable xmlns='{Sm}' resume='true'/></bind>");
        var phone = Jid.Parse(success.GetChildText("authorization-identifier", Ns.Sasl2)!);
        var id = success.GetChild("bound", Bind2)!.GetChild("enabled", Sm)!.GetAttribute("id")!;
        await client.ExpectFeaturesWithoutRestartAsync();
        var bob = await server.OnlineUserAsync("bob");
        await bob.SendMessageAsync(phone.ToString(), "m1");
        await client.ExpectMessageAsync("m1");
        client.Abort();
        await Task.Delay(200);
        await bob.SendMessageAsync(phone.ToString(), "m2");
        await bob.SendMessageAsync(phone.ToString(), "m3");
        await bob.SyncAsync();
        return (user, phone, id, bob);
    }

    [Fact]
    public async Task A_resume_inside_authenticate_resumes_in_one_round_trip_and_skips_binding()
    {
        var (user, phone, id, bob) = await DetachedPhoneAsync();
        await using var _ = bob;
        await using var client = await SaslProfileExtensions.ConnectSecureAsync(server.C2sPort);
        // The client acknowledges nothing; the bind request beside the resumption is ignored once it succeeds.
        var success = await Sasl2Exchange.Over(client).AuthenticateAsync(user, ServerFixture.Password(user),
            userAgent: $"<resume xmlns='{Sm}' previd='{id}' h='0'/><bind xmlns='{Bind2}'><tag>other</tag></bind>");
        Assert.True(success.Is("success", Ns.Sasl2), "expected success, got " + success);
        Assert.Equal(phone.ToString(), success.GetChildText("authorization-identifier", Ns.Sasl2));
        var resumed = success.GetChild("resumed", Sm)!;
        Assert.Equal(id, resumed.GetAttribute("previd"));
        Assert.Equal("0", resumed.GetAttribute("h"));
        Assert.Null(success.GetChild("bound", Bind2));
        var features = await client.ExpectFeaturesWithoutRestartAsync();
        Assert.Null(features.GetChild("bind", Ns.Bind));
        // What the client had not acknowledged, once, in order; then the session goes on as the same full JID.
        var bodies = new List<string>();
        for (var i = 1; i <= 3; i++)
            bodies.Add((await client.ExpectAsync(e => e.IsMessage() && e.GetChildText("body", Ns.Client) is not null)).GetChildText("body", Ns.Client)!);
        Assert.Equal(["m1", "m2", "m3"], bodies);
        await client.SendAsync($"<r xmlns='{Sm}'/>");
        Assert.Equal("0", (await client.ExpectAsync(e => e.Is("a", Sm))).GetAttribute("h"));
        await bob.SendMessageAsync(phone.ToString(), "m4");
        await client.ExpectMessageAsync("m4");
        await client.ExpectNothingAsync(TimeSpan.FromMilliseconds(300), e => e.IsMessage() && e.GetChildText("body", Ns.Client) is "m1" or "m2" or "m3");
    }

    [Fact]
    public async Task A_failed_inline_resume_says_why_in_the_success_and_binding_goes_on()
    {
        var user = await server.CreateUserAsync("alice");
        await using var client = await SaslProfileExtensions.ConnectSecureAsync(server.C2sPort);
        var success = await Sasl2Exchange.Over(client).AuthenticateAsync(user, ServerFixture.Password(user),
            userAgent: $"<resume xmlns='{Sm}' previd='no-such-session' h='0'/><bind xmlns='{Bind2}'><tag>phone</tag><enable xmlns='{Sm}' resume='true'/></bind>");
        Assert.True(success.Is("success", Ns.Sasl2), "expected success, got " + success);
        Assert.NotNull(success.GetChild("failed", Sm)!.GetChild("item-not-found", Ns.Stanzas));
        Assert.NotNull(success.GetChild("bound", Bind2)!.GetChild("enabled", Sm));
        Assert.StartsWith("phone.", Jid.Parse(success.GetChildText("authorization-identifier", Ns.Sasl2)!).Resource);
        await client.ExpectFeaturesWithoutRestartAsync();

        // Another account's session cannot be resumed either, and a too high h is refused as in a stream's <resume/>.
        var (owner, _, id, bob) = await DetachedPhoneAsync();
        await using var __ = bob;
        await using var thief = await SaslProfileExtensions.ConnectSecureAsync(server.C2sPort);
        var other = await Sasl2Exchange.Over(thief).AuthenticateAsync(user, ServerFixture.Password(user),
            userAgent: $"<resume xmlns='{Sm}' previd='{id}' h='0'/>");
        Assert.NotNull(other.GetChild("failed", Sm)!.GetChild("item-not-found", Ns.Stanzas));
        var features = await thief.ExpectFeaturesWithoutRestartAsync();
        Assert.NotNull(features.GetChild("bind", Ns.Bind));
        await using var greedy = await SaslProfileExtensions.ConnectSecureAsync(server.C2sPort);
        var tooHigh = await Sasl2Exchange.Over(greedy).AuthenticateAsync(owner, ServerFixture.Password(owner),
            userAgent: $"<resume xmlns='{Sm}' previd='{id}' h='9'/>");
        Assert.NotNull(tooHigh.GetChild("failed", Sm)!.GetChild("handled-count-too-high", Sm));
    }
}
