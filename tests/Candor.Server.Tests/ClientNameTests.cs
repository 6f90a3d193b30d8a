using System.Diagnostics;
using Candor.Client;
using Candor.Server.Tests.Harness;
using Candor.Xml;
using Candor.Xmpp;

namespace Candor.Server.Tests;

/// <summary>
/// Issue 23.5: a client that sent no XEP-0388 user agent (Gajim) is named in its login notice by its answer to the
/// server's XEP-0092 version query, asked once after bind and waited for at most ClientVersionTimeoutSeconds.
/// </summary>
public sealed class ClientNameTests(ClientNameTests.PatientServer server) : IClassFixture<ClientNameTests.PatientServer>
{
    /// <summary>
    /// Waits 30 seconds for version answers: long enough that a test answering late on a busy machine is still in
    /// time, and that "at once" cannot be mistaken for "after the timeout".
    /// </summary>
    public sealed class PatientServer : ServerFixture
    {
        protected override void Configure(Hosting.ServerOptions options) => options.ClientVersionTimeoutSeconds = 30;
    }

    private const string NoticeNs = XmppTestClient.LoginNoticeNamespace;

    /// <summary>Logs in like <see cref="XmppTestClient.LoginAsync"/>, but keeps the server's version query for the test.</summary>
    private static async Task<XmppTestClient> LoginSeeingQueriesAsync(int port, string user, string resource)
    {
        var client = await XmppTestClient.ConnectAsync(port);
        await client.StartTlsAsync();
        await client.AuthenticateAsync(user, ServerFixture.Password(user));
        client.ReceiveVersionQueries = true;
        await client.BindAsync(resource);
        return client;
    }

    private static Task<Element> ExpectVersionQueryAsync(XmppTestClient client) =>
        client.ExpectStanzaAsync("iq", e => e.Type() == "get" && e.GetChild("query", Ns.Version) is not null);

    private static Task<ChatMessage> ExpectNoticeAsync(XmppClient client, string resource, TimeSpan? timeout = null) =>
        client.ExpectAsync<ChatMessage>(m => m.Stanza.GetChild("login", NoticeNs)?.GetAttribute("resource") == resource, timeout);

    [Fact]
    public async Task The_notice_names_the_client_by_its_version_answer()
    {
        var user = await server.CreateUserAsync("gajim");
        await using var phone = await server.ClientAsync(user, "phone", loginNotices: true);
        await phone.BecomeAvailableAsync();

        await using var gajim = await LoginSeeingQueriesAsync(server.C2sPort, user, "laptop");
        var query = await ExpectVersionQueryAsync(gajim);
        Assert.Equal("localhost", query.GetAttribute("from"));
        Assert.Equal(gajim.Full, query.GetAttribute("to"));
        // Not announced before the answer: the notice waits for the name.
        await phone.ExpectNoStanzaAsync(TimeSpan.FromMilliseconds(300), m => m.GetChild("login", NoticeNs) is not null);
        await gajim.SendAsync($"<iq type='result' id='{query.Id()}' to='localhost'><query xmlns='jabber:iq:version'>"
                              + "<name>Gajim</name><version>1.7.3</version><os>Linux\n  (Debian)</os></query></iq>");

        var notice = await ExpectNoticeAsync(phone, "laptop");
        Assert.Contains("New login to your account: Gajim 1.7.3 on Linux (Debian), resource \"laptop\"", notice.Body);
        Assert.Equal("Gajim 1.7.3 on Linux (Debian)", notice.Stanza.GetChild("login", NoticeNs)!.GetAttribute("software"));

        // The list of clients shows the name too, and the query is asked once only.
        var list = await phone.IqAsync("<iq type='get'><list xmlns='urn:xmpp:cam:0'/></iq>");
        Assert.Contains("Gajim 1.7.3 on Linux (Debian)", ElementWriter.ToXmlString(list));
        await gajim.SendPresenceAsync();
        await gajim.ExpectNothingAsync(TimeSpan.FromMilliseconds(300), e => e.IsIq() && e.GetChild("query", Ns.Version) is not null);
    }

