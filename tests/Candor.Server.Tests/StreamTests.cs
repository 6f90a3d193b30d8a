using System.Text;
using Candor.Server.Tests.Harness;
using Candor.Xmpp;

namespace Candor.Server.Tests;

/// <summary>RFC 6120 §4-5: stream headers, features, STARTTLS, restarts, closing, and stream errors.</summary>
public sealed class StreamTests(ServerFixture server) : IClassFixture<ServerFixture>
{
    [Fact]
    public async Task Response_header_has_from_id_and_version_and_plain_features_offer_only_required_starttls()
    {
        await using var client = await XmppTestClient.ConnectAsync(server.C2sPort);

        var header = client.StreamHeader!;
        Assert.Equal("localhost", header.GetAttribute("from"));
        Assert.False(string.IsNullOrEmpty(header.GetAttribute("id")));
        Assert.Equal("1.0", header.GetAttribute("version"));
        var starttls = client.Features!.GetChild("starttls", Ns.Tls);
        Assert.NotNull(starttls);
        Assert.NotNull(starttls.GetChild("required", Ns.Tls));
        Assert.Null(client.Features.GetChild("mechanisms", Ns.Sasl));
        Assert.Null(client.Features.GetChild("bind", Ns.Bind));
    }

    [Fact]
    public async Task After_starttls_the_stream_restarts_with_a_new_id_and_offers_sasl_with_channel_binding()
    {
        await using var client = await XmppTestClient.ConnectAsync(server.C2sPort);
        var firstId = client.StreamHeader!.GetAttribute("id");

        await client.StartTlsAsync();

        Assert.NotEqual(firstId, client.StreamHeader!.GetAttribute("id"));
        Assert.Null(client.Features!.GetChild("starttls", Ns.Tls));
        Assert.Equal(["SCRAM-SHA-256-PLUS", "SCRAM-SHA-1-PLUS", "SCRAM-SHA-256", "SCRAM-SHA-1", "PLAIN"], client.Mechanisms);
        var bindings = client.Features.GetChild("sasl-channel-binding", Ns.SaslChannelBinding);
        Assert.NotNull(bindings);
        Assert.Equal(["tls-server-end-point"], bindings.Elements.Select(e => e.GetAttribute("type")));
        Assert.Null(client.Features.GetChild("bind", Ns.Bind));
    }

    [Fact]
    public async Task After_sasl_the_stream_restarts_and_offers_bind_but_no_mechanisms()
    {
        var user = await server.CreateUserAsync();
        await using var client = await XmppTestClient.ConnectAsync(server.C2sPort);
        await client.StartTlsAsync();
        var tlsId = client.StreamHeader!.GetAttribute("id");

        await client.AuthenticateAsync(user, ServerFixture.Password(user));

        Assert.NotEqual(tlsId, client.StreamHeader!.GetAttribute("id"));
        Assert.NotNull(client.Features!.GetChild("bind", Ns.Bind));
        Assert.Null(client.Features.GetChild("mechanisms", Ns.Sasl));
        Assert.Null(client.Features.GetChild("starttls", Ns.Tls));
    }

    [Fact]
    public async Task Direct_tls_port_speaks_xmpp_inside_tls_with_or_without_alpn()
    {
        await using (var client = await XmppTestClient.ConnectAsync(server.TlsPort, directTls: true))
        {
            Assert.True(client.IsSecure);
            Assert.Null(client.Features!.GetChild("starttls", Ns.Tls));
            Assert.Contains("SCRAM-SHA-256-PLUS", client.Mechanisms);
        }
        var user = await server.CreateUserAsync();
        await using var alpn = await XmppTestClient.ConnectTcpAsync(server.TlsPort, directTls: true, alpn: ["xmpp-client"]);
        Assert.Equal("xmpp-client", alpn.NegotiatedAlpn.ToString());
        await alpn.OpenStreamAsync();
        await alpn.AuthenticateAsync(user, ServerFixture.Password(user), "SCRAM-SHA-256-PLUS");
        await alpn.BindAsync("direct");
        await alpn.SyncAsync();
    }

    [Fact]
    public async Task Whitespace_keepalives_are_accepted_and_closing_tag_is_answered_with_closing_tag()
    {
        var user = await server.CreateUserAsync();
        await using var client = await server.LoginAsync(user);

        await client.SendAsync(" ");
        await client.SendAsync("\n \n");
        await client.SyncAsync();
        await client.SendAsync("\t");

        await client.SendAsync("</stream:stream>");
        await client.ExpectStreamClosedAsync();
    }

    [Fact]
    public async Task Closing_before_authentication_is_answered_with_closing_tag()
    {
        await using var client = await XmppTestClient.ConnectAsync(server.C2sPort);
        await client.SendAsync("</stream:stream>");
        await client.ExpectStreamClosedAsync();
    }

    [Fact]
    public async Task Wrong_to_is_host_unknown()
    {
        await using var client = await XmppTestClient.ConnectTcpAsync(server.C2sPort);
        await client.SendAsync(XmppTestClient.Header(to: "example.org"));
        var header = await client.ExpectAsync(e => e.Is("stream", Ns.Stream));
        Assert.Equal("localhost", header.GetAttribute("from"));
        await client.ExpectStreamErrorAsync("host-unknown");
    }

