using System.Globalization;
using Candor.Client;
using Candor.Server.Storage;
using Candor.Server.Tests.Harness;
using Candor.Xml;
using Candor.Xmpp;

namespace Candor.Server.Tests;

/// <summary>
/// The message archive (XEP-0313 with #extended, XEP-0359 stanza-ids, XEP-0059 paging, XEP-0441 preferences), through
/// real sessions: what is archived for whom, with which id, and every query form and paging direction.
/// </summary>
public class ArchiveTests(ServerFixture server) : IClassFixture<ServerFixture>
{
    private const string Mam = "urn:xmpp:mam:2";
    private const string Sid = "urn:xmpp:sid:0";
    private const string Rsm = "http://jabber.org/protocol/rsm";

    /// <summary>One archive query's answer: the forwarded messages in the order received, and the &lt;fin/&gt;.</summary>
    private sealed record Page(List<(string Id, Element Message, DateTimeOffset Stamp)> Items, Element Fin)
    {
        public IEnumerable<string> Bodies => Items.Select(i => i.Message.GetChildText("body", Ns.Client)!);
        public IEnumerable<string> Ids => Items.Select(i => i.Id);
        public Element Set => Fin.GetChild("set", Rsm)!;
        public bool Complete => Fin.GetAttribute("complete") == "true";
        public string? First => Set.GetChildText("first", Rsm);
        public string? Last => Set.GetChildText("last", Rsm);
        public int Count => int.Parse(Set.GetChildText("count", Rsm)!, CultureInfo.InvariantCulture);
        public int? Index => Set.GetChild("first", Rsm)?.GetAttribute("index") is { } i ? int.Parse(i, CultureInfo.InvariantCulture) : null;
    }

    private static string Form(params (string Var, string Value)[] fields) =>
        fields.Length == 0 ? "" :
        $"<x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE' type='hidden'><value>{Mam}</value></field>"
        + string.Concat(fields.Select(f => $"<field var='{f.Var}'><value>{f.Value}</value></field>")) + "</x>";

    private static async Task<Page> QueryAsync(XmppClient client, string form = "", string rsm = "", bool flip = false)
    {
        var queryId = "q" + Guid.NewGuid().ToString("N")[..8];
        var items = new List<(string, Element, DateTimeOffset)>();
        void Collect(XmppEvent e)
        {
            if (e is not ChatMessage m || m.Stanza.GetChild("result", Mam) is not { } result || result.GetAttribute("queryid") != queryId) return;
            Assert.Equal(client.Bare.ToString(), m.Stanza.GetAttribute("from"));
            var forwarded = result.GetChild("forwarded", "urn:xmpp:forward:0")!;
            var stamp = forwarded.GetChild("delay", Ns.Delay)!.GetAttribute("stamp")!;
            lock (items) items.Add((result.GetAttribute("id")!, forwarded.GetChild("message", Ns.Client)!, DateTimeOffset.Parse(stamp, CultureInfo.InvariantCulture)));
        }
        client.EventReceived += Collect;
        try
        {
            var result = await client.IqAsync($"<iq type='set'><query xmlns='{Mam}' queryid='{queryId}'>{form}{(rsm.Length > 0 ? $"<set xmlns='{Rsm}'>{rsm}</set>" : "")}{(flip ? "<flip-page/>" : "")}</query></iq>");
            lock (items) return new Page([.. items], result.GetChild("fin", Mam)!);
        }
        finally
        {
            client.EventReceived -= Collect;
        }
    }

    private static Task<Element> QueryErrorAsync(XmppClient client, string form = "", string rsm = "") =>
        client.IqErrorAsync($"<iq type='set'><query xmlns='{Mam}'>{form}{(rsm.Length > 0 ? $"<set xmlns='{Rsm}'>{rsm}</set>" : "")}</query></iq>");

    private static async Task<List<string>> SendAllAsync(XmppClient from, XmppClient to, int count, string prefix)
    {
        var bodies = Enumerable.Range(1, count).Select(i => $"{prefix} {i:D3}").ToList();
        foreach (var body in bodies) await from.SendMessageAsync(to.Bare, body, requestReceipt: false);
        foreach (var body in bodies) await to.ExpectMessageAsync(body);
        return bodies;
    }

