using Candor.Server.Audit;
using Candor.Server.Tests.Harness;
using Candor.Xmpp;

namespace Candor.Server.Tests;

/// <summary>XEP-0077 in-band registration: creation (off by default, rate-limited), password change, removal.</summary>
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

    [Fact]
    public async Task Account_removal_answers_then_closes_every_stream_of_the_account()
    {
        var user = await server.CreateUserAsync();
        await using var other = await server.LoginAsync(user, "other");
        await using var client = await server.LoginAsync(user, "main");

        var removed = await client.RequestAsync("<iq type='set' id='{id}'><query xmlns='jabber:iq:register'><remove/></query></iq>");
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