    [Fact]
    public async Task Wrong_stream_namespace_is_invalid_namespace()
    {
        await using var client = await XmppTestClient.ConnectTcpAsync(server.C2sPort);
        await client.SendAsync(XmppTestClient.Header(streamNs: "http://example.org/streams"));
        await client.ExpectStreamErrorAsync("invalid-namespace");
    }

    [Fact]
    public async Task Wrong_content_namespace_is_invalid_namespace()
    {
        await using var client = await XmppTestClient.ConnectTcpAsync(server.C2sPort);
        await client.SendAsync(XmppTestClient.Header(ns: "jabber:server"));
        await client.ExpectStreamErrorAsync("invalid-namespace");
    }

    [Theory]
    [InlineData(null)]
    [InlineData("0.9")]
    public async Task Missing_or_old_version_is_unsupported_version(string? version)
    {
        await using var client = await XmppTestClient.ConnectTcpAsync(server.C2sPort);
        await client.SendAsync(XmppTestClient.Header(version: version));
        await client.ExpectStreamErrorAsync("unsupported-version");
    }

    [Fact]
    public async Task Unknown_top_level_element_is_unsupported_stanza_type()
    {
        var user = await server.CreateUserAsync();
        await using var client = await server.LoginAsync(user);
        await client.SendAsync("<foo xmlns='jabber:client'/>");
        await client.ExpectStreamErrorAsync("unsupported-stanza-type");
    }

    [Fact]
    public async Task Stanza_before_authentication_is_not_authorized()
    {
        await using var client = await XmppTestClient.ConnectAsync(server.C2sPort);
        await client.StartTlsAsync();
        await client.SendAsync("<message to='someone@localhost'><body>hi</body></message>");
        await client.ExpectStreamErrorAsync("not-authorized");
    }

    [Fact]
    public async Task Stanza_before_starttls_is_refused()
    {
        await using var client = await XmppTestClient.ConnectAsync(server.C2sPort);
        await client.SendAsync("<message to='someone@localhost'><body>hi</body></message>");
        await client.ExpectStreamErrorAsync("policy-violation");
    }

    public static TheoryData<string, string> RefusedXml => new()
    {
        { "<!DOCTYPE foo [<!ENTITY x 'y'>]>", "restricted-xml" },
        { "<!-- a comment -->", "restricted-xml" },
        { "<?php echo 1; ?>", "restricted-xml" },
        { "<message><body>&xxe;</body></message>", "restricted-xml" },
        { "<message><body></message></body>", "not-well-formed" },
        { "<message a='1' a='2'/>", "not-well-formed" },
        { "<message><body>\u0001</body></message>", "not-well-formed" },
        { "<p:message><body/></p:message>", "not-well-formed" },
    };

    [Theory]
    [MemberData(nameof(RefusedXml))]
    public async Task Refused_xml_construct_ends_the_stream(string xml, string condition)
    {
        await using var client = await XmppTestClient.ConnectAsync(server.C2sPort);
        await client.StartTlsAsync();
        await client.SendAsync(xml);
        await client.ExpectStreamErrorAsync(condition);
    }

    [Fact]
    public async Task A_mismatched_end_tag_is_refused_before_the_stanza_ends()
    {
        var user = await server.CreateUserAsync();
        await using var client = await server.LoginAsync(user);
        // Expat-based servers answer at once; the server must not wait for a '</message>' that may never come.
        await client.SendAsync($"<message to='{user}@localhost'><body></message>");
        await client.ExpectStreamErrorAsync("not-well-formed", TimeSpan.FromSeconds(2));
    }

    [Fact]
    public async Task Invalid_utf8_is_not_well_formed()
    {
        await using var client = await XmppTestClient.ConnectAsync(server.C2sPort);
        await client.StartTlsAsync();
        await client.SendRawAsync([.. "<message><body>"u8, 0xC3, 0x28, 0xFF, .. "</body></message>"u8]);
        await client.ExpectStreamErrorAsync("not-well-formed");
    }

    [Fact]
    public async Task Oversize_stanza_is_policy_violation()
    {
        var user = await server.CreateUserAsync();
        await using var client = await server.LoginAsync(user);
        var body = new string('x', 300 * 1024);
        await client.SendIgnoringResetAsync($"<message to='{user}@localhost'><body>{body}</body></message>");
        await client.ExpectStreamErrorAsync("policy-violation");
    }

    [Fact]
    public async Task Oversize_stanza_is_refused_before_it_ends()
    {
        var user = await server.CreateUserAsync();
        await using var client = await server.LoginAsync(user);
        // The stanza never ends: the server must not wait for (or buffer) the rest.
        await client.SendIgnoringResetAsync($"<message to='{user}@localhost'><body>{new string('x', 300 * 1024)}");
        await client.ExpectStreamErrorAsync("policy-violation");
    }

    [Fact]
    public async Task Stream_error_before_any_header_is_sent_inside_a_stream()
    {
        await using var client = await XmppTestClient.ConnectTcpAsync(server.C2sPort);
        await client.SendRawAsync(Encoding.UTF8.GetBytes("<!DOCTYPE stream>"));
        await client.ExpectAsync(e => e.Is("stream", Ns.Stream));
        await client.ExpectStreamErrorAsync("restricted-xml");
    }
}