    private static string StanzaIdOf(ChatMessage message, Jid by) =>
        message.Stanza.Elements.Single(e => e.Is("stanza-id", Sid) && e.GetAttribute("by") == by.ToString()).GetAttribute("id")!;

    [Fact]
    public async Task A_chat_is_archived_for_both_ends_under_the_stanza_id_the_recipient_received()
    {
        await using var alice = await server.OnlineClientAsync("alice");
        await using var bob = await server.OnlineClientAsync("bob");
        await alice.SendMessageAsync(bob.Bare, "hello bob", requestReceipt: false);
        var received = await bob.ExpectMessageAsync("hello bob");
        var id = StanzaIdOf(received, bob.Bare);

        var bobs = await QueryAsync(bob);
        var item = Assert.Single(bobs.Items);
        Assert.Equal(id, item.Id);
        Assert.Equal("hello bob", item.Message.GetChildText("body", Ns.Client));
        Assert.Equal(alice.Full.ToString(), item.Message.GetAttribute("from"));
        Assert.True(Math.Abs((DateTimeOffset.UtcNow - item.Stamp).TotalMinutes) < 1);
        Assert.True(bobs.Complete);
        Assert.Equal(1, bobs.Count);
        Assert.Equal(id, bobs.First);

        // The sender's archive has its own copy under its own id; the sender was not given the recipient's id.
        var alices = await QueryAsync(alice);
        var sent = Assert.Single(alices.Items);
        Assert.NotEqual(id, sent.Id);
        Assert.Equal(bob.Bare.ToString(), sent.Message.GetAttribute("to"));
        Assert.Equal(alice.Bare.ToString(), sent.Message.Elements.Single(e => e.Is("stanza-id", Sid)).GetAttribute("by"));
    }

    [Fact]
    public async Task Stanza_ids_claiming_this_server_are_removed_and_others_kept()
    {
        await using var alice = await server.OnlineClientAsync("alice");
        await using var bob = await server.OnlineClientAsync("bob");
        await alice.SendAsync($"<message to='{bob.Bare}' type='chat'><body>forged</body><stanza-id xmlns='{Sid}' by='{bob.Bare}' id='forged-1'/>"
            + $"<stanza-id xmlns='{Sid}' by='localhost' id='forged-2'/><stanza-id xmlns='{Sid}' by='elsewhere.example' id='foreign'/></message>");
        var received = await bob.ExpectMessageAsync("forged");
        var ids = received.Stanza.Elements.Where(e => e.Is("stanza-id", Sid)).ToList();
        Assert.Equal(2, ids.Count);
        Assert.Contains(ids, e => e.GetAttribute("by") == "elsewhere.example" && e.GetAttribute("id") == "foreign");
        Assert.DoesNotContain(ids, e => e.GetAttribute("id")!.StartsWith("forged", StringComparison.Ordinal));
        Assert.Equal(StanzaIdOf(received, bob.Bare), Assert.Single((await QueryAsync(bob)).Items).Id);
    }

    [Fact]
    public async Task Only_messages_with_content_are_archived_and_hints_are_respected()
    {
        await using var alice = await server.OnlineClientAsync("alice");
        await using var bob = await server.OnlineClientAsync("bob");
        await alice.SendAsync($"<message to='{bob.Bare}' type='chat'><active xmlns='http://jabber.org/protocol/chatstates'/></message>");
        await alice.SendAsync($"<message to='{bob.Bare}' type='chat'><body>secret</body><no-store xmlns='urn:xmpp:hints'/></message>");
        await alice.SendAsync($"<message to='{bob.Bare}' type='headline'><body>news</body></message>");
        await alice.SendAsync($"<message to='{bob.Bare}' type='chat'><encrypted xmlns='eu.siacs.conversations.axolotl'><payload>AAAA</payload></encrypted></message>");
        await alice.SendAsync($"<message to='{bob.Bare}' type='chat'><displayed xmlns='urn:xmpp:chat-markers:0' id='x1'/></message>");
        await alice.SendAsync($"<message to='{bob.Bare}'><body>normal</body></message>");
        var secret = await bob.ExpectMessageAsync("secret");
        Assert.DoesNotContain(secret.Stanza.Elements, e => e.Is("stanza-id", Sid));
        await bob.ExpectMessageAsync("normal");

        var page = await QueryAsync(bob);
        Assert.Equal(3, page.Items.Count);
        Assert.NotNull(page.Items[0].Message.GetChild("encrypted", "eu.siacs.conversations.axolotl"));
        Assert.NotNull(page.Items[1].Message.GetChild("displayed", "urn:xmpp:chat-markers:0"));
        Assert.Equal("normal", page.Items[2].Message.GetChildText("body", Ns.Client));
    }

