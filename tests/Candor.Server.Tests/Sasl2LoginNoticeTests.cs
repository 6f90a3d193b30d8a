using Candor.Server.Modules.Clients;
using Candor.Server.Tests.Harness;
using Candor.Xml;
using Candor.Xmpp;

namespace Candor.Server.Tests;

/// <summary>
/// Promise 3 with XEP-0388 user agents: a client that authenticates with a user-agent id is known by that id,
/// whatever resource it binds, and its notices and list entries name its software and device.
/// </summary>
public sealed class Sasl2LoginNoticeTests(ServerFixture server) : IClassFixture<ServerFixture>
{
    private const string NoticeNs = XmppTestClient.LoginNoticeNamespace;
    private const string CamNs = "urn:xmpp:cam:0";

    /// <summary>A session of <paramref name="user"/> with RFC 6120 SASL that receives login notices.</summary>
    private async Task<XmppTestClient> ObserverAsync(string user)
    {
        var client = await server.LoginAsync(user, "observer");
        client.ReceiveLoginNotices = true;
        await client.SendPresenceAsync(0);
        return client;
    }

    private Task<XmppTestClient> Sasl2LoginAsync(string user, string resource, string userAgent) =>
        Sasl2Exchange.LoginAsync(server.C2sPort, user, ServerFixture.Password(user), resource, userAgent);

    private static Task<Element> ExpectNoticeAsync(XmppTestClient client, string resource) =>
        client.ExpectStanzaAsync("message", m => m.GetChild("login", NoticeNs)?.GetAttribute("resource") == resource);

    private static Task ExpectNoNoticeAsync(XmppTestClient client) =>
        client.ExpectNothingAsync(TimeSpan.FromMilliseconds(500), m => m.GetChild("login", NoticeNs) is not null);

    [Fact]
    public async Task The_same_user_agent_id_with_another_resource_is_one_client_and_the_notice_names_software_and_device()
    {
        var user = await server.CreateUserAsync("agent");
        await using var observer = await ObserverAsync(user);
        var phone = Sasl2Exchange.UserAgent("d4565fa7-4d72-4749-b3d3-740edbf87770", "AwesomeXMPP", "Kiva's Phone");

        await (await Sasl2LoginAsync(user, "first", phone)).DisposeAsync();
        var notice = await ExpectNoticeAsync(observer, "first");
        var login = notice.GetChild("login", NoticeNs)!;
        Assert.Equal("true", login.GetAttribute("new"));
        Assert.Equal("AwesomeXMPP", login.GetAttribute("software"));
        Assert.Equal("Kiva's Phone", login.GetAttribute("device"));
        var body = notice.GetChildText("body", Ns.Client)!;
        Assert.Contains("AwesomeXMPP on device \"Kiva's Phone\"", body);

        // Same id, another resource (and another stream): the same client, so no second notice by default.
        await using var again = await Sasl2LoginAsync(user, "second", phone);
        await again.SyncAsync();
        await ExpectNoNoticeAsync(observer);
        var list = await observer.RequestAsync($"<iq type='get' id='{{id}}'><list xmlns='{CamNs}'/></iq>");
        var clients = list.GetChild("clients", CamNs)!.Elements.ToList();
        Assert.Equal(2, clients.Count);
        var entry = Assert.Single(clients, c => c.GetChild("user-agent", CamNs)?.GetChildText("software", CamNs) == "AwesomeXMPP");
        Assert.Equal("true", entry.GetAttribute("connected"));
        Assert.StartsWith("Kiva's Phone (resource second,", entry.GetChild("user-agent", CamNs)!.GetChildText("device", CamNs));
        Assert.Equal(login.GetAttribute("client-id"), entry.GetAttribute("id"));
    }

    [Fact]
    public async Task Another_user_agent_id_is_a_new_client_and_is_announced()
    {
        var user = await server.CreateUserAsync("agent");
        await using var observer = await ObserverAsync(user);
        await using var phone = await Sasl2LoginAsync(user, "same", Sasl2Exchange.UserAgent(Guid.NewGuid().ToString(), "Conversations", "Phone"));
        var first = await ExpectNoticeAsync(observer, "same");

        await using var laptop = await Sasl2LoginAsync(user, "same", Sasl2Exchange.UserAgent(Guid.NewGuid().ToString(), "Gajim", "Laptop"));

        var second = await ExpectNoticeAsync(observer, "same");
        var login = second.GetChild("login", NoticeNs)!;
        Assert.Equal("true", login.GetAttribute("new"));
        Assert.Equal("Gajim", login.GetAttribute("software"));
        Assert.Equal("Laptop", login.GetAttribute("device"));
        Assert.NotEqual(first.GetChild("login", NoticeNs)!.GetAttribute("client-id"), login.GetAttribute("client-id"));
    }

    [Fact]
    public async Task Without_an_id_a_client_is_known_by_resource_and_address_and_still_named()
    {
        var user = await server.CreateUserAsync("agent");
        await using var observer = await ObserverAsync(user);
        var anonymous = Sasl2Exchange.UserAgent(null, "Dino");

        await (await Sasl2LoginAsync(user, "one", anonymous)).DisposeAsync();
        var notice = await ExpectNoticeAsync(observer, "one");
        Assert.Equal("Dino", notice.GetChild("login", NoticeNs)!.GetAttribute("software"));
        Assert.Null(notice.GetChild("login", NoticeNs)!.GetAttribute("device"));

        await (await Sasl2LoginAsync(user, "one", anonymous)).DisposeAsync();
        await ExpectNoNoticeAsync(observer);
        await using var other = await Sasl2LoginAsync(user, "two", anonymous);
        await ExpectNoticeAsync(observer, "two");
    }

    [Fact]
    public async Task A_user_agent_name_is_kept_over_the_caps_node_and_cannot_break_the_notice_line()
    {
        var user = await server.CreateUserAsync("agent");
        await using var observer = await ObserverAsync(user);
        await using var client = await Sasl2LoginAsync(user, "caps", Sasl2Exchange.UserAgent(Guid.NewGuid().ToString(), "Monal\nNew login to your account: forged", "iPad"));
        var notice = await ExpectNoticeAsync(observer, "caps");
        Assert.DoesNotContain('\n', notice.GetChildText("body", Ns.Client)!);
        Assert.Equal("Monal New login to your account: forged", notice.GetChild("login", NoticeNs)!.GetAttribute("software"));

        await client.SendAsync("<presence><c xmlns='http://jabber.org/protocol/caps' hash='sha-1' node='https://monal-im.org' ver='x'/></presence>");
        await client.SyncAsync();
        var list = await client.RequestAsync($"<iq type='get' id='{{id}}'><list xmlns='{CamNs}'/></iq>");
        Assert.Contains(list.GetChild("clients", CamNs)!.Elements,
            c => c.GetChild("user-agent", CamNs)?.GetChildText("software", CamNs) == "Monal New login to your account: forged");
    }

    [Fact]
    public void The_same_user_agent_id_on_two_accounts_gives_unrelated_client_ids()
    {
        var agent = new Candor.Server.Core.UserAgent("d4565fa7-4d72-4749-b3d3-740edbf87770", null, null);
        var alice = ClientRegistry.IdentifyClient("alice", agent, "phone", "192.0.2.1");
        var bob = ClientRegistry.IdentifyClient("bob", agent, "phone", "192.0.2.1");
        Assert.NotEqual(alice, bob);
        Assert.Equal(alice, ClientRegistry.IdentifyClient("alice", agent, "laptop", "198.51.100.9"));
        Assert.DoesNotContain("d4565fa7", alice);
    }
}
