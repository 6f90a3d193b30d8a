using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using Candor.Server.Hosting;
using Candor.Server.Tests.Harness;
using Candor.Xml;
using Candor.Xmpp;

namespace Candor.Server.Tests.Federation;

/// <summary>Two Candor servers, a.test and b.test, on loopback, each routed to the other by S2sRoutes.</summary>
public class TwoDomains : IAsyncLifetime
{
    private static int _users;
    private readonly List<string> _directories = [];
    public CandorHost A { get; private set; } = null!;
    public CandorHost B { get; private set; } = null!;

    /// <summary>Settings of a fixture's own for the server of <paramref name="domain"/>.</summary>
    protected virtual void Configure(string domain, ServerOptions options)
    {
    }

    public virtual async Task InitializeAsync()
    {
        A = await StartAsync("a.test");
        B = await StartAsync("b.test");
        A.Server.Options.S2sRoutes = $"b.test=127.0.0.1:{B.S2sPort}";
        B.Server.Options.S2sRoutes = $"a.test=127.0.0.1:{A.S2sPort}";
    }

    public async Task<CandorHost> StartAsync(string domain, Action<ServerOptions>? configure = null)
    {
        var directory = Directory.CreateTempSubdirectory("candor-s2s-").FullName;
        _directories.Add(directory);
        var options = new ServerOptions
        {
            Domain = domain, DataDirectory = directory, Bind = "127.0.0.1",
            C2sPort = 0, TlsPort = -1, S2sPort = 0, HttpPort = -1, HttpsPort = -1, MucDomain = "",
        };
        Configure(domain, options);
        configure?.Invoke(options);
        return await CandorHost.StartAsync(options, announce: _ => { });
    }

    /// <summary>A new account on <paramref name="host"/>, logged in and available.</summary>
    public static async Task<XmppTestClient> OnlineAsync(CandorHost host, string prefix)
    {
        var name = $"{prefix}{Interlocked.Increment(ref _users)}";
        Assert.True(await host.Server.Accounts.CreateAsync(name, "pw-" + name));
        var client = await XmppTestClient.LoginAsync(host.C2sPort, name, "pw-" + name, domain: host.Server.Domain.Domain);
        await client.SendPresenceAsync();
        return client;
    }

    public virtual async Task DisposeAsync()
    {
        await A.StopAsync();
        await B.StopAsync();
        foreach (var directory in _directories) Directory.Delete(directory, recursive: true);
    }
}

public sealed class FederationTests(TwoDomains servers) : IClassFixture<TwoDomains>
{
    private static readonly TimeSpan Slow = TimeSpan.FromSeconds(20);

    /// <summary>A loopback port nothing listens on (connections to it are refused).</summary>
    private static int ClosedPort()
    {
        using var closed = new TcpListener(IPAddress.Loopback, 0);
        closed.Start();
        var port = ((IPEndPoint)closed.LocalEndpoint).Port;
        closed.Stop();
        return port;
    }

    [Fact]
    public async Task Messages_travel_both_ways_between_two_domains()
    {
        await using var alice = await TwoDomains.OnlineAsync(servers.A, "alice");
        await using var bob = await TwoDomains.OnlineAsync(servers.B, "bob");

        await alice.SendMessageAsync(bob.Full, "hello from a.test");
        var received = await bob.ExpectMessageAsync("hello from a.test", Slow);
        Assert.Equal(alice.Full, received.GetAttribute("from"));

        await bob.SendMessageAsync(alice.Bare, "hello from b.test");
        var reply = await alice.ExpectMessageAsync("hello from b.test", Slow);
        Assert.Equal(bob.Full, reply.GetAttribute("from"));
    }