    [Fact]
    public async Task Pages_forward_with_after_until_complete()
    {
        await using var alice = await server.OnlineClientAsync("alice");
        await using var bob = await server.OnlineClientAsync("bob");
        var sent = await SendAllAsync(alice, bob, 60, "fwd");

        var seen = new List<string>();
        var page = await QueryAsync(bob, rsm: "<max>25</max>");
        Assert.False(page.Complete);
        Assert.Equal(60, page.Count);
        Assert.Equal(0, page.Index);
        seen.AddRange(page.Bodies);
        page = await QueryAsync(bob, rsm: $"<max>25</max><after>{page.Last}</after>");
        Assert.False(page.Complete);
        Assert.Equal(25, page.Index);
        seen.AddRange(page.Bodies);
        page = await QueryAsync(bob, rsm: $"<max>25</max><after>{page.Last}</after>");
        Assert.True(page.Complete);
        Assert.Equal(10, page.Items.Count);
        Assert.Equal(50, page.Index);
        Assert.Equal(60, page.Count);
        seen.AddRange(page.Bodies);
        Assert.Equal(sent, seen);
        Assert.Equal(page.Items[^1].Id, page.Last);

        // Past the end: an empty, complete page that still counts the whole set.
        var after = await QueryAsync(bob, rsm: $"<max>25</max><after>{page.Last}</after>");
        Assert.Empty(after.Items);
        Assert.True(after.Complete);
        Assert.Null(after.First);
        Assert.Equal(60, after.Count);
    }

    [Fact]
    public async Task Pages_backward_from_the_last_page_with_before_and_flips_a_page_on_request()
    {
        await using var alice = await server.OnlineClientAsync("alice");
        await using var bob = await server.OnlineClientAsync("bob");
        var sent = await SendAllAsync(alice, bob, 55, "back");

        var pages = new List<IEnumerable<string>>();
        var page = await QueryAsync(bob, rsm: "<max>20</max><before/>");
        Assert.Equal(sent[35..], page.Bodies);
        Assert.False(page.Complete);
        Assert.Null(page.Index);
        Assert.Equal(55, page.Count);
        pages.Insert(0, page.Bodies);
        page = await QueryAsync(bob, rsm: $"<max>20</max><before>{page.First}</before>");
        Assert.Equal(sent[15..35], page.Bodies);
        Assert.False(page.Complete);
        pages.Insert(0, page.Bodies);
        page = await QueryAsync(bob, rsm: $"<max>20</max><before>{page.First}</before>");
        Assert.Equal(sent[..15], page.Bodies);
        Assert.True(page.Complete);
        pages.Insert(0, page.Bodies);
        Assert.Equal(sent, pages.SelectMany(p => p));

        // flip-page: the same page, sent newest first; first and last still name it in archive order.
        var plain = await QueryAsync(bob, rsm: "<max>10</max><before/>");
        var flipped = await QueryAsync(bob, rsm: "<max>10</max><before/>", flip: true);
        Assert.Equal(plain.Ids.Reverse(), flipped.Ids);
        Assert.Equal(plain.First, flipped.First);
        Assert.Equal(plain.Last, flipped.Last);

        // max 0: only the count.
        var counted = await QueryAsync(bob, rsm: "<max>0</max>");
        Assert.Empty(counted.Items);
        Assert.Equal(55, counted.Count);
        Assert.False(counted.Complete);
    }

