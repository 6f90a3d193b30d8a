using Candor.Client;
using Candor.Interop.Tests.Infrastructure;
using Candor.Server.Tests.Harness;
using Xunit.Abstractions;

namespace Candor.Interop.Tests;

/// <summary>
/// <c>candor serve --postgres</c> and the operator's commands with the same <c>--postgres</c>, as processes: accounts
/// made beside the running server log in, a password change reaches the server's sessions through PostgreSQL, the key
/// status counts the records sealed there, the operator log is kept there too, and no SQLite file is made.
/// </summary>
public sealed class PostgresCommandTests(ITestOutputHelper output)
{
    private static readonly TimeSpan Timeout = TimeSpan.FromMinutes(1);

    [Fact]
    public async Task Serve_user_and_key_commands_share_one_postgres_database()
    {
        var postgres = await PostgresCluster.NewDatabaseAsync();
        await using var server = await CandorServer.StartAsync(output, extraArguments: ["--postgres", postgres]);
        var add = await server.RunCliAsync("user", "add", "zed@localhost", "--password", "first-secret", "--postgres", postgres);
        Assert.True(add.Succeeded, add.Describe());
        Assert.Contains("zed@localhost", (await server.RunCliAsync("user", "list", "--postgres", postgres)).Output);

        var online = await UserCommandTests.ConnectAsync(server, "zed@localhost/desk", "first-secret");
        var notice = UserCommandTests.NoticeAsync(online);
        Assert.True((await server.RunCliAsync("user", "passwd", "zed@localhost", "--password", "second-secret", "--postgres", postgres)).Succeeded);
        Assert.Contains("changed by the operator", (await notice.WaitAsync(Timeout)).Body);
        Assert.Equal("not-authorized", Assert.IsType<XmppStreamErrorException>(await online.Ended.WaitAsync(Timeout)).Condition);
        await online.DisposeAsync();
        await using var again = await UserCommandTests.ConnectAsync(server, "zed@localhost/phone", "second-secret");

        var status = await server.RunCliAsync("key", "status", "--postgres", postgres);
        Assert.True(status.Succeeded, status.Describe());
        Assert.Contains("seals new records", status.Output);
        Assert.DoesNotContain("NOT SEALED", status.Output);
        Assert.False(File.Exists(Path.Combine(server.DataDirectory, "candor.db")), server.Transcript);
        // The operator log is in PostgreSQL too: the server's and the commands' entries in one verifiable log.
        Assert.False(File.Exists(Path.Combine(server.DataDirectory, "audit.db")), server.Transcript);
        var log = await server.RunCliAsync("audit", "show", "--account", "zed@localhost", "--postgres", postgres);
        Assert.Contains("account.create", log.Output);
        Assert.Contains("account.password", log.Output);
        var verify = await server.RunCliAsync("audit", "verify", "--postgres", postgres);
        Assert.True(verify.Succeeded, verify.Describe());

        // Without --postgres the same data directory has no database: refused, not taken for an empty server.
        UserCommandTests.AssertOneLineError(await server.RunCliAsync("user", "list"), 2, "no Candor data");
    }

    [Fact]
    public async Task Migrate_copies_a_stopped_sqlite_deployment_once_and_the_commands_find_its_accounts()
    {
        var postgres = await PostgresCluster.NewDatabaseAsync();
        await using var server = await CandorServer.StartAsync(output);
        await server.AddUserAsync("yve@localhost", "old-secret");
        UserCommandTests.AssertOneLineError(await server.RunCliAsync("migrate", "--from-sqlite", server.DataDirectory, "--postgres", postgres), 2, "stop it first");
        await server.StopAsync();

        var migrate = await server.RunCliAsync("migrate", "--from-sqlite", server.DataDirectory, "--postgres", postgres);
        Assert.True(migrate.Succeeded, migrate.Describe());
        Assert.Contains("Copied", migrate.Output);
        UserCommandTests.AssertOneLineError(await server.RunCliAsync("migrate", "--from-sqlite", server.DataDirectory, "--postgres", postgres), 1, "holds Candor data already");

        File.Delete(Path.Combine(server.DataDirectory, "candor.db"));
        var list = await server.RunCliAsync("user", "list", "--postgres", postgres);
        Assert.True(list.Succeeded, list.Describe());
        Assert.Contains("yve@localhost", list.Output);
        // The operator log came along as it was, and records the migration.
        Assert.Contains("operator log's", migrate.Output);
        var log = await server.RunCliAsync("audit", "show", "--postgres", postgres);
        Assert.Contains("account.create", log.Output);
        Assert.Contains("yve@localhost", log.Output);
        Assert.Contains("storage.migrate", log.Output);
        var verify = await server.RunCliAsync("audit", "verify", "--postgres", postgres);
        Assert.True(verify.Succeeded, verify.Describe());
    }

    [Fact]
    public async Task A_bulk_add_on_postgres_logs_in_and_a_session_outlives_a_database_that_does_not_answer_in_time()
    {
        var postgres = await PostgresCluster.NewDatabaseAsync();
        // Every statement gives up after 2 s, as a pool run dry in a login storm does after its wait.
        await using var server = await CandorServer.StartAsync(output, extraArguments: ["--postgres", postgres + ";Command Timeout=2"]);
        var file = Path.Combine(server.DataDirectory, "accounts.txt");
        await File.WriteAllTextAsync(file, "kim:first-secret\nlev:second-secret\n");
        var add = await server.RunCliAsync("user", "add", "--from-file", file, "--postgres", postgres);
        Assert.True(add.Succeeded, add.Describe());
        Assert.Contains("Created 2 accounts.", add.Output);
        await using var kim = await UserCommandTests.ConnectAsync(server, "kim@localhost/desk", "first-secret");
        var privateQuery = () => new Candor.Xml.Element("iq", "jabber:client").SetAttribute("type", "get")
            .Add(new Candor.Xml.Element("query", "jabber:iq:private").Add(new Candor.Xml.Element("storage", "storage:bookmarks")));
        await kim.IqAsync(privateQuery());

        // XEP-0049 storage is in the 'map' table: while another transaction holds it, kim's request fails, kim stays.
        await using (var blocker = new Npgsql.NpgsqlConnection(postgres))
        {
            await blocker.OpenAsync();
            await using var hold = await blocker.BeginTransactionAsync();
            await using (var lockTable = new Npgsql.NpgsqlCommand("LOCK TABLE map IN ACCESS EXCLUSIVE MODE", blocker, hold))
                await lockTable.ExecuteNonQueryAsync();
            var refused = await Assert.ThrowsAsync<XmppStanzaException>(() => kim.IqAsync(privateQuery(), TimeSpan.FromSeconds(30)));
            Assert.Equal("internal-server-error", refused.Error.Condition);
            Assert.Equal("wait", refused.Error.Type);
            Assert.Contains("storage is busy", refused.Error.Text);
            await hold.RollbackAsync();
        }
        await kim.IqAsync(privateQuery());
        Assert.False(kim.Ended.IsCompleted, server.Transcript);
    }
}
