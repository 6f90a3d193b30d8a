using Candor.Server.Modules.Pep;
using Candor.Server.Tests.Harness;
using Candor.Xml;
using Candor.Xmpp;

namespace Candor.Server.Tests;

/// <summary>
/// PEP (XEP-0163) over real sockets: +notify filtering by verified caps (XEP-0115), the errors of XEP-0060,
/// and the per-node and per-account limits. slixmpp's plugins exercise the rest (Candor.Interop.Tests.PepInteropTests).
/// </summary>
public sealed class PepTests(ServerFixture server) : IClassFixture<ServerFixture>
{
    private const string Node = "urn:candor:test:node";
    private const string PubSub = "http://jabber.org/protocol/pubsub";

    private static Element Query(string xml) => Candor.Server.Storage.StoredStanza.Parse(xml);

    [Fact]
    public void Verification_strings_match_the_examples_of_XEP_0115()
    {
        var simple = Query("""
            <query xmlns='http://jabber.org/protocol/disco#info'>
              <identity category='client' name='Exodus 0.9.1' type='pc'/>
              <feature var='http://jabber.org/protocol/caps'/><feature var='http://jabber.org/protocol/disco#info'/>
              <feature var='http://jabber.org/protocol/disco#items'/><feature var='http://jabber.org/protocol/muc'/>
            </query>
            """);
        Assert.Equal("QgayPKawpkPSDYmwT/WM94uAlu0=", CapsTracker.VerificationString(simple, "sha-1"));

        var complex = Query("""
            <query xmlns='http://jabber.org/protocol/disco#info'>
              <identity xml:lang='en' category='client' name='Psi 0.11' type='pc'/>
              <identity xml:lang='el' category='client' name='Ψ 0.11' type='pc'/>
              <feature var='http://jabber.org/protocol/caps'/><feature var='http://jabber.org/protocol/disco#info'/>
              <feature var='http://jabber.org/protocol/disco#items'/><feature var='http://jabber.org/protocol/muc'/>
              <x xmlns='jabber:x:data' type='result'>
                <field var='FORM_TYPE' type='hidden'><value>urn:xmpp:dataforms:softwareinfo</value></field>
                <field var='ip_version'><value>ipv4</value><value>ipv6</value></field>
                <field var='os'><value>Mac</value></field>
                <field var='os_version'><value>10.5.1</value></field>
                <field var='software'><value>Psi</value></field>
                <field var='software_version'><value>0.11</value></field>
              </x>
            </query>
            """);
        Assert.Equal("q07IKJEyjvHSyhy//CH0CxmKi8w=", CapsTracker.VerificationString(complex, "sha-1"));

        var duplicated = Query("<query xmlns='http://jabber.org/protocol/disco#info'><feature var='a'/><feature var='a'/></query>");
        Assert.Null(CapsTracker.VerificationString(duplicated, "sha-1"));
    }

    private static string DiscoInfo(string name, params string[] features) =>
        $"<query xmlns='http://jabber.org/protocol/disco#info'><identity category='client' type='pc' name='{name}'/>"
        + string.Concat(features.Select(f => $"<feature var='{f}'/>")) + "</query>";

    /// <summary>
    /// Sends available presence with caps naming <paramref name="ver"/> (the true hash of the answer when null) and
    /// answers the server's disco#info question with that answer; asserts that the server asks exactly when
    /// <paramref name="expectQuestion"/>.
    /// </summary>
    private static async Task AnnounceCapsAsync(XmppTestClient client, string info, string? ver = null, bool expectQuestion = true)
    {
        ver ??= CapsTracker.VerificationString(Query(info), "sha-1");
        await client.SendAsync($"<presence><c xmlns='http://jabber.org/protocol/caps' hash='sha-1' node='urn:candor:test' ver='{ver}'/></presence>");
        static bool IsQuestion(Element q) => q.IsIq() && q.Type() == "get" && q.GetChild("query", Ns.DiscoInfo) is not null;
        if (!expectQuestion)
        {
            await client.ExpectNothingAsync(TimeSpan.FromMilliseconds(500), IsQuestion);
            return;
        }
        var question = await client.ExpectAsync(IsQuestion);
        Assert.Equal("urn:candor:test#" + ver, question.GetChild("query", Ns.DiscoInfo)!.GetAttribute("node"));
        await client.SendAsync($"<iq type='result' id='{question.Id()}' to='{question.GetAttribute("from")}'>{info}</iq>");
        await client.SyncAsync();
    }

    private static Task<Element> PublishAsync(XmppTestClient client, string node, string id, string payload, string? options = null) =>
        client.RequestAsync($"<iq type='set' id='{{id}}'><pubsub xmlns='{PubSub}'><publish node='{node}'><item id='{id}'>{payload}</item></publish>"
            + (options is null ? "" : $"<publish-options><x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE' type='hidden'><value>{PubSub}#publish-options</value></field>{options}</x></publish-options>")
            + "</pubsub></iq>");