    [Fact]
    public async Task A_subscription_across_domains_brings_presence_both_ways()
    {
        await using var alice = await TwoDomains.OnlineAsync(servers.A, "alice");
        await using var bob = await TwoDomains.OnlineAsync(servers.B, "bob");

        await alice.SendAsync($"<presence to='{bob.Bare}' type='subscribe'/>");
        var request = await bob.ExpectStanzaAsync("presence", p => p.Type() == "subscribe", Slow);
        Assert.Equal(alice.Bare, request.GetAttribute("from"));
        await bob.SendAsync($"<presence to='{alice.Bare}' type='subscribed'/>");

        await alice.ExpectStanzaAsync("presence", p => p.Type() == "subscribed" && p.GetAttribute("from") == bob.Bare, Slow);
        // RFC 6121 §3.1.5: on approval the contact's server sends the contact's current presence.
        await alice.ExpectStanzaAsync("presence", p => p.Type() is null && p.GetAttribute("from") == bob.Full, Slow);
        var roster = await alice.GetRosterAsync();
        Assert.Equal("to", roster.RosterItem(bob.Bare)!.GetAttribute("subscription"));

        // Bob's presence changes reach alice on the other domain; his going offline too.
        await bob.SendAsync("<presence><show>away</show></presence>");
        await alice.ExpectStanzaAsync("presence", p => p.GetAttribute("from") == bob.Full && p.GetChildText("show", Ns.Client) == "away", Slow);
        await bob.SendAsync("<presence type='unavailable'/>");
        await alice.ExpectStanzaAsync("presence", p => p.GetAttribute("from") == bob.Full && p.Type() == "unavailable", Slow);
    }

    [Fact]
    public async Task Asking_to_add_a_remote_contact_tells_the_account_that_servers_data_policy()
    {
        await using var alice = await TwoDomains.OnlineAsync(servers.A, "alice");
        await using var bob = await TwoDomains.OnlineAsync(servers.B, "bob");
        await alice.SendAsync($"<presence to='{bob.Bare}' type='subscribe'/>");
        await bob.ExpectStanzaAsync("presence", p => p.Type() == "subscribe" && p.GetAttribute("from") == alice.Bare, Slow);
        var notice = await alice.ExpectStanzaAsync("message", m => m.GetAttribute("from") == "a.test", Slow);
        var text = notice.GetChildText("body", Ns.Client)!;
        Assert.StartsWith($"You asked to add {bob.Bare}. Its server, b.test, publishes this data policy (XEP-0504):", text);
        Assert.Contains("\nencryption_at_rest: true", text);
        Assert.Contains("\ndata_retention: infinite", text);
        Assert.Contains("\n- Archived messages (XEP-0313) are kept", text);

        // The client can ask the remote server itself too: its disco#info, with the form, crosses federation.
        var info = await alice.RequestAsync("<iq type='get' to='b.test' id='dp1'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>", Slow);
        Assert.Contains(info.GetChild("query", Ns.DiscoInfo)!.Elements, x => x.Is("x", Ns.DataForms)
            && x.Elements.Any(f => f.GetAttribute("var") == "FORM_TYPE" && f.GetChildText("value", Ns.DataForms) == "urn:xmpp:data-policy:0"));
    }

    [Fact]
    public async Task A_remote_server_that_cannot_be_reached_is_named_in_the_notice()
    {
        var port = ClosedPort();
        servers.A.Server.Options.S2sRoutes = $"b.test=127.0.0.1:{servers.B.S2sPort},closed.test=127.0.0.1:{port}";
        await using var alice = await TwoDomains.OnlineAsync(servers.A, "alice");
        await alice.SendAsync("<presence to='someone@closed.test' type='subscribe'/>");
        var notice = await alice.ExpectStanzaAsync("message", m => m.GetAttribute("from") == "a.test", Slow);
        Assert.StartsWith("You asked to add someone@closed.test. Its server, closed.test, did not tell its data policy (remote-server-not-found)",
            notice.GetChildText("body", Ns.Client));
    }

    [Fact]
    public async Task An_iq_to_the_remote_server_is_answered_across_domains()
    {
        await using var alice = await TwoDomains.OnlineAsync(servers.A, "alice");
        var result = await alice.RequestAsync("<iq type='get' to='b.test' id='v1'><query xmlns='jabber:iq:version'/></iq>", Slow);
        Assert.Equal("result", result.Type());
        Assert.Equal("b.test", result.GetAttribute("from"));
        Assert.Equal("Candor", result.GetChild("query", Ns.Version)!.GetChildText("name", Ns.Version));
    }

