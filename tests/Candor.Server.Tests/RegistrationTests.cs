using Candor.Server.Audit;
using Candor.Server.Tests.Harness;
using Candor.Xmpp;

namespace Candor.Server.Tests;

/// <summary>XEP-0077 in-band registration: creation (off by default, rate-limited), password change, removal confirmed with the password.</summary>
public sealed class RegistrationTests(ServerFixture server) : IClassFixture<ServerFixture>
{
    private static async Task<XmppTestClient> SecureAsync(int port)
    {
        var client = await XmppTestClient.ConnectAsync(port);
        await client.StartTlsAsync();
        return client;
    }

    private static string Register(string user, string password) =>
        $"<iq type='set' id='{{id}}'><query xmlns='jabber:iq:register'><username>{user}</username><password>{password}</password></query></iq>";

    [Fact]
    public async Task Registration_is_disabled_by_default()
    {
        await using var client = await SecureAsync(server.C2sPort);
        Assert.Null(client.Features!.GetChild("register", Ns.RegisterFeature));
        (await client.RequestAsync("<iq type='get' id='{id}'><query xmlns='jabber:iq:register'/></iq>")).AssertError("service-unavailable");
        (await client.RequestAsync(Register("newbie", "secret"))).AssertError("service-unavailable");
        Assert.False(await server.Host.Server.Accounts.ExistsAsync("newbie"));
    }

    [Fact]
    public async Task Enabled_registration_creates_accounts_refuses_existing_ones_and_limits_per_address()
    {
        var own = await ServerFixture.StartAsync(o =>
        {
            o.AllowRegistration = true;
            o.RegistrationsPerHourLoopback = 2;
        });
        try
        {
            await using var client = await SecureAsync(own.C2sPort);
            Assert.NotNull(client.Features!.GetChild("register", Ns.RegisterFeature));
            var form = await client.RequestAsync("<iq type='get' id='{id}'><query xmlns='jabber:iq:register'/></iq>");
            var query = form.GetChild("query", Ns.Register)!;
            Assert.NotNull(query.GetChild("username", Ns.Register));
            Assert.NotNull(query.GetChild("password", Ns.Register));

            Assert.Equal("result", (await client.RequestAsync(Register("newbie", "first-secret"))).Type());
            (await client.RequestAsync(Register("newbie", "other-secret"))).AssertError("conflict");
            Assert.Equal("result", (await client.RequestAsync(Register("second", "secret-2"))).Type());
            (await client.RequestAsync(Register("third", "secret-3"))).AssertError("policy-violation");
            Assert.False(await own.Host.Server.Accounts.ExistsAsync("third"));

            await using var newbie = await XmppTestClient.LoginAsync(own.C2sPort, "newbie", "first-secret");
            await newbie.SyncAsync();
        }
        finally
        {
            await own.DisposeAsync();
        }
    }

    [Fact]
    public async Task Password_change_takes_effect_for_the_next_login()
    {
        var user = await server.CreateUserAsync();
        await using (var client = await server.LoginAsync(user))
        {
            var changed = await client.RequestAsync($"<iq type='set' id='{{id}}'><query xmlns='jabber:iq:register'><username>{user}</username><password>brand-new</password></query></iq>");
            Assert.Equal("result", changed.Type());
        }
        await using var withNew = await XmppTestClient.LoginAsync(server.C2sPort, user, "brand-new");
        await withNew.SyncAsync();
        await using var withOld = await SecureAsync(server.C2sPort);
        var failure = await withOld.TryAuthenticateAsync(user, ServerFixture.Password(user));
        Assert.NotNull(failure.GetChild("not-authorized", Ns.Sasl));
        await withOld.AuthenticateAsync(user, "brand-new");
    }

    /// <summary>The cancellation form of XEP-0077 §3.2, submitted with <paramref name="password"/>.</summary>
    internal static string Removal(string account, string password) =>
        "<iq type='set' id='{id}'><query xmlns='jabber:iq:register'><x xmlns='jabber:x:data' type='submit'>"
        + "<field var='FORM_TYPE' type='hidden'><value>jabber:iq:register:cancel</value></field>"
        + $"<field var='username'><value>{account}</value></field><field var='password'><value>{password}</value></field></x></query></iq>";

