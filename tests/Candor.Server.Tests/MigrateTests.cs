using Candor.Client;
using Candor.Server.Storage;
using Candor.Server.Tests.Harness;
using Microsoft.Data.Sqlite;

namespace Candor.Server.Tests;

/// <summary><c>candor migrate --from-sqlite</c>: a deployment used on SQLite, served from PostgreSQL afterwards.</summary>
public sealed class MigrateTests
{
    private const string Mam = "urn:xmpp:mam:2";

    [Fact]
    public async Task Users_log_in_with_their_old_passwords_and_find_their_roster_archive_and_offline_messages()
    {
        var old = await ServerFixture.StartAsync();
        ServerFixture? moved = null;
        try
        {
            var alice = await old.CreateUserAsync("alice");
            var bob = await old.CreateUserAsync("bob");
            var carol = await old.CreateUserAsync("carol");
            await using (var a = await old.ClientAsync(alice))
            await using (var b = await old.ClientAsync(bob))
            {
                await a.BecomeAvailableAsync();
                await b.BecomeAvailableAsync();
                await a.SetRosterItemAsync(ServerFixture.JidOf(bob), "Bob from before", ["friends"]);
                await a.SendMessageAsync(b.Bare, "archived before the move", requestReceipt: false);
                await b.ExpectMessageAsync("archived before the move");
                await a.SendMessageAsync(ServerFixture.JidOf(carol), "waiting offline across the move", requestReceipt: false);
                await a.PingAsync();
            }
            await old.StopAsync();

            var options = old.Host.Server.Options;
            options.Postgres = await PostgresCluster.NewDatabaseAsync();
            var counts = await SqliteToPostgres.RunAsync(options);
            Assert.True(counts.KeyValue >= 4 && counts.Map >= 1 && counts.Archive >= 3, counts.ToString());
            // Into an empty database only: a second run would mix two deployments.
            await Assert.ThrowsAsync<InvalidOperationException>(() => SqliteToPostgres.RunAsync(options));

            // The SQLite file goes away: whatever the new server serves comes from PostgreSQL.
            SqliteConnection.ClearAllPools();
            File.Move(old.DatabasePath, old.DatabasePath + ".moved");
            moved = await ServerFixture.StartAsync(o =>
            {
                o.DataDirectory = old.DataDirectory;
                o.Postgres = options.Postgres;
            });
            Assert.False(File.Exists(old.DatabasePath));

            await using var alice2 = await moved.ClientAsync(alice);
            var item = Assert.Single(await alice2.GetRosterAsync());
            Assert.Equal(ServerFixture.JidOf(bob), item.Jid);
            Assert.Equal("Bob from before", item.Name);
            Assert.Equal(["friends"], item.Groups);

            await using var bob2 = await moved.ClientAsync(bob);
            await bob2.IqAsync($"<iq type='set'><query xmlns='{Mam}' queryid='q1'/></iq>");
            var archived = await bob2.ExpectAsync<ChatMessage>(m => m.Stanza.GetChild("result", Mam) is not null);
            Assert.Contains("archived before the move", archived.Stanza.ToString());

            await using var carol2 = await moved.ClientAsync(carol);
            await carol2.BecomeAvailableAsync();
            Assert.Equal("waiting offline across the move", (await carol2.ExpectAsync<ChatMessage>(m => m.Body is not null)).Body);

            // New archive items continue after the copied ids.
            await alice2.BecomeAvailableAsync();
            await bob2.BecomeAvailableAsync();
            await alice2.SendMessageAsync(bob2.Bare, "after the move", requestReceipt: false);
            await bob2.ExpectMessageAsync("after the move");
            await bob2.IqAsync($"<iq type='set'><query xmlns='{Mam}' queryid='q2'/></iq>");
            var bodies = new List<string>();
            for (var i = 0; i < 2; i++)
                bodies.Add((await bob2.ExpectAsync<ChatMessage>(m => m.Stanza.GetChild("result", Mam)?.GetAttribute("queryid") == "q2")).Stanza.ToString());
            Assert.Contains("archived before the move", bodies[0]);
            Assert.Contains("after the move", bodies[1]);
        }
        finally
        {
            if (moved is not null) await moved.DisposeAsync();
            await old.DisposeAsync();
        }
    }
}
