using System.Diagnostics;
using System.Text;
using Candor.Server.Tests.Harness;
using Candor.Xmpp;
using Candor.Xmpp.Sasl;

namespace Candor.Server.Tests;

/// <summary>
/// RFC 6120 §6 with SCRAM (RFC 5802, RFC 7677), channel binding (RFC 5929) and PLAIN (RFC 4616). The tests that
/// take a <see cref="SaslProfile"/> run in XEP-0388's framing too: the mechanisms and protections are the same.
/// </summary>
public sealed class SaslTests(ServerFixture server) : IClassFixture<ServerFixture>
{
    private Task<XmppTestClient> SecureAsync(int? port = null) => SaslProfileExtensions.ConnectSecureAsync(port ?? server.C2sPort);

    public static TheoryData<string, SaslProfile> EveryMechanism =>
        SaslProfileExtensions.InBothProfiles("SCRAM-SHA-256", "SCRAM-SHA-1", "SCRAM-SHA-256-PLUS", "SCRAM-SHA-1-PLUS", "PLAIN");

    public static TheoryData<string, SaslProfile> OneMechanismOfEachKind => SaslProfileExtensions.InBothProfiles("SCRAM-SHA-256", "SCRAM-SHA-1-PLUS", "PLAIN");

    [Theory]
    [MemberData(nameof(EveryMechanism))]
    public async Task Each_mechanism_authenticates_over_tls(string mechanism, SaslProfile profile)
    {
        var user = await server.CreateUserAsync();
        await using var client = await SecureAsync();

        await client.AuthenticateAsync(profile, user, ServerFixture.Password(user), mechanism);
        var jid = await client.BindAsync("sasl");

        Assert.Equal($"{user}@localhost/sasl", jid.ToString());
        Assert.Equal(mechanism, Assert.Single(server.Host.Server.Sessions.Get(user)).Mechanism);
    }

    [Theory]
    [MemberData(nameof(OneMechanismOfEachKind))]
    public async Task Wrong_password_is_not_authorized_and_unknown_user_looks_the_same(string mechanism, SaslProfile profile)
    {
        var user = await server.CreateUserAsync();
        await using var client = await SecureAsync();

        var wrong = await client.TryAuthenticateAsync(profile, user, "not-the-password", mechanism);
        var unknown = await client.TryAuthenticateAsync(profile, "nobody-" + user, "not-the-password", mechanism);

        Assert.Equal("not-authorized", wrong.SaslCondition());
        Assert.Equal(wrong.ToString(), unknown.ToString());
        // A correct attempt after failures still works on the same stream (and clears the address's record for later tests).
        await client.AuthenticateAsync(profile, user, ServerFixture.Password(user), mechanism);
    }

    [Theory]
    [InlineData(SaslProfile.Rfc6120)]
    [InlineData(SaslProfile.Sasl2)]
    public async Task A_binding_type_the_server_does_not_offer_gets_the_RFC_5802_error_and_the_stream_can_retry(SaslProfile profile)
    {
        var user = await server.CreateUserAsync();
        await using var client = await SecureAsync();
        var offered = client.Features!.GetChild("sasl-channel-binding", Ns.SaslChannelBinding)!.Elements.Select(e => e.GetAttribute("type"));
        Assert.Equal([ChannelBinding.TlsServerEndPointType], offered);

        // slixmpp's choice: -PLUS bound to tls-unique, which TLS 1.3 does not define (RFC 9266 §1).
        var clientFirst = Convert.ToBase64String(Encoding.UTF8.GetBytes($"p=tls-unique,,n={user},r=abcdefgh"));
        await client.SendAsync(profile == SaslProfile.Rfc6120
            ? $"<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='SCRAM-SHA-256-PLUS'>{clientFirst}</auth>"
            : Sasl2Exchange.Authenticate("SCRAM-SHA-256-PLUS", clientFirst));
        var failure = await client.ExpectAsync(e => e.Name is "failure" or "challenge" or "success");

        // Not not-authorized: no password was tried, and clients show that condition as a wrong password.
        Assert.Equal("malformed-request", failure.SaslCondition());
        Assert.StartsWith("unsupported-channel-binding-type", failure.GetChildText("text", failure.Namespace));
        await client.AuthenticateAsync(profile, user, ServerFixture.Password(user), "SCRAM-SHA-256-PLUS");
    }

    [Fact]
    public async Task Unknown_mechanism_is_invalid_mechanism()
    {
        await using var client = await SecureAsync();
        await client.SendAsync("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='X-NOPE'>=</auth>");
        var failure = await client.ExpectAsync(e => e.Is("failure", Ns.Sasl));
        Assert.NotNull(failure.GetChild("invalid-mechanism", Ns.Sasl));
    }

    [Fact]
    public async Task Abort_is_answered_with_aborted()
    {
        await using var client = await SecureAsync();
        await client.SendAsync("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='SCRAM-SHA-256'/>");
        await client.ExpectAsync(e => e.Is("challenge", Ns.Sasl));
        await client.SendAsync("<abort xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>");
        var failure = await client.ExpectAsync(e => e.Is("failure", Ns.Sasl));
        Assert.NotNull(failure.GetChild("aborted", Ns.Sasl));
    }

