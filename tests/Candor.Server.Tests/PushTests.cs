using Candor.Server.Tests.Harness;
using Candor.Xml;
using Candor.Xmpp;

namespace Candor.Server.Tests;

/// <summary>
/// XEP-0357 Push Notifications (issue 21.4). The "app server" is a session of another account on the same server,
/// addressed by its full JID: it receives the pubsub publish the account's server sends. By default the summary says
/// only how many messages arrived; sender and body come only when the registering client opted in.
/// </summary>
public sealed class PushTests : IAsyncLifetime
{
    private const string Push = "urn:xmpp:push:0";
    private const string Sm = "urn:xmpp:sm:3";
    private ServerFixture _server = null!;

    public async Task InitializeAsync() => _server = await ServerFixture.StartAsync(o =>
    {
        o.SmResumeTimeoutSeconds = 30;
        o.ClientVersionTimeoutSeconds = 0;
    });

    public Task DisposeAsync() => _server.DisposeAsync();

    private async Task<XmppTestClient> AppServerAsync()
    {
        var app = await _server.LoginAsync(await _server.CreateUserAsync("app"), "push");
        await app.SendPresenceAsync();
        return app;
    }

    private static string Enable(XmppTestClient app, string node, string extra = "") =>
        $"<iq type='set' id='{{id}}'><enable xmlns='{Push}' jid='{app.Full}' node='{node}'>{extra}</enable></iq>";

    /// <summary>The next notification the app server receives for <paramref name="node"/>; it answers with a result.</summary>
    private static async Task<(Element Iq, Dictionary<string, string> Summary)> NotificationAsync(XmppTestClient app, string node)
    {
        var iq = await app.ExpectStanzaAsync("iq", e => e.Type() == "set" && e.GetChild("pubsub", "http://jabber.org/protocol/pubsub") is not null);
        await app.SendAsync($"<iq type='result' id='{iq.Id()}' to='{iq.GetAttribute("from")}'/>");
        var publish = iq.GetChild("pubsub", "http://jabber.org/protocol/pubsub")!.GetChild("publish", "http://jabber.org/protocol/pubsub")!;
        Assert.Equal(node, publish.GetAttribute("node"));
        var form = publish.FirstElement!.GetChild("notification", Push)!.GetChild("x", Ns.DataForms)!;
        var summary = form.Elements.Where(f => f.Name == "field")
            .ToDictionary(f => f.GetAttribute("var")!, f => f.GetChildText("value", Ns.DataForms) ?? "");
        return (iq, summary);
    }

    [Fact]
    public async Task The_feature_is_on_the_account_and_only_the_account_enables_it()
    {
        var alice = await _server.CreateUserAsync("alice");
        await using var a = await _server.LoginAsync(alice, "phone");
        var info = await a.RequestAsync($"<iq type='get' id='{{id}}' to='{alice}@localhost'><query xmlns='{Ns.DiscoInfo}'/></iq>");
        Assert.Contains(info.GetChild("query", Ns.DiscoInfo)!.Elements, f => f.Name == "feature" && f.GetAttribute("var") == Push);

        await using var mallory = await _server.OnlineUserAsync("mallory");
        var forged = await mallory.RequestAsync($"<iq type='set' id='{{id}}' to='{alice}@localhost'><enable xmlns='{Push}' jid='{mallory.Full}' node='n'/></iq>");
        forged.AssertError("forbidden", "auth");
        (await a.RequestAsync($"<iq type='set' id='{{id}}'><enable xmlns='{Push}' jid='app.example'/></iq>")).AssertError("bad-request", "modify");
        (await a.RequestAsync($"<iq type='set' id='{{id}}'><enable xmlns='{Push}' node='n'/></iq>")).AssertError("bad-request", "modify");
    }

    [Fact]
    public async Task An_offline_client_gets_a_summary_without_sender_or_body_counting_the_messages()
    {
        await using var app = await AppServerAsync();
        var alice = await _server.CreateUserAsync("alice");
        var a = await _server.LoginAsync(alice, "phone");
        const string options = "<x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE'><value>http://jabber.org/protocol/pubsub#publish-options</value></field>"
                               + "<field var='secret'><value>s3cr3t</value></field></x>";
        Assert.Equal("result", (await a.RequestAsync(Enable(app, "node-1", options))).Type());
        await a.DisposeAsync();

        await using var bob = await _server.OnlineUserAsync("bob");
        await bob.SendMessageAsync($"{alice}@localhost", "the secret plan");
        var (iq, summary) = await NotificationAsync(app, "node-1");
        Assert.Equal($"{alice}@localhost", iq.GetAttribute("from"));
        Assert.Equal("urn:xmpp:push:summary", summary["FORM_TYPE"]);
        Assert.Equal("1", summary["message-count"]);
        Assert.DoesNotContain("last-message-sender", summary.Keys);
        Assert.DoesNotContain("last-message-body", summary.Keys);
        Assert.DoesNotContain("the secret plan", iq.ToString());
        Assert.DoesNotContain(bob.Bare, iq.ToString());
        // The publish options the client gave go with every notification (the app server's credentials).
        var publishOptions = iq.GetChild("pubsub", "http://jabber.org/protocol/pubsub")!.GetChild("publish-options", "http://jabber.org/protocol/pubsub")!;
        Assert.Contains("s3cr3t", publishOptions.ToString());

        await bob.SendMessageAsync($"{alice}@localhost", "second");
        Assert.Equal("2", (await NotificationAsync(app, "node-1")).Summary["message-count"]);

        // The client is back: the message goes to it, no notification; the count starts again after.
        await using var back = await _server.LoginAsync(alice, "phone");
        await back.SendPresenceAsync();
        await back.ExpectMessageAsync("the secret plan");
        await bob.SendMessageAsync($"{alice}@localhost", "while online");
        await back.ExpectMessageAsync("while online");
        await app.ExpectNothingAsync(TimeSpan.FromMilliseconds(500), e => e.IsIq() && e.Type() == "set");
    }