    [Fact]
    public async Task Filters_by_with_time_ids_and_id_range()
    {
        await using var alice = await server.OnlineClientAsync("alice");
        await using var carol = await server.OnlineClientAsync("carol");
        await using var bob = await server.OnlineClientAsync("bob");
        var fromAlice = await SendAllAsync(alice, bob, 6, "alice");
        var fromCarol = await SendAllAsync(carol, bob, 4, "carol");
        await bob.SendMessageAsync(alice.Bare, "bob to alice", requestReceipt: false);
        await alice.ExpectMessageAsync("bob to alice");

        var withAlice = await QueryAsync(bob, Form(("with", alice.Bare.ToString())));
        Assert.Equal([.. fromAlice, "bob to alice"], withAlice.Bodies);
        Assert.Equal(7, withAlice.Count);
        var withCarol = await QueryAsync(bob, Form(("with", carol.Bare.ToString())));
        Assert.Equal(fromCarol, withCarol.Bodies);

        var all = await QueryAsync(bob);
        Assert.Equal(11, all.Items.Count);
        var middle = all.Items[5].Stamp;
        var fromMiddle = await QueryAsync(bob, Form(("start", XmppTime.Format(middle))));
        Assert.Equal(all.Items.Where(i => i.Stamp >= middle).Select(i => i.Id), fromMiddle.Ids);
        var untilMiddle = await QueryAsync(bob, Form(("end", XmppTime.Format(middle))));
        Assert.Equal(all.Items.Where(i => i.Stamp <= middle).Select(i => i.Id), untilMiddle.Ids);
        var none = await QueryAsync(bob, Form(("end", "2000-01-01T00:00:00Z")));
        Assert.Empty(none.Items);
        Assert.True(none.Complete);

        var range = await QueryAsync(bob, Form(("after-id", all.Items[2].Id), ("before-id", all.Items[7].Id)));
        Assert.Equal(all.Ids.Skip(3).Take(4), range.Ids);
        var rangeWithCarol = await QueryAsync(bob, Form(("after-id", all.Items[2].Id), ("with", carol.Bare.ToString())));
        Assert.Equal(fromCarol, rangeWithCarol.Bodies);

        var two = await QueryAsync(bob, $"<x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE' type='hidden'><value>{Mam}</value></field>"
            + $"<field var='ids'><value>{all.Items[8].Id}</value><value>{all.Items[1].Id}</value></field></x>");
        Assert.Equal([all.Items[1].Id, all.Items[8].Id], two.Ids);
    }

    [Fact]
    public async Task A_full_jid_with_matches_only_the_messages_exchanged_with_that_resource()
    {
        await using var phone = await server.OnlineClientAsync("alice", resource: "phone");
        var alice = phone.Bare.Local!;
        await using var laptop = await server.ClientAsync(alice, resource: "laptop");
        await laptop.SendPresenceAsync();
        await using var bob = await server.OnlineClientAsync("bob");
        await phone.SendMessageAsync(bob.Bare, "from the phone", requestReceipt: false);
        await bob.ExpectMessageAsync("from the phone");
        await laptop.SendMessageAsync(bob.Bare, "from the laptop", requestReceipt: false);
        await bob.ExpectMessageAsync("from the laptop");
        await bob.SendMessageAsync(phone.Full, "to the phone", requestReceipt: false);
        await phone.ExpectMessageAsync("to the phone");
        await bob.SendMessageAsync(ServerFixture.JidOf(alice), "to alice", requestReceipt: false);

        // §4.1.1: in bob's archive a full JID matches the messages from and to that resource only, a bare JID all.
        Assert.Equal(["from the phone", "to the phone"], (await QueryAsync(bob, Form(("with", phone.Full.ToString())))).Bodies);
        Assert.Equal(["from the laptop"], (await QueryAsync(bob, Form(("with", laptop.Full.ToString())))).Bodies);
        var bare = await QueryAsync(bob, Form(("with", phone.Bare.ToString())));
        Assert.Equal(["from the phone", "from the laptop", "to the phone", "to alice"], bare.Bodies);
        var resource = await QueryAsync(bob, Form(("with", phone.Full.ToString())), rsm: "<max>1</max>");
        Assert.Equal(2, resource.Count);
        Assert.False(resource.Complete);
        // In alice's archive, bob has sent from one resource only: his full JID matches what he sent, not what was sent to his bare JID.
        Assert.Equal(["to the phone", "to alice"], (await QueryAsync(phone, Form(("with", bob.Full.ToString())))).Bodies);
        Assert.Empty((await QueryAsync(phone, Form(("with", bob.Bare.WithResource("elsewhere").ToString())))).Items);
    }