    [Fact]
    public async Task A_message_to_a_remote_account_that_does_not_exist_comes_back_as_an_error()
    {
        await using var alice = await TwoDomains.OnlineAsync(servers.A, "alice");
        await alice.SendAsync("<message to='nobody@b.test' id='m1' type='chat'><body>anyone?</body></message>");
        var error = await alice.ExpectStanzaAsync("message", m => m.Id() == "m1", Slow);
        error.AssertError("service-unavailable");
        Assert.Equal("nobody@b.test", error.GetAttribute("from"));
    }

    [Fact]
    public async Task A_domain_whose_server_refuses_connections_gets_remote_server_not_found()
    {
        var port = ClosedPort();
        servers.A.Server.Options.S2sRoutes = $"b.test=127.0.0.1:{servers.B.S2sPort},gone.test=127.0.0.1:{port}";
        await using var alice = await TwoDomains.OnlineAsync(servers.A, "alice");
        await alice.SendAsync("<message to='x@gone.test' id='g1' type='chat'><body>hello?</body></message>");
        var error = await alice.ExpectStanzaAsync("message", m => m.Id() == "g1", Slow);
        error.AssertError("remote-server-not-found", "cancel");
    }

    [Fact]
    public async Task A_domain_whose_server_never_answers_gets_remote_server_timeout_within_the_bounded_time()
    {
        await using var silent = await servers.StartAsync("c.test", o => o.S2sConnectTimeoutSeconds = 2);
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var accepted = listener.AcceptTcpClientAsync();
        silent.Server.Options.S2sRoutes = $"mute.test=127.0.0.1:{((IPEndPoint)listener.LocalEndpoint).Port}";
        await using var carol = await TwoDomains.OnlineAsync(silent, "carol");

        var clock = Stopwatch.StartNew();
        await carol.SendAsync("<message to='x@mute.test' id='t1' type='chat'><body>one</body></message>");
        await carol.SendAsync("<message to='y@mute.test' id='t2' type='chat'><body>two</body></message>");
        var first = await carol.ExpectStanzaAsync("message", m => m.Id() == "t1", Slow);
        var second = await carol.ExpectStanzaAsync("message", m => m.Id() == "t2", Slow);
        Assert.InRange(clock.Elapsed, TimeSpan.FromSeconds(1.5), TimeSpan.FromSeconds(10));
        first.AssertError("remote-server-timeout", "wait");
        second.AssertError("remote-server-timeout", "wait");
        (await accepted).Dispose();
    }

    /// <summary>A raw server-to-server stream to b.test from a peer claiming a.test, after STARTTLS.</summary>
    private async Task<XmppTestClient> PeerAsync(string claimed = "a.test")
    {
        var peer = await XmppTestClient.ConnectTcpAsync(servers.B.S2sPort, domain: "b.test");
        peer.ServerFrom = claimed;
        var features = await peer.OpenStreamAsync();
        Assert.NotNull(features.GetChild("starttls", Ns.Tls)!.GetChild("required", Ns.Tls));
        await peer.StartTlsAsync();
        Assert.NotNull(peer.Features!.GetChild("dialback", Ns.DialbackFeature));
        return peer;
    }

    [Fact]
    public async Task Stanzas_before_starttls_are_refused()
    {
        await using var peer = await XmppTestClient.ConnectTcpAsync(servers.B.S2sPort, domain: "b.test");
        peer.ServerFrom = "a.test";
        await peer.OpenStreamAsync();
        await peer.SendAsync("<message from='x@a.test' to='y@b.test'><body>plain</body></message>");
        await peer.ExpectStreamErrorAsync("policy-violation");
    }

    [Fact]
    public async Task A_peer_claiming_a_domain_with_a_wrong_dialback_key_is_refused()
    {
        await using var peer = await PeerAsync("a.test");
        await peer.SendAsync("<db:result from='a.test' to='b.test'>0123456789abcdef</db:result>");
        var result = await peer.ExpectAsync(e => e.Is("result", Ns.Dialback), Slow);
        Assert.Equal("invalid", result.GetAttribute("type"));
        await peer.ExpectStreamErrorAsync("not-authorized", Slow);
    }