    [Fact]
    public async Task A_client_that_answers_with_an_error_is_announced_at_once_unnamed()
    {
        var user = await server.CreateUserAsync("quiet");
        await using var phone = await server.ClientAsync(user, "phone", loginNotices: true);
        await phone.BecomeAvailableAsync();
        await using var other = await LoginSeeingQueriesAsync(server.C2sPort, user, "desk");
        var query = await ExpectVersionQueryAsync(other);
        var clock = Stopwatch.StartNew();
        await other.SendAsync($"<iq type='error' id='{query.Id()}' to='localhost'><query xmlns='jabber:iq:version'/>"
                              + "<error type='cancel'><service-unavailable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>");
        var notice = await ExpectNoticeAsync(phone, "desk", TimeSpan.FromSeconds(15));
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(15), $"the notice took {clock.Elapsed} after the error");
        Assert.Contains("unknown client software", notice.Body);
        Assert.Null(notice.Stanza.GetChild("login", NoticeNs)!.GetAttribute("software"));
    }

    [Fact]
    public async Task A_client_that_never_answers_is_announced_after_the_timeout()
    {
        await using var own = await ServerFixture.StartAsync(o => o.ClientVersionTimeoutSeconds = 1);
        var user = await own.CreateUserAsync("silent");
        await using var phone = await own.ClientAsync(user, "phone", loginNotices: true);
        await phone.BecomeAvailableAsync();
        var clock = Stopwatch.StartNew();
        await using var silent = await LoginSeeingQueriesAsync(own.C2sPort, user, "mute");
        await ExpectVersionQueryAsync(silent);
        var notice = await ExpectNoticeAsync(phone, "mute", TimeSpan.FromSeconds(15));
        Assert.InRange(clock.Elapsed, TimeSpan.FromSeconds(0.9), TimeSpan.FromSeconds(15));
        Assert.Contains("unknown client software", notice.Body);
        // The stream is not disturbed by the unanswered query.
        await silent.SyncAsync();
    }

    [Fact]
    public async Task Another_users_answer_with_the_same_id_does_not_name_the_client()
    {
        var user = await server.CreateUserAsync("target");
        await using var phone = await server.ClientAsync(user, "phone", loginNotices: true);
        await phone.BecomeAvailableAsync();
        await using var target = await LoginSeeingQueriesAsync(server.C2sPort, user, "pc");
        var query = await ExpectVersionQueryAsync(target);
        await using var mallory = await server.OnlineUserAsync("mallory");
        await mallory.SendAsync($"<iq type='result' id='{query.Id()}' to='localhost'><query xmlns='jabber:iq:version'><name>Evil</name></query></iq>");
        await mallory.SyncAsync();
        await target.SendAsync($"<iq type='result' id='{query.Id()}' to='localhost'><query xmlns='jabber:iq:version'><name>Dino</name><version>0.4</version></query></iq>");
        var notice = await ExpectNoticeAsync(phone, "pc");
        Assert.Contains("Dino 0.4,", notice.Body);
    }

    [Fact]
    public async Task A_timeout_of_zero_asks_nothing()
    {
        await using var own = await ServerFixture.StartAsync(o => o.ClientVersionTimeoutSeconds = 0);
        var user = await own.CreateUserAsync("noask");
        await using var phone = await own.ClientAsync(user, "phone", loginNotices: true);
        await phone.BecomeAvailableAsync();
        await using var client = await LoginSeeingQueriesAsync(own.C2sPort, user, "box");
        await ExpectNoticeAsync(phone, "box");
        await client.ExpectNothingAsync(TimeSpan.FromMilliseconds(300), e => e.IsIq() && e.GetChild("query", Ns.Version) is not null);
    }
}
