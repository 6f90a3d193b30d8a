using Candor.Client.Tests.Infrastructure;
using Candor.Xmpp;

namespace Candor.Client.Tests;

/// <summary>Servers that misbehave, scripted over real sockets: every failure is a typed exception, none hangs.</summary>
public sealed class FailureTests
{
    [Fact]
    public async Task Garbage_instead_of_a_stream_is_a_protocol_error()
    {
        await using var server = ScriptedServer.Start(async (c, _) =>
        {
            await c.ExpectAsync(">");
            await c.SendAsync("HTTP/1.1 400 Bad Request\r\n\r\n");
            await c.DrainAsync();
        });
        await using var client = new XmppClient(server.Options());
        var e = await Assert.ThrowsAsync<XmppProtocolException>(() => client.ConnectAsync());
        Assert.Contains("malformed XML", e.Message);
    }

    [Fact]
    public async Task Malformed_xml_mid_stream_ends_the_session_with_a_protocol_error()
    {
        await using var server = ScriptedServer.Start(async (c, _) =>
        {
            await c.NegotiateAsync();
            await c.SendAsync("<message from='bob@localhost/x'><body>hi</bodyy></message>");
            await c.DrainAsync();
        });
        await using var client = new XmppClient(server.Options());
        await client.ConnectAsync();
        var ended = await client.Ended.WaitAsync(TimeSpan.FromSeconds(10));
        Assert.IsType<XmppProtocolException>(ended);
        Assert.False(client.IsConnected);
    }

    [Fact]
    public async Task Server_closing_mid_stream_is_a_connection_error_and_fails_pending_requests()
    {
        await using var server = ScriptedServer.Start(async (c, _) =>
        {
            await c.NegotiateAsync();
            await c.ExpectAsync("urn:xmpp:ping");
            await c.SendAsync("<message from='bob@localhost/x' type='chat'><body>half a sta");
        });
        await using var client = new XmppClient(server.Options());
        await client.ConnectAsync();
        var events = client.ReadEventsAsync().GetAsyncEnumerator();
        var ping = client.PingAsync();
        var e = await Assert.ThrowsAsync<XmppConnectionException>(() => ping);
        Assert.Equal(ConnectionFailure.ClosedByServer, e.Reason);
        Assert.IsType<XmppConnectionException>(await client.Ended.WaitAsync(TimeSpan.FromSeconds(10)));
        // The event stream ends with the same error.
        await Assert.ThrowsAsync<XmppConnectionException>(async () => { while (await events.MoveNextAsync()) { } });
    }

    [Fact]
    public async Task Stream_error_during_negotiation_is_typed()
    {
        await using var server = ScriptedServer.Start(async (c, _) =>
        {
            await c.ExpectAsync(">");
            await c.SendAsync("<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' version='1.0'>" +
                "<stream:error><host-unknown xmlns='urn:ietf:params:xml:ns:xmpp-streams'/><text xmlns='urn:ietf:params:xml:ns:xmpp-streams'>not here</text></stream:error></stream:stream>");
            await c.DrainAsync();
        });
        await using var client = new XmppClient(server.Options());
        var e = await Assert.ThrowsAsync<XmppStreamErrorException>(() => client.ConnectAsync());
        Assert.Equal("host-unknown", e.Condition);
        Assert.Equal("not here", e.Text);
    }

    [Fact]
    public async Task Stream_error_mid_session_ends_it_with_the_condition()
    {
        await using var server = ScriptedServer.Start(async (c, _) =>
        {
            await c.NegotiateAsync();
            await c.SendAsync("<stream:error><conflict xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error></stream:stream>");
            await c.DrainAsync();
        });
        await using var client = new XmppClient(server.Options());
        await client.ConnectAsync();
        var ended = await client.Ended.WaitAsync(TimeSpan.FromSeconds(10));
        Assert.Equal("conflict", Assert.IsType<XmppStreamErrorException>(ended).Condition);
    }

    [Fact]
    public async Task Missing_starttls_is_refused_by_the_client()
    {
        await using var server = ScriptedServer.Start(async (c, _) =>
        {
            await c.ExpectAsync(">");
            await c.SendAsync("<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' version='1.0'>" +
                "<stream:features><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><mechanism>PLAIN</mechanism></mechanisms></stream:features>");
            await c.DrainAsync();
        });
        await using var client = new XmppClient(server.Options());
        var e = await Assert.ThrowsAsync<XmppTlsException>(() => client.ConnectAsync());
        Assert.Equal(TlsFailure.NotOffered, e.Reason);
    }