    [Fact]
    public async Task Unknown_ids_fields_and_other_accounts_are_refused_with_the_errors_of_the_xep()
    {
        await using var alice = await server.OnlineClientAsync("alice");
        await using var bob = await server.OnlineClientAsync("bob");
        await SendAllAsync(alice, bob, 2, "err");

        (await QueryErrorAsync(bob, rsm: "<after>no-such-id</after>")).AssertError("item-not-found");
        (await QueryErrorAsync(bob, rsm: "<before>no-such-id</before>")).AssertError("item-not-found");
        (await QueryErrorAsync(bob, Form(("after-id", "no-such-id")))).AssertError("item-not-found");
        (await QueryErrorAsync(bob, Form(("ids", "no-such-id")))).AssertError("item-not-found");
        (await QueryErrorAsync(bob, Form(("{urn:example}free-text", "x")))).AssertError("feature-not-implemented");
        (await QueryErrorAsync(bob, Form(("start", "yesterday")))).AssertError("bad-request");
        (await QueryErrorAsync(bob, rsm: "<max>-1</max>")).AssertError("bad-request");
        // Another account's archive, even with a valid id of it.
        var id = (await QueryAsync(bob)).First;
        var error = await alice.IqErrorAsync($"<iq type='set' to='{bob.Bare}'><query xmlns='{Mam}'/></iq>");
        error.AssertError("forbidden");
        (await alice.IqErrorAsync($"<iq type='get' to='{bob.Bare}'><metadata xmlns='{Mam}'/></iq>")).AssertError("forbidden");
        // One archive's ids mean nothing in another.
        (await QueryErrorAsync(alice, Form(("ids", id!)))).AssertError("item-not-found");
    }

    [Fact]
    public async Task The_form_metadata_and_disco_features_are_advertised()
    {
        await using var bob = await server.OnlineClientAsync("bob");
        var form = await bob.IqAsync($"<iq type='get'><query xmlns='{Mam}'/></iq>");
        var vars = form.GetChild("query", Mam)!.GetChild("x", Ns.DataForms)!.Elements.Select(f => f.GetAttribute("var")).ToList();
        Assert.Equal(["FORM_TYPE", "with", "start", "end", "before-id", "after-id", "ids"], vars);

        var info = await bob.IqAsync($"<iq type='get' to='{bob.Bare}'><query xmlns='{Ns.DiscoInfo}'/></iq>");
        var features = info.GetChild("query", Ns.DiscoInfo)!.Elements.Select(f => f.GetAttribute("var")).ToList();
        Assert.Contains(Mam, features);
        Assert.Contains(Mam + "#extended", features);
        Assert.Contains(Sid, features);

        var empty = await bob.IqAsync($"<iq type='get'><metadata xmlns='{Mam}'/></iq>");
        Assert.Empty(empty.GetChild("metadata", Mam)!.Elements);

        await using var alice = await server.OnlineClientAsync("alice");
        await SendAllAsync(alice, bob, 3, "meta");
        var all = await QueryAsync(bob);
        var metadata = (await bob.IqAsync($"<iq type='get'><metadata xmlns='{Mam}'/></iq>")).GetChild("metadata", Mam)!;
        Assert.Equal(all.Items[0].Id, metadata.GetChild("start", Mam)!.GetAttribute("id"));
        Assert.Equal(all.Items[2].Id, metadata.GetChild("end", Mam)!.GetAttribute("id"));
        Assert.Equal(all.Items[2].Stamp, DateTimeOffset.Parse(metadata.GetChild("end", Mam)!.GetAttribute("timestamp")!, CultureInfo.InvariantCulture));
    }

