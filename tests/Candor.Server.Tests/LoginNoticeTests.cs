using Candor.Server.Audit;
using Candor.Client;
using Candor.Server.Tests.Harness;
using Candor.Xmpp;

namespace Candor.Server.Tests;

/// <summary>Promise 3: every login from a new client announced; every client listed and revocable; password changes announced.</summary>
public sealed class LoginNoticeTests(ServerFixture server) : IClassFixture<ServerFixture>
{
    private const string NoticeNs = XmppTestClient.LoginNoticeNamespace;
    private const string CamNs = "urn:xmpp:cam:0";

    private async Task<XmppClient> OnlineAsync(string user, string resource)
    {
        var client = await server.ClientAsync(user, resource, loginNotices: true);
        await client.BecomeAvailableAsync(0);
        return client;
    }

    private static Task<ChatMessage> ExpectNoticeAsync(XmppClient client, string resource) =>
        client.ExpectAsync<ChatMessage>(m => m.Stanza.GetChild("login", NoticeNs)?.GetAttribute("resource") == resource);

    [Fact]
    public async Task A_new_client_is_announced_to_the_other_sessions_with_its_facts()
    {
        var user = await server.CreateUserAsync("ann");
        // Issue 18: a login notice also cites the operator log's latest entry about the account.
        var entry = await server.Host.Server.Audit.AppendAsync(AuditEntry.Actors.Operator, AuditActions.PasswordSet, $"{user}@localhost");
        await using var first = await OnlineAsync(user, "first");
        await using var second = await OnlineAsync(user, "second");

        var notice = await ExpectNoticeAsync(first, "second");
        Assert.Equal("localhost", notice.From?.ToString());
        Assert.Equal("chat", notice.Type);
        var login = notice.Stanza.GetChild("login", NoticeNs)!;
        Assert.Equal("true", login.GetAttribute("new"));
        Assert.Equal("127.0.0.1", login.GetAttribute("address"));
        Assert.Equal("SCRAM-SHA-256-PLUS", login.GetAttribute("mechanism"));
        Assert.StartsWith("TLSv1.", login.GetAttribute("tls"));
        Assert.Equal($"{user}@localhost/second", login.GetAttribute("jid"));
        var body = notice.Body!;
        Assert.Contains("\"second\"", body);
        Assert.Contains("127.0.0.1", body);
        Assert.Contains("UTC", body);
        Assert.Equal(entry.ToString(), login.GetAttribute("operator-log-entry"));
        Assert.Contains($"The operator log's latest entry about your account is #{entry}: account.password at ", body);
        // The new session itself is not told about itself (it does hear of "first", whose login found nobody online).
        await ExpectNoticeAsync(second, "first");
        await second.ExpectNoStanzaAsync(TimeSpan.FromMilliseconds(300), m => m.GetChild("login", NoticeNs)?.GetAttribute("resource") == "second");
    }

    [Fact]
    public async Task A_known_client_is_not_announced_again_by_default()
    {
        var user = await server.CreateUserAsync("ann");
        await using var first = await OnlineAsync(user, "first");
        await (await OnlineAsync(user, "again")).DisposeAsync();
        await ExpectNoticeAsync(first, "again");
        await using var again = await OnlineAsync(user, "again");
        await first.ExpectNoStanzaAsync(TimeSpan.FromMilliseconds(300), m => m.GetChild("login", NoticeNs) is not null);
    }

    [Fact]
    public async Task Every_session_mode_announces_known_clients_too()
    {
        await using var own = await ServerFixture.StartAsync(o => o.LoginNotices = "every-session");
        var user = await own.CreateUserAsync("ann");
        await using var first = await own.ClientAsync(user, "first", loginNotices: true);
        await (await own.ClientAsync(user, "again")).DisposeAsync();
        await ExpectNoticeAsync(first, "again");
        await using var again = await own.ClientAsync(user, "again");
        var notice = await ExpectNoticeAsync(first, "again");
        Assert.Equal("false", notice.Stanza.GetChild("login", NoticeNs)!.GetAttribute("new"));
    }

    [Fact]
    public async Task A_login_while_nobody_is_online_is_announced_at_the_next_login()
    {
        var user = await server.CreateUserAsync("ann");
        await (await OnlineAsync(user, "lonely")).DisposeAsync();
        await using var next = await OnlineAsync(user, "next");
        await ExpectNoticeAsync(next, "lonely");
        // Delivered once.
        await using var third = await OnlineAsync(user, "third");
        await third.ExpectNoStanzaAsync(TimeSpan.FromMilliseconds(300), m => m.GetChild("login", NoticeNs)?.GetAttribute("resource") == "lonely");
    }

