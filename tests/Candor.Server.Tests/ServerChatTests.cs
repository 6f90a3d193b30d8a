using Candor.Server.Tests.Harness;
using Candor.Xml;
using Candor.Xmpp;

namespace Candor.Server.Tests;

/// <summary>The server's JID as a conversation partner (issue 23.1): what clients send it after a login notice.</summary>
public sealed class ServerChatTests(ServerFixture server) : IClassFixture<ServerFixture>
{
    private static bool FromServer(Element e) => e.GetAttribute("from") == "localhost";

    private static Task<Element> ExpectAnswerAsync(XmppTestClient client, string contains) =>
        client.ExpectStanzaAsync("message", m => FromServer(m) && m.Type() == "chat" && (m.GetChildText("body", Ns.Client) ?? "").Contains(contains));

    [Theory]
    [InlineData("<active xmlns='http://jabber.org/protocol/chatstates'/>")]
    [InlineData("<composing xmlns='http://jabber.org/protocol/chatstates'/><thread>t1</thread>")]
    [InlineData("<displayed xmlns='urn:xmpp:chat-markers:0' id='login-3f2a9c0d1e4b'/><store xmlns='urn:xmpp:hints'/>")]
    [InlineData("<received xmlns='urn:xmpp:receipts' id='login-3f2a9c0d1e4b'/>")]
    [InlineData("<received xmlns='urn:xmpp:chat-markers:0' id='x'/><origin-id xmlns='urn:xmpp:sid:0' id='o1'/>")]
    public async Task Chat_states_markers_and_receipts_to_the_server_are_accepted_without_an_answer(string payload)
    {
        await using var client = await server.OnlineUserAsync("chatty");
        await client.SendAsync($"<message to='localhost' type='chat' id='m1'>{payload}</message>");
        await client.SyncAsync();
        await client.ExpectNothingAsync(TimeSpan.FromMilliseconds(300), e => e.IsMessage());
    }

    [Fact]
    public async Task A_bodiless_message_with_other_content_is_refused_with_service_unavailable()
    {
        await using var client = await server.OnlineUserAsync("chatty");
        await client.SendAsync("<message to='localhost' type='chat' id='m2'><x xmlns='urn:example:payload'/></message>");
        var error = await client.ExpectStanzaAsync("message", m => m.Type() == "error");
        error.AssertError("service-unavailable");
        Assert.Equal("m2", error.Id());
    }

    [Fact]
    public async Task Groupchat_to_the_server_is_refused()
    {
        await using var client = await server.OnlineUserAsync("chatty");
        await client.SendAsync("<message to='localhost' type='groupchat' id='g1'><body>hi</body></message>");
        (await client.ExpectStanzaAsync("message", m => m.Type() == "error")).AssertError("service-unavailable");
    }

    [Fact]
    public async Task A_reply_to_a_login_notice_is_answered_with_what_the_server_is_and_its_commands()
    {
        await using var client = await server.OnlineUserAsync("chatty");
        await client.SendAsync("<message to='localhost' type='chat' id='r1'><body>that was me</body><thread>th-7</thread>"
                               + "<request xmlns='urn:xmpp:receipts'/></message>");
        var answer = await ExpectAnswerAsync(client, "not a person");
        Assert.Equal(client.Full, answer.GetAttribute("to"));
        Assert.Equal("th-7", answer.GetChildText("thread", Ns.Client));
        var body = answer.GetChildText("body", Ns.Client)!;
        foreach (var command in new[] { "sessions", "end others", "policy", "help" }) Assert.Contains(command, body);
        var receipt = await client.ExpectStanzaAsync("message", m => m.GetChild("received", "urn:xmpp:receipts") is not null);
        Assert.Equal("r1", receipt.GetChild("received", "urn:xmpp:receipts")!.GetAttribute("id"));
        await client.ExpectNothingAsync(TimeSpan.FromMilliseconds(200), e => e.Type() == "error");
    }

    [Fact]
    public async Task A_client_echoing_the_explanation_is_not_answered_again_but_commands_are()
    {
        await using var client = await server.OnlineUserAsync("echo");
        await client.SendMessageAsync("localhost", "hello?");
        var explanation = (await ExpectAnswerAsync(client, "not a person")).GetChildText("body", Ns.Client)!;
        // An echo bot sends the answer back: no second explanation, so no endless exchange.
        await client.SendAsync($"<message to='localhost' type='chat' id='echo1'><body>{System.Security.SecurityElement.Escape(explanation)}</body></message>");
        await client.SyncAsync();
        await client.ExpectNothingAsync(TimeSpan.FromMilliseconds(300), e => e.IsMessage());
        await client.SendMessageAsync("localhost", "help");
        await ExpectAnswerAsync(client, "end others");
    }

    [Fact]
    public async Task Help_lists_the_commands()
    {
        await using var client = await server.OnlineUserAsync("chatty");
        await client.SendMessageAsync("localhost", "  HELP ");
        var body = (await ExpectAnswerAsync(client, "end others")).GetChildText("body", Ns.Client)!;
        Assert.DoesNotContain("not a person", body);
        Assert.Contains("sessions", body);
    }

    [Fact]
    public async Task Sessions_lists_the_accounts_clients_one_per_line()
    {
        var user = await server.CreateUserAsync("chatty");
        await using var phone = await server.LoginAsync(user, "phone");
        await phone.SendPresenceAsync();
        await using var laptop = await server.LoginAsync(user, "laptop");
        await laptop.SendPresenceAsync();
        await laptop.SendMessageAsync("localhost", "sessions", type: "normal");
        var body = (await ExpectAnswerAsync(laptop, "2 session(s) online.")).GetChildText("body", Ns.Client)!;
        var lines = body.Split('\n');
        Assert.Equal(3, lines.Length);
        Assert.Contains(lines, l => l.StartsWith("online: ", StringComparison.Ordinal) && l.Contains("resource \"phone\"") && l.Contains("127.0.0.1"));
        Assert.Contains(lines, l => l.StartsWith("online: ", StringComparison.Ordinal) && l.Contains("resource \"laptop\""));
    }

    [Fact]
    public async Task End_others_ends_the_other_sessions_only()
    {
        var user = await server.CreateUserAsync("chatty");
        await using var other = await server.LoginAsync(user, "other");
        await using var me = await server.LoginAsync(user, "me");
        await me.SendPresenceAsync();
        await me.SendMessageAsync("localhost", "End Others");
        await ExpectAnswerAsync(me, "Ended 1 other session(s).");
        await other.ExpectStreamErrorAsync("not-authorized");
        await me.SyncAsync();
    }

    [Fact]
    public async Task Policy_names_the_published_policy_and_its_digest()
    {
        await using var client = await server.OnlineUserAsync("chatty");
        await client.SendMessageAsync("localhost", "policy");
        var body = (await ExpectAnswerAsync(client, "SHA-256")).GetChildText("body", Ns.Client)!;
        var published = server.Host.Server.Policy.Current.Published;
        Assert.Contains(published.Digest, body);
        Assert.Contains(published.Version, body);
    }
}
