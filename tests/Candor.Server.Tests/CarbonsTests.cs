using Candor.Server.Tests.Harness;
using Candor.Xml;
using Candor.Xmpp;

namespace Candor.Server.Tests;

/// <summary>Message Carbons (XEP-0280) over real sockets: enabling, sent and received copies, and what is never copied.</summary>
public sealed class CarbonsTests(ServerFixture server) : IClassFixture<ServerFixture>
{
    private const string Carbons = "urn:xmpp:carbons:2";

    private static Element? Copy(Element message, string direction) =>
        message.GetChild(direction, Carbons)?.GetChild("forwarded", "urn:xmpp:forward:0")?.GetChild("message", Ns.Client);

    private async Task<XmppTestClient> OnlineAsync(string user, string resource, bool carbons, int priority = 0)
    {
        var client = await server.LoginAsync(user, resource);
        if (carbons)
        {
            var result = await client.RequestAsync($"<iq type='set' id='{{id}}'><enable xmlns='{Carbons}'/></iq>");
            Assert.Equal("result", result.Type());
        }
        await client.SendPresenceAsync(priority);
        return client;
    }

    [Fact]
    public async Task Server_advertises_carbons_and_its_rules()
    {
        await using var client = await server.LoginAsync(await server.CreateUserAsync());
        var info = await client.RequestAsync("<iq type='get' id='{id}' to='localhost'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>");
        var features = info.GetChild("query", Ns.DiscoInfo)!.Elements.Select(f => f.GetAttribute("var")).ToList();
        Assert.Contains(Carbons, features);
        Assert.Contains("urn:xmpp:carbons:rules:0", features);
    }

    [Fact]
    public async Task Enabling_twice_and_disabling_twice_are_results_and_enabling_for_another_account_is_not_allowed()
    {
        var alice = await server.CreateUserAsync("alice");
        var bob = await server.CreateUserAsync("bob");
        await using var client = await server.LoginAsync(alice);
        foreach (var op in new[] { "enable", "enable", "disable", "disable", "enable" })
            Assert.Equal("result", (await client.RequestAsync($"<iq type='set' id='{{id}}' to='{alice}@localhost'><{op} xmlns='{Carbons}'/></iq>")).Type());
        var other = await client.RequestAsync($"<iq type='set' id='{{id}}' to='{bob}@localhost'><enable xmlns='{Carbons}'/></iq>");
        other.AssertError("not-allowed");
    }

    [Fact]
    public async Task Sent_and_received_messages_are_copied_to_the_other_enabled_resources_only()
    {
        var alice = await server.CreateUserAsync("alice");
        var bob = await server.CreateUserAsync("bob");
        await using var phone = await OnlineAsync(alice, "phone", carbons: true);
        await using var laptop = await OnlineAsync(alice, "laptop", carbons: true);
        await using var old = await OnlineAsync(alice, "old", carbons: false);
        await using var bobClient = await OnlineAsync(bob, "desk", carbons: false);

        // Sent from the phone: the laptop gets a <sent/> copy, the phone itself and the resource without carbons none.
        await phone.SendAsync($"<message to='{bob}@localhost/desk' type='chat' id='s1'><body>from the phone</body></message>");
        await bobClient.ExpectMessageAsync("from the phone");
        var sent = await laptop.ExpectStanzaAsync("message", m => m.GetChild("sent", Carbons) is not null);
        Assert.Equal($"{alice}@localhost", sent.GetAttribute("from"));
        Assert.Equal($"{alice}@localhost/laptop", sent.GetAttribute("to"));
        Assert.Equal("chat", sent.Type());
        var original = Copy(sent, "sent")!;
        Assert.Equal("from the phone", original.GetChildText("body", Ns.Client));
        Assert.Equal($"{alice}@localhost/phone", original.GetAttribute("from"));
        Assert.Equal($"{bob}@localhost/desk", original.GetAttribute("to"));

        // Received on the phone (full JID): the laptop gets a <received/> copy.
        await bobClient.SendAsync($"<message to='{alice}@localhost/phone' type='chat' id='r1'><body>to the phone</body></message>");
        await phone.ExpectMessageAsync("to the phone");
        var received = await laptop.ExpectStanzaAsync("message", m => m.GetChild("received", Carbons) is not null);
        Assert.Equal($"{alice}@localhost", received.GetAttribute("from"));
        Assert.Equal("to the phone", Copy(received, "received")!.GetChildText("body", Ns.Client));

        await phone.ExpectNothingAsync(TimeSpan.FromMilliseconds(300), m => m.GetChild("sent", Carbons) is not null || m.GetChild("received", Carbons) is not null);
        await old.ExpectNothingAsync(TimeSpan.FromMilliseconds(100), m => m.IsMessage());
    }

