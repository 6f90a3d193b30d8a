using Candor.Client;
using Candor.Server.Tests.Harness;
using Candor.Xmpp;

namespace Candor.Server.Tests;

/// <summary>RFC 6120 §8.2.3 IQ semantics and the IQ services the server answers itself.</summary>
public sealed class IqTests(ServerFixture server) : IClassFixture<ServerFixture>
{
    [Theory]
    [InlineData("<iq type='get' to='localhost'/>")]
    [InlineData("<iq type='get' to='localhost'><ping xmlns='urn:xmpp:ping'/><ping xmlns='urn:xmpp:ping'/></iq>")]
    [InlineData("<iq type='set'/>")]
    public async Task Get_or_set_with_zero_or_two_children_is_bad_request(string iq)
    {
        await using var client = await server.OnlineClientAsync();
        (await client.IqErrorAsync(iq)).AssertError("bad-request", "modify");
    }

    [Fact]
    public async Task Iq_without_id_is_bad_request()
    {
        await using var client = await server.OnlineClientAsync();
        await client.SendAsync("<iq type='get' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>");
        var error = await client.ExpectAsync<OtherStanza>(o => o.Stanza.IsIq() && o.Stanza.Type() == "error");
        Assert.Equal("bad-request", error.Stanza.ErrorCondition());
    }

    [Fact]
    public async Task Unknown_namespace_to_server_or_account_is_service_unavailable()
    {
        await using var client = await server.OnlineClientAsync();
        var toServer = await client.IqErrorAsync("<iq type='get' to='localhost'><query xmlns='urn:example:unknown'/></iq>");
        toServer.AssertError("service-unavailable", "cancel");
        Assert.Equal("localhost", toServer.GetAttribute("from"));
        Assert.NotNull(toServer.GetChild("query", "urn:example:unknown"));

        var other = await server.CreateUserAsync();
        (await client.IqErrorAsync($"<iq type='set' to='{other}@localhost'><query xmlns='urn:example:unknown'/></iq>"))
            .AssertError("service-unavailable");
    }

    [Fact]
    public async Task Iq_to_a_missing_account_or_resource_is_service_unavailable()
    {
        await using var client = await server.OnlineClientAsync();
        (await client.IqErrorAsync("<iq type='get' to='nobody-at-all@localhost'><ping xmlns='urn:xmpp:ping'/></iq>"))
            .AssertError("service-unavailable");
        var other = await server.CreateUserAsync();
        (await client.IqErrorAsync($"<iq type='get' to='{other}@localhost/nowhere'><query xmlns='urn:example:x'/></iq>"))
            .AssertError("service-unavailable");
    }

    [Fact]
    public async Task Iq_to_a_full_jid_is_delivered_and_its_result_routed_back()
    {
        await using var alice = await server.OnlineClientAsync("alice");
        await using var bob = await server.OnlineClientAsync("bob");
        // bob's client answers disco#info itself, to the request's 'from': the answer reaches alice only if the
        // request reached bob stamped with her full JID.
        var result = await alice.IqAsync($"<iq type='get' to='{bob.Full}'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>");
        Assert.Equal("result", result.Type());
        Assert.Equal(bob.Full.ToString(), result.GetAttribute("from"));
        var identity = result.GetChild("query", Ns.DiscoInfo)!.GetChild("identity", Ns.DiscoInfo)!;
        Assert.Equal(("client", "Candor"), (identity.GetAttribute("category"), identity.GetAttribute("name")));
    }

    [Fact]
    public async Task Result_sent_to_the_server_is_not_answered()
    {
        await using var client = await server.OnlineClientAsync();
        await client.SendAsync("<iq type='result' id='stray' to='localhost'/>");
        await client.SendAsync("<iq type='error' id='stray2' to='localhost'><error type='cancel'><bad-request xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>");
        await client.ExpectNoStanzaAsync(TimeSpan.FromMilliseconds(300), e => e.IsIq());
    }

    [Fact]
    public async Task Disco_info_of_the_server_and_of_an_account()
    {
        await using var client = await server.OnlineClientAsync();
        var info = await client.IqAsync("<iq type='get' to='localhost'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>");
        var query = info.GetChild("query", Ns.DiscoInfo)!;
        var identity = query.GetChild("identity", Ns.DiscoInfo)!;
        Assert.Equal(("server", "im"), (identity.GetAttribute("category"), identity.GetAttribute("type")));
        var features = query.Elements.Where(e => e.Name == "feature").Select(e => e.GetAttribute("var")).ToList();
        foreach (var expected in new[] { Ns.DiscoInfo, Ns.DiscoItems, Ns.Ping, Ns.Version, Ns.Time, Ns.VCard, Ns.Register, Ns.Offline })
            Assert.Contains(expected, features);
        Assert.Equal(features.Count, features.Distinct().Count());

        var items = await client.IqAsync("<iq type='get' to='localhost'><query xmlns='http://jabber.org/protocol/disco#items'/></iq>");
        Assert.Equal("result", items.Type());

        var account = await client.IqAsync($"<iq type='get' to='{client.Bare}'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>");
        var accountIdentity = account.GetChild("query", Ns.DiscoInfo)!.GetChild("identity", Ns.DiscoInfo)!;
        Assert.Equal(("account", "registered"), (accountIdentity.GetAttribute("category"), accountIdentity.GetAttribute("type")));

        (await client.IqErrorAsync("<iq type='get' to='localhost'><query xmlns='http://jabber.org/protocol/disco#info' node='nope'/></iq>"))
            .AssertError("item-not-found");
    }