    /// <summary>
    /// With ArchiveDefault=never and no account's preferences stored, messages pass the archive without a look-up; the
    /// first account that asks for archiving must get it from its next message on, and the other accounts still not.
    /// </summary>
    [Fact]
    public async Task With_never_by_default_an_account_that_asks_for_archiving_gets_it()
    {
        await using var never = await ServerFixture.StartAsync(o => o.ArchiveDefault = "never");
        await using var alice = await never.OnlineClientAsync("alice");
        await using var bob = await never.OnlineClientAsync("bob");
        await SendAllAsync(alice, bob, 1, "before");
        Assert.Empty((await QueryAsync(bob)).Items);

        await bob.IqAsync($"<iq type='set'><prefs xmlns='{Mam}' default='always'/></iq>");
        var after = await SendAllAsync(alice, bob, 2, "after");
        Assert.Equal(after, (await QueryAsync(bob)).Bodies);
        Assert.Empty((await QueryAsync(alice)).Items);
    }

    [Fact]
    public async Task Preferences_choose_who_is_archived()
    {
        await using var alice = await server.OnlineClientAsync("alice");
        await using var carol = await server.OnlineClientAsync("carol");
        await using var bob = await server.OnlineClientAsync("bob");

        var initial = (await bob.IqAsync($"<iq type='get'><prefs xmlns='{Mam}'/></iq>")).GetChild("prefs", Mam)!;
        Assert.Equal("always", initial.GetAttribute("default"));

        // Never carol: her messages are delivered without a stanza-id and kept only in her own archive.
        var set = await bob.IqAsync($"<iq type='set'><prefs xmlns='{Mam}' default='always'><always/><never><jid>{carol.Full}</jid></never></prefs></iq>");
        Assert.Equal(carol.Bare.ToString(), set.GetChild("prefs", Mam)!.GetChild("never", Mam)!.GetChildText("jid", Mam));
        await carol.SendMessageAsync(bob.Bare, "not kept", requestReceipt: false);
        var unkept = await bob.ExpectMessageAsync("not kept");
        Assert.DoesNotContain(unkept.Stanza.Elements, e => e.Is("stanza-id", Sid));
        await SendAllAsync(alice, bob, 1, "kept");
        Assert.Equal(["kept 001"], (await QueryAsync(bob)).Bodies);
        Assert.Equal(["not kept"], (await QueryAsync(carol)).Bodies);

        // Roster: only contacts in bob's roster (alice), plus the always list (carol), which the never list no longer names.
        await bob.SetRosterItemAsync(alice.Bare);
        await bob.IqAsync($"<iq type='set'><prefs xmlns='{Mam}' default='roster'><always><jid>{carol.Bare}</jid></always><never/></prefs></iq>");
        await using var dave = await server.OnlineClientAsync("dave");
        await SendAllAsync(alice, bob, 1, "contact");
        await SendAllAsync(dave, bob, 1, "stranger");
        await SendAllAsync(carol, bob, 1, "listed");
        Assert.Equal(["kept 001", "contact 001", "listed 001"], (await QueryAsync(bob)).Bodies);

        // Never by default: nothing more; the preference outlives the session.
        await bob.IqAsync($"<iq type='set'><prefs xmlns='{Mam}' default='never'/></iq>");
        await SendAllAsync(alice, bob, 1, "off");
        Assert.Equal(3, (await QueryAsync(bob)).Items.Count);
        var stored = (await bob.IqAsync($"<iq type='get'><prefs xmlns='{Mam}'/></iq>")).GetChild("prefs", Mam)!;
        Assert.Equal("never", stored.GetAttribute("default"));

        (await bob.IqErrorAsync($"<iq type='set'><prefs xmlns='{Mam}' default='sometimes'/></iq>")).AssertError("bad-request");
    }