    [Fact]
    public async Task Sasl_before_tls_is_refused_when_plaintext_is_not_allowed()
    {
        var user = await server.CreateUserAsync();
        await using var client = await XmppTestClient.ConnectAsync(server.C2sPort);
        Assert.Empty(client.Mechanisms);
        var plain = Convert.ToBase64String(Candor.Xmpp.Sasl.SaslPlain.Create(null, user, ServerFixture.Password(user)));
        await client.SendAsync($"<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>{plain}</auth>");
        await client.ExpectStreamErrorAsync("policy-violation");
    }

    [Fact]
    public async Task With_plaintext_allowed_starttls_is_optional_and_plain_works_without_tls()
    {
        var own = await ServerFixture.StartAsync(o => o.AllowPlaintext = true);
        try
        {
            var user = await own.CreateUserAsync();
            await using var client = await XmppTestClient.ConnectAsync(own.C2sPort);
            var starttls = client.Features!.GetChild("starttls", Ns.Tls);
            Assert.NotNull(starttls);
            Assert.Null(starttls.GetChild("required", Ns.Tls));
            Assert.Contains("PLAIN", client.Mechanisms);
            Assert.DoesNotContain("SCRAM-SHA-256-PLUS", client.Mechanisms);

            await client.AuthenticateAsync(user, ServerFixture.Password(user), "PLAIN");
            await client.BindAsync();
            await client.SyncAsync();
        }
        finally
        {
            await own.DisposeAsync();
        }
    }

    [Fact]
    public async Task Five_failures_end_the_stream_with_policy_violation()
    {
        var own = await ServerFixture.StartAsync();
        try
        {
            var user = await own.CreateUserAsync();
            await using var client = await SecureAsync(own.C2sPort);
            for (var i = 0; i < 5; i++)
            {
                var failure = await client.TryAuthenticateAsync(user, "wrong" + i, "SCRAM-SHA-256", TimeSpan.FromSeconds(15));
                Assert.NotNull(failure.GetChild("not-authorized", Ns.Sasl));
            }
            await client.ExpectStreamErrorAsync("policy-violation");
        }
        finally
        {
            await own.DisposeAsync();
        }
    }

    [Theory]
    [InlineData(SaslProfile.Rfc6120)]
    [InlineData(SaslProfile.Sasl2)]
    public async Task Repeated_failures_slow_the_next_attempt_but_the_right_password_still_works(SaslProfile profile)
    {
        var own = await ServerFixture.StartAsync();
        try
        {
            var user = await own.CreateUserAsync();
            await using var client = await SecureAsync(own.C2sPort);
            for (var i = 0; i < 4; i++)
                Assert.Equal("not-authorized", (await client.TryAuthenticateAsync(profile, user, "wrong" + i, "PLAIN", TimeSpan.FromSeconds(15))).SaslCondition());

            var watch = Stopwatch.StartNew();
            var outcome = await client.TryAuthenticateAsync(profile, user, ServerFixture.Password(user), "PLAIN", TimeSpan.FromSeconds(15));
            watch.Stop();

            Assert.True(outcome.IsSaslSuccess(), "no lockout: the owner gets in, got " + outcome);
            Assert.True(watch.Elapsed >= TimeSpan.FromMilliseconds(400), $"expected a delay, took {watch.Elapsed}");
            Assert.True(watch.Elapsed < TimeSpan.FromSeconds(10), $"delay too long: {watch.Elapsed}");
        }
        finally
        {
            await own.DisposeAsync();
        }
    }

    [Fact]
    public async Task Passwords_are_stored_only_as_scram_credentials()
    {
        var own = await ServerFixture.StartAsync();
        const string password = "Correct-Horse-Battery-Staple-4711";
        try
        {
            Assert.True(await own.Host.Server.Accounts.CreateAsync("secretive", password));
            await using (var client = await XmppTestClient.LoginAsync(own.C2sPort, "secretive", password, mechanism: "PLAIN"))
            {
                await client.SendAsync("<iq type='set' id='pw'><query xmlns='jabber:iq:register'><username>secretive</username><password>"
                    + password + "-2</password></query></iq>");
                await client.ExpectAsync(e => e.Id() == "pw");
            }
        }
        finally
        {
            await own.StopAsync();
        }
        var bytes = Directory.GetFiles(own.DataDirectory, "candor.db*").SelectMany(File.ReadAllBytes).ToArray();
        Assert.NotEmpty(bytes);
        foreach (var needle in new[] { password, password + "-2", Convert.ToBase64String(Encoding.UTF8.GetBytes(password)) })
            Assert.True(bytes.AsSpan().IndexOf(Encoding.UTF8.GetBytes(needle)) < 0, "the database holds a password: " + needle);
        // Even the SCRAM credentials are sealed (SealedStorage), so a copied database gives nothing to crack offline.
        Assert.True(bytes.AsSpan().IndexOf("storedKey"u8) < 0, "the SCRAM credentials are in the database unsealed");
        await own.DisposeAsync();
    }
}