    [Fact]
    public async Task Clients_are_listed_and_a_revoked_one_is_cut_off_and_announced_again_next_time()
    {
        var user = await server.CreateUserAsync("ann");
        await using var owner = await OnlineAsync(user, "owner");
        await using var other = await OnlineAsync(user, "other");
        var clientId = (await ExpectNoticeAsync(owner, "other")).Stanza.GetChild("login", NoticeNs)!.GetAttribute("client-id");

        var list = await owner.IqAsync($"<iq type='get'><list xmlns='{CamNs}'/></iq>");
        var clients = list.GetChild("clients", CamNs)!.Elements.ToList();
        Assert.Contains(clients, c => c.GetAttribute("id") == clientId && c.GetAttribute("connected") == "true");
        Assert.All(clients, c => Assert.NotNull(c.GetChild("first-seen", CamNs)));

        var revoke = await owner.IqAsync($"<iq type='set'><revoke xmlns='{CamNs}' id='{clientId}'/></iq>");
        Assert.Equal("result", revoke.Type());
        await other.ExpectStreamErrorAsync("not-authorized");

        await using var back = await OnlineAsync(user, "other");
        await ExpectNoticeAsync(owner, "other");

        (await owner.IqErrorAsync($"<iq type='set'><revoke xmlns='{CamNs}' id='no-such-client'/></iq>")).AssertError("item-not-found");
    }

    [Fact]
    public async Task Another_account_cannot_list_or_revoke()
    {
        var user = await server.CreateUserAsync("ann");
        await using var stranger = await server.OnlineClientAsync("mallory");
        (await stranger.IqErrorAsync($"<iq type='get' to='{user}@localhost'><list xmlns='{CamNs}'/></iq>")).AssertError("forbidden");
    }

    [Fact]
    public async Task Ad_hoc_commands_list_sessions_and_end_the_others()
    {
        var user = await server.CreateUserAsync("ann");
        await using var owner = await OnlineAsync(user, "owner");
        await using var other = await OnlineAsync(user, "other");

        var items = await owner.IqAsync("<iq type='get' to='localhost'><query xmlns='http://jabber.org/protocol/disco#items' node='http://jabber.org/protocol/commands'/></iq>");
        var nodes = items.GetChild("query", Ns.DiscoItems)!.Elements.Select(i => i.GetAttribute("node")).ToList();
        Assert.Contains("list-sessions", nodes);
        Assert.Contains("end-other-sessions", nodes);

        var listed = await owner.IqAsync("<iq type='set' to='localhost'><command xmlns='http://jabber.org/protocol/commands' node='list-sessions' action='execute'/></iq>");
        var command = listed.GetChild("command", "http://jabber.org/protocol/commands")!;
        Assert.Equal("completed", command.GetAttribute("status"));
        Assert.Contains("\"other\"", "\"" + string.Join("\"", command.GetChild("x", Ns.DataForms)!.Elements.SelectMany(i => i.Elements).SelectMany(f => f.Elements).Select(v => v.Text)) + "\"");

        var ended = await owner.IqAsync("<iq type='set' to='localhost'><command xmlns='http://jabber.org/protocol/commands' node='end-other-sessions' action='execute'/></iq>");
        Assert.Equal("completed", ended.GetChild("command", "http://jabber.org/protocol/commands")!.GetAttribute("status"));
        await other.ExpectStreamErrorAsync("not-authorized");
        await owner.PingAsync();
    }

    [Fact]
    public async Task A_password_change_is_announced_and_ends_the_other_sessions()
    {
        var user = await server.CreateUserAsync("ann");
        await using var changer = await OnlineAsync(user, "changer");
        await using var other = await OnlineAsync(user, "other");

        var result = await changer.IqAsync($"<iq type='set'><query xmlns='jabber:iq:register'><username>{user}</username><password>new-secret</password></query></iq>");
        Assert.Equal("result", result.Type());
        var notice = await other.ExpectAsync<ChatMessage>(m => m.From?.ToString() == "localhost"
            && (m.Body ?? "").Contains("password of your account was changed"));
        Assert.Contains("\"changer\"", notice.Body);
        await other.ExpectStreamErrorAsync("not-authorized");
    }
}