    [Fact]
    public async Task A_client_that_opts_in_gets_sender_and_body_while_another_is_online_and_disable_stops_notifications()
    {
        await using var app = await AppServerAsync();
        var alice = await _server.CreateUserAsync("alice");
        await using var desk = await _server.LoginAsync(alice, "desk");
        await desk.SendPresenceAsync();
        var phone = await _server.LoginAsync(alice, "phone");
        Assert.Equal("result", (await phone.RequestAsync(Enable(app, "node-2", "<summary xmlns='urn:xmpp:candor:push:0' sender='true' body='true'/>"))).Type());
        await phone.DisposeAsync();

        // The desk client gets the message; the phone, which enabled push and is gone, is notified.
        await using var bob = await _server.OnlineUserAsync("bob");
        await bob.SendMessageAsync($"{alice}@localhost", "hello phone");
        await desk.ExpectMessageAsync("hello phone");
        var (_, summary) = await NotificationAsync(app, "node-2");
        Assert.Equal(bob.Full, summary["last-message-sender"]);
        Assert.Equal("hello phone", summary["last-message-body"]);

        Assert.Equal("result", (await desk.RequestAsync($"<iq type='set' id='{{id}}'><disable xmlns='{Push}' jid='{app.Full}'/></iq>")).Type());
        await bob.SendMessageAsync($"{alice}@localhost", "after disable");
        await desk.ExpectMessageAsync("after disable");
        await bob.SendMessageAsync(app.Full, "marker");
        await app.ExpectMessageAsync("marker");
        await app.ExpectNothingAsync(TimeSpan.FromMilliseconds(300), e => e.IsIq() && e.Type() == "set");
    }

    [Fact]
    public async Task A_client_back_under_a_new_resource_is_known_by_its_sasl2_user_agent()
    {
        await using var app = await AppServerAsync();
        var alice = await _server.CreateUserAsync("alice");
        var agent = Sasl2Exchange.UserAgent("d4c6f2e0-8b1a-4c3e-9f00-5a7e2c1b3d40", "Phone app");
        var first = await Sasl2Exchange.LoginAsync(_server.C2sPort, alice, ServerFixture.Password(alice), null, agent);
        Assert.Equal("result", (await first.RequestAsync(Enable(app, "node-4"))).Type());
        var firstResource = first.Jid!.Resource;
        await first.DisposeAsync();

        await using var again = await Sasl2Exchange.LoginAsync(_server.C2sPort, alice, ServerFixture.Password(alice), null, agent);
        await again.SendPresenceAsync();
        Assert.NotEqual(firstResource, again.Jid!.Resource);
        await using var bob = await _server.OnlineUserAsync("bob");
        await bob.SendMessageAsync($"{alice}@localhost", "to the phone");
        await again.ExpectMessageAsync("to the phone");
        await app.ExpectNothingAsync(TimeSpan.FromMilliseconds(500), e => e.IsIq() && e.Type() == "set");
    }

    [Fact]
    public async Task A_client_waiting_for_stream_resumption_gets_a_notification()
    {
        await using var app = await AppServerAsync();
        var alice = await _server.CreateUserAsync("alice");
        var phone = await _server.LoginAsync(alice, "phone");
        Assert.Equal("result", (await phone.RequestAsync(Enable(app, "node-3"))).Type());
        await phone.SendAsync($"<enable xmlns='{Sm}' resume='true'/>");
        Assert.Equal("enabled", (await phone.ExpectAsync(e => e.Namespace == Sm)).Name);
        await phone.SendPresenceAsync();

        await using var bob = await _server.OnlineUserAsync("bob");
        await bob.SendMessageAsync($"{alice}@localhost/phone", "while connected");
        await phone.ExpectMessageAsync("while connected");
        await app.ExpectNothingAsync(TimeSpan.FromMilliseconds(300), e => e.IsIq() && e.Type() == "set");

        phone.Abort();
        await Task.Delay(300);
        await bob.SendMessageAsync($"{alice}@localhost/phone", "while hibernated");
        Assert.Equal("1", (await NotificationAsync(app, "node-3")).Summary["message-count"]);
        await phone.DisposeAsync();
    }
}