    [Fact]
    public async Task Starttls_failure_is_refused_tls()
    {
        await using var server = ScriptedServer.Start(async (c, _) =>
        {
            await c.ExpectAsync(">");
            await c.SendAsync("<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' version='1.0'>" +
                "<stream:features><starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/></stream:features>");
            await c.ExpectAsync("<starttls");
            await c.SendAsync("<failure xmlns='urn:ietf:params:xml:ns:xmpp-tls'/></stream:stream>");
            await c.DrainAsync();
        });
        await using var client = new XmppClient(server.Options());
        var e = await Assert.ThrowsAsync<XmppTlsException>(() => client.ConnectAsync());
        Assert.Equal(TlsFailure.Refused, e.Reason);
    }

    [Fact]
    public async Task Unexpected_stanzas_are_reported_not_swallowed()
    {
        await using var server = ScriptedServer.Start(async (c, _) =>
        {
            await c.NegotiateAsync();
            await c.SendAsync("<iq type='result' id='nobody-asked' from='localhost'/>"
                + "<presence type='probe' from='bob@localhost/x'/>");
            await c.DrainAsync();
        });
        await using var client = new XmppClient(server.Options());
        var log = new EventLog(client);
        await client.ConnectAsync();
        Assert.NotNull(client.StreamFeatures?.GetChild("bind", Ns.Bind));
        await log.WaitAsync<OtherStanza>(o => o.Stanza.IsIq() && o.Stanza.Id() == "nobody-asked");
        await log.WaitAsync<OtherStanza>(o => o.Stanza.IsPresence() && o.Stanza.Type() == "probe");
    }

    [Fact]
    public async Task Silent_server_times_out()
    {
        await using var server = ScriptedServer.Start((c, _) => c.DrainAsync());
        await using var client = new XmppClient(server.Options() with { ConnectTimeout = TimeSpan.FromSeconds(1) });
        var e = await Assert.ThrowsAsync<XmppConnectionException>(() => client.ConnectAsync());
        Assert.Equal(ConnectionFailure.Timeout, e.Reason);
    }

    [Fact]
    public async Task Unanswered_iq_times_out()
    {
        await using var server = ScriptedServer.Start(async (c, _) =>
        {
            await c.NegotiateAsync();
            await c.DrainAsync();
        });
        await using var client = new XmppClient(server.Options());
        await client.ConnectAsync();
        var e = await Assert.ThrowsAsync<XmppTimeoutException>(() => client.PingAsync(timeout: TimeSpan.FromMilliseconds(300)));
        Assert.Contains("ping", e.Message);
        Assert.True(client.IsConnected);
    }

    [Fact]
    public async Task Lost_connection_is_restored_with_backoff_when_reconnect_is_enabled()
    {
        await using var server = ScriptedServer.Start(async (c, n) =>
        {
            await c.NegotiateAsync();
            await c.ExpectAsync("<presence");
            if (n == 1) return; // the first connection drops after the initial presence
            await c.DrainAsync();
        });
        await using var client = new XmppClient(server.Options() with
        {
            Reconnect = new ReconnectPolicy { Enabled = true, InitialDelay = TimeSpan.FromMilliseconds(50), MaxAttempts = 5 },
        });
        var log = new EventLog(client);
        await client.ConnectAsync();
        await client.SendPresenceAsync();
        await log.WaitAsync<ConnectionStateChanged>(s => s.State == ConnectionState.Disconnected && s.Error is XmppConnectionException);
        await log.WaitAsync<ConnectionStateChanged>(s => s.State == ConnectionState.Reconnecting);
        await log.WaitAsync<ConnectionStateChanged>(s => s.State == ConnectionState.Reconnected);
        Assert.True(client.IsConnected);
        Assert.False(client.Ended.IsCompleted);
    }

    [Fact]
    public void Reconnect_delay_doubles_up_to_the_cap()
    {
        var policy = new ReconnectPolicy { InitialDelay = TimeSpan.FromSeconds(1), MaxDelay = TimeSpan.FromSeconds(10) };
        Assert.InRange(policy.DelayFor(1).TotalSeconds, 0.8, 1.2);
        Assert.InRange(policy.DelayFor(3).TotalSeconds, 3.2, 4.8);
        Assert.InRange(policy.DelayFor(20).TotalSeconds, 8, 12);
    }

    [Fact]
    public void Invalid_fingerprint_is_rejected_up_front()
    {
        Assert.Throws<ArgumentException>(() => new XmppClient(new XmppClientOptions
        {
            Jid = Jid.Parse("a@localhost"), Password = "x", CertificateFingerprint = "abc",
        }));
    }

    [Fact]
    public async Task Srv_lookup_failure_falls_back_to_the_domain()
    {
        await using var dns = FakeDns.Start();
        var records = await SrvResolver.QueryAsync("_xmpp-client._tcp.example.org", [dns.EndPoint], TimeSpan.FromSeconds(2), default);
        Assert.Empty(records);
        Assert.Contains("_xmpp-client._tcp.example.org", dns.Queries);
    }
}