    [Fact]
    public async Task A_message_to_the_bare_jid_is_copied_only_to_resources_that_did_not_get_it()
    {
        var alice = await server.CreateUserAsync("alice");
        var bob = await server.CreateUserAsync("bob");
        await using var high = await OnlineAsync(alice, "high", carbons: true, priority: 5);
        await using var low = await OnlineAsync(alice, "low", carbons: true, priority: 1);
        await using var bobClient = await OnlineAsync(bob, "desk", carbons: false);

        await bobClient.SendMessageAsync($"{alice}@localhost", "to the bare jid");
        await high.ExpectMessageAsync("to the bare jid");
        var copy = await low.ExpectStanzaAsync("message", m => m.GetChild("received", Carbons) is not null);
        Assert.Equal("to the bare jid", Copy(copy, "received")!.GetChildText("body", Ns.Client));
        await high.ExpectNothingAsync(TimeSpan.FromMilliseconds(300), m => m.GetChild("received", Carbons) is not null);
    }

    [Theory]
    [InlineData("chat", "<private xmlns='urn:xmpp:carbons:2'/>")]
    [InlineData("chat", "<no-copy xmlns='urn:xmpp:hints'/>")]
    [InlineData("headline", "")]
    [InlineData("normal", "<x xmlns='http://jabber.org/protocol/muc#user'/>")]
    public async Task Private_no_copy_headline_and_muc_messages_are_not_copied(string type, string extra)
    {
        var alice = await server.CreateUserAsync("alice");
        var bob = await server.CreateUserAsync("bob");
        await using var phone = await OnlineAsync(alice, "phone", carbons: true);
        await using var laptop = await OnlineAsync(alice, "laptop", carbons: true);
        await using var bobClient = await OnlineAsync(bob, "desk", carbons: true);
        await using var bobOther = await OnlineAsync(bob, "other", carbons: true);

        await phone.SendAsync($"<message to='{bob}@localhost/desk' type='{type}' id='p1'><body>not copied</body>{extra}</message>");
        var delivered = await bobClient.ExpectMessageAsync("not copied");
        // XEP-0280 §7: the receiving server removes <private/> before delivery.
        Assert.Null(delivered.GetChild("private", Carbons));
        await laptop.ExpectNothingAsync(TimeSpan.FromMilliseconds(300), m => m.IsMessage());
        await bobOther.ExpectNothingAsync(TimeSpan.FromMilliseconds(100), m => m.IsMessage());
    }

    [Fact]
    public async Task Errors_are_not_copied_and_disabling_stops_copies()
    {
        var alice = await server.CreateUserAsync("alice");
        await using var phone = await OnlineAsync(alice, "phone", carbons: true);
        await using var laptop = await OnlineAsync(alice, "laptop", carbons: true);
        await phone.SendAsync("<message to='nobody-here@localhost' type='chat' id='e1'><body>to nobody</body></message>");
        (await phone.ExpectStanzaAsync("message", m => m.Id() == "e1" && m.Type() == "error")).AssertError("service-unavailable");
        // The sent copy of the chat is expected (it was eligible); its error is not copied.
        await laptop.ExpectStanzaAsync("message", m => m.GetChild("sent", Carbons) is not null);
        await laptop.ExpectNothingAsync(TimeSpan.FromMilliseconds(300), m => m.IsMessage());

        Assert.Equal("result", (await laptop.RequestAsync($"<iq type='set' id='{{id}}'><disable xmlns='{Carbons}'/></iq>")).Type());
        await phone.SendAsync("<message to='nobody-here@localhost' type='chat' id='e2'><body>again</body></message>");
        await phone.ExpectStanzaAsync("message", m => m.Id() == "e2" && m.Type() == "error");
        await laptop.ExpectNothingAsync(TimeSpan.FromMilliseconds(300), m => m.IsMessage());
    }
}