    [Fact]
    public async Task A_stream_addressed_to_a_domain_not_served_gets_host_unknown()
    {
        await using var peer = await XmppTestClient.ConnectTcpAsync(servers.B.S2sPort, domain: "elsewhere.test");
        peer.ServerFrom = "a.test";
        await peer.SendAsync(XmppTestClient.Header("elsewhere.test", ns: "jabber:server", from: "a.test"));
        await peer.ExpectStreamErrorAsync("host-unknown");
    }

    [Fact]
    public async Task Stanzas_with_a_from_domain_the_stream_has_not_proved_are_refused_and_not_delivered()
    {
        await using var bob = await TwoDomains.OnlineAsync(servers.B, "bob");
        await using var peer = await PeerAsync("a.test");
        // The peer proves a.test with the key a.test's server itself issued for this stream (as if it were that server).
        var id = peer.StreamHeader!.GetAttribute("id")!;
        var key = servers.A.Server.S2s!.Key(receiving: "b.test", originating: "a.test", id);
        await peer.SendAsync($"<db:result from='a.test' to='b.test'>{key}</db:result>");
        var result = await peer.ExpectAsync(e => e.Is("result", Ns.Dialback), Slow);
        Assert.Equal("valid", result.GetAttribute("type"));

        await peer.SendAsync($"<message from='x@a.test/r' to='{bob.Full}' type='chat'><body>proved</body></message>");
        await bob.ExpectMessageAsync("proved", Slow);
        await peer.SendAsync($"<message from='mallory@c.test' to='{bob.Full}' type='chat'><body>forged</body></message>");
        await peer.ExpectStreamErrorAsync("invalid-from", Slow);
        await bob.ExpectNothingAsync(TimeSpan.FromMilliseconds(500), e => e.IsMessage());
    }

    [Fact]
    public async Task A_verified_peer_cannot_relay_through_us_to_a_third_domain()
    {
        await using var peer = await PeerAsync("a.test");
        var id = peer.StreamHeader!.GetAttribute("id")!;
        await peer.SendAsync($"<db:result from='a.test' to='b.test'>{servers.A.Server.S2s!.Key("b.test", "a.test", id)}</db:result>");
        Assert.Equal("valid", (await peer.ExpectAsync(e => e.Is("result", Ns.Dialback), Slow)).GetAttribute("type"));
        await peer.SendAsync("<message from='x@a.test' to='someone@third.test'><body>relay?</body></message>");
        await peer.ExpectStreamErrorAsync("host-unknown", Slow);
    }

    [Fact]
    public async Task The_published_policy_applies_to_messages_from_remote_senders()
    {
        var policyFile = Path.Combine(Directory.CreateTempSubdirectory("candor-s2s-policy-").FullName, "policy.json");
        File.WriteAllText(policyFile, """{"rules":[{"id":"spam-1","description":"Unsolicited advertising","phrases":["buy now"],"action":"reject"}]}""");
        await using var strict = await servers.StartAsync("p.test", o => o.PolicyFile = policyFile);
        strict.Server.Options.S2sRoutes = $"b.test=127.0.0.1:{servers.B.S2sPort}";
        servers.B.Server.Options.S2sRoutes = $"a.test=127.0.0.1:{servers.A.S2sPort},p.test=127.0.0.1:{strict.S2sPort}";
        await using var carol = await TwoDomains.OnlineAsync(strict, "carol");
        await using var bob = await TwoDomains.OnlineAsync(servers.B, "bob");

        await bob.SendAsync($"<message to='{carol.Full}' id='s1' type='chat'><body>buy now, cheap</body></message>");
        var error = await bob.ExpectStanzaAsync("message", m => m.Id() == "s1", Slow);
        error.AssertError("policy-violation");
        await bob.SendMessageAsync(carol.Full, "an ordinary hello");
        await carol.ExpectMessageAsync("an ordinary hello", Slow);
        await carol.ExpectNothingAsync(TimeSpan.FromMilliseconds(300), e => e.IsMessage());
    }
}
