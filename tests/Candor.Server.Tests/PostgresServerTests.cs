using Candor.Client;
using Candor.Server.Accounts;
using Candor.Server.Hosting;
using Candor.Server.Storage;
using Candor.Server.Tests.Harness;

namespace Candor.Server.Tests;

/// <summary>A server storing its data in a new database of the test process's private PostgreSQL cluster.</summary>
public sealed class PostgresServerFixture : ServerFixture
{
    protected override async Task ConfigureAsync(ServerOptions options) => options.Postgres = await PostgresCluster.NewDatabaseAsync();
}

// The message, offline, roster and archive suites again, with every store on PostgreSQL.
public sealed class PostgresMessageTests(PostgresServerFixture server) : MessageTests(server), IClassFixture<PostgresServerFixture>;

public sealed class PostgresRosterTests(PostgresServerFixture server) : RosterTests(server), IClassFixture<PostgresServerFixture>;

public sealed class PostgresArchiveTests(PostgresServerFixture server) : ArchiveTests(server), IClassFixture<PostgresServerFixture>;

/// <summary>What the operator does beside a server on PostgreSQL, from a second opening of the same database as the CLI makes.</summary>
public sealed class PostgresServerTests(PostgresServerFixture server) : IClassFixture<PostgresServerFixture>
{
    private async Task<SealedStorage> OperatorStorageAsync() =>
        await SealedStorage.OpenAsync(new ServerOptions { DataDirectory = server.DataDirectory, Postgres = server.Host.Server.Options.Postgres });

    [Fact]
    public async Task A_password_changed_by_the_operator_ends_the_session_and_the_new_password_logs_in()
    {
        await using var alice = await server.OnlineClientAsync("alice");
        var user = alice.Bare.Local!;
        await using (var storage = await OperatorStorageAsync())
        {
            var accounts = new AccountStore(storage, 4096);
            await accounts.SetPasswordAsync(user, "changed by the operator");
            var entry = await server.Host.Server.Audit.AppendAsync(Candor.Server.Audit.AuditEntry.Actors.Operator, Candor.Server.Audit.AuditActions.PasswordSet, $"{user}@localhost");
            await new OperatorChanges(storage).RecordAsync(user, OperatorChange.PasswordChanged, entry);
        }
        await alice.ExpectStreamErrorAsync("not-authorized");
        Assert.True(await server.Host.Server.Accounts.VerifyPasswordAsync(user, "changed by the operator"));
        Assert.False(await server.Host.Server.Accounts.VerifyPasswordAsync(user, ServerFixture.Password(user)));
    }

    [Fact]
    public async Task Offline_messages_wait_in_postgres_and_arrive_in_order_at_the_next_login()
    {
        await using var alice = await server.OnlineClientAsync("alice");
        var bob = await server.CreateUserAsync("bob");
        for (var i = 0; i < 5; i++) await alice.SendMessageAsync(ServerFixture.JidOf(bob), "while away " + i, requestReceipt: false);
        await alice.PingAsync();
        await using var reader = await server.ClientAsync(bob);
        await reader.BecomeAvailableAsync();
        for (var i = 0; i < 5; i++) Assert.Equal("while away " + i, (await reader.ExpectAsync<ChatMessage>()).Body);
    }
}