    [Fact]
    public async Task Delete_my_message_history_empties_the_own_archive_only()
    {
        await using var alice = await server.OnlineClientAsync("alice");
        await using var bob = await server.OnlineClientAsync("bob");
        await SendAllAsync(alice, bob, 5, "purge");
        var items = await bob.IqAsync("<iq type='get' to='localhost'><query xmlns='http://jabber.org/protocol/disco#items' node='http://jabber.org/protocol/commands'/></iq>");
        Assert.Contains(items.GetChild("query", Ns.DiscoItems)!.Elements, i => i.GetAttribute("node") == "delete-archive" && i.GetAttribute("name") == "Delete my message history");

        // It cannot be undone, so it asks first; declining deletes nothing.
        const string Commands = "http://jabber.org/protocol/commands";
        var asked = (await bob.IqAsync($"<iq type='set' to='localhost'><command xmlns='{Commands}' node='delete-archive' action='execute'/></iq>")).GetChild("command", Commands)!;
        Assert.Equal("executing", asked.GetAttribute("status"));
        Assert.Equal("boolean", asked.GetChild("x", Ns.DataForms)!.GetChild("field", Ns.DataForms)!.GetAttribute("type"));
        string Answer(string value) => $"<iq type='set' to='localhost'><command xmlns='{Commands}' node='delete-archive' action='complete' sessionid='{asked.GetAttribute("sessionid")}'>"
            + $"<x xmlns='jabber:x:data' type='submit'><field var='confirm'><value>{value}</value></field></x></command></iq>";
        var declined = (await bob.IqAsync(Answer("false"))).GetChild("command", Commands)!;
        Assert.Equal("completed", declined.GetAttribute("status"));
        Assert.Equal(5, (await QueryAsync(bob)).Items.Count);

        var done = await bob.IqAsync(Answer("true"));
        var command = done.GetChild("command", Commands)!;
        Assert.Equal("completed", command.GetAttribute("status"));
        Assert.Contains("5 archived messages", command.GetChildText("note", "http://jabber.org/protocol/commands"));
        var after = await QueryAsync(bob);
        Assert.Empty(after.Items);
        Assert.Equal(0, after.Count);
        Assert.Equal(5, (await QueryAsync(alice)).Items.Count);
    }

    [Fact]
    public async Task An_offline_message_is_delivered_once_and_is_in_the_archive_with_the_same_stanza_id()
    {
        await using var alice = await server.OnlineClientAsync("alice");
        var bob = await server.CreateUserAsync("bob");
        await alice.SendMessageAsync(ServerFixture.JidOf(bob), "while you were out", requestReceipt: false);
        await alice.PingAsync();

        await using var later = await server.ClientAsync(bob, "later");
        var page = await QueryAsync(later);
        var archived = Assert.Single(page.Items);
        await later.BecomeAvailableAsync();
        var delivered = await later.ExpectMessageAsync("while you were out");
        Assert.NotNull(delivered.Stamp);
        Assert.Equal(archived.Id, StanzaIdOf(delivered, later.Bare));
        await later.ExpectNoStanzaAsync(TimeSpan.FromMilliseconds(300), m => m.GetChildText("body", Ns.Client) == "while you were out");
    }

    [Fact]
    public async Task The_retention_sweep_deletes_what_is_older_than_the_retention()
    {
        var data = Directory.CreateTempSubdirectory("candor-archive-retention-").FullName;
        try
        {
            string bob;
            await using (var first = await ServerFixture.StartAsync(o => { o.DataDirectory = data; o.ArchiveRetentionDays = 2; }))
            {
                await using var alice = await first.OnlineClientAsync("alice");
                bob = await first.CreateUserAsync("bob");
                await using (var bobClient = await first.ClientAsync(bob))
                {
                    await bobClient.BecomeAvailableAsync();
                    await SendAllAsync(alice, bobClient, 2, "recent");
                }
                // Older entries, as if archived three days and one day ago, written after the writer's queue.
                await first.Host.Server.Archive!.WhenWritten();
                var now = DateTimeOffset.UtcNow;
                await first.Host.Server.Storage.OpenArchive("archive").AppendBatchAsync(
                [
                    new ArchiveEntry(bob, "old-1", now.AddDays(-3), "alice@localhost", OldMessage("three days ago")),
                    new ArchiveEntry(bob, "day-1", now.AddDays(-1), "alice@localhost", OldMessage("yesterday")),
                ]);
            }
            await using var second = await ServerFixture.StartAsync(o => { o.DataDirectory = data; o.ArchiveRetentionDays = 2; });
            await using var bobAgain = await second.ClientAsync(bob);
            var page = await QueryAsync(bobAgain);
            Assert.Equal(["recent 001", "recent 002", "yesterday"], page.Bodies);
        }
        finally
        {
            Directory.Delete(data, recursive: true);
        }
    }

    private static string OldMessage(string body) =>
        ElementWriter.ToXmlString(new Element("message", Ns.Client).SetAttribute("type", "chat").Add(new Element("body", Ns.Client).AddText(body)));
}