    private static bool IsEvent(Element stanza, string node, string id) =>
        stanza.IsMessage() && stanza.GetChild("event", PubSubNs.Event)?.GetChild("items", PubSubNs.Event) is { } items
        && items.GetAttribute("node") == node && items.GetChild("item", PubSubNs.Event)?.GetAttribute("id") == id;

    [Fact]
    public async Task Notifications_go_to_resources_whose_verified_caps_ask_for_them()
    {
        var (alice, bob, carol) = (await server.CreateUserAsync("alice"), await server.CreateUserAsync("bob"), await server.CreateUserAsync("carol"));
        await server.BefriendAsync(alice, bob);
        await server.BefriendAsync(alice, carol);
        await using var a = await server.LoginAsync(alice);
        await a.SendPresenceAsync();
        await using var b = await server.LoginAsync(bob, "honest");
        var wanting = DiscoInfo("Honest client", Ns.DiscoInfo, Node + "+notify");
        await AnnounceCapsAsync(b, wanting);
        // A second resource with the same caps is not asked again: the answer is cached by ver.
        await using var b2 = await server.LoginAsync(bob, "same-caps");
        await AnnounceCapsAsync(b2, wanting, expectQuestion: false);
        // Claims +notify with a ver that is not the hash of what it answers: its caps are not believed.
        await using var c = await server.LoginAsync(carol, "liar");
        await AnnounceCapsAsync(c, DiscoInfo("Lying client", Ns.DiscoInfo, Node + "+notify"), ver: "AAAAAAAAAAAAAAAAAAAAAAAAAAA=");
        // Honest caps without the interest.
        await using var c2 = await server.LoginAsync(carol, "uninterested");
        await AnnounceCapsAsync(c2, DiscoInfo("Other client", Ns.DiscoInfo));

        Assert.Equal("result", (await PublishAsync(a, Node, "first", "<entry xmlns='urn:candor:test'>hello</entry>")).Type());

        var ev = await b.ExpectStanzaAsync("message", m => IsEvent(m, Node, "first"));
        Assert.Equal(ServerFixture.JidOf(alice).ToString(), ev.GetAttribute("from"));
        Assert.Equal("headline", ev.Type());
        Assert.Equal("hello", ev.GetChild("event", PubSubNs.Event)!.GetChild("items", PubSubNs.Event)!.GetChild("item", PubSubNs.Event)!.FirstElement!.Text);
        await b2.ExpectStanzaAsync("message", m => IsEvent(m, Node, "first"));
        await c.ExpectNothingAsync(TimeSpan.FromMilliseconds(300), m => m.IsMessage());
        await c2.ExpectNothingAsync(TimeSpan.FromMilliseconds(300), m => m.IsMessage());

        // XEP-0494's list names the client by its verified caps' identity.
        var list = await b.RequestAsync("<iq type='get' id='{id}'><list xmlns='urn:xmpp:cam:0'/></iq>");
        Assert.Contains(list.Descendants("software").Select(s => s.Text), s => s == "Honest client");
    }

    [Fact]
    public async Task A_new_subscriber_gets_the_last_items_when_its_subscription_is_approved()
    {
        var (alice, bob) = (await server.CreateUserAsync("alice"), await server.CreateUserAsync("bob"));
        await using var a = await server.LoginAsync(alice);
        await a.SendPresenceAsync();
        Assert.Equal("result", (await PublishAsync(a, Node, "before", "<entry xmlns='urn:candor:test'>published earlier</entry>")).Type());
        await using var b = await server.LoginAsync(bob);
        await AnnounceCapsAsync(b, DiscoInfo("Subscriber", Ns.DiscoInfo, Node + "+notify"));
        // Not a contact yet: nothing of alice's.
        await b.ExpectNothingAsync(TimeSpan.FromMilliseconds(300), m => IsEvent(m, Node, "before"));

        await b.SendAsync($"<presence to='{ServerFixture.JidOf(alice)}' type='subscribe'/>");
        await a.ExpectStanzaAsync("presence", p => p.Type() == "subscribe");
        await a.SendAsync($"<presence to='{ServerFixture.JidOf(bob)}' type='subscribed'/>");

        var ev = await b.ExpectStanzaAsync("message", m => IsEvent(m, Node, "before"));
        Assert.NotNull(ev.GetChild("delay", Ns.Delay));
    }