    [Fact]
    public async Task Account_removal_asks_for_the_password_and_a_wrong_one_removes_nothing()
    {
        var user = await server.CreateUserAsync();
        await using var client = await server.LoginAsync(user, "main");

        // A bare <remove/> is answered with the cancellation form in the error (XEP-0077 §3.2), and nothing happens.
        var asked = await client.RequestAsync("<iq type='set' id='{id}'><query xmlns='jabber:iq:register'><remove/></query></iq>");
        asked.AssertError("not-allowed", "cancel");
        var form = asked.GetChild("query", Ns.Register)!.GetChild("x", Ns.DataForms)!;
        Assert.Equal("form", form.GetAttribute("type"));
        var fields = form.Elements.Where(f => f.Name == "field").ToDictionary(f => f.GetAttribute("var")!);
        Assert.Equal("jabber:iq:register:cancel", fields["FORM_TYPE"].GetChildText("value", Ns.DataForms));
        Assert.Equal("text-private", fields["password"].GetAttribute("type"));
        Assert.NotNull(fields["password"].GetChild("required", Ns.DataForms));
        Assert.NotNull(asked.GetChild("error", Ns.Client)!.GetChild("text", Ns.Stanzas));

        (await client.RequestAsync("<iq type='set' id='{id}'><query xmlns='jabber:iq:register'><remove/><username>x</username></query></iq>")).AssertError("bad-request");
        var wrong = await client.RequestAsync(Removal(user, "not-the-password"));
        wrong.AssertError("not-authorized", "auth");
        Assert.DoesNotContain("not-the-password", wrong.ToString());
        (await client.RequestAsync(Removal("someone-else", ServerFixture.Password(user)))).AssertError("forbidden");
        (await client.RequestAsync(Removal(user, ""))).AssertError("bad-request");

        Assert.True(await server.Host.Server.Accounts.ExistsAsync(user));
        Assert.DoesNotContain(server.Host.Server.Audit.Read(), e => e.Account == $"{user}@localhost" && e.Action == AuditActions.AccountRemoved);
        // The session is untouched.
        Assert.Equal("result", (await client.RequestAsync("<iq type='get' id='{id}'><ping xmlns='urn:xmpp:ping'/></iq>")).Type());
    }

    [Fact]
    public async Task Account_removal_with_the_password_answers_then_closes_every_stream_of_the_account()
    {
        var user = await server.CreateUserAsync();
        await using var other = await server.LoginAsync(user, "other");
        await using var client = await server.LoginAsync(user, "main");

        // The username field takes the bare JID (as in XEP-0077's example) or the local part.
        var removed = await client.RequestAsync(Removal($"{user}@localhost", ServerFixture.Password(user)));
        Assert.Equal("result", removed.Type());
        await client.ExpectStreamErrorAsync("not-authorized");
        var error = await other.ExpectStreamErrorAsync("not-authorized");
        Assert.False(await server.Host.Server.Accounts.ExistsAsync(user));
        // Issue 18: the removal leaves exactly one operator log entry, by the account itself, and the announcement cites it.
        var entry = Assert.Single(server.Host.Server.Audit.Read(), e => e.Account == $"{user}@{server.Host.Server.Domain.Domain}");
        Assert.Equal((AuditEntry.Actors.Account, AuditActions.AccountRemoved), (entry.Actor, entry.Action));
        Assert.Contains($"operator log entry #{entry.Index}", error.GetChildText("text", Ns.Streams));

        await using var again = await SecureAsync(server.C2sPort);
        var failure = await again.TryAuthenticateAsync(user, ServerFixture.Password(user));
        Assert.NotNull(failure.GetChild("not-authorized", Ns.Sasl));
        // a success clears this address's failure record for the class's other tests
        var fresh = await server.CreateUserAsync();
        await again.AuthenticateAsync(fresh, ServerFixture.Password(fresh));
    }
}