    [Fact]
    public async Task Ping_the_server_and_an_account()
    {
        await using var client = await server.OnlineClientAsync();
        var other = await server.CreateUserAsync();
        var pong = await client.IqAsync("<iq type='get' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>");
        Assert.Equal("result", pong.Type());
        Assert.Equal("localhost", pong.GetAttribute("from"));
        var accountPong = await client.IqAsync($"<iq type='get' to='{other}@localhost'><ping xmlns='urn:xmpp:ping'/></iq>");
        Assert.Equal("result", accountPong.Type());
        Assert.Equal($"{other}@localhost", accountPong.GetAttribute("from"));
    }

    [Fact]
    public async Task Version_names_candor_and_no_operating_system()
    {
        await using var client = await server.OnlineClientAsync();
        var result = await client.IqAsync("<iq type='get' to='localhost'><query xmlns='jabber:iq:version'/></iq>");
        var query = result.GetChild("query", Ns.Version)!;
        Assert.Equal("Candor", query.GetChildText("name", Ns.Version));
        Assert.False(string.IsNullOrEmpty(query.GetChildText("version", Ns.Version)));
        Assert.Null(query.GetChild("os", Ns.Version));
    }

    [Fact]
    public async Task Time_is_utc()
    {
        await using var client = await server.OnlineClientAsync();
        var result = await client.IqAsync("<iq type='get' to='localhost'><time xmlns='urn:xmpp:time'/></iq>");
        var time = result.GetChild("time", Ns.Time)!;
        Assert.Equal("+00:00", time.GetChildText("tzo", Ns.Time));
        var utc = time.GetChildText("utc", Ns.Time)!;
        Assert.EndsWith("Z", utc);
        Assert.InRange(DateTimeOffset.Parse(utc), DateTimeOffset.UtcNow.AddMinutes(-1), DateTimeOffset.UtcNow.AddMinutes(1));
    }

    [Fact]
    public async Task Vcard_set_and_get_own_and_others()
    {
        await using var alice = await server.OnlineClientAsync("alice");
        await using var bob = await server.OnlineClientAsync("bob");
        var empty = await alice.IqAsync("<iq type='get'><vCard xmlns='vcard-temp'/></iq>");
        Assert.NotNull(empty.GetChild("vCard", Ns.VCard));

        var set = await alice.IqAsync("<iq type='set'><vCard xmlns='vcard-temp'><FN>Alice Liddell</FN></vCard></iq>");
        Assert.Equal("result", set.Type());

        var own = await alice.IqAsync("<iq type='get'><vCard xmlns='vcard-temp'/></iq>");
        Assert.Equal("Alice Liddell", own.GetChild("vCard", Ns.VCard)!.GetChildText("FN", Ns.VCard));
        var seen = await bob.IqAsync($"<iq type='get' to='{alice.Bare}'><vCard xmlns='vcard-temp'/></iq>");
        Assert.Equal("Alice Liddell", seen.GetChild("vCard", Ns.VCard)!.GetChildText("FN", Ns.VCard));
        Assert.Equal(alice.Bare.ToString(), seen.GetAttribute("from"));

        (await bob.IqErrorAsync($"<iq type='set' to='{alice.Bare}'><vCard xmlns='vcard-temp'><FN>Bob was here</FN></vCard></iq>"))
            .AssertError("forbidden");
    }

    [Fact]
    public async Task Private_storage_set_get_and_refusals()
    {
        await using var alice = await server.OnlineClientAsync("alice");
        await using var bob = await server.OnlineClientAsync("bob");
        var set = await alice.IqAsync("<iq type='set'><query xmlns='jabber:iq:private'><prefs xmlns='urn:example:prefs'><colour>blue</colour></prefs></query></iq>");
        Assert.Equal("result", set.Type());

        var get = await alice.IqAsync("<iq type='get'><query xmlns='jabber:iq:private'><prefs xmlns='urn:example:prefs'/></query></iq>");
        Assert.Equal("blue", get.GetChild("query", Ns.Private)!.GetChild("prefs", "urn:example:prefs")!.GetChildText("colour", "urn:example:prefs"));

        var absent = await alice.IqAsync("<iq type='get'><query xmlns='jabber:iq:private'><other xmlns='urn:example:other'/></query></iq>");
        var none = absent.GetChild("query", Ns.Private)!.GetChild("other", "urn:example:other");
        Assert.NotNull(none);
        Assert.Empty(none.Nodes);

        foreach (var ns in new[] { "jabber:client", "jabber:iq:private" })
            (await alice.IqErrorAsync($"<iq type='set'><query xmlns='jabber:iq:private'><x xmlns='{ns}'/></query></iq>"))
                .AssertError("not-acceptable");
        (await bob.IqErrorAsync($"<iq type='get' to='{alice.Bare}'><query xmlns='jabber:iq:private'><prefs xmlns='urn:example:prefs'/></query></iq>"))
            .AssertError("forbidden");
    }
}