    [Fact]
    public async Task Only_the_owner_changes_its_nodes_and_errors_are_the_xeps()
    {
        var (alice, bob) = (await server.CreateUserAsync("alice"), await server.CreateUserAsync("bob"));
        await server.BefriendAsync(alice, bob);
        await using var a = await server.LoginAsync(alice);
        await using var b = await server.LoginAsync(bob);
        var aliceJid = ServerFixture.JidOf(alice);

        var foreign = await b.RequestAsync($"<iq type='set' id='{{id}}' to='{aliceJid}'><pubsub xmlns='{PubSub}'><publish node='{Node}'><item><x xmlns='urn:t'/></item></publish></pubsub></iq>");
        foreign.AssertError("forbidden", "auth");

        var noNode = await a.RequestAsync($"<iq type='set' id='{{id}}'><pubsub xmlns='{PubSub}'><publish><item><x xmlns='urn:t'/></item></publish></pubsub></iq>");
        noNode.AssertError("bad-request");
        Assert.NotNull(noNode.GetChild("error", Ns.Client)!.GetChild("nodeid-required", PubSubNs.Errors));

        var missing = await b.RequestAsync($"<iq type='get' id='{{id}}' to='{aliceJid}'><pubsub xmlns='{PubSub}'><items node='urn:none'/></pubsub></iq>");
        missing.AssertError("item-not-found", "cancel");
        Assert.Equal("404", missing.GetChild("error", Ns.Client)!.GetAttribute("code"));

        Assert.Equal("result", (await PublishAsync(a, Node, "one", "<x xmlns='urn:t'/>")).Type());
        var retract = await a.RequestAsync($"<iq type='set' id='{{id}}'><pubsub xmlns='{PubSub}'><retract node='{Node}'><item id='nope'/></retract></pubsub></iq>");
        retract.AssertError("item-not-found");

        var twoPayloads = await a.RequestAsync($"<iq type='set' id='{{id}}'><pubsub xmlns='{PubSub}'><publish node='{Node}'><item><x xmlns='urn:t'/><y xmlns='urn:t'/></item></publish></pubsub></iq>");
        twoPayloads.AssertError("bad-request");
        Assert.NotNull(twoPayloads.GetChild("error", Ns.Client)!.GetChild("invalid-payload", PubSubNs.Errors));

        var unknownModel = await PublishAsync(a, "urn:other", "1", "<x xmlns='urn:t'/>",
            "<field var='pubsub#access_model'><value>authorize</value></field>");
        unknownModel.AssertError("conflict");
        Assert.NotNull(unknownModel.GetChild("error", Ns.Client)!.GetChild("precondition-not-met", PubSubNs.Errors));
    }

    [Fact]
    public async Task Limits_per_node_and_per_account_are_refused_with_a_reason()
    {
        var limited = await ServerFixture.StartAsync(o =>
        {
            o.PepMaxNodes = 2;
            o.PepMaxItemsPerNode = 3;
            o.PepMaxBytesPerAccount = 2000;
        });
        try
        {
            await using var a = await limited.LoginAsync(await limited.CreateUserAsync("alice"));
            const string max = "<field var='pubsub#max_items'><value>max</value></field>";
            for (var i = 0; i < 3; i++) Assert.Equal("result", (await PublishAsync(a, "urn:full", $"i{i}", "<x xmlns='urn:t'/>", max)).Type());
            var full = await PublishAsync(a, "urn:full", "i3", "<x xmlns='urn:t'/>");
            full.AssertError("not-acceptable");
            Assert.Contains("3 items", full.GetChild("error", Ns.Client)!.GetChildText("text", Ns.Stanzas));
            // Replacing an item by its id is no new item.
            Assert.Equal("result", (await PublishAsync(a, "urn:full", "i0", "<x xmlns='urn:t'>again</x>")).Type());

            var tooMany = await PublishAsync(a, "urn:big", "1", "<x xmlns='urn:t'/>", "<field var='pubsub#max_items'><value>10</value></field>");
            tooMany.AssertError("conflict");
            Assert.Contains("limit of 3", tooMany.GetChild("error", Ns.Client)!.GetChildText("text", Ns.Stanzas));

            var big = await PublishAsync(a, "urn:big", "1", $"<x xmlns='urn:t'>{new string('z', 2500)}</x>");
            big.AssertError("policy-violation");
            Assert.Contains("2000", big.GetChild("error", Ns.Client)!.GetChildText("text", Ns.Stanzas));

            Assert.Equal("result", (await PublishAsync(a, "urn:second", "1", "<x xmlns='urn:t'/>")).Type());
            var third = await PublishAsync(a, "urn:third", "1", "<x xmlns='urn:t'/>");
            third.AssertError("policy-violation");
            Assert.Contains("at most 2 PEP nodes", third.GetChild("error", Ns.Client)!.GetChildText("text", Ns.Stanzas));
        }
        finally
        {
            await limited.DisposeAsync();
        }
    }
}

internal static class ElementSearch
{
    public static IEnumerable<Element> Descendants(this Element element, string name)
    {
        foreach (var child in element.Elements)
        {
            if (child.Name == name) yield return child;
            foreach (var below in child.Descendants(name)) yield return below;
        }
    }
}
